import Foundation
import XCTest
@testable import KujiraTensor

/// The pieces of `--numerics llama.cpp` (`GGMLMath`, `GGMLLinear`): each against a plain statement of what ggml
/// computes (bit for bit) and against the plain float function it approximates. The end-to-end check against
/// llama.cpp's own output is `SmolLM2Tests.testLlamaCppNumericsReproduceTheGoldenExactly`.
final class GGMLNumericsTests: XCTestCase {
    /// ggml's q8_1 quantization and Q4_1/Q8_0 dots written out scalar, straight from its C source: per block the
    /// int8 codes, the eight 4-product integer lane sums, one FMA per lane, `hsum_float_8`.
    static func plainForward(_ w: LinearWeight, _ x: [Float], n: Int) -> [Float] {
        let rows = w.rows, cols = w.cols, blocks = cols / 32, isQ4_1 = w.data.dtype == .q4_1
        var out = [Float](repeating: 0, count: n * rows)
        for t in 0..<n {
            var codes = [Int32](repeating: 0, count: cols), d = [Float](repeating: 0, count: blocks), s = d
            for b in 0..<blocks {
                let v = x[(t * cols + 32 * b)..<(t * cols + 32 * b + 32)]
                let amax = v.map { abs($0) }.max()!
                let inverse: Float = amax != 0 ? 127 / amax : 0
                var total: Int32 = 0
                for (i, value) in v.enumerated() {
                    codes[32 * b + i] = Int32((value * inverse).rounded(.toNearestOrEven))
                    total += codes[32 * b + i]
                }
                d[b] = Float(Float16(amax / 127))
                s[b] = Float(Float16(amax / 127 * Float(total)))
            }
            for r in 0..<rows {
                let row = w.data.bytes.baseAddress! + r * w.rowBytes
                var acc = [Float](repeating: 0, count: 8), summs: Float = 0
                for b in 0..<blocks {
                    let block = row + (isQ4_1 ? 20 : 34) * b
                    func half(_ offset: Int) -> Float { Float(Float16(bitPattern: block.loadUnaligned(fromByteOffset: offset, as: UInt16.self))) }
                    func weight(_ i: Int) -> Int32 {
                        if !isQ4_1 { return Int32(block.load(fromByteOffset: 2 + i, as: Int8.self)) }
                        let byte = block.load(fromByteOffset: 4 + i % 16, as: UInt8.self)
                        return Int32(i < 16 ? byte & 0x0F : byte >> 4)
                    }
                    if isQ4_1 { summs = summs.addingProduct(half(2), s[b]) }
                    let scale = half(0) * d[b]
                    for j in 0..<8 {
                        let lane = (0..<4).reduce(Int32(0)) { $0 + weight(4 * j + $1) * codes[32 * b + 4 * j + $1] }
                        acc[j] = acc[j].addingProduct(scale, Float(lane))
                    }
                }
                let quad = (0..<4).map { acc[$0] + acc[$0 + 4] }
                out[t * rows + r] = ((quad[0] + quad[2]) + (quad[1] + quad[3])) + summs
            }
        }
        return out
    }

    func testLinearEqualsThePlainStatementOfGGMLsDots() {
        var rng = SplitMix64(seed: 41)
        for dtype in [DType.q4_1, .q8_0] {
            for (rows, cols, n) in [(7, 64, 1), (33, 576, 1), (5, 1536, 3)] {
                let w = KernelTestData.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
                let x = KernelTestData.randomActivations(n * cols, rng: &rng)
                var fast = [Float](repeating: 0, count: n * rows)
                x.withUnsafeBufferPointer { xb in fast.withUnsafeMutableBufferPointer { GGMLLinear.forward(w, xb, n: n, into: $0) } }
                let plain = Self.plainForward(w, x, n: n)
                XCTAssertEqual(fast.map(\.bitPattern), plain.map(\.bitPattern), "\(dtype.rawValue) \(rows)x\(cols) n \(n)")
                // And it is the product it claims to be, within the rounding of 8-bit activations.
                KernelTestData.assertWithinActivationBound(fast, w, x, n: n)
            }
        }
    }

