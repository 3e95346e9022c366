import Foundation
import KujiraFormats
import KujiraTensor

/// DeepSeek-V4's KV compressor: every `rate` tokens become one cache entry, a per-channel softmax-gated sum of their
/// projected rows (gates plus a learned `position_bias` per slot), RMS-normalised and rotated at the window's first
/// position. Heavily compressed attention (HCA) pools non-overlapping windows of `kv_proj` (d wide). Compressed
/// sparse attention (CSA, `overlapping`) projects 2·d per token: entry w pools window w−1's first half (Ca) with window
/// w's second half (Cb) over 2·rate slots, so windows overlap by one. The CSA indexer compresses its keys the same way.
///
/// Cache streams (indices into the layer's streams): `entries` (compressed rows, d wide), `pending` (the open window's
/// [kv | gate] rows, `rate` of them), and for CSA `previous` (the last closed window's rows, for the overlap).
public struct KVCompressor: Sendable {
    public let kvProj: LinearWeight, gateProj: LinearWeight
    /// `position_bias` (rate, projected width), added to the gates slot by slot.
    public let positionBias: [Float]
    public let norm: [Float]
    public let eps: Float
    public let rate: Int
    /// Width of an entry (the attention head dim, or the indexer's).
    public let width: Int
    public let overlapping: Bool
    /// The compressed branch's RoPE (trailing `rope.dim` values of each entry).
    public let rope: RotaryEmbedding
    public let entries: Int, pending: Int, previous: Int

    /// Tensor names under the block's prefix (`…self_attn.compressor` or `….compressor.indexer`).
    public enum Names {
        public static let kv = "kv_proj.weight", gate = "gate_proj.weight", bias = "position_bias", norm = "kv_norm.weight"
    }

    public init(weights: any WeightStore, prefix: String, hidden: Int, width: Int, rate: Int, overlapping: Bool, eps: Float,
                rope: RotaryEmbedding, streams: (entries: Int, pending: Int, previous: Int), blockSize: [Int]?) throws {
        let projected = overlapping ? 2 * width : width
        kvProj = try weights.linear("\(prefix).\(Names.kv)", rows: projected, cols: hidden, blockSize: blockSize)
        gateProj = try weights.linear("\(prefix).\(Names.gate)", rows: projected, cols: hidden, blockSize: blockSize)
        positionBias = try weights.floats("\(prefix).\(Names.bias)", shape: [rate, projected])
        norm = try weights.floats("\(prefix).\(Names.norm)", shape: [width])
        self.eps = eps
        self.rate = rate
        self.width = width
        self.overlapping = overlapping
        self.rope = rope
        (entries, pending, previous) = streams
    }

    /// The block's parameters under `prefix`.
    public static func parameters(_ prefix: String, hidden: Int, width: Int, rate: Int, overlapping: Bool) -> [ParameterLayout.Entry] {
        let projected = overlapping ? 2 * width : width
        return [.init("\(prefix).\(Names.kv)", [projected, hidden]), .init("\(prefix).\(Names.gate)", [projected, hidden]),
                .init("\(prefix).\(Names.bias)", [rate, projected], .zeros), .init("\(prefix).\(Names.norm)", [width], .ones)]
    }

    /// The streams this compressor keeps, in order: entries, the open window, and (overlapping) the last closed one.
    public static func cacheStreams(name: String, width: Int, rate: Int, overlapping: Bool) -> [CacheStreamSpec] {
        let row = 2 * (overlapping ? 2 * width : width)
        var streams = [CacheStreamSpec(name, width: width, kind: .compressed(rate: rate)),
                       CacheStreamSpec("\(name) window", width: row, kind: .state(rows: rate))]
        if overlapping { streams.append(CacheStreamSpec("\(name) overlap", width: row, kind: .state(rows: rate))) }
        return streams
    }

    public var parameterCount: Int { 2 * kvProj.rows * kvProj.cols + positionBias.count + norm.count }

    /// Feeds rows `first ..< first + m` of x (n, hidden) — tokens at positions `start …` of `cache`'s sequence — into the
    /// open window, closing (and appending) an entry each time a window fills. `kv` and `gate` are this compressor's
    /// projections of all n rows, computed once per pass.
    func absorb(kv: UnsafePointer<Float>, gate: UnsafePointer<Float>, first: Int, m: Int, start: Int, cache: KVCache, layer: Int,
                workspace: ForwardWorkspace) {
        let projected = kvProj.rows
        let open = cache.rows(layer: layer, stream: pending).floats
        for t in first..<(first + m) {
            let position = start + t - first, slot = position % rate
            let row = open + slot * 2 * projected
            row.update(from: kv + t * projected, count: projected)
            (row + projected).update(from: gate + t * projected, count: projected)
            if slot == rate - 1 { close(window: position / rate, cache: cache, layer: layer, workspace: workspace) }
        }
    }

