/// Writes 8 values `±(scale * grid byte j)` (negative where bit j of `signs` is set): gguf-py's `db * grid * sign`,
/// whose sign factor is exact, so one rounding per value.
@inline(__always)
func iqEmit8(_ row: UInt64, signs: UInt8, scale: Float, into out: UnsafeMutablePointer<Float>) {
    for j in 0..<8 {
        let v = scale * Float(IQTables.byte(row, j))
        out[j] = signs & (1 << UInt8(j)) != 0 ? -v : v
    }
}

/// GGML IQ2_XXS: 256 weights per 66-byte super-block, 8 runs of 32 as 4 E8-lattice points (8 values from {8, 25, 43})
/// with signs.
///
/// Layout: `d: f16`, then per run `r` two u32 `a0, a1` (bytes 2+8r …). Byte `l` of `a0` indexes `iq2xxs_grid` for values
/// `8l ..< 8l+8` of the run; `ksigns[(a1 >> 7l) & 127]` holds their signs; the run's scale is
/// `db = d * (0.5 + (a1 >> 28)) * 0.25`. `w = ±db * grid`.
public enum IQ2_XXS {
    public static let blockBytes = 66

    /// Reference dequantizer of one super-block (float operations as gguf-py).
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let t = IQTables.shared
        let d = loadF16(block, 0)
        for r in 0..<8 {
            let a0 = block.loadUnaligned(fromByteOffset: 2 + 8 * r, as: UInt32.self)
            let a1 = block.loadUnaligned(fromByteOffset: 6 + 8 * r, as: UInt32.self)
            let db = d * (0.5 + Float(a1 >> 28)) * 0.25
            for l in 0..<4 {
                let row = t.iq2xxs[Int((a0 >> UInt32(8 * l)) & 0xFF)]
                iqEmit8(row, signs: t.ksigns[Int((a1 >> UInt32(7 * l)) & 127)], scale: db, into: out + 32 * r + 8 * l)
            }
        }
    }
}

/// GGML IQ2_XS: 256 weights per 74-byte super-block, 32 groups of 8 (9-bit grid index + 7-bit sign index), 4-bit
/// scales per 16 values.
///
/// Layout: `d: f16`, `qs: [32] u16` (2), `scales: [8] u8` (66). Group `k` (values 8k ..< 8k+8) is `q = qs[k]`:
/// `iq2xs_grid[q & 511]` signed by `ksigns[q >> 9]`; scale `s = (scales[k/4] >> 4((k/2)%2)) & 15`,
/// `db = d * (0.5 + s) * 0.25`.
public enum IQ2_XS {
    public static let blockBytes = 74

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let t = IQTables.shared
        let d = loadF16(block, 0)
        for k in 0..<32 {
            let q = block.loadUnaligned(fromByteOffset: 2 + 2 * k, as: UInt16.self)
            let s = (block.load(fromByteOffset: 66 + k / 4, as: UInt8.self) >> UInt8(4 * ((k / 2) & 1))) & 0x0F
            let db = d * (0.5 + Float(s)) * 0.25
            iqEmit8(t.iq2xs[Int(q & 511)], signs: t.ksigns[Int(q >> 9)], scale: db, into: out + 8 * k)
        }
    }
}

/// GGML IQ2_S: 256 weights per 82-byte super-block, 32 groups of 8 (10-bit grid index, 8 explicit sign bits), 4-bit
/// scales per 16 values.
///
/// Layout: `d: f16`, `qs: [32] u8` (2), `signs: [32] u8` (34), `qh: [8] u8` (66), `scales: [8] u8` (74). Group `k`:
/// index `qs[k] | ((qh[k/4] >> 2(k%4)) & 3) << 8` into `iq2s_grid`, signs `signs[k]`, scale as IQ2_XS.
public enum IQ2_S {
    public static let blockBytes = 82

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let t = IQTables.shared
        let d = loadF16(block, 0)
        for k in 0..<32 {
            let high = (block.load(fromByteOffset: 66 + k / 4, as: UInt8.self) >> UInt8(2 * (k % 4))) & 3
            let index = Int(block.load(fromByteOffset: 2 + k, as: UInt8.self)) | Int(high) << 8
            let s = (block.load(fromByteOffset: 74 + k / 4, as: UInt8.self) >> UInt8(4 * ((k / 2) & 1))) & 0x0F
            let db = d * (0.5 + Float(s)) * 0.25
            iqEmit8(t.iq2s[index], signs: block.load(fromByteOffset: 34 + k, as: UInt8.self), scale: db, into: out + 8 * k)
        }
    }
}
