import CKujiraKernels

/// Weights that read the same input (an attention block's Q, K and V projections; a gated MLP's gate and up) as one pass
/// over the pool: the activations are quantized once and one `parallelFor` covers all their rows, so a decoding step
/// pays one hand-off to the workers per group instead of one per weight. Every row is computed by the same C kernel on
/// the same activations as `Linear.forward` computes it, so each output is bit for bit the separate call's.
extension Linear {
    /// outA = x · Aᵀ, outB = x · Bᵀ and, with `c`, outC = x · Cᵀ (n tokens): one pass when the weights share a block
    /// format of the C kernels with 32-value activation blocks and have no adapter, else the separate `forward` calls.
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
        let activations = LinearScratch.current.activations(x, n: n, cols: cols, vnni: true)
        let first = activations.row(0)
        let values = UnsafePointer(activations.vnniValues!), scales = first.scales, sums = first.scaledSums
        ThreadPool.shared.parallelFor(rowsA + rowsB + rowsC, grain: max(1, 32768 / max(1, cols * n))) { range in
            @inline(__always) func part(_ w: LinearWeight, _ out: UnsafeMutableBufferPointer<Float>, from offset: Int) {
                let lo = max(range.lowerBound, offset) - offset, hi = min(range.upperBound, offset + w.rows) - offset
                if lo < hi { CBlockDots.rows(isa, w, lo..<hi, values: values, scales: scales, sums: sums, n: n, out: out) }
            }
            part(a, outA, from: 0)
            part(b, outB, from: rowsA)
            if let c, let outC { part(c, outC, from: rowsA + rowsB) }
        }
    }
}

extension CBlockDots {
    /// True when `a`, `b` (and `c`) have one block format whose C kernel reads the 32-value VNNI activations, the same
    /// column count, and no adapter.
    static func sharesActivations(_ a: LinearWeight, _ b: LinearWeight, _ c: LinearWeight?) -> Bool {
        let dtype = a.data.dtype
        switch dtype {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .iq4_nl, .iq4_xs: break
        default: return false
        }
        func matches(_ w: LinearWeight) -> Bool { w.data.dtype == dtype && w.cols == a.cols && w.adapter == nil }
        return a.adapter == nil && matches(b) && (c.map(matches) ?? true) && a.cols % dtype.blockElements == 0
    }

    /// Rows `rows` of `x · Wᵀ` for a `sharesActivations` format, from activations already quantized (`vnni`).
    @inline(__always)
    static func rows(_ isa: KernelISA, _ w: LinearWeight, _ rows: Range<Int>, values: UnsafePointer<UInt8>, scales: UnsafePointer<Float>,
                     sums: UnsafePointer<Float>, n: Int, out: UnsafeMutableBufferPointer<Float>) {
        let base = w.data.bytes.baseAddress!, rowBytes = w.rowBytes, lo = Int32(rows.lowerBound), hi = Int32(rows.upperBound)
        let output = out.baseAddress!, stride = Int32(w.rows), tokens = Int32(n), blocks32 = Int32(w.cols / 32)
        switch w.data.dtype {
        case .q4_0, .q4_1:
            kujira_q4_dot_rows(isa.rawValue, w.data.dtype == .q4_1 ? 1 : 0, base, rowBytes, lo, hi, blocks32, values, scales, sums, tokens, output, stride)
        case .q5_0, .q5_1:
            kujira_q5_dot_rows(isa.rawValue, w.data.dtype == .q5_1 ? 1 : 0, base, rowBytes, lo, hi, blocks32, values, scales, sums, tokens, output, stride)
        case .q8_0:
            kujira_q8_0_dot_rows(isa.rawValue, base, rowBytes, lo, hi, blocks32, values, scales, tokens, output, stride)
        case .q4_K:
            kujira_q4_k_dot_rows(isa.rawValue, base, rowBytes, lo, hi, Int32(w.cols / 256), values, scales, sums, tokens, output, stride)
        case .q5_K:
            kujira_q5_k_dot_rows(isa.rawValue, base, rowBytes, lo, hi, Int32(w.cols / 256), values, scales, sums, tokens, output, stride)
        case .iq4_nl, .iq4_xs:
            kujira_iq4_dot_rows(isa.rawValue, w.data.dtype == .iq4_xs ? 1 : 0, base, rowBytes, lo, hi, blocks32, values, scales, tokens, output, stride)
        default:
            preconditionFailure("CBlockDots.rows: \(w.data.dtype) is not a shared-activation format")
        }
    }
}
