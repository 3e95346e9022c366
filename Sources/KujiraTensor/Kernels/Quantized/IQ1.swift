/// Writes 8 values `scale * (grid value j + delta)` for an IQ1 grid row (int8 values −1, 0, 1): gguf-py's
/// `dl * (grid + delta)` (the sum is exact in Float, then one rounding).
@inline(__always)
func iqEmit1(_ row: UInt64, delta: Float, scale: Float, into out: UnsafeMutablePointer<Float>) {
    for j in 0..<8 {
        out[j] = scale * (Float(Int8(bitPattern: IQTables.byte(row, j))) + delta)
    }
}

/// The ±1/8 offset of the IQ1 formats (`IQ1S_DELTA`).
let iq1Delta: Float = 0.125

/// GGML IQ1_S: 256 weights per 50-byte super-block, 32 groups of 8 ternary values (11-bit index into `iq1s_grid`),
/// a 3-bit scale and a ±1/8 shift per 32.
///
/// Layout: `d: f16`, `qs: [32] u8` (2), `qh: [8] u16` (34). Run `r` (values 32r ..< 32r+32) reads `h = qh[r]`:
/// `dl = d * Float(2·((h >> 12) & 7) + 1)`, `delta = h & 0x8000 ? −1/8 : 1/8`; its group `l` (8 values) is
/// `iq1s_grid[qs[4r+l] | ((h >> 3l) & 7) << 8]`; `w = dl * (grid + delta)`.
public enum IQ1_S {
    public static let blockBytes = 50

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let t = IQTables.shared
        let d = loadF16(block, 0)
        for r in 0..<8 {
            let h = block.loadUnaligned(fromByteOffset: 34 + 2 * r, as: UInt16.self)
            let dl = d * Float(2 * Int((h >> 12) & 7) + 1)
            let delta = h & 0x8000 != 0 ? -iq1Delta : iq1Delta
            for l in 0..<4 {
                let index = Int(block.load(fromByteOffset: 2 + 4 * r + l, as: UInt8.self)) | Int((h >> UInt16(3 * l)) & 7) << 8
                iqEmit1(t.iq1s[index], delta: delta, scale: dl, into: out + 32 * r + 8 * l)
            }
        }
    }
}

/// GGML IQ1_M: 256 weights per 56-byte super-block, 32 groups of 8 ternary values, a 3-bit scale per 16 and a ±1/8
/// shift per 8; the f16 super-block scale is split over the top nibbles of the four scale words.
///
/// Layout: `qs: [32] u8` (0), `qh: [16] u8` (32), `sc: [4] u16` (48). `d` = the half with bits
/// `sc[0] >> 12 | (sc[1] >> 8) & 0xF0 | (sc[2] >> 4) & 0xF00 | sc[3] & 0xF000`. Group `k` (values 8k ..< 8k+8) uses the
/// nibble `n = (qh[k/2] >> 4(k%2)) & 15`: index `qs[k] | (n & 7) << 8`, `delta = n & 8 ? −1/8 : 1/8`; its 16-value
/// scale `s = k/2` is `dl = d * Float(2·((sc[s/4] >> 3(s%4)) & 7) + 1)`; `w = dl * (grid + delta)`.
public enum IQ1_M {
    public static let blockBytes = 56

    /// The super-block scale assembled from the scale words' top nibbles.
    @inline(__always)
    static func superScale(_ block: UnsafeRawPointer) -> Float {
        var bits: UInt16 = 0
        for i in 0..<4 {
            let word = block.loadUnaligned(fromByteOffset: 48 + 2 * i, as: UInt16.self)
            bits |= (word & 0xF000) >> UInt16(12 - 4 * i)
        }
        return FloatConversion.f16ToFloat(bits)
    }

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let t = IQTables.shared
        let d = superScale(block)
        for k in 0..<32 {
            let s = k / 2
            let word = block.loadUnaligned(fromByteOffset: 48 + 2 * (s / 4), as: UInt16.self)
            let dl = d * Float(2 * Int((word >> UInt16(3 * (s % 4))) & 7) + 1)
            let nibble = (block.load(fromByteOffset: 32 + k / 2, as: UInt8.self) >> UInt8(4 * (k % 2))) & 0x0F
            let index = Int(block.load(fromByteOffset: k, as: UInt8.self)) | Int(nibble & 7) << 8
            iqEmit1(t.iq1s[index], delta: nibble & 8 != 0 ? -iq1Delta : iq1Delta, scale: dl, into: out + 8 * k)
        }
    }
}
