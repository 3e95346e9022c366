import KujiraFormats
import KujiraTensor

/// The scoring half of DeepSeek's lightning indexer, shared by DeepSeek-V3.2 (over past tokens) and DeepSeek-V4's
/// compressed sparse attention (over compressed entries): index(q, s) = Σ_h w_h · ReLU(scale · q_h · k_s), then the
/// top k keys by index.
public enum IndexerScoring {
    /// row[j] = Σ_h weights[h] · ReLU(scale · q_h · k_j) for keys j < `keys` of `view` (rows of `headDim` values at
    /// offset 0); q is (heads, headDim). Ranges of keys run in parallel on the pool (each key's sum is computed the
    /// same way whatever the threads): at a long context this O(context) scan is what the indexer costs per token.
    @inline(__always)
    public static func score(_ q: UnsafePointer<Float>, heads: Int, headDim: Int, weights: UnsafePointer<Float>, scale: Float,
                             view: KVCacheLayerView, keys: Int, into row: UnsafeMutablePointer<Float>) {
        // ~16k multiply-adds per range at least, so short rows stay on the caller.
        let grain = max(64, 16384 / max(1, heads * headDim))
        if let floats = view.floats {
            // The float cache: one key row in registers against every head (`IndexerScores`, same bits as below).
            ThreadPool.shared.parallelFor(keys, grain: grain) { range in
                IndexerScores.compute(q: q, heads: heads, dim: headDim, weights: weights, scale: scale, keys: floats, rowStride: view.rowWidth,
                                      range: range, into: row)
            }
            return
        }
        ThreadPool.shared.parallelFor(keys, grain: grain) { range in
            for j in range {
                var total: Float = 0
                for h in 0..<heads {
                    let d = view.dot(q + h * headDim, position: j, offset: 0, count: headDim)
                    total += weights[h] * max(scale * d, 0)
                }
                row[j] = total
            }
        }
    }

    /// The `k` keys with the highest index among `row[0 ..< visible]` into `out` (ascending), chosen as the reference
    /// does: torch.topk over the whole row of `keys` entries, the ones past `visible` masked to −∞ (`TorchTopK`, whose
    /// choice among exact ties the goldens pin). Needs visible > k; `row` must hold `keys` floats.
    @inline(__always)
    public static func selectTop(_ row: UnsafeMutablePointer<Float>, visible: Int, keys: Int, k: Int, into out: UnsafeMutablePointer<Int>,
                                 workspace: ForwardWorkspace) {
        for j in visible..<keys { row[j] = -.infinity }
        TorchTopK.select(row, count: keys, k: k, into: out, scratchValues: workspace.buffer(.topKValues, keys).baseAddress!,
                         scratchIndices: workspace.ints(.topKIndices, keys).baseAddress!)
    }
}

/// DeepSeek-V3.2's lightning indexer (DSA): its own query projection from MLA's q-LoRA residual, one shared key per
/// token (`wk`, LayerNorm, half-split RoPE on the leading rope dims) kept in a second cache stream, and per-head
/// weights; each query attends only to the `topK` past tokens it scores highest.
public struct LightningIndexer: Sendable {
    public let wqB: LinearWeight, wk: LinearWeight, weightsProj: LinearWeight
    public let keyNormWeight: [Float], keyNormBias: [Float]
    public let heads: Int, headDim: Int, ropeDim: Int, topK: Int
    /// The main RoPE's frequencies, applied to pairs (i, i + rope/2).
    public let rope: RotaryEmbedding
    /// Which cache stream of each layer holds the indexer keys.
    public let stream: Int

    /// Tensor names under the block's prefix (`…self_attn.indexer`).
    public enum Names {
        public static let wqB = "wq_b.weight", wk = "wk.weight", keyNorm = "k_norm.weight", keyNormBias = "k_norm.bias"
        public static let weightsProj = "weights_proj.weight"
    }

    public init(weights: any WeightStore, prefix: String, hidden: Int, qLoraRank: Int, heads: Int, headDim: Int, ropeDim: Int, topK: Int,
                rope: RotaryEmbedding, stream: Int, blockSize: [Int]?) throws {
        wqB = try weights.linear("\(prefix).\(Names.wqB)", rows: heads * headDim, cols: qLoraRank, blockSize: blockSize)
        wk = try weights.linear("\(prefix).\(Names.wk)", rows: headDim, cols: hidden, blockSize: blockSize)
        weightsProj = try weights.linear("\(prefix).\(Names.weightsProj)", rows: heads, cols: hidden, blockSize: blockSize)
        keyNormWeight = try weights.floats("\(prefix).\(Names.keyNorm)", shape: [headDim])
        keyNormBias = try weights.floats("\(prefix).\(Names.keyNormBias)", shape: [headDim])
        self.heads = heads
        self.headDim = headDim
        self.ropeDim = ropeDim
        self.topK = topK
        self.rope = rope
        self.stream = stream
    }

