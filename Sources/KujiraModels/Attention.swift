import Foundation
import KujiraFormats
import KujiraTensor

/// Causal softmax attention of new queries over cached keys/values, shared by GQA and MLA.
public enum CausalAttention {
    /// For each new token t (position `start + t`) and head h: out = softmax(scale · q·kᵢ) · vᵢ over i ≤ position.
    ///
    /// `scores(h, t, row)` fills row[i] = q·kᵢ for head h, new token t and every visible position i (row.count of
    /// them); `accumulate(h, t, p)` adds Σᵢ pᵢ · vᵢ to the output of head h, token t. Heads run in parallel on the pool
    /// when there is enough work (a long prompt, or a long context), each with its own `stride` floats of `scratch`
    /// (stride ≥ start + n, scratch ≥ heads · stride; callers pass the cache's reserved capacity, so a decode step
    /// never grows the buffer); the closures must only write head h's outputs for head h. Each (head, token) is
    /// computed in the same order whatever the threads, so the result does not depend on them. `keyCounts[t]`, when
    /// given, is how many keys token t scores (sparse attention: its selected positions) instead of every visible one.
    @inline(__always)
    public static func run(heads: Int, n: Int, start: Int, scale: Float, scratch: UnsafeMutableBufferPointer<Float>, stride: Int,
                           keyCounts: UnsafePointer<Int>? = nil,
                           scores: (_ head: Int, _ token: Int, _ row: UnsafeMutableBufferPointer<Float>) -> Void,
                           accumulate: (_ head: Int, _ token: Int, _ weights: UnsafeBufferPointer<Float>) -> Void) {
        precondition(stride >= start + n && scratch.count >= heads * stride, "attention scratch too small")
        // Score/accumulate pairs per head: n tokens over on average start + n/2 positions. Ranges of heads get at
        // least ~8k pairs (a few hundred microseconds), so a decode step over a short context stays on the caller.
        let perHead = n * (start + (n + 1) / 2)
        ThreadPool.shared.parallelFor(heads, grain: max(1, 8192 / max(1, perHead))) { range in
            for h in range {
                let base = scratch.baseAddress! + h * stride
                for t in 0..<n {
                    let row = UnsafeMutableBufferPointer(start: base, count: keyCounts?[t] ?? start + t + 1)
                    scores(h, t, row)
                    for i in row.indices { row[i] *= scale }
                    Elementwise.softmax(row)
                    accumulate(h, t, UnsafeBufferPointer(row))
                }
            }
        }
    }
}

/// Grouped-query attention with rotary embeddings (Llama, Qwen2 and their descendants): per-head K/V in the cache. A hook:
/// `headNorms` RMS-normalises every query and key head (`q_norm`, `k_norm`) before RoPE.
public struct GroupedQueryAttention: TokenMixer {
    public let qProj: LinearWeight, kProj: LinearWeight, vProj: LinearWeight, oProj: LinearWeight
    public let qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
    /// Per-head RMSNorm weights of queries and keys (headDim each) and their epsilon, or nil.
    public let headNorms: (query: [Float], key: [Float], eps: Float)?
    public let heads: Int, kvHeads: Int, headDim: Int
    public let rope: RotaryEmbedding
    /// The block's tensor-name prefix (`model.layers.N.self_attn`): its gradients are filed under it.
    public let prefix: String

    /// Tensor names under the block's prefix.
    public enum Names {
        public static let q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj.weight", qNorm = "q_norm.weight", kNorm = "k_norm.weight"
    }

