/// GGML Q8_0: 32 weights per 34-byte block, `w = d * q`.
///
/// Layout: `d: f16`, `qs: [32] i8`.
public enum Q8_0 {
    public static let blockBytes = 34

    /// Reference dequantizer of one block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0)
        for j in 0..<32 {
            out[j] = Float(block.load(fromByteOffset: 2 + j, as: Int8.self)) * d
        }
    }
}
