import XCTest
@testable import KujiraTensor

final class LinearKernelTests: XCTestCase {
    static let quantizedTypes: [DType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
    static let tokenCounts = [1, 2, 7, 33]

    /// Fused integer dots against "dequantize weights, quantize-dequantize activations, exact dot".
    ///
    /// The integer block sums are exact, so the only differences are float roundings: a handful per block
    /// (scale products) plus the float accumulation over blocks. A summation of m terms is within
    /// m·ε·Σ|terms| of the exact value, so cols/16 + 8 terms' worth of ε relative to Σ|w·xq| bounds it.
    func testQuantizedFusedDotsMatchDequantizedReference() throws {
        var rng = SplitMix64(seed: 1)
        for dtype in Self.quantizedTypes {
            for (rows, blocks) in [(37, 3), (5, 1)] {
                let cols = blocks * dtype.blockElements
                let w = KernelTestData.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
                for n in Self.tokenCounts {
                    let x = KernelTestData.randomActivations(n * cols, rng: &rng)
                    KernelTestData.assertMatchesDequantizedReference(Linear.forward(w, x, n: n), w, x, n: n)
                }
            }
        }
    }

    /// Against the plain float reference, the difference is the activation rounding: q = round(x·127/amax)
    /// is within 1/2 of x/d, and the stored scale is d rounded to half precision (relative error ≤ 2^-11,
    /// times |q| ≤ 127), so each dequantized value is within amax/254 + amax·2^-11 of x and
    /// |fast - reference| ≤ Σ|w_i|·max|x_block(i)|·(1/254 + 2^-11) (+ float error).
    func testQuantizedFastPathWithinActivationRoundingOfFloatReference() {
        var rng = SplitMix64(seed: 2)
        for dtype in Self.quantizedTypes {
            let rows = 19, cols = 2 * dtype.blockElements
            let w = KernelTestData.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
            for n in [1, 7] {
                let x = KernelTestData.randomActivations(n * cols, rng: &rng)
                let fast = Linear.forward(w, x, n: n)
                KernelTestData.assertWithinActivationBound(fast, w, x, n: n)
            }
        }
    }

    /// A token's output does not depend on how many tokens share the call (prefill == decode, bit for bit).
    func testResultsIndependentOfTokenCount() {
        var rng = SplitMix64(seed: 3)
        for dtype in Self.quantizedTypes + [.f32, .f16, .bf16, .f8e4m3] {
            let rows = 23, cols = dtype.isQuantized ? 2 * dtype.blockElements : 80
            let w = KernelTestData.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
            // 2, 3, 6, 7: the padded 4-token tail (batched decoding of 2–3 sequences); 33: 4-token dots + a 1-token tail.
            for n in [2, 3, 6, 7, 33] {
                let x = KernelTestData.randomActivations(n * cols, rng: &rng)
                let all = Linear.forward(w, x, n: n)
                for t in 0..<n {
                    let single = Linear.forward(w, Array(x[(t * cols)..<((t + 1) * cols)]), n: 1)
                    XCTAssertEqual(single, Array(all[(t * rows)..<((t + 1) * rows)]), "\(dtype.rawValue) n \(n) token \(t)")
                }
            }
        }
    }

    /// The prefill path (chunks of 16 rows × token quads through `dot4`, `dot` for the leftover tokens) gives
    /// every (row, token) bit for bit the 1-token result: token counts that are and are not multiples of 4,
    /// fewer and more rows than a chunk (and not a multiple of it), 1 and 2 threads.
    func testPrefillTilesMatchSingleTokenDots() {
        var rng = SplitMix64(seed: 5)
        let pool = ThreadPool.shared
        let saved = pool.activeThreads
        defer { pool.setActiveThreads(saved) }
        for dtype in Self.quantizedTypes {
            let blocks = dtype.blockElements == 32 ? 5 : 2
            for rows in [2, 3, 17, 40] {
                let cols = blocks * dtype.blockElements
                let w = KernelTestData.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
                let n = rows == 40 ? 13 : (rows == 17 ? 8 : 5)
                let x = KernelTestData.randomActivations(n * cols, rng: &rng)
                var single = [Float]()
                for t in 0..<n { single += Linear.forward(w, Array(x[(t * cols)..<((t + 1) * cols)]), n: 1) }
                for threads in [1, 2] {
                    pool.setActiveThreads(threads)
                    let all = Linear.forward(w, x, n: n)
                    for t in 0..<n {
                        XCTAssertEqual(Array(all[(t * rows)..<((t + 1) * rows)]), Array(single[(t * rows)..<((t + 1) * rows)]),
                                       "\(dtype.rawValue) rows \(rows) n \(n) token \(t) threads \(threads)")
                    }
                }
            }
        }
    }

    /// The per-thread activation buffer (`LinearScratch`) is reused across calls of other sizes: after a call that
    /// grows it and a smaller one, the first call's inputs give the same bits again; and the activations a call
    /// quantized equal a fresh `Q8Activations` of the same input.
    func testReusedActivationBufferGivesSameResults() {
        var rng = SplitMix64(seed: 6)
        let w = KernelTestData.randomWeight(.q4_K, rows: 9, cols: 512, rng: &rng)
        let big = KernelTestData.randomWeight(.q8_0, rows: 5, cols: 1024, rng: &rng)
        let x = KernelTestData.randomActivations(5 * 512, rng: &rng)
        let first = Linear.forward(w, x, n: 5)
        _ = Linear.forward(big, KernelTestData.randomActivations(40 * 1024, rng: &rng), n: 40)
        _ = Linear.forward(w, Array(x[0..<512]), n: 1)
        XCTAssertEqual(Linear.forward(w, x, n: 5), first)
        let reused = x.withUnsafeBufferPointer { LinearScratch.current.activations($0, n: 5, cols: 512) }
        let fresh = x.withUnsafeBufferPointer { Q8Activations($0, n: 5, cols: 512) }
        for t in 0..<5 { XCTAssertEqual(reused.dequantized(t), fresh.dequantized(t), "token \(t)") }
    }

    /// F32/F16/BF16/FP8 fast dots decode exactly, so they differ from the reference only by summation order:
    /// within cols·ε·Σ|w·x| (the classic bound for summing cols terms).
    func testFloatFormatsMatchReference() {
        var rng = SplitMix64(seed: 4)
        for dtype: DType in [.f32, .f16, .bf16, .f8e4m3] {
            for (rows, cols) in [(37, 37), (9, 53), (16, 517), (3, 16)] {
                var w = KernelTestData.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
                if dtype == .f8e4m3 {
                    let grid = [(rows + 31) / 32, (cols + 31) / 32]
                    let scales = (0..<(grid[0] * grid[1])).map { _ in Float.random(in: 0.001...0.01, using: &rng) }
                    w = LinearWeight(data: w.data, blockScales: BlockScales(values: scales, gridCols: grid[1], blockRows: 32, blockCols: 32))
                }
                let weights = w.toFloatArray()
                for n in Self.tokenCounts {
                    let x = KernelTestData.randomActivations(n * cols, rng: &rng)
                    let fast = Linear.forward(w, x, n: n)
                    var reference = [Float](repeating: 0, count: n * rows)
                    x.withUnsafeBufferPointer { xb in reference.withUnsafeMutableBufferPointer { Linear.referenceForward(w, xb, n: n, into: $0) } }
                    for t in 0..<n {
                        for r in 0..<rows {
                            let magnitude = (0..<cols).reduce(0.0) { $0 + Double(abs(weights[r * cols + $1] * x[t * cols + $1])) }
                            let tolerance = 2 * Double(cols) * Double(Float.ulpOfOne) * magnitude
                            XCTAssertLessThanOrEqual(abs(Double(fast[t * rows + r]) - Double(reference[t * rows + r])), tolerance,
                                                     "\(dtype.rawValue) \(rows)x\(cols) n \(n) token \(t) row \(r)")
                        }
                    }
                }
            }
        }
    }

    /// NaN or infinite activations (a diverged model) give non-finite outputs, never a trap.
    /// Block scales are stored rounded to half precision (as llama.cpp's q8_0/q8_1) inside the normal half
    /// range, and kept as Float outside it (no inf scale for huge activations, no zero scale for tiny ones).
    func testActivationScalesAreHalfPrecisionInsideTheNormalRange() {
        var rng = SplitMix64(seed: 6)
        let magnitudes: [Float] = [1.7, 1e7, 1e-6]
        var x = [Float]()
        for m in magnitudes { x += KernelTestData.randomActivations(32, rng: &rng).map { $0 * m } }
        let activations = x.withUnsafeBufferPointer { Q8Activations($0, n: 1, cols: 96) }
        let row = activations.row(0)
        for (b, m) in magnitudes.enumerated() {
            let d = x[(32 * b)..<(32 * b + 32)].map { abs($0) }.max()! / 127
            let expected = m == 1.7 ? Float(Float16(d)) : d
            XCTAssertEqual(row.scales[b], expected, "block \(b) magnitude \(m)")
            XCTAssertTrue(row.scales[b].isFinite && row.scales[b] > 0, "block \(b)")
        }
        XCTAssertNotEqual(Float(Float16(x[0..<32].map { abs($0) }.max()! / 127)), x[0..<32].map { abs($0) }.max()! / 127,
                          "test data should exercise the half rounding")
    }

    func testNonFiniteActivationsDoNotTrap() {
        var rng = SplitMix64(seed: 5)
        for dtype in Self.quantizedTypes + [.f16, .bf16, .f8e4m3] {
            let cols = dtype.isQuantized ? dtype.blockElements : 32
            let w = KernelTestData.randomWeight(dtype, rows: 3, cols: cols, rng: &rng)
            var x = KernelTestData.randomActivations(2 * cols, rng: &rng)
            x[1] = .nan
            x[cols + 2] = .infinity
            let out = Linear.forward(w, x, n: 2)
            XCTAssertEqual(out.count, 6)
            XCTAssertFalse(out[0].isFinite, dtype.rawValue)
            XCTAssertFalse(out[3].isFinite, dtype.rawValue)
        }
    }

    /// The vector half and e4m3 decoders agree with the scalar ones on every bit pattern.
    func testVectorDecodersAreExactForEveryBitPattern() {
        for pair in stride(from: 0, to: 1 << 16, by: 16) {
            var lanes = SIMD8<UInt32>()
            for k in 0..<8 { lanes[k] = UInt32(pair + 2 * k) | UInt32(pair + 2 * k + 1) << 16 }
            let even = FloatDots.halfToFloat(lanes & 0xFFFF), odd = FloatDots.halfToFloat(lanes &>> 16)
            for k in 0..<8 {
                for (value, bits) in [(even[k], pair + 2 * k), (odd[k], pair + 2 * k + 1)] {
                    let expected = FloatConversion.f16ToFloat(UInt16(bits))
                    XCTAssertTrue(value.bitPattern == expected.bitPattern || (value.isNaN && expected.isNaN), "half 0x\(String(bits, radix: 16))")
                }
            }
        }
        // e4m3: a 16-byte row of one repeated code dotted with one-hot x gives that code's value (NaN codes: NaN).
        for byte in 0..<256 {
            let row = [UInt8](repeating: UInt8(byte), count: 16)
            let expected = FloatConversion.decodeF8E4M3(UInt8(byte))
            for position in [0, 5, 10, 15] {
                var x = [Float](repeating: 0, count: 16)
                x[position] = 1
                let split = x.withUnsafeBufferPointer { PhaseSplitActivations($0, n: 1, cols: 16, phases: 4) }
                let value = row.withUnsafeBytes { FloatDots.e4m3($0.baseAddress!, split.values, start: 0, end: 16) }
                XCTAssertTrue(value == expected || (value.isNaN && expected.isNaN), "e4m3 0x\(String(byte, radix: 16)) at \(position): \(value) vs \(expected)")
            }
        }
    }
}

final class LinearEdgeCaseTests: XCTestCase {
    /// Zero columns give empty sums (zeros) in every format; zero rows or tokens write nothing.
    func testEmptyShapes() {
        var rng = SplitMix64(seed: 6)
        for dtype in LinearKernelTests.quantizedTypes + [.f32, .f16, .bf16, .f8e4m3] {
            let empty = KernelTestData.randomWeight(dtype, rows: 3, cols: 0, rng: &rng)
            XCTAssertEqual(Linear.forward(empty, [], n: 2), [Float](repeating: 0, count: 6), dtype.rawValue)
            XCTAssertEqual(empty.data.toFloatArray(), [], dtype.rawValue)
            let noRows = KernelTestData.randomWeight(dtype, rows: 0, cols: dtype.blockElements * 2, rng: &rng)
            XCTAssertEqual(Linear.forward(noRows, [Float](repeating: 1, count: dtype.blockElements * 2), n: 1), [])
        }
    }
}
