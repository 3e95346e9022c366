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
    /// Integer block sums are exact (256-bit `vpmaddwd` products); they are accumulated as 8 float lanes scaled
    /// per block with FMA (no per-block reduction).
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        var offset: Float = 0
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let q = x.opaque(unpackNibbles256(block.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt16>.self)))
            let d = x.scaleF16(block, 0)
            acc.addProduct(x.blockDot(q, block: b), x.blockScale(b, times: d))
            offset = offset.addingProduct(d, x.scaledSums[b])
        }
        return treeSum(acc) - 8 * offset
    }
}

extension Q4_1 {
    /// Fused dot with Q8 activations: sum_b d_w d_x (q·a) + m_w (d_x sum a).
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        var offset: Float = 0
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let q = x.opaque(unpackNibbles256(block.loadUnaligned(fromByteOffset: 4, as: SIMD8<UInt16>.self)))
            acc.addProduct(x.blockDot(q, block: b), x.blockScale(b, times: x.scaleF16(block, 0)))
            offset = offset.addingProduct(x.scaleF16(block, 2), x.scaledSums[b])
        }
        return treeSum(acc) + offset
    }
}

/// Four tokens' activations for the 4-token dots (prefill): each weight block is unpacked once for all four.
public typealias Q8Rows4 = (Q8Row, Q8Row, Q8Row, Q8Row)

extension Q4_0 {
    /// `dot` for four tokens at once, bit for bit the same per token (same float operations in the same order).
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
        var offset = SIMD4<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let q = x.0.opaque(unpackNibbles256(block.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt16>.self)))
            let d = x.0.scaleF16(block, 0)
            acc0.addProduct(x.0.blockDot(q, block: b), x.0.blockScale(b, times: d))
            acc1.addProduct(x.1.blockDot(q, block: b), x.1.blockScale(b, times: d))
            acc2.addProduct(x.2.blockDot(q, block: b), x.2.blockScale(b, times: d))
            acc3.addProduct(x.3.blockDot(q, block: b), x.3.blockScale(b, times: d))
            offset.addProduct(SIMD4(repeating: d), SIMD4(x.0.scaledSums[b], x.1.scaledSums[b], x.2.scaledSums[b], x.3.scaledSums[b]))
        }
        return SIMD4(treeSum(acc0), treeSum(acc1), treeSum(acc2), treeSum(acc3)) - 8 * offset
    }
}

extension Q4_1 {
    /// `dot` for four tokens at once, bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
        var offset = SIMD4<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let q = x.0.opaque(unpackNibbles256(block.loadUnaligned(fromByteOffset: 4, as: SIMD8<UInt16>.self)))
            let d = x.0.scaleF16(block, 0), m = x.0.scaleF16(block, 2)
            acc0.addProduct(x.0.blockDot(q, block: b), x.0.blockScale(b, times: d))
            acc1.addProduct(x.1.blockDot(q, block: b), x.1.blockScale(b, times: d))
            acc2.addProduct(x.2.blockDot(q, block: b), x.2.blockScale(b, times: d))
            acc3.addProduct(x.3.blockDot(q, block: b), x.3.blockScale(b, times: d))
            offset.addProduct(SIMD4(repeating: m), SIMD4(x.0.scaledSums[b], x.1.scaledSums[b], x.2.scaledSums[b], x.3.scaledSums[b]))
        }
        return SIMD4(treeSum(acc0), treeSum(acc1), treeSum(acc2), treeSum(acc3)) + offset
    }
}
