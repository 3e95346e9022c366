import KujiraFormats
import KujiraTensor

/// Multi-head latent attention (DeepSeek-V2/V3) with the compressed cache and absorbed projections.
///
/// Per token the cache holds only `c_kv` (the RMS-normalised latent, `kv_lora_rank` values) and the rotated
/// shared rope key `k_pe` (`qk_rope_head_dim` values). Keys and values are never expanded: `W_UK` is absorbed
/// into the query (q_lat = W_UKᵀ q_nope, scored against c_kv) and `W_UV` into the output
/// (o_h = W_UV (Σᵢ pᵢ c_kv,i)), i.e. multi-query attention over the latent.
public struct MultiHeadLatentAttention: TokenMixer {
    /// `q_a_proj`, `q_a_layernorm`, `q_b_proj` when `q_lora_rank` is set; else `q_proj`.
    public let qA: LinearWeight?, qANorm: [Float]?, qB: LinearWeight?, qProj: LinearWeight?
    /// `kv_a_proj_with_mqa` (kv_lora_rank + rope, hidden), its norm, and `kv_b_proj` (heads·(nope+v), kv_lora_rank).
    public let kvA: LinearWeight, kvANorm: [Float], kvB: LinearWeight
    public let oProj: LinearWeight
    public let heads: Int, nopeDim: Int, ropeDim: Int, valueDim: Int, kvLoraRank: Int
    public let rope: RotaryEmbedding
    /// Softmax scale: qk_head_dim^-½ · mscale² (YaRN's `mscale_all_dim`).
    public let softmaxScale: Float
    /// The low-rank norms use the reference's fixed epsilon.
    static let latentNormEps: Float = 1e-6

    public init(weights: any WeightStore, prefix: String, hidden: Int, heads: Int, qLoraRank: Int?, kvLoraRank: Int,
                nopeDim: Int, ropeDim: Int, valueDim: Int, rope: RotaryEmbedding, softmaxScale: Float, blockSize: [Int]?) throws {
        let qHeadDim = nopeDim + ropeDim
        if let rank = qLoraRank {
            qA = try weights.linear("\(prefix).q_a_proj.weight", rows: rank, cols: hidden, blockSize: blockSize)
            qANorm = try weights.floats("\(prefix).q_a_layernorm.weight", shape: [rank])
            qB = try weights.linear("\(prefix).q_b_proj.weight", rows: heads * qHeadDim, cols: rank, blockSize: blockSize)
            qProj = nil
        } else {
            qA = nil; qANorm = nil; qB = nil
            qProj = try weights.linear("\(prefix).q_proj.weight", rows: heads * qHeadDim, cols: hidden, blockSize: blockSize)
        }
        kvA = try weights.linear("\(prefix).kv_a_proj_with_mqa.weight", rows: kvLoraRank + ropeDim, cols: hidden, blockSize: blockSize)
        kvANorm = try weights.floats("\(prefix).kv_a_layernorm.weight", shape: [kvLoraRank])
        kvB = try weights.linear("\(prefix).kv_b_proj.weight", rows: heads * (nopeDim + valueDim), cols: kvLoraRank, blockSize: blockSize)
        oProj = try weights.linear("\(prefix).o_proj.weight", rows: hidden, cols: heads * valueDim, blockSize: blockSize)
        self.heads = heads
        self.nopeDim = nopeDim
        self.ropeDim = ropeDim
        self.valueDim = valueDim
        self.kvLoraRank = kvLoraRank
        self.rope = rope
        self.softmaxScale = softmaxScale
    }

    /// c_kv and k_pe: 576 values for DeepSeek-V3 (512 + 64).
    public var cacheRowWidth: Int { kvLoraRank + ropeDim }

    public var parameterCount: Int {
        [qA, qB, qProj, kvA, kvB, oProj].compactMap { $0 }.reduce(0) { $0 + $1.rows * $1.cols } + (qANorm?.count ?? 0) + kvANorm.count
    }

