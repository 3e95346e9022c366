import CKujiraKernels

/// Weights that read the same input (an attention block's Q, K and V projections; a gated MLP's gate and up) as one pass
/// over the pool: the activations are quantized once and one `parallelFor` covers all their rows, so a decoding step
/// pays one hand-off to the workers per group instead of one per weight. Every row is computed by the same C kernel on
/// the same activations as `Linear.forward` computes it, so each output is bit for bit the separate call's.
extension Linear {
    /// outA = x · Aᵀ, outB = x · Bᵀ and, with `c`, outC = x · Cᵀ (n tokens): one pass when the weights share a block
    /// format of the C kernels with shared activations and have no adapter, else the separate `forward` calls.
    public static func forward(_ a: LinearWeight, into outA: UnsafeMutableBufferPointer<Float>, _ b: LinearWeight, into outB: UnsafeMutableBufferPointer<Float>,
                               _ c: LinearWeight? = nil, into outC: UnsafeMutableBufferPointer<Float>? = nil,
                               sharing x: UnsafeBufferPointer<Float>, n: Int, numerics: Numerics) {
        let isa = KernelISA.selected
        guard numerics == .kujira, isa != .swift, n > 0, CBlockDots.sharesActivations(a, b, c) else {
            forward(a, x, n: n, into: outA, numerics: numerics)
            forward(b, x, n: n, into: outB, numerics: numerics)
            if let c, let outC { forward(c, x, n: n, into: outC, numerics: numerics) }
            return
        }
        let cols = a.cols, rowsA = a.rows, rowsB = b.rows, rowsC = c?.rows ?? 0
        precondition(x.count >= n * cols && outA.count >= n * rowsA && outB.count >= n * rowsB && (c == nil || outC!.count >= n * rowsC),
                     "linear: buffers too small")
        // K-quants read Q8_K activations, the other formats the 32-value VNNI ones; either is quantized once for all of them.
        let kQuant = KQuantQ8K.handles(a.data.dtype)
        let k = kQuant ? LinearScratch.current.q8k(x, n: n, cols: cols, inC: true) : nil
        let vnni = kQuant ? nil : CBlockDots.vnniActivations(x, n: n, cols: cols)
        ThreadPool.shared.parallelFor(rowsA + rowsB + rowsC, grain: max(1, 32768 / max(1, cols * n))) { range in
            @inline(__always) func part(_ w: LinearWeight, _ out: UnsafeMutableBufferPointer<Float>, from offset: Int) {
                let lo = max(range.lowerBound, offset) - offset, hi = min(range.upperBound, offset + w.rows) - offset
                guard lo < hi else { return }
                if let k { KQuantQ8K.rows(isa, w, lo..<hi, k, n: n, out: out) }
                if let vnni { CBlockDots.rows(isa, w, lo..<hi, values: vnni.values, scales: vnni.scales, sums: vnni.sums, n: n, out: out) }
            }
            part(a, outA, from: 0)
            part(b, outB, from: rowsA)
            if let c, let outC { part(c, outC, from: rowsA + rowsB) }
        }
    }
}

extension CBlockDots {
    /// True when `a`, `b` (and `c`) have no adapter, the same column count and either one block format whose C kernel
    /// reads the 32-value VNNI activations or any mix of Q4_K / Q5_K / Q6_K (all read Q8_K activations: a Q4_K_M file's
    /// Q6_K `attn_v` beside its Q4_K `attn_q` shares the pass).
    static func sharesActivations(_ a: LinearWeight, _ b: LinearWeight, _ c: LinearWeight?) -> Bool {
        let dtype = a.data.dtype, kQuant = KQuantQ8K.handles(dtype)
        guard readsVNNIBlocks(dtype) || kQuant else { return false }
        func matches(_ w: LinearWeight) -> Bool {
            (kQuant ? KQuantQ8K.handles(w.data.dtype) : w.data.dtype == dtype) && w.cols == a.cols && w.adapter == nil
        }
        return a.adapter == nil && matches(b) && (c.map(matches) ?? true) && a.cols % dtype.blockElements == 0
    }
}
