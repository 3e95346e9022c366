/// Shared 6-bit scale/min packing of Q4_K and Q5_K (12 bytes for 8 sub-blocks).
///
/// Sub-block `j < 4`: scale `b[j] & 63`, min `b[j+4] & 63`. Sub-block `j >= 4`: scale
/// `(b[j+4] & 15) | ((b[j-4] >> 6) << 4)`, min `(b[j+4] >> 4) | ((b[j] >> 6) << 4)`.
enum KQuantScaleMin {
    @inline(__always)
    static func unpack(_ b: UnsafeRawPointer) -> (scales: SIMD8<Int32>, mins: SIMD8<Int32>) {
        var scales = SIMD8<Int32>(), mins = SIMD8<Int32>()
        for j in 0..<4 {
            scales[j] = Int32(b.load(fromByteOffset: j, as: UInt8.self) & 63)
            mins[j] = Int32(b.load(fromByteOffset: j + 4, as: UInt8.self) & 63)
        }
        for j in 4..<8 {
            let packed = b.load(fromByteOffset: j + 4, as: UInt8.self)
            scales[j] = Int32((packed & 0x0F) | ((b.load(fromByteOffset: j - 4, as: UInt8.self) >> 6) << 4))
            mins[j] = Int32((packed >> 4) | ((b.load(fromByteOffset: j, as: UInt8.self) >> 6) << 4))
        }
        return (scales, mins)
    }
}

/// GGML Q4_K: 256 weights per 144-byte super-block, 8 sub-blocks of 32 with 6-bit scale and min.
///
/// Layout: `d: f16`, `dmin: f16`, `scales: [12] u8` (see `KQuantScaleMin`), `qs: [128] u8`. Element
/// `e = c*64 + s*32 + l` (c < 4, s < 2, l < 32) is `(qs[c*32 + l] >> 4s) & 15` in sub-block `2c + s`;
/// `w = (d * scale) * q - (dmin * min)`.
public enum Q4_K {
    public static let blockBytes = 144

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0), dmin = loadF16(block, 2)
        let (scales, mins) = KQuantScaleMin.unpack(block + 4)
        for e in 0..<256 {
            let c = e >> 6, s = (e >> 5) & 1, l = e & 31, sub = e >> 5
            let q = (block.load(fromByteOffset: 16 + c * 32 + l, as: UInt8.self) >> UInt8(4 * s)) & 0x0F
            out[e] = (d * Float(scales[sub])) * Float(q) - dmin * Float(mins[sub])
        }
    }
}

/// GGML Q5_K: 256 weights per 176-byte super-block; Q4_K plus a fifth bit per weight.
///
/// Layout: `d: f16`, `dmin: f16`, `scales: [12] u8`, `qh: [32] u8`, `qs: [128] u8`. Low nibble as
/// Q4_K; the fifth bit of element `e` is `(qh[e % 32] >> (e / 32)) & 1`.
public enum Q5_K {
    public static let blockBytes = 176

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0), dmin = loadF16(block, 2)
        let (scales, mins) = KQuantScaleMin.unpack(block + 4)
        for e in 0..<256 {
            let c = e >> 6, s = (e >> 5) & 1, l = e & 31, sub = e >> 5
            let low = (block.load(fromByteOffset: 48 + c * 32 + l, as: UInt8.self) >> UInt8(4 * s)) & 0x0F
            let high = (block.load(fromByteOffset: 16 + l, as: UInt8.self) >> UInt8(sub)) & 1
            out[e] = (d * Float(scales[sub])) * Float(low | high << 4) - dmin * Float(mins[sub])
        }
    }
}