    public func forward(_ x: [Float], n: Int, cache: KVCache, layer: Int) -> [Float] {
        let qHeadDim = nopeDim + ropeDim, rank = kvLoraRank, width = cacheRowWidth
        // q (n, heads·(nope+rope))
        var q: [Float]
        if let qA, let qANorm, let qB {
            q = Linear.forward(qB, Elementwise.rmsNorm(Linear.forward(qA, x, n: n), weight: qANorm, eps: Self.latentNormEps), n: n)
        } else {
            q = Linear.forward(qProj!, x, n: n)
        }
        // [c_kv | k_pe] (n, rank + rope): normalise the latent, rotate k_pe and the queries' rope parts, append to cache.
        let compressed = Linear.forward(kvA, x, n: n)
        let start = cache.length
        let table = UnsafeMutableBufferPointer<Float>.allocate(capacity: ropeDim)
        defer { table.deallocate() }
        kvANorm.withUnsafeBufferPointer { normWeight in
            compressed.withUnsafeBufferPointer { cb in
                q.withUnsafeMutableBufferPointer { qb in
                    for t in 0..<n {
                        let row = cache.row(layer: layer, position: start + t)
                        Elementwise.rmsNorm(UnsafeBufferPointer(start: cb.baseAddress! + t * width, count: rank), weight: normWeight,
                                            eps: Self.latentNormEps, n: 1, into: UnsafeMutableBufferPointer(start: row, count: rank))
                        (row + rank).update(from: cb.baseAddress! + t * width + rank, count: ropeDim)
                        rope.angles(position: start + t, into: table)
                        rope.rotate(row + rank, count: 1, stride: ropeDim, table: UnsafeBufferPointer(table))
                        rope.rotate(qb.baseAddress! + t * heads * qHeadDim + nopeDim, count: heads, stride: qHeadDim, table: UnsafeBufferPointer(table))
                    }
                }
            }
        }
        // Absorb W_UK: q_lat[t, h] (rank) = Σ_i q_nope[t, h, i] · kv_b row (h·(nope+v) + i).
        var qLatent = [Float](repeating: 0, count: n * heads * rank)
        var outLatent = [Float](repeating: 0, count: n * heads * rank)
        var values = [Float](repeating: 0, count: n * heads * valueDim)
        let weightRow = UnsafeMutableBufferPointer<Float>.allocate(capacity: rank)
        defer { weightRow.deallocate() }
        q.withUnsafeBufferPointer { qb in
            qLatent.withUnsafeMutableBufferPointer { ql in
                for h in 0..<heads {
                    for i in 0..<nopeDim {
                        kvB.decodeRow(h * (nopeDim + valueDim) + i, into: weightRow)
                        for t in 0..<n {
                            let coefficient = qb[t * heads * qHeadDim + h * qHeadDim + i]
                            Elementwise.addScaled(UnsafeBufferPointer(weightRow), coefficient,
                                                  into: UnsafeMutableBufferPointer(rebasing: ql[((t * heads + h) * rank)..<((t * heads + h + 1) * rank)]))
                        }
                    }
                }
            }
        }
        // Scores against the latent cache: q_lat · c_kv + q_pe · k_pe; outputs accumulate in latent space.
        let base = UnsafePointer(cache.storage(layer: layer))
        q.withUnsafeBufferPointer { qb in
            qLatent.withUnsafeBufferPointer { ql in
                outLatent.withUnsafeMutableBufferPointer { ol in
                    CausalAttention.run(heads: heads, n: n, start: start, scale: softmaxScale,
                        score: { h, t, i in
                            let row = base + i * width
                            let latentScore = Linear.dot(UnsafeBufferPointer(start: ql.baseAddress! + (t * heads + h) * rank, count: rank),
                                                         UnsafeBufferPointer(start: row, count: rank))
                            let ropeScore = Linear.dot(UnsafeBufferPointer(start: qb.baseAddress! + t * heads * qHeadDim + h * qHeadDim + nopeDim, count: ropeDim),
                                                       UnsafeBufferPointer(start: row + rank, count: ropeDim))
                            return latentScore + ropeScore
                        },
                        accumulate: { h, t, i, p in
                            Elementwise.addScaled(UnsafeBufferPointer(start: base + i * width, count: rank), p,
                                                  into: UnsafeMutableBufferPointer(start: ol.baseAddress! + (t * heads + h) * rank, count: rank))
                        })
                }
            }
        }
        // Absorb W_UV: v[t, h, j] = kv_b row (h·(nope+v) + nope + j) · out_lat[t, h].
        outLatent.withUnsafeBufferPointer { ol in
            values.withUnsafeMutableBufferPointer { vb in
                for h in 0..<heads {
                    for j in 0..<valueDim {
                        kvB.decodeRow(h * (nopeDim + valueDim) + nopeDim + j, into: weightRow)
                        for t in 0..<n {
                            vb[(t * heads + h) * valueDim + j] = Linear.dot(UnsafeBufferPointer(weightRow),
                                                                            UnsafeBufferPointer(start: ol.baseAddress! + (t * heads + h) * rank, count: rank))
                        }
                    }
                }
            }
        }
        return Linear.forward(oProj, values, n: n)
    }
}
