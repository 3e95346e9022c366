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
    /// `kv_a_proj_with_mqa` (kv_lora_rank + rope, hidden) and its norm.
    public let kvA: LinearWeight, kvANorm: [Float]
    /// The up-projections W_UK and W_UV, in either stored form.
    public let latentProjections: LatentProjections
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
        latentProjections = try LatentProjections(weights: weights, prefix: prefix, heads: heads, kvLoraRank: kvLoraRank,
                                                  nopeDim: nopeDim, valueDim: valueDim, blockSize: blockSize)
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
        [qA, qB, qProj, kvA, oProj].compactMap { $0 }.reduce(0) { $0 + $1.rows * $1.cols } + (qANorm?.count ?? 0) + kvANorm.count
            + latentProjections.parameterCount
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
                        let row = cache.staging
                        Elementwise.rmsNorm(UnsafeBufferPointer(start: cb.baseAddress! + t * width, count: rank), weight: normWeight,
                                            eps: Self.latentNormEps, n: 1, into: UnsafeMutableBufferPointer(start: row, count: rank))
                        (row + rank).update(from: cb.baseAddress! + t * width + rank, count: ropeDim)
                        rope.angles(position: cache.positionOffset + start + t, into: table)
                        rope.rotate(row + rank, count: 1, stride: ropeDim, table: UnsafeBufferPointer(table))
                        cache.write(row, layer: layer, position: start + t)
                        rope.rotate(qb.baseAddress! + t * heads * qHeadDim + nopeDim, count: heads, stride: qHeadDim, table: UnsafeBufferPointer(table))
                    }
                }
            }
        }
        let qLatent = latentProjections.absorbQuery(q, n: n, heads: heads, queryHeadDim: qHeadDim)
        var outLatent = [Float](repeating: 0, count: n * heads * rank)
        // Scores against the latent cache: q_lat · c_kv + q_pe · k_pe; outputs accumulate in latent space.
        let view = cache.layerView(layer)
        q.withUnsafeBufferPointer { qb in
            qLatent.withUnsafeBufferPointer { ql in
                outLatent.withUnsafeMutableBufferPointer { ol in
                    CausalAttention.run(heads: heads, n: n, start: start, scale: softmaxScale,
                        score: { h, t, i in
                            view.dot(ql.baseAddress! + (t * heads + h) * rank, position: i, offset: 0, count: rank)
                                + view.dot(qb.baseAddress! + t * heads * qHeadDim + h * qHeadDim + nopeDim, position: i, offset: rank, count: ropeDim)
                        },
                        accumulate: { h, t, i, p in
                            view.addScaled(position: i, offset: 0, count: rank, weight: p, into: ol.baseAddress! + (t * heads + h) * rank)
                        })
                }
            }
        }
        let values = latentProjections.expandValues(outLatent, n: n, heads: heads)
        return Linear.forward(oProj, values, n: n)
    }
}

/// MLA's up-projections from the latent: W_UK (keys' nope part) and W_UV (values), per head.
public enum LatentProjections: Sendable {
    /// Hugging Face layout: `kv_b_proj` (heads·(nope+v), rank); head h's W_UK rows come first, then its W_UV rows.
    case fused(kvB: LinearWeight, nopeDim: Int, valueDim: Int)
    /// llama.cpp layout: per head `k_b` = W_UKᵀ (rank, nope) and `v_b` = W_UV (v, rank), from GGUF's
    /// `attn_k_b` / `attn_v_b` (Kujira names `k_b_proj` / `v_b_proj`, stacked (heads, ·, ·)).
    case split(keys: [LinearWeight], values: [LinearWeight])

    init(weights: any WeightStore, prefix: String, heads: Int, kvLoraRank: Int, nopeDim: Int, valueDim: Int, blockSize: [Int]?) throws {
        if weights.contains("\(prefix).k_b_proj.weight") {
            let k = try weights.tensor("\(prefix).k_b_proj.weight", shape: [heads, kvLoraRank, nopeDim])
            let v = try weights.tensor("\(prefix).v_b_proj.weight", shape: [heads, valueDim, kvLoraRank])
            self = .split(keys: (0..<heads).map { LinearWeight(data: k.matrixRows(index: $0, rows: 0..<kvLoraRank)) },
                          values: (0..<heads).map { LinearWeight(data: v.matrixRows(index: $0, rows: 0..<valueDim)) })
        } else {
            let kvB = try weights.linear("\(prefix).kv_b_proj.weight", rows: heads * (nopeDim + valueDim), cols: kvLoraRank, blockSize: blockSize)
            self = .fused(kvB: kvB, nopeDim: nopeDim, valueDim: valueDim)
        }
    }

