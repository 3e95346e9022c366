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

extension Q4_0 {
    /// Fused dot of one row (`blocks` blocks) with Q8 activations: sum_b d_w d_x (q·a) - 8 d_w (d_x sum a).
    /// Integer block sums are exact; they are accumulated as 4 float lanes scaled per block (no per-block reduction).
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc = SIMD4<Float>()
        var offset: Float = 0
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let packed = block.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt16>.self)
            let p = x.products(lowNibbles: packed, group: 2 * b) &+ x.products(highNibbles: packed, group: 2 * b + 1)
            let d = scaleF16(block, 0)
            acc += pairSumsAsFloat(p) * (d * x.scales[b])
            offset += d * x.scaledSums[b]
        }
        return acc.sum() - 8 * offset
    }
}

extension Q4_1 {
    /// Fused dot with Q8 activations: sum_b d_w d_x (q·a) + m_w (d_x sum a).
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc = SIMD4<Float>()
        var offset: Float = 0
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let packed = block.loadUnaligned(fromByteOffset: 4, as: SIMD8<UInt16>.self)
            let p = x.products(lowNibbles: packed, group: 2 * b) &+ x.products(highNibbles: packed, group: 2 * b + 1)
            acc += pairSumsAsFloat(p) * (scaleF16(block, 0) * x.scales[b])
            offset += scaleF16(block, 2) * x.scaledSums[b]
        }
        return acc.sum() + offset
    }
}
