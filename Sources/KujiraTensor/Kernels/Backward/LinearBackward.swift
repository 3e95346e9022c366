/// Training's products of a linear layer y (n, rows) = x (n, cols) · Wᵀ, with W in its stored format.
///
/// F32 weights (trainable parameters) are read in place; other formats (a frozen base model under LoRA) are decoded
/// once per call into scratch, so their input gradient is exact in float32 too.
extension Linear {
    /// y (n, rows) = x (n, cols) · Wᵀ for a training pass. F32 weights run the blocked GEMM as yᵀ = W · xᵀ (several
    /// tokens reuse each weight panel from cache, unlike the inference kernels' row-at-a-time dots); other formats run
    /// `forward` (its integer kernels with int8 activations beat decoding to float here: measured on SmolLM2 Q4_1 LoRA,
    /// 321 vs 222 tokens/s). The result equals `referenceForward` up to float32 summation order (and activation
    /// rounding for quantized weights). A LoRA adapter on `w` is added as in `forward`.
    public static func trainingForward(_ w: LinearWeight, x: UnsafePointer<Float>, n: Int, into y: UnsafeMutablePointer<Float>) {
        guard w.data.dtype == .f32, n >= 8 else {
            forward(w, UnsafeBufferPointer(start: x, count: n * w.cols), n: n, into: UnsafeMutableBufferPointer(start: y, count: n * w.rows))
            return
        }
        let rows = w.rows, cols = w.cols
        if MatMul.gemmNT(m: n, n: rows, k: cols, a: x, lda: cols, b: w.floatPointer, ldb: cols, c: y, ldc: rows, accumulate: false) {
            if let adapter = w.adapter {
                let u = FloatBuffer(uninitializedCount: n * adapter.rank)
                adapter.add(x, n: n, into: y, scratch: u.pointer)
            }
            return
        }
        let xT = FloatBuffer(uninitializedCount: cols * n), yT = FloatBuffer(uninitializedCount: rows * n)
        MatMul.transpose(x, rows: n, cols: cols, into: xT.pointer)
        // yᵀ (rows, n) = W (rows, cols) · xᵀ (cols, n)
        MatMul.gemm(m: rows, n: n, k: cols, a: w.floatPointer, aRowStride: cols, aColStride: 1, b: xT.pointer, ldb: n,
                    c: yT.pointer, ldc: n, accumulate: false)
        MatMul.transpose(yT.pointer, rows: rows, cols: n, into: y)
        if let adapter = w.adapter {
            let u = FloatBuffer(uninitializedCount: n * adapter.rank)
            adapter.add(x, n: n, into: y, scratch: u.pointer)
        }
    }

    /// dx (n, cols) (+)= dy (n, rows) · W, and dW (rows, cols) += dyᵀ · x when `dWeight` is given (nil: frozen).
    /// W is the stored weight alone; a LoRA adapter's part is `LowRankAdapter.backward`.
    public static func backward(_ weight: LinearWeight, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, n: Int,
                                dx: UnsafeMutablePointer<Float>?, accumulateInput: Bool, dWeight: UnsafeMutablePointer<Float>?) {
        let w = weight.base, rows = w.rows, cols = w.cols
        if let dx {
            let decoded: FloatBuffer? = w.data.dtype == .f32 ? nil : w.decodedBuffer()
            let weights = UnsafePointer(decoded?.pointer) ?? w.floatPointer
            MatMul.gemm(m: n, n: cols, k: rows, a: dy, aRowStride: rows, aColStride: 1, b: weights, ldb: cols,
                        c: dx, ldc: cols, accumulate: accumulateInput)
        }
        if let dWeight {
            MatMul.gemm(m: rows, n: cols, k: n, a: dy, aRowStride: 1, aColStride: rows, b: x, ldb: cols,
                        c: dWeight, ldc: cols, accumulate: true)
        }
    }
}

extension LinearWeight {
    /// Every row decoded (`decodeRow`, adapter included) into a new buffer, rows split across the pool.
    public func decodedBuffer() -> FloatBuffer {
        let out = FloatBuffer(uninitializedCount: rows * cols), cols = self.cols
        ThreadPool.shared.parallelFor(rows, grain: max(1, 65536 / max(1, cols))) { range in
            for r in range { decodeRow(r, into: UnsafeMutableBufferPointer(start: out.pointer + r * cols, count: cols)) }
        }
        return out
    }

    /// The weights of an F32 tensor, row-major (rows, cols).
    public var floatPointer: UnsafePointer<Float> {
        precondition(data.dtype == .f32, "floatPointer needs an F32 weight, got \(data.dtype.rawValue)")
        return data.bytes.baseAddress!.assumingMemoryBound(to: Float.self)
    }
}

extension LowRankAdapter {
    /// Backward of y += s · (x · Aᵀ) · Bᵀ with u = x · Aᵀ: dB += s · dyᵀ · u, du = s · dy · B, dA += duᵀ · x, dx += du · A.
    /// Gradients of A and B go where given (nil: frozen); dx is always accumulated.
    public func backward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, n: Int, dx: UnsafeMutablePointer<Float>?,
                         dA: UnsafeMutablePointer<Float>?, dB: UnsafeMutablePointer<Float>?) {
        let r = rank, cols = a.shape[1], rows = b.shape[0]
        let u = scaledDown(x, n: n), du = FloatBuffer(uninitializedCount: n * r)
        // du (n, r) = s · dy (n, rows) · B (rows, r)
        MatMul.gemm(m: n, n: r, k: rows, a: dy, aRowStride: rows, aColStride: 1, b: bPointer, ldb: r, c: du.pointer, ldc: r, accumulate: false)
        for i in 0..<(n * r) { du[i] *= scale }
        // dB (rows, r) += dyᵀ · (s · u)
        if let dB { MatMul.gemm(m: rows, n: r, k: n, a: dy, aRowStride: 1, aColStride: rows, b: u.pointer, ldb: r, c: dB, ldc: r, accumulate: true) }
        // dA (r, cols) += duᵀ · x
        if let dA { MatMul.gemm(m: r, n: cols, k: n, a: du.pointer, aRowStride: 1, aColStride: r, b: x, ldb: cols, c: dA, ldc: cols, accumulate: true) }
        // dx (n, cols) += du · A
        if let dx { MatMul.gemm(m: n, n: cols, k: r, a: du.pointer, aRowStride: r, aColStride: 1, b: aPointer, ldb: cols, c: dx, ldc: cols, accumulate: true) }
    }
}
