/// GGML IQ4_NL: 32 weights per 18-byte block, `w = d * kvalues[q]` with the 16 non-linear levels `kvalues_iq4nl`
/// (−127 … 113).
///
/// Layout: `d: f16`, `qs: [16] u8`. Element `j < 16` is the low nibble of `qs[j]`, element `j + 16` the high nibble
/// (Q4_0's order).
public enum IQ4_NL {
    public static let blockBytes = 18

    /// Reference dequantizer of one block (`d * Float(level)`, one rounding, as gguf-py).
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let levels = IQTables.shared.iq4nl
        let d = loadF16(block, 0)
        for j in 0..<16 {
            let byte = block.load(fromByteOffset: 2 + j, as: UInt8.self)
            out[j] = d * Float(levels[Int(byte & 0x0F)])
            out[j + 16] = d * Float(levels[Int(byte >> 4)])
        }
    }
}

/// GGML IQ4_XS: 256 weights per 136-byte super-block, 8 runs of 32 with 6-bit signed scales and IQ4_NL levels.
///
/// Layout: `d: f16` (0), `scales_h: u16` (2), `scales_l: [4] u8` (4), `qs: [128] u8` (8). Run `r` has scale
/// `ls = (scales_l[r/2] >> 4(r%2)) & 15 | ((scales_h >> 2r) & 3) << 4`, `dl = d * Float(ls − 32)`; its 32 values are
/// the nibbles of `qs[16r ..< 16r+16]` in IQ4_NL order; `w = dl * kvalues[q]`.
public enum IQ4_XS {
    public static let blockBytes = 136

    /// Signed 6-bit scale of run `r` (−32 … 31).
    @inline(__always)
    static func scale(_ block: UnsafeRawPointer, _ r: Int) -> Int32 {
        let low = (block.load(fromByteOffset: 4 + (r >> 1), as: UInt8.self) >> UInt8(4 * (r & 1))) & 0x0F
        let high = UInt8(truncatingIfNeeded: block.loadUnaligned(fromByteOffset: 2, as: UInt16.self) >> UInt16(2 * r)) & 0x03
        return Int32(low | high << 4) - 32
    }

    /// Reference dequantizer of one super-block (`(d * scale) * level`, as gguf-py).
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let levels = IQTables.shared.iq4nl
        let d = loadF16(block, 0)
        for r in 0..<8 {
            let dl = d * Float(scale(block, r))
            for j in 0..<16 {
                let byte = block.load(fromByteOffset: 8 + 16 * r + j, as: UInt8.self)
                out[32 * r + j] = dl * Float(levels[Int(byte & 0x0F)])
                out[32 * r + j + 16] = dl * Float(levels[Int(byte >> 4)])
            }
        }
    }
}
