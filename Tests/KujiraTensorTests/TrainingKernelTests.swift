import CKujiraKernels
@testable import KujiraTensor
import XCTest

/// The training kernels' fast paths against their references: the AVX-512 GEMM tile against the Swift one, LoRA's
/// unmerged forward against the merged weight, and the linear and LoRA backward products against naive sums.
final class TrainingKernelTests: XCTestCase {
    func randoms(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2000 - 1000) / 1000
        }
    }

    /// A C GEMM block's signature (`kujira_sgemm_block`, `kujira_sgemm_block_avx2`).
    typealias CBlock = (Int32, Int32, Int32, UnsafePointer<Float>, Int, Int, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Int, Int32) -> Void

    /// Runs `kernel` and the Swift `MatMul.swiftBlock` on the same (m, n, k) products with A read by columns (strided),
    /// overwriting then accumulating, and hands both results to `check`.
    func compareWithSwiftBlock(_ kernel: CBlock, shapes: [(Int, Int, Int)], check: (_ c: [Float], _ swift: [Float], _ shape: (Int, Int, Int), _ label: String) -> Void) {
        for (m, n, k) in shapes {
            let a = randoms(m * k, seed: 1), b = randoms(k * n, seed: 2), initial = randoms(m * n, seed: 3)
            var swift = initial, c = initial
            for accumulate in [false, true] {
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                    swift.withUnsafeMutableBufferPointer { sp in
                        MatMul.swiftBlock(rows: 0..<m, n: n, k: 0..<k, a: ap.baseAddress!, rs: 1, cs: m, b: bp.baseAddress!, ldb: n,
                                          c: sp.baseAddress!, ldc: n, accumulate: accumulate)
                    }
                    c.withUnsafeMutableBufferPointer { cp in
                        kernel(Int32(m), Int32(n), Int32(k), ap.baseAddress!, 1, m, bp.baseAddress!, n, cp.baseAddress!, n, accumulate ? 1 : 0)
                    }
                } }
                check(c, swift, (m, n, k), "(\(m),\(n),\(k)) accumulate \(accumulate)")
            }
        }
    }

    /// `kujira_sgemm_block` gives the Swift `MatMul.swiftBlock`'s products bit for bit on full tiles, and within float
    /// rounding (the Swift tail columns multiply and add unfused) everywhere, for strided A, tails and accumulation.
    func testAVX512TileMatchesTheSwiftKernel() throws {
        guard kujira_sgemm_available() != 0 else { throw XCTSkip("no AVX-512F on this CPU") }
        compareWithSwiftBlock(kujira_sgemm_block, shapes: [(8, 32, 7), (19, 77, 33), (3, 16, 300), (24, 100, 256), (1, 5, 2)]) { c, swift, shape, label in
            let (m, n, k) = shape
            for i in 0..<m {
                for j in 0..<n {
                    let fullTile = j < n / 16 * 16 && i < m / 6 * 6
                    if fullTile { XCTAssertEqual(c[i * n + j], swift[i * n + j], "\(label) at \(i),\(j)") }
                    XCTAssertEqual(c[i * n + j], swift[i * n + j], accuracy: 1e-4 * Float(k), "\(label) at \(i),\(j)")
                }
            }
        }
    }

    /// `kujira_sgemm_block_avx2` is the Swift `MatMul.swiftBlock` bit for bit, tail rows and columns included.
    func testAVX2TileMatchesTheSwiftKernelBitForBit() throws {
        guard KernelISA.supported >= .avx2 else { throw XCTSkip("no AVX2 + FMA on this CPU") }
        compareWithSwiftBlock(kujira_sgemm_block_avx2, shapes: [(6, 16, 7), (19, 77, 33), (3, 16, 300), (24, 100, 256), (1, 5, 2), (13, 48, 1)]) { c, swift, _, label in
            XCTAssertEqual(c.map(\.bitPattern), swift.map(\.bitPattern), label)
        }
    }

    func f32Weight(_ values: [Float], rows: Int, cols: Int, adapter: LowRankAdapter? = nil) -> LinearWeight {
        LinearWeight(data: TensorData.owned(values, shape: [rows, cols]), adapter: adapter)
    }


    /// Linear.forward with an adapter (dots for one token, GEMMs for a batch) equals the merged weight's reference product.
    func testAdapterForwardEqualsTheMergedWeight() {
        let rows = 24, cols = 40, rank = 4
        let adapter = LowRankAdapter(a: TensorData.owned(randoms(rank * cols, seed: 5), shape: [rank, cols]), b: TensorData.owned(randoms(rows * rank, seed: 6), shape: [rows, rank]),
                                     scale: 2, aName: "a", bName: "b")
        let w = f32Weight(randoms(rows * cols, seed: 4), rows: rows, cols: cols, adapter: adapter)
        let merged = f32Weight(w.toFloatArray(), rows: rows, cols: cols)
        for n in [1, 3, 20] {
            let x = randoms(n * cols, seed: 7)
            let fast = Linear.forward(w, x, n: n)
            var reference = [Float](repeating: 0, count: n * rows)
            x.withUnsafeBufferPointer { xb in reference.withUnsafeMutableBufferPointer { Linear.referenceForward(merged, xb, n: n, into: $0) } }
            for i in 0..<fast.count { XCTAssertEqual(fast[i], reference[i], accuracy: 1e-4, "n \(n) at \(i)") }
            var training = [Float](repeating: 0, count: n * rows)
            x.withUnsafeBufferPointer { xb in training.withUnsafeMutableBufferPointer { Linear.trainingForward(w, x: xb.baseAddress!, n: n, into: $0.baseAddress!) } }
            for i in 0..<fast.count { XCTAssertEqual(training[i], reference[i], accuracy: 1e-4, "training n \(n) at \(i)") }
        }
        XCTAssertNotEqual(merged.toFloatArray(), w.base.toFloatArray(), "the adapter changes the weight")
    }

    /// Linear.backward and LowRankAdapter.backward against naive sums (a BF16 base is decoded for dx).
    func testLinearAndAdapterBackwardEqualNaiveSums() {
        let rows = 9, cols = 12, rank = 3, n = 10, scale: Float = 1.5
        let wValues = randoms(rows * cols, seed: 8), aValues = randoms(rank * cols, seed: 9), bValues = randoms(rows * rank, seed: 10)
        let x = randoms(n * cols, seed: 11), dy = randoms(n * rows, seed: 12)
        let adapter = LowRankAdapter(a: TensorData.owned(aValues, shape: [rank, cols]), b: TensorData.owned(bValues, shape: [rows, rank]), scale: scale, aName: "a", bName: "b")
        var bf16 = [UInt8]()
        for v in wValues { let h = FloatConversion.floatToBF16(v); bf16 += [UInt8(h & 0xFF), UInt8(h >> 8)] }
        let owner = OwnedBytes(count: bf16.count)
        bf16.withUnsafeBytes { owner.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let w = LinearWeight(data: TensorData(dtype: .bf16, shape: [rows, cols], bytes: UnsafeRawBufferPointer(start: owner.pointer, count: owner.count), owner: owner),
                             adapter: adapter)
        let wDecoded = w.base.toFloatArray()
        var dx = [Float](repeating: 0, count: n * cols), dA = [Float](repeating: 0, count: rank * cols), dB = [Float](repeating: 0, count: rows * rank)
        Linear.backward(w, x: x, dy: dy, n: n, dx: &dx, accumulateInput: false, dWeight: nil)
        adapter.backward(x: x, dy: dy, n: n, dx: &dx, dA: &dA, dB: &dB)
        // Naive: W' = W + s·B·A; dx = dy·W'; u = x·Aᵀ; dB = s·dyᵀ·u; dA = s·(dy·B)ᵀ·x.
        for t in 0..<n {
            for c in 0..<cols {
                var s = 0.0
                for r in 0..<rows {
                    var merged = Double(wDecoded[r * cols + c])
                    for k in 0..<rank { merged += Double(scale) * Double(bValues[r * rank + k]) * Double(aValues[k * cols + c]) }
                    s += Double(dy[t * rows + r]) * merged
                }
                XCTAssertEqual(Double(dx[t * cols + c]), s, accuracy: 1e-4)
            }
        }
        for r in 0..<rows {
            for k in 0..<rank {
                var s = 0.0
                for t in 0..<n {
                    var u = 0.0
                    for c in 0..<cols { u += Double(x[t * cols + c]) * Double(aValues[k * cols + c]) }
                    s += Double(scale) * Double(dy[t * rows + r]) * u
                }
                XCTAssertEqual(Double(dB[r * rank + k]), s, accuracy: 1e-4)
            }
        }
        for k in 0..<rank {
            for c in 0..<cols {
                var s = 0.0
                for t in 0..<n {
                    var du = 0.0
                    for r in 0..<rows { du += Double(dy[t * rows + r]) * Double(bValues[r * rank + k]) }
                    s += Double(scale) * du * Double(x[t * cols + c])
                }
                XCTAssertEqual(Double(dA[k * cols + c]), s, accuracy: 1e-4)
            }
        }
    }
}

extension TrainingKernelTests {
    /// The NT tile (C = A · Bᵀ, both row-major) against a double-precision sum, with k, m and n tails and accumulation.
    func testNTTileMatchesNaiveSums() throws {
        guard kujira_sgemm_available() != 0 else { throw XCTSkip("no AVX-512F on this CPU") }
        for (m, n, k) in [(4, 64, 16), (7, 130, 37), (1, 3, 5), (33, 200, 576)] {
            let a = randoms(m * k, seed: 21), b = randoms(n * k, seed: 22), initial = randoms(m * n, seed: 23)
            for accumulate in [false, true] {
                var c = initial
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    XCTAssertTrue(MatMul.gemmNT(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: k, c: cp.baseAddress!,
                                                ldc: n, accumulate: accumulate))
                } } }
                for i in 0..<m {
                    for j in 0..<n {
                        var s = accumulate ? Double(initial[i * n + j]) : 0
                        for l in 0..<k { s += Double(a[i * k + l]) * Double(b[j * k + l]) }
                        XCTAssertEqual(Double(c[i * n + j]), s, accuracy: 1e-4 * Double(k), "(\(m),\(n),\(k)) at \(i),\(j)")
                    }
                }
            }
        }
    }
}