    /// The block's parameters under `prefix`.
    public static func parameters(_ prefix: String, hidden: Int, qLoraRank: Int, heads: Int, headDim: Int) -> [ParameterLayout.Entry] {
        [.init("\(prefix).\(Names.wqB)", [heads * headDim, qLoraRank]), .init("\(prefix).\(Names.wk)", [headDim, hidden]),
         .init("\(prefix).\(Names.keyNorm)", [headDim], .ones), .init("\(prefix).\(Names.keyNormBias)", [headDim], .zeros),
         .init("\(prefix).\(Names.weightsProj)", [heads, hidden])]
    }

    /// The key stream: one `headDim` row per token.
    public static func cacheStream(headDim: Int) -> CacheStreamSpec { CacheStreamSpec("indexer keys", width: headDim) }

    public var parameterCount: Int { [wqB, wk, weightsProj].reduce(0) { $0 + $1.rows * $1.cols } + 2 * headDim }

    /// Writes every row's key into its sequence's cache (positions from the cache's length) and chooses each row's
    /// keys: `selected[t·topK ..< t·topK + counts[t]]` (ascending positions). A row that sees no more than `topK`
    /// positions keeps them all (`counts[t]` = visible positions, the dense case). x (n, hidden) is the attention
    /// input, qResidual (n, q_lora_rank) MLA's normalised q-LoRA activation.
    public func select(_ x: UnsafeBufferPointer<Float>, qResidual: UnsafeBufferPointer<Float>, n: Int, batch: SequenceBatch, layer: Int,
                       selected: UnsafeMutableBufferPointer<Int>, counts: UnsafeMutableBufferPointer<Int>) {
        let workspace = batch.workspace, d = headDim
        let q = workspace.buffer(.indexerQuery, n * heads * d), k = workspace.buffer(.indexerKey, n * d)
        let w = workspace.buffer(.indexerWeights, n * heads)
        Linear.forward(wqB, qResidual, n: n, into: q)
        Linear.forward(wk, x, n: n, into: k)
        Linear.forward(weightsProj, x, n: n, into: w)
        let headScale = 1 / Float(heads).squareRoot(), scale = 1 / Float(d).squareRoot()
        for i in 0..<(n * heads) { w[i] *= headScale }
        let table = workspace.buffer(.ropeTable, ropeDim)
        for s in 0..<batch.count {
            let cache = batch.cache(s), (first, m) = batch.rows(s, n: n), start = cache.length
            let keys = cache.rows(layer: layer, stream: stream)
            for t in first..<(first + m) {
                let position = start + t - first
                let kt = k.baseAddress! + t * d
                keyNormWeight.withUnsafeBufferPointer { nw in keyNormBias.withUnsafeBufferPointer { nb in
                    Elementwise.layerNorm(kt, weight: nw, bias: nb, eps: 1e-6)
                } }
                rope.angles(position: cache.positionOffset + position, into: table)
                rope.rotate(kt, count: 1, stride: d, table: UnsafeBufferPointer(table))
                rope.rotate(q.baseAddress! + t * heads * d, count: heads, stride: d, table: UnsafeBufferPointer(table))
                keys.write(kt, at: position)
            }
            let view = keys.view
            let row = workspace.buffer(.indexerScores, start + m)  // the reference's row: every key of this pass
            for t in first..<(first + m) {
                let visible = start + t - first + 1
                let out = UnsafeMutableBufferPointer(rebasing: selected[(t * topK)..<((t + 1) * topK)])
                if visible <= topK {
                    for i in 0..<visible { out[i] = i }
                    counts[t] = visible
                    continue
                }
                IndexerScoring.score(q.baseAddress! + t * heads * d, heads: heads, headDim: d, weights: w.baseAddress! + t * heads, scale: scale,
                                     view: view, keys: visible, into: row.baseAddress!)
                IndexerScoring.selectTop(row.baseAddress!, visible: visible, keys: start + m, k: topK, into: out.baseAddress!, workspace: workspace)
                counts[t] = topK
            }
        }
    }
}

extension ForwardWorkspace.Slot {
    /// Lightning indexer: queries, keys, head weights, one query's scores; the selected positions and their counts.
    public static let indexerQuery = Self("indexerQuery"), indexerKey = Self("indexerKey"), indexerWeights = Self("indexerWeights")
    public static let indexerScores = Self("indexerScores"), indexerSelected = Self("indexerSelected"), indexerCounts = Self("indexerCounts")
    /// `TorchTopK`'s working copy of a row.
    public static let topKValues = Self("topKValues"), topKIndices = Self("topKIndices")
}
