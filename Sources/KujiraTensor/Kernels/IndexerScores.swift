import CKujiraKernels

/// Lightning-indexer scores (DeepSeek-V3.2 DSA, DeepSeek-V4 CSA): for each key row k_j,
/// row[j] = Σ_h weights[h] · max(scale · q_h · k_j, 0).
///
/// The decode-time cost of sparse attention is this O(context) scan: `compute` is the fast kernel beside the plain
/// `reference`.
public enum IndexerScores {
    /// Plain reference: `Linear.dot` per (key, head).
    // q (heads, dim) · keys (n, dim)ᵀ -> row (n,)
    public static func reference(q: UnsafePointer<Float>, heads: Int, dim: Int, weights: UnsafePointer<Float>, scale: Float,
                                 keys: UnsafePointer<Float>, rowStride: Int, range: Range<Int>, into row: UnsafeMutablePointer<Float>) {
        for j in range {
            var total: Float = 0
            for h in 0..<heads {
                let d = Linear.dot(UnsafeBufferPointer(start: q + h * dim, count: dim), UnsafeBufferPointer(start: keys + j * rowStride, count: dim))
                total += weights[h] * max(scale * d, 0)
            }
            row[j] = total
        }
    }

    /// The fast path: blocks of 8 keys transposed into a (dim, 8) tile, so each head's 8 dots are SIMD8 lanes filled
    /// by FMAs with the query broadcast — no horizontal sum per (key, head), which is what a dot-per-pair pays. Heads
    /// go 4 at a time (4 independent FMA chains). Needs dim ≤ 256 and a multiple of 8 (DeepSeek: 64, 128); other
    /// shapes and the last keys of a range use `reference`. Sums in another order than `reference`: equal to it
    /// within float rounding, not bit for bit.
    // q (heads, dim) · keys (n, dim)ᵀ -> row (n,)
    public static func compute(q: UnsafePointer<Float>, heads: Int, dim: Int, weights: UnsafePointer<Float>, scale: Float,
                               keys: UnsafePointer<Float>, rowStride: Int, range: Range<Int>, into row: UnsafeMutablePointer<Float>) {
        guard dim % 8 == 0, dim <= 256, range.count >= 8 else {
            return reference(q: q, heads: heads, dim: dim, weights: weights, scale: scale, keys: keys, rowStride: rowStride, range: range, into: row)
        }
        let blocks = range.count / 8
        withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: dim) { tile in
            for b in 0..<blocks {
                let j = range.lowerBound + b * 8
                tileKeys(keys + j * rowStride, rowStride: rowStride, dim: dim, into: tile.baseAddress!)
                let total = blockScores(q: q, heads: heads, dim: dim, weights: weights, scale: scale, tile: tile.baseAddress!)
                UnsafeMutableRawPointer(row + j).storeBytes(of: total, as: SIMD8<Float>.self)
            }
        }
        let done = range.lowerBound + blocks * 8
        if done < range.upperBound {
            reference(q: q, heads: heads, dim: dim, weights: weights, scale: scale, keys: keys, rowStride: rowStride,
                      range: done..<range.upperBound, into: row)
        }
    }

    /// tile[c] = (k_0[c], …, k_7[c]) for 8 consecutive key rows.
    @inline(__always)
    static func tileKeys(_ keys: UnsafePointer<Float>, rowStride: Int, dim: Int, into tile: UnsafeMutablePointer<SIMD8<Float>>) {
        for c in stride(from: 0, to: dim, by: 8) {
            var rows = (SIMD8<Float>.zero, SIMD8<Float>.zero, SIMD8<Float>.zero, SIMD8<Float>.zero,
                        SIMD8<Float>.zero, SIMD8<Float>.zero, SIMD8<Float>.zero, SIMD8<Float>.zero)
            withUnsafeMutableBytes(of: &rows) { r in
                for i in 0..<8 {
                    r.storeBytes(of: UnsafeRawPointer(keys + i * rowStride + c).loadUnaligned(as: SIMD8<Float>.self), toByteOffset: i * 32,
                                 as: SIMD8<Float>.self)
                }
            }
            withUnsafeBytes(of: rows) { r in
                let f = r.bindMemory(to: Float.self)
                for e in 0..<8 {
                    tile[c + e] = SIMD8(f[e], f[8 + e], f[16 + e], f[24 + e], f[32 + e], f[40 + e], f[48 + e], f[56 + e])
                }
            }
        }
    }

    /// max(x, 0) per lane (the stdlib's generic `pointwiseMax` was left as a call here: 7% of a decode step).
    @inline(__always)
    static func relu(_ x: SIMD8<Float>) -> SIMD8<Float> { x.replacing(with: 0, where: x .< 0) }

    /// Σ_h w_h · max(scale · q_h · tile, 0) for the 8 keys of a tile (`kujira_indexer_block_scores` with AVX2).
    static func blockScores(q: UnsafePointer<Float>, heads: Int, dim: Int, weights: UnsafePointer<Float>, scale: Float,
                            tile: UnsafePointer<SIMD8<Float>>) -> SIMD8<Float> {
        guard KernelISA.floatKernels else { return swiftBlockScores(q: q, heads: heads, dim: dim, weights: weights, scale: scale, tile: tile) }
        var total = SIMD8<Float>()
        withUnsafeMutableBytes(of: &total) { out in
            kujira_indexer_block_scores(q, Int32(heads), Int32(dim), weights, scale, UnsafeRawPointer(tile).assumingMemoryBound(to: Float.self),
                                        out.baseAddress!.assumingMemoryBound(to: Float.self))
        }
        return total
    }

    /// `blockScores` in Swift SIMD code (reference of `kujira_indexer_block_scores`).
    @inline(never)
    static func swiftBlockScores(q: UnsafePointer<Float>, heads: Int, dim: Int, weights: UnsafePointer<Float>, scale: Float,
                                 tile: UnsafePointer<SIMD8<Float>>) -> SIMD8<Float> {
        var total = SIMD8<Float>.zero
        var h = 0
        while h + 4 <= heads {
            let q0 = q + h * dim, q1 = q0 + dim, q2 = q1 + dim, q3 = q2 + dim
            var a0 = SIMD8<Float>.zero, a1 = a0, a2 = a0, a3 = a0
            for c in 0..<dim {
                let t = tile[c]
                a0.addProduct(SIMD8(repeating: q0[c]), t)
                a1.addProduct(SIMD8(repeating: q1[c]), t)
                a2.addProduct(SIMD8(repeating: q2[c]), t)
                a3.addProduct(SIMD8(repeating: q3[c]), t)
            }
            total.addProduct(SIMD8(repeating: weights[h]), relu(a0 * scale))
            total.addProduct(SIMD8(repeating: weights[h + 1]), relu(a1 * scale))
            total.addProduct(SIMD8(repeating: weights[h + 2]), relu(a2 * scale))
            total.addProduct(SIMD8(repeating: weights[h + 3]), relu(a3 * scale))
            h += 4
        }
        while h < heads {
            let qh = q + h * dim
            var a = SIMD8<Float>.zero
            for c in 0..<dim { a.addProduct(SIMD8(repeating: qh[c]), tile[c]) }
            total.addProduct(SIMD8(repeating: weights[h]), relu(a * scale))
            h += 1
        }
        return total
    }
}
