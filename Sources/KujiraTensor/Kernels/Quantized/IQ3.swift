/// Writes 4 values `±(scale * grid byte j)` (negative where bit `j + shift` of `signs` is set).
@inline(__always)
func iqEmit4(_ row: UInt32, signs: UInt8, shift: Int, scale: Float, into out: UnsafeMutablePointer<Float>) {
    for j in 0..<4 {
        let v = scale * Float(IQTables.byte(row, j))
        out[j] = signs & (1 << UInt8(j &+ shift)) != 0 ? -v : v
    }
}

/// GGML IQ3_XXS: 256 weights per 98-byte super-block, 64 D4-lattice points of 4 values (from {4, 12, …, 62}) with
/// signs, 4-bit scale per 32.
///
/// Layout: `d: f16`, `qs: [64] u8` (2), `scales_and_signs: [8] u32` (66). Value `e` is entry `qs[e/4]` of
/// `iq3xxs_grid`, element `e%4`; run `r = e/32` has `a = scales_and_signs[r]`, `db = d * (0.5 + (a >> 28)) * 0.5`, and
/// group `l = (e%32)/8` takes its signs from `ksigns[(a >> 7l) & 127]` (bit `e%8`).
public enum IQ3_XXS {
    public static let blockBytes = 98

    /// Reference dequantizer of one super-block (float operations as gguf-py).
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let t = IQTables.shared
        let d = loadF16(block, 0)
        for r in 0..<8 {
            let a = block.loadUnaligned(fromByteOffset: 66 + 4 * r, as: UInt32.self)
            let db = d * (0.5 + Float(a >> 28)) * 0.5
            for l in 0..<4 {
                let signs = t.ksigns[Int((a >> UInt32(7 * l)) & 127)]
                for h in 0..<2 {
                    let index = Int(block.load(fromByteOffset: 2 + 8 * r + 2 * l + h, as: UInt8.self))
                    iqEmit4(t.iq3xxs[index], signs: signs, shift: 4 * h, scale: db, into: out + 32 * r + 8 * l + 4 * h)
                }
            }
        }
    }
}

/// GGML IQ3_S: 256 weights per 110-byte super-block, 64 points of 4 odd values (1…15) from a 9-bit index, explicit
/// signs, 4-bit scale per 32.
///
/// Layout: `d: f16`, `qs: [64] u8` (2), `qh: [8] u8` (66), `signs: [32] u8` (74), `scales: [4] u8` (106). Entry `i`
/// (values 4i ..< 4i+4) is `iq3s_grid[qs[i] | ((qh[i/8] >> (i%8)) & 1) << 8]`; value `e` is negative when bit `e%8`
/// of `signs[e/8]` is set; run `r = e/32` has `db = d * Float(1 + 2·((scales[r/2] >> 4(r%2)) & 15))`.
public enum IQ3_S {
    public static let blockBytes = 110

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let t = IQTables.shared
        let d = loadF16(block, 0)
        for r in 0..<8 {
            let s = (block.load(fromByteOffset: 106 + r / 2, as: UInt8.self) >> UInt8(4 * (r & 1))) & 0x0F
            let db = d * Float(1 + 2 * Int(s))
            for i in (8 * r)..<(8 * r + 8) {
                let high = (block.load(fromByteOffset: 66 + i / 8, as: UInt8.self) >> UInt8(i % 8)) & 1
                let index = Int(block.load(fromByteOffset: 2 + i, as: UInt8.self)) | Int(high) << 8
                let signs = block.load(fromByteOffset: 74 + i / 2, as: UInt8.self)
                iqEmit4(t.iq3s[index], signs: signs, shift: 4 * (i & 1), scale: db, into: out + 4 * i)
            }
        }
    }
}