    public init(weights: any WeightStore, prefix: String, hidden: Int, heads: Int, kvHeads: Int, headDim: Int,
                bias: Bool, headNorm: Bool = false, normEps: Float = 1e-6, rope: RotaryEmbedding, blockSize: [Int]?) throws {
        qProj = try weights.linear("\(prefix).\(Names.q).weight", rows: heads * headDim, cols: hidden, blockSize: blockSize)
        kProj = try weights.linear("\(prefix).\(Names.k).weight", rows: kvHeads * headDim, cols: hidden, blockSize: blockSize)
        vProj = try weights.linear("\(prefix).\(Names.v).weight", rows: kvHeads * headDim, cols: hidden, blockSize: blockSize)
        oProj = try weights.linear("\(prefix).\(Names.o)", rows: hidden, cols: heads * headDim, blockSize: blockSize)
        qBias = bias ? try weights.floats("\(prefix).\(Names.q).bias", shape: [heads * headDim]) : nil
        kBias = bias ? try weights.floats("\(prefix).\(Names.k).bias", shape: [kvHeads * headDim]) : nil
        vBias = bias ? try weights.floats("\(prefix).\(Names.v).bias", shape: [kvHeads * headDim]) : nil
        headNorms = headNorm ? (try weights.floats("\(prefix).\(Names.qNorm)", shape: [headDim]),
                                try weights.floats("\(prefix).\(Names.kNorm)", shape: [headDim]), normEps) : nil
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.rope = rope
        self.prefix = prefix
    }

    /// The block's parameters under `prefix`.
    public static func parameters(_ prefix: String, hidden: Int, heads: Int, kvHeads: Int, headDim: Int, bias: Bool,
                                  headNorm: Bool = false) -> [ParameterLayout.Entry] {
        var e: [ParameterLayout.Entry] = [
            .init("\(prefix).\(Names.q).weight", [heads * headDim, hidden]), .init("\(prefix).\(Names.k).weight", [kvHeads * headDim, hidden]),
            .init("\(prefix).\(Names.v).weight", [kvHeads * headDim, hidden]), .init("\(prefix).\(Names.o)", [hidden, heads * headDim]),
        ]
        if bias {
            e += [.init("\(prefix).\(Names.q).bias", [heads * headDim], .zeros), .init("\(prefix).\(Names.k).bias", [kvHeads * headDim], .zeros),
                  .init("\(prefix).\(Names.v).bias", [kvHeads * headDim], .zeros)]
        }
        if headNorm { e += [.init("\(prefix).\(Names.qNorm)", [headDim], .ones), .init("\(prefix).\(Names.kNorm)", [headDim], .ones)] }
        return e
    }

    /// The cache stream of every layer: one row `[K | V]` per token.
    public static func cacheStream(kvHeads: Int, headDim: Int) -> CacheStreamSpec {
        CacheStreamSpec("kv", width: 2 * kvHeads * headDim, segments: [headDim])
    }

    public var cacheRowWidth: Int { 2 * kvHeads * headDim }

    public var parameterCount: Int {
        [qProj, kProj, vProj, oProj].reduce(0) { $0 + $1.rows * $1.cols } + (qBias?.count ?? 0) + (kBias?.count ?? 0) + (vBias?.count ?? 0)
            + (headNorms.map { $0.query.count + $0.key.count } ?? 0)
    }

    public var outputWidth: Int { oProj.rows }

