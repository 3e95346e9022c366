import XCTest
@testable import KujiraTensor

/// `Linear.forward(_:into:_:into:_:into:sharing:)` (Q/K/V and gate/up in one pass over the pool): every output equals the
/// separate `Linear.forward` call bit for bit — for each format that takes the shared path, 2 and 3 weights of different
/// row counts, token counts around the quads, 1 and 2 threads — and mixed formats fall back to the separate calls
/// (except the K-quants, which share Q8_K activations).
final class SharedInputRowsTests: XCTestCase {
    func testSharedPassEqualsSeparateCalls() throws {
        var rng = SplitMix64(seed: 77)
        let pool = ThreadPool.shared
        let saved = pool.activeThreads
        defer { pool.setActiveThreads(saved) }
        let formats: [DType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .iq4_nl, .iq4_xs, .q6_K, .bf16]
        for dtype in formats {
            let cols = dtype == .q8_0 ? 512 : 2 * (dtype.blockElements == 256 ? 256 : 64)   // Q8_0: 512 for the Q4_K third weight
            let a = KernelTestData.randomWeight(dtype, rows: 300, cols: cols, rng: &rng)
            let b = KernelTestData.randomWeight(dtype, rows: 70, cols: cols, rng: &rng)
            // A Q4_K group with a Q6_K third weight shares the pass (both read Q8_K activations); Q8_0 with a Q4_K third falls back.
            let c = KernelTestData.randomWeight(dtype == .q4_K ? .q6_K : dtype == .q8_0 ? .q4_K : dtype, rows: 150, cols: cols, rng: &rng)
            XCTAssertEqual(CBlockDots.sharesActivations(a, b, nil), dtype != .bf16, "\(dtype)")
            XCTAssertEqual(CBlockDots.sharesActivations(a, b, c), dtype != .bf16 && dtype != .q8_0, "\(dtype) with \(c.data.dtype)")
            for n in [1, 2, 3, 5] {
                let x = KernelTestData.randomActivations(n * cols, rng: &rng)
                for threads in [1, 2] {
                    pool.setActiveThreads(threads)
                    let separate = [a, b, c].map { Linear.forward($0, x, n: n) }
                    var outA = [Float](repeating: .nan, count: n * a.rows), outB = [Float](repeating: .nan, count: n * b.rows)
                    var outC = [Float](repeating: .nan, count: n * c.rows)
                    x.withUnsafeBufferPointer { xb in
                        outA.withUnsafeMutableBufferPointer { pa in outB.withUnsafeMutableBufferPointer { pb in outC.withUnsafeMutableBufferPointer { pc in
                            Linear.forward(a, into: pa, b, into: pb, c, into: pc, sharing: xb, n: n, numerics: .kujira)
                        } } }
                    }
                    XCTAssertEqual(outA.map(\.bitPattern), separate[0].map(\.bitPattern), "\(dtype) n \(n) threads \(threads)")
                    XCTAssertEqual(outB.map(\.bitPattern), separate[1].map(\.bitPattern), "\(dtype) n \(n) threads \(threads)")
                    XCTAssertEqual(outC.map(\.bitPattern), separate[2].map(\.bitPattern), "\(dtype) n \(n) threads \(threads) (\(c.data.dtype))")
                    outA = outA.map { _ in .nan }
                    outB = outB.map { _ in .nan }
                    x.withUnsafeBufferPointer { xb in
                        outA.withUnsafeMutableBufferPointer { pa in outB.withUnsafeMutableBufferPointer { pb in
                            Linear.forward(a, into: pa, b, into: pb, sharing: xb, n: n, numerics: .kujira)
                        } }
                    }
                    XCTAssertEqual(outA.map(\.bitPattern), separate[0].map(\.bitPattern), "\(dtype) two weights")
                    XCTAssertEqual(outB.map(\.bitPattern), separate[1].map(\.bitPattern), "\(dtype) two weights")
                }
            }
        }
    }
}