    /// Pools the full open window into entry `window`, rotates it at position window·rate and appends it.
    private func close(window: Int, cache: KVCache, layer: Int, workspace: ForwardWorkspace) {
        let projected = kvProj.rows, d = width, stride = 2 * projected
        let open = cache.rows(layer: layer, stream: pending).floats
        let entry = workspace.buffer(.compressorEntry, d), logits = workspace.buffer(.compressorLogits, 2 * rate)
        let last = overlapping ? cache.rows(layer: layer, stream: previous).floats : open
        positionBias.withUnsafeBufferPointer { bias in
            for c in 0..<d {
                // Slots: (overlapping) window w−1's first halves, then window w's second halves; else window w.
                var slots = 0
                if overlapping {
                    for j in 0..<rate {
                        logits[slots] = window > 0 ? last[j * stride + projected + c] + bias[j * projected + c] : -.infinity
                        slots += 1
                    }
                }
                let offset = overlapping ? d : 0
                for j in 0..<rate {
                    logits[slots] = open[j * stride + projected + offset + c] + bias[j * projected + offset + c]
                    slots += 1
                }
                var maximum = -Float.infinity
                for i in 0..<slots where logits[i] > maximum { maximum = logits[i] }
                var sum: Float = 0
                for i in 0..<slots { logits[i] = exp(logits[i] - maximum); sum += logits[i] }
                var pooled: Float = 0
                slots = 0
                if overlapping {
                    for j in 0..<rate { pooled += last[j * stride + c] * (logits[slots] / sum); slots += 1 }
                }
                for j in 0..<rate { pooled += open[j * stride + offset + c] * (logits[slots] / sum); slots += 1 }
                entry[c] = pooled
            }
        }
        norm.withUnsafeBufferPointer { Elementwise.rmsNorm(UnsafeBufferPointer(entry), weight: $0, eps: eps, n: 1, into: entry) }
        let table = workspace.buffer(.compressorRope, rope.dim)
        rope.angles(position: window * rate, into: table)
        rope.rotate(entry.baseAddress! + d - rope.dim, count: 1, stride: d, table: UnsafeBufferPointer(table))
        cache.rows(layer: layer, stream: entries).append(entry.baseAddress!)
        if overlapping { cache.rows(layer: layer, stream: previous).floats.update(from: open, count: rate * stride) }
    }
}

/// DeepSeek-V4's lightning indexer for compressed sparse attention: its own compressor over the same windows (keys
/// `index_head_dim` wide), queries from MLA-style q-LoRA residuals, and per-head weights; each query keeps the
/// `topK` compressed entries it scores highest among those whose window has closed.
public struct CompressedIndexer: Sendable {
    public let qB: LinearWeight, weightsProj: LinearWeight
    public let compressor: KVCompressor
    public let heads: Int, headDim: Int, topK: Int

    /// Tensor names under the block's prefix (`…compressor.indexer`).
    public enum Names { public static let qB = "q_b_proj.weight", weightsProj = "scorer.weights_proj.weight" }

    public init(weights: any WeightStore, prefix: String, hidden: Int, qLoraRank: Int, heads: Int, headDim: Int, topK: Int,
                compressor: KVCompressor, blockSize: [Int]?) throws {
        qB = try weights.linear("\(prefix).\(Names.qB)", rows: heads * headDim, cols: qLoraRank, blockSize: blockSize)
        weightsProj = try weights.linear("\(prefix).\(Names.weightsProj)", rows: heads, cols: hidden, blockSize: blockSize)
        self.compressor = compressor
        self.heads = heads
        self.headDim = headDim
        self.topK = topK
    }

    public static func parameters(_ prefix: String, hidden: Int, qLoraRank: Int, heads: Int, headDim: Int, rate: Int) -> [ParameterLayout.Entry] {
        KVCompressor.parameters(prefix, hidden: hidden, width: headDim, rate: rate, overlapping: true)
            + [.init("\(prefix).\(Names.qB)", [heads * headDim, qLoraRank]), .init("\(prefix).\(Names.weightsProj)", [heads, hidden])]
    }

    public var parameterCount: Int { qB.rows * qB.cols + weightsProj.rows * weightsProj.cols + compressor.parameterCount }

    /// Rotated queries (n, heads·headDim) and scaled head weights (n, heads) for every row.
    func queries(x: UnsafeBufferPointer<Float>, qResidual: UnsafeBufferPointer<Float>, n: Int, positions: (Int) -> Int,
                 workspace: ForwardWorkspace) -> (UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) {
        let q = workspace.buffer(.indexerQuery, n * heads * headDim), w = workspace.buffer(.indexerWeights, n * heads)
        Linear.forward(qB, qResidual, n: n, into: q)
        Linear.forward(weightsProj, x, n: n, into: w)
        let scale = 1 / Float(heads).squareRoot()
        for i in 0..<(n * heads) { w[i] *= scale }
        let rope = compressor.rope, table = workspace.buffer(.compressorRope, rope.dim)
        for t in 0..<n {
            rope.angles(position: positions(t), into: table)
            rope.rotate(q.baseAddress! + t * heads * headDim + headDim - rope.dim, count: heads, stride: headDim, table: UnsafeBufferPointer(table))
        }
        return (q, w)
    }

    /// The entries query row `t` (at `position`) attends to, ascending, into `out` (≤ topK); returns how many. `keys` is
    /// how many entries exist after this pass (the reference's row length).
    func select(query q: UnsafePointer<Float>, weights w: UnsafePointer<Float>, position: Int, keys: Int, view: KVCacheLayerView,
                into out: UnsafeMutablePointer<Int>, workspace: ForwardWorkspace) -> Int {
        let ready = min((position + 1) / compressor.rate, keys)
        if ready <= topK {
            for i in 0..<ready { out[i] = i }
            return ready
        }
        let row = workspace.buffer(.indexerScores, keys)
        IndexerScoring.score(q, heads: heads, headDim: headDim, weights: w, scale: 1 / Float(headDim).squareRoot(), view: view, keys: ready,
                             into: row.baseAddress!)
        IndexerScoring.selectTop(row.baseAddress!, visible: ready, keys: keys, k: topK, into: out, workspace: workspace)
        return topK
    }
}

extension ForwardWorkspace.Slot {
    /// Compressor scratch: one pooled entry, one channel's slot logits, RoPE angles.
    public static let compressorEntry = Self("compressorEntry"), compressorLogits = Self("compressorLogits")
    public static let compressorRope = Self("compressorRope")
}
