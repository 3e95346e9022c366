import XCTest
@testable import KujiraTensor

/// `Linear.forward` with the GGUF IQ formats (fused int8-activation dots) against the dequantizing reference.
final class IQLinearTests: XCTestCase {
    static let types: [DType] = [.iq4_nl, .iq4_xs, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m]

    /// Random blocks (every bit random; index fields address the whole grids) with a small finite f16 super-block
    /// scale; IQ1_M keeps it in the top nibbles of its four scale words.
    static func randomWeight(_ dtype: DType, rows: Int, cols: Int, rng: inout SplitMix64) -> LinearWeight {
        let count = dtype.byteCount(elements: rows * cols)!
        let storage = OwnedBytes(count: count)
        for i in 0..<count { storage.pointer.storeBytes(of: UInt8.random(in: 0...255, using: &rng), toByteOffset: i, as: UInt8.self) }
        for b in 0..<(count / dtype.blockBytes) {
            let block = storage.pointer + b * dtype.blockBytes
            let bits = Float16(Float.random(in: -0.05...0.05, using: &rng)).bitPattern
            if dtype == .iq1_m {
                for i in 0..<4 {
                    let word = block.load(fromByteOffset: 48 + 2 * i, as: UInt16.self)
                    block.storeBytes(of: word & 0x0FFF | ((bits >> UInt16(4 * i)) & 0xF) << 12, toByteOffset: 48 + 2 * i, as: UInt16.self)
                }
            } else {
                block.storeBytes(of: bits, toByteOffset: 0, as: UInt16.self)
            }
        }
        let data = TensorData(dtype: dtype, shape: [rows, cols], bytes: UnsafeRawBufferPointer(start: storage.pointer, count: count), owner: storage)
        return LinearWeight(data: data)
    }

    /// Fused dots vs "dequantize weights, quantize-dequantize activations, exact (Double) dot": the integer run sums
    /// are exact, so only float roundings remain (bound as in LinearKernelTests: (cols/16 + 8)·ε·Σ|w·x_q|).
    func testFusedDotsMatchDequantizedReference() {
        var rng = SplitMix64(seed: 11)
        for dtype in Self.types {
            for (rows, blocks) in [(21, 2), (3, 1)] {
                let cols = blocks * dtype.blockElements
                let w = Self.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
                let weights = w.toFloatArray()
                for n in [1, 5] {
                    let x = KernelTestData.randomActivations(n * cols, rng: &rng)
                    let fast = Linear.forward(w, x, n: n)
                    let activations = x.withUnsafeBufferPointer { Q8Activations($0, n: n, cols: cols) }
                    for t in 0..<n {
                        let xq = activations.dequantized(t)
                        for r in 0..<rows {
                            var exact = 0.0, magnitude = 0.0
                            for c in 0..<cols {
                                let term = Double(weights[r * cols + c]) * Double(xq[c])
                                exact += term
                                magnitude += abs(term)
                            }
                            let tolerance = Double(cols / 16 + 8) * Double(Float.ulpOfOne) * magnitude + 1e-30
                            XCTAssertLessThanOrEqual(abs(Double(fast[t * rows + r]) - exact), tolerance,
                                                     "\(dtype.rawValue) rows \(rows) cols \(cols) n \(n) token \(t) row \(r)")
                        }
                    }
                }
            }
        }
    }

    /// Fast path vs `Linear.referenceForward` (dequantized rows, float dots): within the 8-bit activation rounding bound.
    func testFastPathWithinActivationRoundingOfReference() {
        var rng = SplitMix64(seed: 12)
        for dtype in Self.types {
            let rows = 13, cols = 2 * dtype.blockElements
            let w = Self.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
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
            let w = Self.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
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
