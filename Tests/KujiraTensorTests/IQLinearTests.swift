import XCTest
@testable import KujiraTensor

/// `Linear.forward` with the GGUF IQ formats (fused int8-activation dots) against the dequantizing reference.
final class IQLinearTests: XCTestCase {
    static let types: [DType] = [.iq4_nl, .iq4_xs, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m]

    /// Fused dots vs "dequantize weights, quantize-dequantize activations, exact (Double) dot": the integer run sums
    /// are exact, so only float roundings remain (`KernelTestData.assertMatchesDequantizedReference`).
    func testFusedDotsMatchDequantizedReference() {
        var rng = SplitMix64(seed: 11)
        for dtype in Self.types {
            for (rows, blocks) in [(21, 2), (3, 1)] {
                let cols = blocks * dtype.blockElements
                let w = KernelTestData.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
                for n in [1, 5] {
                    let x = KernelTestData.randomActivations(n * cols, rng: &rng)
                    KernelTestData.assertMatchesDequantizedReference(Linear.forward(w, x, n: n), w, x, n: n)
                }
            }
        }
    }

    /// Fast path vs `Linear.referenceForward` (dequantized rows, float dots): within the 8-bit activation rounding bound.
    func testFastPathWithinActivationRoundingOfReference() {
        var rng = SplitMix64(seed: 12)
        for dtype in Self.types {
            let rows = 13, cols = 2 * dtype.blockElements
            let w = KernelTestData.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
            for n in [1, 6] {
                let x = KernelTestData.randomActivations(n * cols, rng: &rng)
                KernelTestData.assertWithinActivationBound(Linear.forward(w, x, n: n), w, x, n: n)
            }
        }
    }

    /// Prefill (token quads through `dot4`, leftovers through `dot`) gives each token the 1-token result bit for bit,
    /// on 1 and 2 threads.
    func testPrefillMatchesSingleTokenDots() {
        var rng = SplitMix64(seed: 13)
        let pool = ThreadPool.shared
        let saved = pool.activeThreads
        defer { pool.setActiveThreads(saved) }
        for dtype in Self.types {
            let rows = 19, cols = (dtype.blockElements == 32 ? 5 : 2) * dtype.blockElements, n = 9
            let w = KernelTestData.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
            let x = KernelTestData.randomActivations(n * cols, rng: &rng)
            var single = [Float]()
            for t in 0..<n { single += Linear.forward(w, Array(x[(t * cols)..<((t + 1) * cols)]), n: 1) }
            for threads in [1, 2] {
                pool.setActiveThreads(threads)
                XCTAssertEqual(Linear.forward(w, x, n: n), single, "\(dtype.rawValue) threads \(threads)")
            }
        }
    }
}
