import KujiraTensor

/// llama.cpp's attention arithmetic (its default path: f16 cache, no flash attention), bit for bit: q rounded to
/// f16 and dotted with the f16 keys, scaled, `GGMLMath.softmax`, the probabilities rounded to f16 and dotted with
/// each value column over the cached tokens. llama.cpp's dots differ with the batch: a batch of one token runs
/// `ggml_vec_dot_f16` (`GGMLMath.vectorDot`: token i in accumulator (i / 16) mod 4, lane i mod 16), larger batches
/// tinyBLAS (`GGMLMath.dot`: one accumulator, lane i mod 16).
enum GGMLAttention {
    /// Attention of `n` new tokens (positions start..<start+n) of one sequence, in a forward pass of `batchTokens`
    /// rows: queries (n, heads·headDim) at `q`, outputs into `out` (same layout); keys at the start of each f16
    /// cache row (KV head h / group at h / group · headDim), values from `valueOffset` on.
    static func run(q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, n: Int, start: Int, batchTokens: Int, heads: Int, group: Int,
                    headDim: Int, view: KVCacheLayerView, valueOffset: Int, scale: Float, workspace: ForwardWorkspace) {
        guard let halves = view.halves else { preconditionFailure("llama.cpp numerics need the f16 cache") }
        let qWidth = heads * headDim, rowWidth = view.rowWidth, single = batchTokens == 1
        let accumulators = single ? 4 : 1
        let scratch = workspace.buffer(.ggmlAttention, headDim + accumulators * 16 * headDim).baseAddress!
        let queryHalf = scratch, acc = scratch + headDim
        let scores = workspace.buffer(.scores, start + n)
        for t in 0..<n {
            let visible = start + t + 1
            for h in 0..<heads {
                let query = q + t * qWidth + h * headDim, kv = (h / group) * headDim
                for d in 0..<headDim { queryHalf[d] = Float(Float16(query[d])) }
                for i in 0..<visible {
                    let key = halves + i * rowWidth + kv
                    let dot = single ? GGMLMath.vectorDot(queryHalf, halves: key, count: headDim) : GGMLMath.dot(queryHalf, halves: key, count: headDim)
                    scores[i] = dot * scale
                }
                let row = UnsafeMutableBufferPointer(rebasing: scores[0..<visible])
                GGMLMath.softmax(row)
                // acc[(a · headDim + d) · 16 + lane]: accumulator a, output value d, lane.
                acc.update(repeating: 0, count: accumulators * 16 * headDim)
                for i in 0..<visible {
                    let p = Float(Float16(row[i])), base = ((i / 16) % accumulators) * headDim * 16 + i % 16
                    let value = halves + i * rowWidth + valueOffset + kv
                    for d in 0..<headDim { acc[base + 16 * d] = acc[base + 16 * d].addingProduct(p, Float(value[d])) }
                }
                let o = out + t * qWidth + h * headDim
                @inline(__always) func lanes(_ a: Int, _ d: Int) -> SIMD16<Float> {
                    UnsafeRawPointer(acc + (a * headDim + d) * 16).loadUnaligned(as: SIMD16<Float>.self)
                }
                for d in 0..<headDim {
                    o[d] = GGMLMath.reduce16(single ? (lanes(0, d) + lanes(2, d)) + (lanes(1, d) + lanes(3, d)) : lanes(0, d))
                }
            }
        }
    }
}
