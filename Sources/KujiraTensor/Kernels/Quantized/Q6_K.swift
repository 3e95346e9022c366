/// GGML Q6_K: 256 weights per 210-byte super-block, 16 sub-blocks of 16 with signed 8-bit scales.
///
/// Layout: `ql: [128] u8`, `qh: [64] u8`, `scales: [16] i8`, `d: f16`. In half `h` (128 weights),
/// element `r` has low nibble `(ql[h*64 + r%64] >> 4(r/64)) & 15` and high two bits
/// `(qh[h*32 + r%32] >> 2(r/32)) & 3`; `w = (d * scale[e/16]) * (q - 32)`.
public enum Q6_K {
    public static let blockBytes = 210

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 208)
        for e in 0..<256 {
            let h = e >> 7, r = e & 127
            let low = (block.load(fromByteOffset: h * 64 + (r & 63), as: UInt8.self) >> UInt8(4 * (r >> 6))) & 0x0F
            let high = (block.load(fromByteOffset: 128 + h * 32 + (r & 31), as: UInt8.self) >> UInt8(2 * (r >> 5))) & 0x03
            let scale = block.load(fromByteOffset: 192 + (e >> 4), as: Int8.self)
            out[e] = (d * Float(scale)) * Float(Int(low | high << 4) - 32)
        }
    }
}
