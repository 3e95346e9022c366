import Foundation
import KujiraFormats
import KujiraTensor

/// Causal softmax attention of new queries over cached keys/values, shared by GQA and MLA.
public enum CausalAttention {
    /// For each new token t (position `start + t`) and head h: out = softmax(scale · q·kᵢ) · vᵢ over i ≤ position.
    ///
    /// `score(h, t, i)` returns q·k for head h, new token t, cached position i; `accumulate(h, t, i, p)` adds p · vᵢ
    /// to the output of head h, token t. Scores use a scratch row reused across heads.
    @inline(__always)
    public static func run(heads: Int, n: Int, start: Int, scale: Float,
                           score: (_ head: Int, _ token: Int, _ position: Int) -> Float,
                           accumulate: (_ head: Int, _ token: Int, _ position: Int, _ weight: Float) -> Void) {
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: start + n)
        defer { scratch.deallocate() }
        for t in 0..<n {
            let visible = start + t + 1
            let row = UnsafeMutableBufferPointer(rebasing: scratch[0..<visible])
            for h in 0..<heads {
                for i in 0..<visible { row[i] = score(h, t, i) * scale }
                Elementwise.softmax(row)
                for i in 0..<visible { accumulate(h, t, i, row[i]) }
            }
        }
    }
}

/// Grouped-query attention with rotary embeddings (Llama, Qwen2): per-head K/V in the cache.
public struct GroupedQueryAttention: TokenMixer {
    public let qProj: LinearWeight, kProj: LinearWeight, vProj: LinearWeight, oProj: LinearWeight
    public let qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
    public let heads: Int, kvHeads: Int, headDim: Int
    public let rope: RotaryEmbedding

    public init(weights: any WeightStore, prefix: String, hidden: Int, heads: Int, kvHeads: Int, headDim: Int,
                bias: Bool, rope: RotaryEmbedding, blockSize: [Int]?) throws {
        qProj = try weights.linear("\(prefix).q_proj.weight", rows: heads * headDim, cols: hidden, blockSize: blockSize)
        kProj = try weights.linear("\(prefix).k_proj.weight", rows: kvHeads * headDim, cols: hidden, blockSize: blockSize)
        vProj = try weights.linear("\(prefix).v_proj.weight", rows: kvHeads * headDim, cols: hidden, blockSize: blockSize)
        oProj = try weights.linear("\(prefix).o_proj.weight", rows: hidden, cols: heads * headDim, blockSize: blockSize)
        qBias = bias ? try weights.floats("\(prefix).q_proj.bias", shape: [heads * headDim]) : nil
        kBias = bias ? try weights.floats("\(prefix).k_proj.bias", shape: [kvHeads * headDim]) : nil
        vBias = bias ? try weights.floats("\(prefix).v_proj.bias", shape: [kvHeads * headDim]) : nil
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.rope = rope
    }

    public var cacheRowWidth: Int { 2 * kvHeads * headDim }

    public var parameterCount: Int {
        [qProj, kProj, vProj, oProj].reduce(0) { $0 + $1.rows * $1.cols } + (qBias?.count ?? 0) + (kBias?.count ?? 0) + (vBias?.count ?? 0)
    }

    public func forward(_ x: [Float], n: Int, cache: KVCache, layer: Int) -> [Float] {
        let qWidth = heads * headDim, kvWidth = kvHeads * headDim
        var q = Linear.forward(qProj, x, n: n)
        var k = Linear.forward(kProj, x, n: n)
        var v = Linear.forward(vProj, x, n: n)
        addBias(&q, qBias, width: qWidth)
        addBias(&k, kBias, width: kvWidth)
        addBias(&v, vBias, width: kvWidth)
        let start = cache.length
        let table = UnsafeMutableBufferPointer<Float>.allocate(capacity: headDim)
        defer { table.deallocate() }
        // Rotate and append this chunk's keys and values: cache row = [K | V].
        q.withUnsafeMutableBufferPointer { qb in
            k.withUnsafeMutableBufferPointer { kb in
                for t in 0..<n {
                    rope.angles(position: cache.positionOffset + start + t, into: table)
                    rope.rotate(qb.baseAddress! + t * qWidth, count: heads, stride: headDim, table: UnsafeBufferPointer(table))
                    rope.rotate(kb.baseAddress! + t * kvWidth, count: kvHeads, stride: headDim, table: UnsafeBufferPointer(table))
                    let row = cache.staging
                    row.update(from: kb.baseAddress! + t * kvWidth, count: kvWidth)
                    v.withUnsafeBufferPointer { (row + kvWidth).update(from: $0.baseAddress! + t * kvWidth, count: kvWidth) }
                    cache.write(row, layer: layer, position: start + t)
                }
            }
        }
        let group = heads / kvHeads
        let view = cache.layerView(layer)
        var out = [Float](repeating: 0, count: n * qWidth)
        q.withUnsafeBufferPointer { qb in
            out.withUnsafeMutableBufferPointer { ob in
                CausalAttention.run(heads: heads, n: n, start: start, scale: 1 / Float(headDim).squareRoot(),
                    score: { h, t, i in
                        view.dot(qb.baseAddress! + t * qWidth + h * headDim, position: i, offset: (h / group) * headDim, count: headDim)
                    },
                    accumulate: { h, t, i, p in
                        view.addScaled(position: i, offset: kvWidth + (h / group) * headDim, count: headDim, weight: p,
                                       into: ob.baseAddress! + t * qWidth + h * headDim)
                    })
            }
        }
        return Linear.forward(oProj, out, n: n)
    }

    private func addBias(_ x: inout [Float], _ bias: [Float]?, width: Int) {
        guard let bias else { return }
        for i in 0..<x.count { x[i] += bias[i % width] }
    }
}
