import CKujiraKernels
import Foundation
import Synchronization

/// Dense float32 matrix products for training (forward, input gradients, weight gradients).
///
/// Every product is written as C (m, n) (+)= A (m, k) · B (k, n) with B and C row-major and A read through
/// strides, so Aᵀ costs nothing: the weight gradient dW (out, in) += dYᵀ (out, N) · X (N, in) reads dY by columns.
public enum MatMul {
    /// Products smaller than this many multiply-adds stay on the calling thread.
    static let parallelThreshold = 1 << 17

    /// C (m, n) = or += A (m, k) · B (k, n). A(i, l) is `a[i * aRowStride + l * aColStride]`; B(l, j) is `b[l * ldb + j]`;
    /// C(i, j) is `c[i * ldc + j]`. Rows of C are split across threads when `parallel` and the product is large.
    public static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
                            b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                            accumulate: Bool, parallel: Bool = true) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        let work = m * n * k
        let tile = avx512 ? 8 : 6  // rows of the register tile
        let parts = parallel && work >= parallelThreshold ? min(Parallel.threads, (m + tile - 1) / tile) : 1
        if parts <= 1 {
            kernel(rows: 0..<m, n: n, k: k, a: a, rs: aRowStride, cs: aColStride, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate)
            return
        }
        // Chunks of whole row tiles so every thread runs the register-blocked path.
        let blocks = (m + tile - 1) / tile
        Parallel.forEach(parts) { p in
            let lo = p * blocks / parts * tile, hi = min(m, (p + 1) * blocks / parts * tile)
            if lo < hi {
                kernel(rows: lo..<hi, n: n, k: k, a: a, rs: aRowStride, cs: aColStride, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate)
            }
        }
    }

    /// C (m, n) (+)= A (m, k) · Bᵀ with A (m, k) and B (n, k) row-major (`lda`, `ldb` floats apart): y = x · Wᵀ for a
    /// row-major weight without transposing either. The AVX-512 tile (`kujira_sgemm_nt_block`) splits B's rows across
    /// threads in blocks of 64; elsewhere A and B are transposed into `gemm`'s layout. Returns false without AVX-512, for
    /// callers that have a better fallback.
    @discardableResult
    public static func gemmNT(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) -> Bool {
        guard m > 0, n > 0 else { return true }
        guard avx512 else { return false }
        let blocks = (n + 63) / 64
        let parts = m * n * k >= parallelThreshold ? min(Parallel.threads, blocks) : 1
        Parallel.forEach(parts) { p in
            let lo = p * blocks / parts * 64, hi = min(n, (p + 1) * blocks / parts * 64)
            if lo < hi {
                kujira_sgemm_nt_block(Int32(m), Int32(lo), Int32(hi), Int32(k), a, lda, b, ldb, c, ldc, accumulate ? 1 : 0)
            }
        }
        return true
    }

    /// out (cols, rows) = in (rows, cols)ᵀ.
    public static func transpose(_ input: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let src = input + r * cols
            for c in 0..<cols { out[c * rows + r] = src[c] }
        }
    }

    /// Depth of one k block: B's block rows (kBlock × n) stay in cache while every row block of C passes over them.
    static let kBlock = 256

    /// Register-blocked kernel: 6 rows of C × 16 columns per inner loop over k (12 accumulators of 8 lanes on AVX2),
    /// k split into cache-sized blocks.
    static func kernel(rows: Range<Int>, n: Int, k: Int, a: UnsafePointer<Float>, rs: Int, cs: Int, b: UnsafePointer<Float>,
                       ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        var k0 = 0
        while k0 < k {
            let k1 = min(k, k0 + kBlock)
            block(rows: rows, n: n, k: k0..<k1, a: a, rs: rs, cs: cs, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate || k0 > 0)
            k0 = k1
        }
    }

    static func block(rows: Range<Int>, n: Int, k: Range<Int>, a: UnsafePointer<Float>, rs: Int, cs: Int, b: UnsafePointer<Float>,
                      ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        if avx512 {
            kujira_sgemm_block(Int32(rows.count), Int32(n), Int32(k.count), a + rows.lowerBound * rs + k.lowerBound * cs, rs, cs,
                               b + k.lowerBound * ldb, ldb, c + rows.lowerBound * ldc, ldc, accumulate ? 1 : 0)
            return
        }
        if KernelISA.floatKernels {
            kujira_sgemm_block_avx2(Int32(rows.count), Int32(n), Int32(k.count), a + rows.lowerBound * rs + k.lowerBound * cs, rs, cs,
                                    b + k.lowerBound * ldb, ldb, c + rows.lowerBound * ldc, ldc, accumulate ? 1 : 0)
            return
        }
        swiftBlock(rows: rows, n: n, k: k, a: a, rs: rs, cs: cs, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate)
    }

    /// Whether `block` runs the AVX-512 C tile (`kujira_sgemm_block`): the CPU has AVX-512F and `KUJIRA_ISA` leaves AVX-512
    /// (not `avx2` or `swift`); else the AVX2 C tile (`KernelISA.floatKernels`) or the Swift one.
    static let avx512: Bool = KernelISA.environmentCap == .avx512vnni && kujira_sgemm_available() != 0

    /// The Swift kernel (reference and fallback): 6 × 16 register blocks.
    static func swiftBlock(rows: Range<Int>, n: Int, k: Range<Int>, a: UnsafePointer<Float>, rs: Int, cs: Int, b: UnsafePointer<Float>,
                           ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        let rawB = UnsafeRawPointer(b)
        var i = rows.lowerBound
        while i + 6 <= rows.upperBound {
            let a0 = a + i * rs, a1 = a0 + rs, a2 = a1 + rs, a3 = a2 + rs, a4 = a3 + rs, a5 = a4 + rs
            var j = 0
            while j + 16 <= n {
                var c0 = SIMD16<Float>.zero, c1 = SIMD16<Float>.zero, c2 = SIMD16<Float>.zero
                var c3 = SIMD16<Float>.zero, c4 = SIMD16<Float>.zero, c5 = SIMD16<Float>.zero
                for l in k {
                    let bv = (rawB + (l * ldb + j) * 4).loadUnaligned(as: SIMD16<Float>.self)
                    let o = l * cs
                    c0.addProduct(SIMD16(repeating: a0[o]), bv); c1.addProduct(SIMD16(repeating: a1[o]), bv)
                    c2.addProduct(SIMD16(repeating: a2[o]), bv); c3.addProduct(SIMD16(repeating: a3[o]), bv)
                    c4.addProduct(SIMD16(repeating: a4[o]), bv); c5.addProduct(SIMD16(repeating: a5[o]), bv)
                }
                let base = c + i * ldc + j
                store(c0, base, accumulate); store(c1, base + ldc, accumulate); store(c2, base + 2 * ldc, accumulate)
                store(c3, base + 3 * ldc, accumulate); store(c4, base + 4 * ldc, accumulate); store(c5, base + 5 * ldc, accumulate)
                j += 16
            }
            if j < n {
                for r in i..<(i + 6) { scalarRow(r, columns: j..<n, k: k, a: a, rs: rs, cs: cs, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate) }
            }
            i += 6
        }
        while i < rows.upperBound {
            let ai = a + i * rs
            var j = 0
            while j + 16 <= n {
                var c0 = SIMD16<Float>.zero
                for l in k { c0.addProduct(SIMD16(repeating: ai[l * cs]), (rawB + (l * ldb + j) * 4).loadUnaligned(as: SIMD16<Float>.self)) }
                store(c0, c + i * ldc + j, accumulate)
                j += 16
            }
            if j < n { scalarRow(i, columns: j..<n, k: k, a: a, rs: rs, cs: cs, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate) }
            i += 1
        }
    }

    @inline(__always)
    static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
        let raw = UnsafeMutableRawPointer(p)
        if accumulate {
            raw.storeBytes(of: raw.loadUnaligned(as: SIMD16<Float>.self) + v, as: SIMD16<Float>.self)
        } else {
            raw.storeBytes(of: v, as: SIMD16<Float>.self)
        }
    }

    static func scalarRow(_ i: Int, columns: Range<Int>, k: Range<Int>, a: UnsafePointer<Float>, rs: Int, cs: Int, b: UnsafePointer<Float>,
                          ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        let ai = a + i * rs
        for j in columns {
            var sum: Float = 0
            for l in k { sum += ai[l * cs] * b[l * ldb + j] }
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum
        }
    }
}

/// Data-parallel loops for training, on the shared persistent `ThreadPool` (sized by `KUJIRA_THREADS` or the cores).
public enum Parallel {
    /// Threads a loop uses now.
    public static var threads: Int { Swift.max(1, ThreadPool.shared.activeThreads) }

    /// Runs `body(i)` for i in 0..<count concurrently and returns when all are done. Indices are handed out
    /// dynamically (an atomic counter), so tasks of uneven size — experts with different token counts — balance.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 { if count == 1 { body(0) }; return }
        let next = Atomic<Int>(0)
        ThreadPool.shared.parallelFor(Swift.min(count, threads)) { _ in
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                if i >= count { break }
                body(i)
            }
        }
    }

    /// Splits 0..<count into at most `threads` contiguous ranges and runs them concurrently.
    public static func forRanges(_ count: Int, minimumPerPart: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        ThreadPool.shared.parallelFor(count, grain: Swift.max(1, minimumPerPart), body)
    }
}

/// Carries a value the caller guarantees is used safely across threads.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
