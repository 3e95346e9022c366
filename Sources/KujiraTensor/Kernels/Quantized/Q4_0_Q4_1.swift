/// GGML Q4_0: 32 weights per 18-byte block, `w = d * (q - 8)`.
///
/// Layout: `d: f16` (bytes 0..<2), `qs: [16] u8` (bytes 2..<18). Element `j < 16` is the low nibble
/// of `qs[j]`, element `j + 16` the high nibble.
public enum Q4_0 {
    public static let blockBytes = 18

    /// Reference dequantizer of one block (bit-exact with ggml/gguf-py: one float multiply per weight).
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0)
        let qs = block + 2
        for j in 0..<16 {
            let byte = qs.load(fromByteOffset: j, as: UInt8.self)
            out[j] = d * Float(Int(byte & 0x0F) - 8)
            out[j + 16] = d * Float(Int(byte >> 4) - 8)
        }
    }
}

/// GGML Q4_1: 32 weights per 20-byte block, `w = d * q + m`.
///
/// Layout: `d: f16`, `m: f16`, `qs: [16] u8` (same nibble order as Q4_0, unsigned 0...15).
public enum Q4_1 {
    public static let blockBytes = 20

    /// Reference dequantizer of one block (`d * q + m`, two roundings as in ggml).
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0), m = loadF16(block, 2)
        let qs = block + 4
        for j in 0..<16 {
            let byte = qs.load(fromByteOffset: j, as: UInt8.self)
            out[j] = d * Float(byte & 0x0F) + m
            out[j + 16] = d * Float(byte >> 4) + m
        }
    }
}