    var parameterCount: Int {
        switch self {
        case let .fused(kvB, _, _): return kvB.rows * kvB.cols
        case let .split(keys, values): return (keys + values).reduce(0) { $0 + $1.rows * $1.cols }
        }
    }

    /// q_lat (n, heads, rank) = W_UKᵀ q_nope for every token and head; q is (n, heads, queryHeadDim) with nope first.
    func absorbQuery(_ q: [Float], n: Int, heads: Int, queryHeadDim: Int) -> [Float] {
        switch self {
        case let .fused(kvB, nopeDim, valueDim):
            // Σ_i q_nope[t, h, i] · (row h·(nope+v) + i of kv_b): decode each row once, use it for every token.
            let rank = kvB.cols
            var qLatent = [Float](repeating: 0, count: n * heads * rank)
            let row = UnsafeMutableBufferPointer<Float>.allocate(capacity: rank)
            defer { row.deallocate() }
            qLatent.withUnsafeMutableBufferPointer { ql in
                for h in 0..<heads {
                    for i in 0..<nopeDim {
                        kvB.decodeRow(h * (nopeDim + valueDim) + i, into: row)
                        for t in 0..<n {
                            Elementwise.addScaled(UnsafeBufferPointer(row), q[t * heads * queryHeadDim + h * queryHeadDim + i],
                                                  into: UnsafeMutableBufferPointer(rebasing: ql[((t * heads + h) * rank)..<((t * heads + h + 1) * rank)]))
                        }
                    }
                }
            }
            return qLatent
        case let .split(keys, _):
            return Self.projectPerHead(q, n: n, headStride: queryHeadDim, weights: keys)
        }
    }

    /// v (n, heads, valueDim) = W_UV out_lat for every token and head; outLatent is (n, heads, rank).
    func expandValues(_ outLatent: [Float], n: Int, heads: Int) -> [Float] {
        switch self {
        case let .fused(kvB, nopeDim, valueDim):
            let rank = kvB.cols
            var values = [Float](repeating: 0, count: n * heads * valueDim)
            let row = UnsafeMutableBufferPointer<Float>.allocate(capacity: rank)
            defer { row.deallocate() }
            outLatent.withUnsafeBufferPointer { ol in
                for h in 0..<heads {
                    for j in 0..<valueDim {
                        kvB.decodeRow(h * (nopeDim + valueDim) + nopeDim + j, into: row)
                        for t in 0..<n {
                            values[(t * heads + h) * valueDim + j] = Linear.dot(UnsafeBufferPointer(row),
                                                                                UnsafeBufferPointer(rebasing: ol[((t * heads + h) * rank)..<((t * heads + h + 1) * rank)]))
                        }
                    }
                }
            }
            return values
        case let .split(_, valueWeights):
            return Self.projectPerHead(outLatent, n: n, headStride: valueWeights[0].cols, weights: valueWeights)
        }
    }

    /// out (n, heads, rows) with out[t, h] = W[h] (rows, cols) @ x[t, h·headStride ..< h·headStride + cols], where x is
    /// (n, heads, headStride): each head's slice is gathered across tokens so W[h] is read once per call.
    static func projectPerHead(_ x: [Float], n: Int, headStride: Int, weights: [LinearWeight]) -> [Float] {
        let heads = weights.count, rows = weights[0].rows, cols = weights[0].cols
        var out = [Float](repeating: 0, count: n * heads * rows)
        var slice = [Float](repeating: 0, count: n * cols)
        for h in 0..<heads {
            for t in 0..<n {
                for i in 0..<cols { slice[t * cols + i] = x[(t * heads + h) * headStride + i] }
            }
            let projected = Linear.forward(weights[h], slice, n: n)
            for t in 0..<n {
                for j in 0..<rows { out[(t * heads + h) * rows + j] = projected[t * rows + j] }
            }
        }
        return out
    }
}