    func testExpIsCloseToTheTrueExpAndExactAtTheEdges() {
        var rng = SplitMix64(seed: 7)
        var worst = 0.0
        for _ in 0..<20_000 {
            let x = Float.random(in: -103...88, using: &rng)
            let ours = Double(GGMLMath.expf(x)), truth = Foundation.exp(Double(x))
            // Relative error in units of the result's float ulp (subnormals: absolute, in units of the smallest ulp).
            let ulp = Double(max(Float(truth).ulp, Float.leastNonzeroMagnitude))
            worst = max(worst, abs(ours - truth) / ulp)
        }
        // ggml's comment on ggml_v_expf (adapted from ARM's optimized routines): "the maximum error is 1.45358 plus 0.5
        // ulps"; measured here in ulps of the true value's float, so 2.5 holds it with room for the binade edges.
        XCTAssertLessThanOrEqual(worst, 2.5, "ggml_v_expf's documented error bound")
        XCTAssertGreaterThan(worst, 0.5, "not libm's correctly rounded expf: the emulation must differ from it")
        XCTAssertEqual(GGMLMath.expf(0), 1)
        XCTAssertEqual(GGMLMath.expf(-Float.infinity), 0)
        XCTAssertEqual(GGMLMath.expf(-200), 0)
        XCTAssertEqual(GGMLMath.expf(100), .infinity)
        XCTAssertTrue(GGMLMath.expf(.nan).isNaN)
        XCTAssertEqual(GGMLMath.silu(0), 0)
        XCTAssertEqual(GGMLMath.silu(-100), -0.0)
    }

    func testSoftmaxAndNormAgreeWithTheFloatFunctions() {
        var rng = SplitMix64(seed: 3)
        for count in [1, 5, 16, 37, 130] {
            var row = (0..<count).map { _ in Float.random(in: -8...8, using: &rng) }
            let m = row.max()!, exps = row.map { Foundation.exp(Double($0 - m)) }, total = exps.reduce(0, +)
            row.withUnsafeMutableBufferPointer { GGMLMath.softmax($0) }
            for i in 0..<count { XCTAssertEqual(Double(row[i]), exps[i] / total, accuracy: 1e-6, "softmax \(count)") }
        }
        let d = 96, n = 3
        let x = (0..<(n * d)).map { _ in Float.random(in: -3...3, using: &rng) }, weight = (0..<d).map { _ in Float.random(in: 0.5...1.5, using: &rng) }
        var ours = [Float](repeating: 0, count: n * d), plain = ours
        x.withUnsafeBufferPointer { xb in
            weight.withUnsafeBufferPointer { wb in
                ours.withUnsafeMutableBufferPointer { GGMLMath.rmsNorm(xb, weight: wb, eps: 1e-5, n: n, into: $0) }
                plain.withUnsafeMutableBufferPointer { Elementwise.rmsNorm(xb, weight: wb, eps: 1e-5, n: n, into: $0) }
            }
        }
        for i in 0..<(n * d) { XCTAssertEqual(ours[i], plain[i], accuracy: 2e-6 * max(1, abs(plain[i]))) }
    }

    /// Both of llama.cpp's attention orders (one-token batches: four accumulators; larger: tinyBLAS) are softmax
    /// attention over f16 keys and values within half-precision rounding, and they differ only in the last bits.
    func testAttentionHeadIsSoftmaxAttentionWithinHalfRounding() {
        var rng = SplitMix64(seed: 11)
        let headDim = 64, rowWidth = 2 * headDim, visible = 150
        let rows = (0..<(visible * rowWidth)).map { _ in Float16(Float.random(in: -1...1, using: &rng)) }
        let query = (0..<headDim).map { _ in Float.random(in: -1...1, using: &rng) }
        let scale = 1 / Float(headDim).squareRoot()
        var scores = [Float](repeating: 0, count: visible), scratch = [Float](repeating: 0, count: 65 * headDim)
        var single = [Float](repeating: 0, count: headDim), batched = single
        rows.withUnsafeBufferPointer { r in
            for (singleToken, target) in [(true, 0), (false, 1)] {
                var out = [Float](repeating: 0, count: headDim)
                GGMLMath.attendHead(query: query, keys: r.baseAddress!, values: r.baseAddress! + headDim, rowWidth: rowWidth, visible: visible,
                                    headDim: headDim, scale: scale, singleToken: singleToken, scores: &scores, scratch: &scratch, out: &out)
                if target == 0 { single = out } else { batched = out }
            }
        }
        var logits = (0..<visible).map { i in (0..<headDim).reduce(0.0) { $0 + Double(query[$1]) * Double(rows[i * rowWidth + $1]) } * Double(scale) }
        let m = logits.max()!
        logits = logits.map { Foundation.exp($0 - m) }
        let total = logits.reduce(0, +)
        for d in 0..<headDim {
            let truth = (0..<visible).reduce(0.0) { $0 + logits[$1] / total * Double(rows[$1 * rowWidth + headDim + d]) }
            XCTAssertEqual(Double(single[d]), truth, accuracy: 2e-3, "one-token order, value \(d)")
            XCTAssertEqual(Double(batched[d]), truth, accuracy: 2e-3, "batched order, value \(d)")
        }
        XCTAssertNotEqual(single.map(\.bitPattern), batched.map(\.bitPattern), "the two orders round differently over 150 tokens")
    }
}
