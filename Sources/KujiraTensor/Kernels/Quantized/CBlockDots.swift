import CKujiraKernels
import Foundation

/// Block formats whose integer dots run in C (`CKujiraKernels`: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K and the IQ
/// types; Q4_K/Q5_K/Q6_K are `KQuantQ8K`) for `KernelISA.avx2` and `.avx512vnni`; `Linear`'s Swift kernels are the
/// reference and the `.swift` path.
/// Results are bit for bit those of the Swift kernels (same int32 lane sums, same float operations in the same order).
enum CBlockDots {

    /// Q8_0, Q4_0 / Q4_1, Q5_0 / Q5_1 and IQ4_NL / IQ4_XS `out (n, rows) = x · Wᵀ` (`readsVNNIBlocks`): the
    /// activations quantized once, rows split over the pool like `Linear.quantized`, each range through `rows`.
    static func vnniBlocks(_ isa: KernelISA, _ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, out: UnsafeMutableBufferPointer<Float>, grain: Int) {
        let (values, scales, sums) = vnniActivations(x, n: n, cols: w.cols)
        ThreadPool.shared.parallelFor(w.rows, grain: grain) { range in
            rows(isa, w, range, values: values, scales: scales, sums: sums, n: n, out: out)
        }
    }

    /// Formats whose C kernels read the VNNI activations (the q + 128 plane with a scale and a scaled sum per 32 values).
    static func readsVNNIBlocks(_ dtype: DType) -> Bool {
        switch dtype {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl, .iq4_xs: return true
        default: return false
        }
    }

    /// `x` (n, cols) quantized for the `readsVNNIBlocks` kernels, in this thread's `LinearScratch` (valid until its next use).
    @inline(__always)
    static func vnniActivations(_ x: UnsafeBufferPointer<Float>, n: Int, cols: Int)
        -> (values: UnsafePointer<UInt8>, scales: UnsafePointer<Float>, sums: UnsafePointer<Float>) {
        let activations = LinearScratch.current.activations(x, n: n, cols: cols, vnni: true)
        let first = activations.row(0)
        return (UnsafePointer(activations.vnniValues!), first.scales, first.scaledSums)
    }

    /// Rows `rows` of `x · Wᵀ` for a `readsVNNIBlocks` format, from activations already quantized (`vnniActivations`).
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
        case .iq4_nl, .iq4_xs:
            kujira_iq4_dot_rows(isa.rawValue, w.data.dtype == .iq4_xs ? 1 : 0, base, rowBytes, lo, hi, blocks32, values, scales, tokens, output, stride)
        default:
            preconditionFailure("CBlockDots.rows: \(w.data.dtype) does not read the VNNI activations")
        }
    }

    /// IQ2_XXS / IQ1_S / IQ3_XXS / IQ3_S `out (n, rows) = x · Wᵀ` through `kujira_iq_grid_dot_rows` (grid rows gathered, signs or the
    /// ±1 shift applied in bytes, then as Q8_0).
    static func iqGrid(_ isa: KernelISA, _ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, out: UnsafeMutableBufferPointer<Float>, grain: Int) {
        let rows = w.rows, cols = w.cols, rowBytes = w.rowBytes
        let kind: Int32 = w.data.dtype == .iq1_s ? 1 : w.data.dtype == .iq3_xxs ? 2 : w.data.dtype == .iq3_s ? 3 : 0
        let runs = cols / 32, tables = IQTables.shared
        let activations = LinearScratch.current.activations(x, n: n, cols: cols, vnni: true)
        let values = UnsafePointer(activations.vnniValues!), scales = activations.row(0).scales
        let base = w.data.bytes.baseAddress!, output = out.baseAddress!
        ThreadPool.shared.parallelFor(rows, grain: grain) { range in
            kujira_iq_grid_dot_rows(isa.rawValue, kind, tables.ksigns, tables.iq2xxs, tables.iq1s, tables.iq3xxs, tables.iq3s, base, rowBytes, Int32(range.lowerBound),
                                    Int32(range.upperBound), Int32(runs), values, scales, Int32(n), output, Int32(rows))
        }
    }

    /// IQ2_XS / IQ2_S / IQ1_M `out (n, rows) = x · Wᵀ` through `kujira_iq2_16_dot_rows` (a scale per 16 values).
    static func iq2Per16(_ isa: KernelISA, _ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, out: UnsafeMutableBufferPointer<Float>, grain: Int) {
        let rows = w.rows, cols = w.cols, rowBytes = w.rowBytes
        let isS: Int32 = w.data.dtype == .iq2_s ? 1 : w.data.dtype == .iq1_m ? 2 : 0
        let runs = cols / 32, tables = IQTables.shared, grid = isS == 1 ? tables.iq2s : isS == 2 ? tables.iq1s : tables.iq2xs
        let activations = LinearScratch.current.activations(x, n: n, cols: cols, vnni: true)
        let values = UnsafePointer(activations.vnniValues!), scales = activations.row(0).scales
        let base = w.data.bytes.baseAddress!, output = out.baseAddress!
        ThreadPool.shared.parallelFor(rows, grain: grain) { range in
            kujira_iq2_16_dot_rows(isa.rawValue, isS, tables.ksigns, grid, base, rowBytes, Int32(range.lowerBound), Int32(range.upperBound), Int32(runs),
                                   values, scales, Int32(n), output, Int32(rows))
        }
    }

    /// Q2_K / Q3_K `out (n, rows) = x · Wᵀ` through `kujira_q2_k_dot_rows` / `kujira_q3_k_dot_rows` (AVX2 at both C levels:
    /// `vpmaddwd` on the int16 activation lanes, as the Swift kernels).
    static func lowBitK(_ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, out: UnsafeMutableBufferPointer<Float>, grain: Int) {
        let kernel = w.data.dtype == .q3_K ? kujira_q3_k_dot_rows : kujira_q2_k_dot_rows
        let rows = w.rows, cols = w.cols, rowBytes = w.rowBytes
        let first = LinearScratch.current.activations(x, n: n, cols: cols).row(0)
        let lanes = UnsafeRawPointer(first.lanes).assumingMemoryBound(to: Int16.self), scales = first.scales, sums = first.sums
        let base = w.data.bytes.baseAddress!, output = out.baseAddress!
        ThreadPool.shared.parallelFor(rows, grain: grain) { range in
            kernel(base, rowBytes, Int32(range.lowerBound), Int32(range.upperBound), Int32(cols / 256), lanes, scales, sums, Int32(n), output, Int32(rows))
        }
    }
}
