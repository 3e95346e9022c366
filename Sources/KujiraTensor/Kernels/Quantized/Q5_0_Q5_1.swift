/// GGML Q5_0: 32 weights per 22-byte block, `w = d * (q - 16)` with 5-bit `q`.
///
/// Layout: `d: f16`, `qh: u32` (little-endian; bit `j` is the 5th bit of element `j`), `qs: [16] u8`
/// (low nibbles: element `j < 16` low nibble of `qs[j]`, element `j + 16` high nibble).
public enum Q5_0 {
    public static let blockBytes = 22

    /// Reference dequantizer of one block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0)
        let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        let qs = block + 6
        for j in 0..<16 {
            let byte = qs.load(fromByteOffset: j, as: UInt8.self)
            let lo = Int(byte & 0x0F) | Int((qh >> UInt32(j)) & 1) << 4
            let hi = Int(byte >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
            out[j] = d * Float(lo - 16)
            out[j + 16] = d * Float(hi - 16)
        }
    }
}

/// GGML Q5_1: 32 weights per 24-byte block, `w = d * q + m` with unsigned 5-bit `q`.
///
/// Layout: `d: f16`, `m: f16`, `qh: u32`, `qs: [16] u8` (bit order as Q5_0).
public enum Q5_1 {
    public static let blockBytes = 24

    /// Reference dequantizer of one block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0), m = loadF16(block, 2)
        let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let qs = block + 8
        for j in 0..<16 {
            let byte = qs.load(fromByteOffset: j, as: UInt8.self)
            let lo = UInt32(byte & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
            let hi = UInt32(byte >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
            out[j] = d * Float(lo) + m
            out[j + 16] = d * Float(hi) + m
        }
    }
}