    public func forward(_ x: UnsafeBufferPointer<Float>, n: Int, batch: SequenceBatch, layer: Int, into result: UnsafeMutableBufferPointer<Float>) {
        let qWidth = heads * headDim, kvWidth = kvHeads * headDim
        let workspace = batch.workspace, numerics = workspace.numerics
        let q = workspace.buffer(.query, n * qWidth), k = workspace.buffer(.key, n * kvWidth), v = workspace.buffer(.value, n * kvWidth)
        Linear.forward(qProj, into: q, kProj, into: k, vProj, into: v, sharing: x, n: n, numerics: numerics)
        addBias(q, qBias, width: qWidth)
        addBias(k, kBias, width: kvWidth)
        addBias(v, vBias, width: kvWidth)
        if let headNorms {
            headNorms.query.withUnsafeBufferPointer {
                Elementwise.rmsNorm(UnsafeBufferPointer(q), weight: $0, eps: headNorms.eps, n: n * heads, into: q, numerics: numerics)
            }
            headNorms.key.withUnsafeBufferPointer {
                Elementwise.rmsNorm(UnsafeBufferPointer(k), weight: $0, eps: headNorms.eps, n: n * kvHeads, into: k, numerics: numerics)
            }
        }
        let table = UnsafeBufferPointer(workspace.buffer(.ropeTable, headDim))
        let group = heads / kvHeads
        let out = workspace.zeroed(.attention, n * qWidth)
        for s in 0..<batch.count {
            // Each sequence: rotate and append its rows' keys and values (cache row = [K | V]), then attend over its cache.
            let cache = batch.cache(s), (first, m) = batch.rows(s, n: n), start = cache.length
            for t in first..<(first + m) {
                let position = start + t - first
                let angles = UnsafeMutableBufferPointer(mutating: table)
                if numerics == .llamaCpp {
                    rope.ggmlAngles(position: cache.positionOffset + position, into: angles)
                } else {
                    rope.angles(position: cache.positionOffset + position, into: angles)
                }
                rope.rotate(q.baseAddress! + t * qWidth, count: heads, stride: headDim, table: table, numerics: numerics)
                rope.rotate(k.baseAddress! + t * kvWidth, count: kvHeads, stride: headDim, table: table, numerics: numerics)
                let row = cache.staging
                row.update(from: k.baseAddress! + t * kvWidth, count: kvWidth)
                (row + kvWidth).update(from: v.baseAddress! + t * kvWidth, count: kvWidth)
                cache.write(row, layer: layer, position: position)
            }
            let view = cache.layerView(layer)
            let qb = UnsafePointer(q.baseAddress! + first * qWidth), ob = out.baseAddress! + first * qWidth
            if numerics == .llamaCpp {
                GGMLAttention.run(q: qb, out: ob, n: m, start: start, batchTokens: n, heads: heads, group: group, headDim: headDim, view: view,
                                  valueOffset: kvWidth, scale: 1 / Float(headDim).squareRoot(), workspace: workspace)
                continue
            }
            CausalAttention.run(heads: heads, n: m, start: start, scale: 1 / Float(headDim).squareRoot(),
                                scratch: workspace.buffer(.scores, heads * cache.capacity), stride: cache.capacity,
                scores: { h, t, row in
                    view.dots(qb + t * qWidth + h * headDim, positions: row.count, offset: (h / group) * headDim, count: headDim, into: row.baseAddress!)
                },
                accumulate: { h, t, p in
                    view.addScaledRows(p.baseAddress!, positions: p.count, offset: kvWidth + (h / group) * headDim, count: headDim,
                                       into: ob + t * qWidth + h * headDim)
                })
        }
        Linear.forward(oProj, UnsafeBufferPointer(out), n: n, into: result, numerics: numerics)
    }

    private func addBias(_ x: UnsafeMutableBufferPointer<Float>, _ bias: [Float]?, width: Int) {
        guard let bias else { return }
        bias.withUnsafeBufferPointer { b in
            for i in 0..<x.count { x[i] += b[i % width] }
        }
    }
}

extension GGUFTensorNames {
    /// `GroupedQueryAttention` at `self_attn.`: projections and their biases.
    public static let groupedQueryAttention = GGUFTensorNames(layer: [
        "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
        "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.\(GroupedQueryAttention.Names.o)",
        "attn_q.bias": "self_attn.q_proj.bias", "attn_k.bias": "self_attn.k_proj.bias", "attn_v.bias": "self_attn.v_proj.bias",
    ])
    /// The per-head query and key norms (the `headNorm` hook).
    public static let attentionHeadNorms = GGUFTensorNames(layer: [
        "attn_q_norm.weight": "self_attn.\(GroupedQueryAttention.Names.qNorm)", "attn_k_norm.weight": "self_attn.\(GroupedQueryAttention.Names.kNorm)",
    ])
}
