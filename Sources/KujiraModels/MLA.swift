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
    /// DeepSeek-V3.2's lightning indexer: each query attends only to the past tokens it selects (nil: dense).
    public let indexer: LightningIndexer?
    /// The low-rank norms use the reference's fixed epsilon.
    static let latentNormEps: Float = 1e-6
    /// The block's tensor-name prefix (`model.layers.N.self_attn`): gradients are filed under it.
    public let prefix: String

    /// Tensor names under the block's prefix.
    public enum Names {
        public static let qA = "q_a_proj.weight", qANorm = "q_a_layernorm.weight", qB = "q_b_proj.weight", q = "q_proj.weight"
        public static let kvA = "kv_a_proj_with_mqa.weight", kvANorm = "kv_a_layernorm.weight", kvB = "kv_b_proj.weight"
        public static let kB = "k_b_proj.weight", vB = "v_b_proj.weight", o = "o_proj.weight"
    }

    public init(weights: any WeightStore, prefix: String, hidden: Int, heads: Int, qLoraRank: Int?, kvLoraRank: Int,
                nopeDim: Int, ropeDim: Int, valueDim: Int, rope: RotaryEmbedding, softmaxScale: Float, blockSize: [Int]?,
                indexer: LightningIndexer? = nil) throws {
        precondition(indexer == nil || qLoraRank != nil, "the lightning indexer reads the q-LoRA residual")
        let qHeadDim = nopeDim + ropeDim
        if let rank = qLoraRank {
            qA = try weights.linear("\(prefix).\(Names.qA)", rows: rank, cols: hidden, blockSize: blockSize)
            qANorm = try weights.floats("\(prefix).\(Names.qANorm)", shape: [rank])
            qB = try weights.linear("\(prefix).\(Names.qB)", rows: heads * qHeadDim, cols: rank, blockSize: blockSize)
            qProj = nil
        } else {
            qA = nil; qANorm = nil; qB = nil
            qProj = try weights.linear("\(prefix).\(Names.q)", rows: heads * qHeadDim, cols: hidden, blockSize: blockSize)
        }
        kvA = try weights.linear("\(prefix).\(Names.kvA)", rows: kvLoraRank + ropeDim, cols: hidden, blockSize: blockSize)
        kvANorm = try weights.floats("\(prefix).\(Names.kvANorm)", shape: [kvLoraRank])
        latentProjections = try LatentProjections(weights: weights, prefix: prefix, heads: heads, kvLoraRank: kvLoraRank,
                                                  nopeDim: nopeDim, valueDim: valueDim, blockSize: blockSize)
        oProj = try weights.linear("\(prefix).\(Names.o)", rows: hidden, cols: heads * valueDim, blockSize: blockSize)
        self.heads = heads
        self.nopeDim = nopeDim
        self.ropeDim = ropeDim
        self.valueDim = valueDim
        self.kvLoraRank = kvLoraRank
        self.rope = rope
        self.softmaxScale = softmaxScale
        self.indexer = indexer
        self.prefix = prefix
    }

    /// The block's parameters under `prefix` (HF layout: `kv_b_proj` fused).
    public static func parameters(_ prefix: String, hidden: Int, heads: Int, qLoraRank: Int?, kvLoraRank: Int, nopeDim: Int, ropeDim: Int,
                                  valueDim: Int) -> [ParameterLayout.Entry] {
        var e: [ParameterLayout.Entry] = []
        if let rank = qLoraRank {
            e += [.init("\(prefix).\(Names.qA)", [rank, hidden]), .init("\(prefix).\(Names.qANorm)", [rank], .ones),
                  .init("\(prefix).\(Names.qB)", [heads * (nopeDim + ropeDim), rank])]
        } else {
            e.append(.init("\(prefix).\(Names.q)", [heads * (nopeDim + ropeDim), hidden]))
        }
        return e + [.init("\(prefix).\(Names.kvA)", [kvLoraRank + ropeDim, hidden]), .init("\(prefix).\(Names.kvANorm)", [kvLoraRank], .ones),
                    .init("\(prefix).\(Names.kvB)", [heads * (nopeDim + valueDim), kvLoraRank]), .init("\(prefix).\(Names.o)", [hidden, heads * valueDim])]
    }

    /// The latent cache stream: `[c_kv | k_pe]` per token, read as two segments.
    public static func cacheStream(kvLoraRank: Int, ropeDim: Int) -> CacheStreamSpec {
        CacheStreamSpec("latent", width: kvLoraRank + ropeDim, segments: [kvLoraRank, ropeDim])
    }

    /// c_kv and k_pe: 576 values for DeepSeek-V3 (512 + 64).
    public var cacheRowWidth: Int { kvLoraRank + ropeDim }

    public var parameterCount: Int {
        [qA, qB, qProj, kvA, oProj].compactMap { $0 }.reduce(0) { $0 + $1.rows * $1.cols } + (qANorm?.count ?? 0) + kvANorm.count
            + latentProjections.parameterCount + (indexer?.parameterCount ?? 0)
    }

    public var outputWidth: Int { oProj.rows }

    public func forward(_ x: UnsafeBufferPointer<Float>, n: Int, batch: SequenceBatch, layer: Int, into result: UnsafeMutableBufferPointer<Float>) {
        let qHeadDim = nopeDim + ropeDim, rank = kvLoraRank, width = cacheRowWidth
        let workspace = batch.workspace
        // q (n, heads·(nope+rope))
        // and [c_kv | k_pe] (n, rank + rope), both read from x in one pass (`Linear.forward(_:into:_:into:sharing:)`).
        let q = workspace.buffer(.query, n * heads * qHeadDim)
        let compressed = workspace.buffer(.compressed, n * width)
        if let qA, let qANorm, let qB {
            let a = workspace.buffer(.queryLatent, n * qA.rows)
            Linear.forward(qA, into: a, kvA, into: compressed, sharing: x, n: n, numerics: .kujira)
            qANorm.withUnsafeBufferPointer { Elementwise.rmsNorm(UnsafeBufferPointer(a), weight: $0, eps: Self.latentNormEps, n: n, into: a) }
            Linear.forward(qB, UnsafeBufferPointer(a), n: n, into: q)
        } else {
            Linear.forward(qProj!, into: q, kvA, into: compressed, sharing: x, n: n, numerics: .kujira)
        }
        // Normalise the latent, rotate k_pe and the queries' rope parts, append each row to its sequence's cache at that
        // sequence's next position.
        let table = workspace.buffer(.ropeTable, ropeDim)
        let cb = compressed.baseAddress!, qb = q.baseAddress!
        kvANorm.withUnsafeBufferPointer { normWeight in
            for s in 0..<batch.count {
                let cache = batch.cache(s), (first, m) = batch.rows(s, n: n), start = cache.length
                for t in first..<(first + m) {
                    let position = start + t - first
                    let row = cache.staging
                    Elementwise.rmsNorm(UnsafeBufferPointer(start: cb + t * width, count: rank), weight: normWeight,
                                        eps: Self.latentNormEps, n: 1, into: UnsafeMutableBufferPointer(start: row, count: rank))
                    (row + rank).update(from: cb + t * width + rank, count: ropeDim)
                    rope.angles(position: cache.positionOffset + position, into: table)
                    rope.rotate(row + rank, count: 1, stride: ropeDim, table: UnsafeBufferPointer(table))
                    cache.write(row, layer: layer, position: position)
                    rope.rotate(qb + t * heads * qHeadDim + nopeDim, count: heads, stride: qHeadDim, table: UnsafeBufferPointer(table))
                }
            }
        }
        var selected = UnsafeMutableBufferPointer<Int>(start: nil, count: 0), counts = selected
        if let indexer {
            selected = workspace.ints(.indexerSelected, n * indexer.topK)
            counts = workspace.ints(.indexerCounts, n)
            indexer.select(x, qResidual: UnsafeBufferPointer(workspace.buffer(.queryLatent, n * qA!.rows)), n: n, batch: batch, layer: layer,
                           selected: selected, counts: counts)
        }
        let qLatent = workspace.zeroed(.absorbedQuery, n * heads * rank)
        latentProjections.absorbQuery(UnsafeBufferPointer(q), n: n, heads: heads, queryHeadDim: qHeadDim, into: qLatent, workspace: workspace)
        let outLatent = workspace.zeroed(.latentOut, n * heads * rank)
        // Scores against each sequence's latent cache: q_lat · c_kv + q_pe · k_pe; outputs accumulate in latent space.
        for s in 0..<batch.count {
            let cache = batch.cache(s), (first, m) = batch.rows(s, n: n), start = cache.length
            let view = cache.layerView(layer)
            let ql = UnsafePointer(qLatent.baseAddress! + first * heads * rank), qr = UnsafePointer(qb + first * heads * qHeadDim)
            let ol = outLatent.baseAddress! + first * heads * rank
            if let indexer {
                // Sparse (DSA): each row attends to its selected positions only.
                let topK = indexer.topK
                CausalAttention.run(heads: heads, n: m, start: start, scale: softmaxScale, scratch: workspace.buffer(.scores, heads * cache.capacity),
                                    stride: cache.capacity, keyCounts: UnsafePointer(counts.baseAddress! + first),
                    scores: { h, t, row in
                        let keys = UnsafeBufferPointer(rebasing: selected[((first + t) * topK)..<((first + t) * topK + row.count)])
                        view.dots(ql + (t * heads + h) * rank, indices: keys, offset: 0, count: rank, into: row.baseAddress!)
                        view.dots(qr + t * heads * qHeadDim + h * qHeadDim + nopeDim, indices: keys, offset: rank, count: ropeDim,
                                  into: row.baseAddress!, adding: true)
                    },
                    accumulate: { h, t, p in
                        let keys = UnsafeBufferPointer(rebasing: selected[((first + t) * topK)..<((first + t) * topK + p.count)])
                        view.addScaledRows(p.baseAddress!, indices: keys, offset: 0, count: rank, into: ol + (t * heads + h) * rank)
                    })
                continue
            }
            CausalAttention.run(heads: heads, n: m, start: start, scale: softmaxScale, scratch: workspace.buffer(.scores, heads * cache.capacity), stride: cache.capacity,
                scores: { h, t, row in
                    // q_lat · c_kv, then + q_pe · k_pe (one rounding each, as the sum of the two dots).
                    view.dots(ql + (t * heads + h) * rank, positions: row.count, offset: 0, count: rank, into: row.baseAddress!)
                    view.dots(qr + t * heads * qHeadDim + h * qHeadDim + nopeDim, positions: row.count, offset: rank, count: ropeDim,
                              into: row.baseAddress!, adding: true)
                },
                accumulate: { h, t, p in
                    view.addScaledRows(p.baseAddress!, positions: p.count, offset: 0, count: rank, into: ol + (t * heads + h) * rank)
                })
        }
        let values = workspace.buffer(.expandedValues, n * heads * valueDim)
        latentProjections.expandValues(UnsafeBufferPointer(outLatent), n: n, heads: heads, into: values, workspace: workspace)
        Linear.forward(oProj, UnsafeBufferPointer(values), n: n, into: result)
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
        typealias Names = MultiHeadLatentAttention.Names
        if weights.contains("\(prefix).\(Names.kB)") {
            let k = try weights.tensor("\(prefix).\(Names.kB)", shape: [heads, kvLoraRank, nopeDim])
            let v = try weights.tensor("\(prefix).\(Names.vB)", shape: [heads, valueDim, kvLoraRank])
            self = .split(keys: (0..<heads).map { LinearWeight(data: k.matrixRows(index: $0, rows: 0..<kvLoraRank)) },
                          values: (0..<heads).map { LinearWeight(data: v.matrixRows(index: $0, rows: 0..<valueDim)) })
        } else {
            let kvB = try weights.linear("\(prefix).\(Names.kvB)", rows: heads * (nopeDim + valueDim), cols: kvLoraRank, blockSize: blockSize)
            self = .fused(kvB: kvB, nopeDim: nopeDim, valueDim: valueDim)
        }
    }

    var parameterCount: Int {
        switch self {
        case let .fused(kvB, _, _): return kvB.rows * kvB.cols
        case let .split(keys, values): return (keys + values).reduce(0) { $0 + $1.rows * $1.cols }
        }
    }

    /// q_lat (n, heads, rank) += W_UKᵀ q_nope for every token and head (`qLatent` zeroed by the caller); q is
    /// (n, heads, queryHeadDim) with nope first.
    func absorbQuery(_ q: UnsafeBufferPointer<Float>, n: Int, heads: Int, queryHeadDim: Int, into qLatent: UnsafeMutableBufferPointer<Float>,
                     workspace: ForwardWorkspace) {
        switch self {
        case let .fused(kvB, nopeDim, valueDim):
            // Σ_i q_nope[t, h, i] · (row h·(nope+v) + i of kv_b): decode each row once, use it for every token.
            let rank = kvB.cols
            let row = workspace.buffer(.decodedRow, rank)
            for h in 0..<heads {
                for i in 0..<nopeDim {
                    kvB.decodeRow(h * (nopeDim + valueDim) + i, into: row)
                    for t in 0..<n {
                        Elementwise.addScaled(UnsafeBufferPointer(row), q[t * heads * queryHeadDim + h * queryHeadDim + i],
                                              into: UnsafeMutableBufferPointer(rebasing: qLatent[((t * heads + h) * rank)..<((t * heads + h + 1) * rank)]))
                    }
                }
            }
        case let .split(keys, _):
            Self.projectPerHead(q, n: n, headStride: queryHeadDim, weights: keys, into: qLatent, workspace: workspace)
        }
    }

    /// v (n, heads, valueDim) = W_UV out_lat for every token and head; outLatent is (n, heads, rank).
    func expandValues(_ outLatent: UnsafeBufferPointer<Float>, n: Int, heads: Int, into values: UnsafeMutableBufferPointer<Float>,
                      workspace: ForwardWorkspace) {
        switch self {
        case let .fused(kvB, nopeDim, valueDim):
            let rank = kvB.cols
            let row = workspace.buffer(.decodedRow, rank)
            for h in 0..<heads {
                for j in 0..<valueDim {
                    kvB.decodeRow(h * (nopeDim + valueDim) + nopeDim + j, into: row)
                    for t in 0..<n {
                        values[(t * heads + h) * valueDim + j] = Linear.dot(UnsafeBufferPointer(row),
                                                                            UnsafeBufferPointer(rebasing: outLatent[((t * heads + h) * rank)..<((t * heads + h + 1) * rank)]))
                    }
                }
            }
        case let .split(_, valueWeights):
            Self.projectPerHead(outLatent, n: n, headStride: valueWeights[0].cols, weights: valueWeights, into: values, workspace: workspace)
        }
    }

    /// out (n, heads, rows) with out[t, h] = W[h] (rows, cols) @ x[t, h·headStride ..< h·headStride + cols], where x is
    /// (n, heads, headStride): each head's slice is gathered across tokens so W[h] is read once per call.
    static func projectPerHead(_ x: UnsafeBufferPointer<Float>, n: Int, headStride: Int, weights: [LinearWeight],
                               into out: UnsafeMutableBufferPointer<Float>, workspace: ForwardWorkspace) {
        let heads = weights.count, rows = weights[0].rows, cols = weights[0].cols
        let slice = workspace.buffer(.headSlice, n * cols), projected = workspace.buffer(.headProjected, n * rows)
        for h in 0..<heads {
            for t in 0..<n {
                for i in 0..<cols { slice[t * cols + i] = x[(t * heads + h) * headStride + i] }
            }
            Linear.forward(weights[h], UnsafeBufferPointer(slice), n: n, into: projected)
            for t in 0..<n {
                for j in 0..<rows { out[(t * heads + h) * rows + j] = projected[t * rows + j] }
            }
        }
    }
}

extension GGUFTensorNames {
    /// `MultiHeadLatentAttention` at `self_attn.` in llama.cpp's `deepseek2` names (`attn_kv_b` or its split form).
    public static let latentAttention: GGUFTensorNames = {
        typealias N = MultiHeadLatentAttention.Names
        return GGUFTensorNames(layer: [
            "attn_q.weight": "self_attn.\(N.q)", "attn_q_a.weight": "self_attn.\(N.qA)", "attn_q_a_norm.weight": "self_attn.\(N.qANorm)",
            "attn_q_b.weight": "self_attn.\(N.qB)", "attn_kv_a_mqa.weight": "self_attn.\(N.kvA)", "attn_kv_a_norm.weight": "self_attn.\(N.kvANorm)",
            "attn_kv_b.weight": "self_attn.\(N.kvB)", "attn_k_b.weight": "self_attn.\(N.kB)", "attn_v_b.weight": "self_attn.\(N.vB)",
            "attn_output.weight": "self_attn.\(N.o)",
        ])
    }()
}
