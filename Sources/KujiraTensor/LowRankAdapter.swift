/// A LoRA adapter on one linear weight: W' = W + scale · B · A with A (rank, cols) and B (rows, rank) in float32,
/// applied without merging — `Linear.forward` adds scale · (x · Aᵀ) · Bᵀ after the base product, whatever W's format.
public struct LowRankAdapter: Sendable {
    /// A (rank, cols) and B (rows, rank), F32.
    public let a: TensorData, b: TensorData
    /// alpha / rank (or alpha / √rank for rsLoRA).
    public let scale: Float
    /// The tensor names of A and B (their gradients are filed under them; PEFT's names).
    public let aName: String, bName: String

    public init(a: TensorData, b: TensorData, scale: Float, aName: String, bName: String) {
        precondition(a.dtype == .f32 && b.dtype == .f32 && a.shape.count == 2 && b.shape.count == 2 && a.shape[0] == b.shape[1],
                     "a LoRA adapter is A (rank, cols) and B (rows, rank) in F32")
        self.a = a; self.b = b; self.scale = scale; self.aName = aName; self.bName = bName
    }

    public var rank: Int { a.shape[0] }
    public var aPointer: UnsafePointer<Float> { a.bytes.baseAddress!.assumingMemoryBound(to: Float.self) }
    public var bPointer: UnsafePointer<Float> { b.bytes.baseAddress!.assumingMemoryBound(to: Float.self) }

    /// The adapter of rows `range` of the weight (B's rows; A is shared).
    public func rows(_ range: Range<Int>) -> LowRankAdapter {
        LowRankAdapter(a: a, b: b.matrixRows(index: 0, rows: range), scale: scale, aName: aName, bName: bName)
    }

    /// out (n, rows) += scale · (x (n, cols) · Aᵀ) · Bᵀ, with `u` (n · rank floats) as scratch. Prompt batches (n ≥ 8)
    /// run both products as GEMMs; a decoding step runs them as dots without allocating.
    public func add(_ x: UnsafePointer<Float>, n: Int, into out: UnsafeMutablePointer<Float>, scratch u: UnsafeMutablePointer<Float>) {
        let r = rank, cols = a.shape[1], rows = b.shape[0], ap = aPointer, bp = bPointer
        if n >= 8 {
            // out (n, rows) += (s · x · Aᵀ) · Bᵀ: only the small A and B are transposed.
            let uu = scaledDown(x, n: n), bT = FloatBuffer(uninitializedCount: r * rows)
            MatMul.transpose(bp, rows: rows, cols: r, into: bT.pointer)
            MatMul.gemm(m: n, n: rows, k: r, a: uu.pointer, aRowStride: r, aColStride: 1, b: bT.pointer, ldb: rows, c: out, ldc: rows, accumulate: true)
            return
        }
        for t in 0..<n {
            for k in 0..<r {
                var s: Float = 0
                let row = ap + k * cols, xt = x + t * cols
                for c in 0..<cols { s += row[c] * xt[c] }
                u[t * r + k] = s * scale
            }
        }
        ThreadPool.shared.parallelFor(rows, grain: max(1, 16384 / max(1, r * n))) { range in
            for o in range {
                let brow = bp + o * r
                for t in 0..<n {
                    var s: Float = 0
                    for k in 0..<r { s += brow[k] * u[t * r + k] }
                    out[t * rows + o] += s
                }
            }
        }
    }

    /// s · x (n, cols) · Aᵀ as a new (n, rank) buffer, by GEMM with A transposed (A is small; x is not transposed).
    func scaledDown(_ x: UnsafePointer<Float>, n: Int) -> FloatBuffer {
        let r = rank, cols = a.shape[1]
        let aT = FloatBuffer(uninitializedCount: cols * r), u = FloatBuffer(uninitializedCount: n * r)
        MatMul.transpose(aPointer, rows: r, cols: cols, into: aT.pointer)
        MatMul.gemm(m: n, n: r, k: cols, a: x, aRowStride: cols, aColStride: 1, b: aT.pointer, ldb: r, c: u.pointer, ldc: r, accumulate: false)
        for i in 0..<(n * r) { u[i] *= scale }
        return u
    }

    /// Row `r` of scale · B · A, added to `out` (cols floats).
    public func addRow(_ r: Int, into out: UnsafeMutableBufferPointer<Float>) {
        let rank = self.rank, cols = a.shape[1], ap = aPointer, brow = bPointer + r * rank
        for k in 0..<rank {
            let w = scale * brow[k], row = ap + k * cols
            for c in 0..<cols { out[c] += w * row[c] }
        }
    }
}
