import KujiraTensor

/// llama.cpp's attention arithmetic (its default path: f16 cache, no flash attention), bit for bit, head by head
/// through `GGMLMath.attendHead`. llama.cpp's dots differ with the batch: a batch of one token runs `ggml_vec_dot_f16`,
/// larger batches tinyBLAS.
enum GGMLAttention {
    /// Attention of `n` new tokens (positions start..<start+n) of one sequence, in a forward pass of `batchTokens`
    /// rows: queries (n, heads·headDim) at `q`, outputs into `out` (same layout); keys at the start of each f16
    /// cache row (KV head h / group at h / group · headDim), values from `valueOffset` on.
    static func run(q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, n: Int, start: Int, batchTokens: Int, heads: Int, group: Int,
                    headDim: Int, view: KVCacheLayerView, valueOffset: Int, scale: Float, workspace: ForwardWorkspace) {
        guard let halves = view.halves else { preconditionFailure("llama.cpp numerics need the f16 cache") }
        let qWidth = heads * headDim, rowWidth = view.rowWidth
        let scratch = workspace.buffer(.ggmlAttention, 65 * headDim).baseAddress!
        let scores = workspace.buffer(.scores, start + n).baseAddress!
        for t in 0..<n {
            for h in 0..<heads {
                let kv = (h / group) * headDim
                GGMLMath.attendHead(query: q + t * qWidth + h * headDim, keys: halves + kv, values: halves + valueOffset + kv, rowWidth: rowWidth,
                                    visible: start + t + 1, headDim: headDim, scale: scale, singleToken: batchTokens == 1, scores: scores,
                                    scratch: scratch, out: out + t * qWidth + h * headDim)
            }
        }
    }
}
