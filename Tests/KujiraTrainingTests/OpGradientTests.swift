import KujiraFormats
import KujiraModels
import KujiraTraining
import KujiraTensor
import XCTest

/// Each op's backward against finite differences of its forward (small sizes).
final class OpGradientTests: XCTestCase {
    func testMatMulMatchesNaiveProductWithStridesTailsAndAccumulation() {
        for (m, n, k) in [(5, 37, 9), (8, 64, 3), (1, 16, 1), (13, 70, 33)] {
            let a = GradientCheck.randoms(m * k, seed: 1), b = GradientCheck.randoms(k * n, seed: 2)
            var c = GradientCheck.randoms(m * n, seed: 3)
            let initial = c
            // A read transposed: A(i, l) = a[l * m + i].
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                MatMul.gemm(m: m, n: n, k: k, a: ap.baseAddress!, aRowStride: 1, aColStride: m, b: bp.baseAddress!, ldb: n,
                            c: cp.baseAddress!, ldc: n, accumulate: true)
            } } }
            for i in 0..<m {
                for j in 0..<n {
                    var s = Double(initial[i * n + j])
                    for l in 0..<k { s += Double(a[l * m + i]) * Double(b[l * n + j]) }
                    XCTAssertEqual(Double(c[i * n + j]), s, accuracy: 1e-4, "(\(m),\(n),\(k)) at \(i),\(j)")
                }
            }
        }
    }

    /// `Linear.trainingForward` and `Linear.backward` (dx and dW) on an F32 weight, the blocks' linear layer in training.
    func testLinearBackward() throws {
        let rows = 9, inF = 5, outF = 7
        let x = GradientCheck.randoms(rows * inF, seed: 4), w = GradientCheck.randoms(outF * inF, seed: 5)
        let r = GradientCheck.randoms(rows * outF, seed: 6)
        func weight(_ w: [Float]) -> LinearWeight { LinearWeight(data: TensorData.owned(w, shape: [outF, inF])) }
        func forward(_ x: [Float], _ w: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: rows * outF)
            Linear.trainingForward(weight(w), x: x, n: rows, into: &y)
            return y
        }
        var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: w.count)
        Linear.backward(weight(w), x: x, dy: r, n: rows, dx: &dx, accumulateInput: true, dWeight: &dw)
        try GradientCheck.assertMatches(dx, x: x, "linear dx") { GradientCheck.project(forward($0, w), r) }
        try GradientCheck.assertMatches(dw, x: w, "linear dW") { GradientCheck.project(forward(x, $0), r) }
    }

    func testRMSNormBackward() throws {
        let rows = 4, d = 12
        let x = GradientCheck.randoms(rows * d, seed: 7), w = GradientCheck.randoms(d, seed: 8).map { $0 + 1.5 }
        let r = GradientCheck.randoms(rows * d, seed: 9)
        func forward(_ x: [Float], _ w: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: rows * d), rstd = [Float](repeating: 0, count: rows)
            NormOps.rmsNormForward(x: x, weight: w, rows: rows, d: d, eps: 1e-6, y: &y, rstd: &rstd)
            return y
        }
        var y = [Float](repeating: 0, count: rows * d), rstd = [Float](repeating: 0, count: rows)
        NormOps.rmsNormForward(x: x, weight: w, rows: rows, d: d, eps: 1e-6, y: &y, rstd: &rstd)
        var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: d)
        NormOps.rmsNormBackward(x: x, weight: w, rstd: rstd, dy: r, rows: rows, d: d, dx: &dx, dWeight: &dw)
        try GradientCheck.assertMatches(dx, x: x, epsilon: 1e-3, "rmsnorm dx") { GradientCheck.project(forward($0, w), r) }
        try GradientCheck.assertMatches(dw, x: w, epsilon: 1e-3, "rmsnorm dw") { GradientCheck.project(forward(x, $0), r) }
    }

    func testSwiGLUBackward() throws {
        let rows = 3, width = 8
        let gu = GradientCheck.randoms(rows * 2 * width, seed: 10, scale: 3), r = GradientCheck.randoms(rows * width, seed: 11)
        func forward(_ gu: [Float]) -> [Float] {
            var h = [Float](repeating: 0, count: rows * width)
            gu.withUnsafeBufferPointer { ActivationOps.swigluForward(gate: $0.baseAddress!, up: $0.baseAddress! + width, stride: 2 * width, rows: rows, width: width, h: &h) }
            return h
        }
        var dgu = [Float](repeating: 0, count: gu.count)
        gu.withUnsafeBufferPointer { g in dgu.withUnsafeMutableBufferPointer { d in
            ActivationOps.swigluBackward(gate: g.baseAddress!, up: g.baseAddress! + width, stride: 2 * width, rows: rows, width: width,
                                         dh: r, dGate: d.baseAddress!, dUp: d.baseAddress! + width)
        } }
        try GradientCheck.assertMatches(dgu, x: gu, epsilon: 1e-3, "swiglu") { GradientCheck.project(forward($0), r) }
    }

    func testCrossEntropyGradientAndIgnoredRows() throws {
        let vocab = 11, targets = [3, -1, 0, 10]
        let logits = GradientCheck.randoms(targets.count * vocab, seed: 12, scale: 4)
        var grad = logits
        let loss = grad.withUnsafeMutableBufferPointer { CrossEntropy.forwardBackward(logits: $0.baseAddress!, targets: targets, vocab: vocab, scale: 1) }
        XCTAssertEqual(loss, CrossEntropy.loss(logits: logits, targets: targets, vocab: vocab), accuracy: 1e-5)
        XCTAssertEqual(grad[vocab..<(2 * vocab)].map { abs($0) }.max(), 0)
        try GradientCheck.assertMatches(grad, x: logits, epsilon: 1e-3, "cross-entropy") {
            CrossEntropy.loss(logits: $0, targets: targets, vocab: vocab)
        }
    }

    func testYaRNRotationBackwardIsTheScaledInverse() throws {
        var config = RopeConfig.plain(theta: 10000)
        config.type = "yarn"; config.factor = 4; config.originalMaxPositionEmbeddings = 8; config.mscale = 1; config.mscaleAllDim = 0.707
        let rope = RotaryEmbedding(config: config, dim: 8, maxPositionEmbeddings: 64, layout: .interleaved)
        XCTAssertNotEqual(rope.attentionScaling, 1)
        let tables = RotaryTables(rope: rope, offset: 3, count: 20)
        let rows = 20, width = 2 * 8
        let x = GradientCheck.randoms(rows * width, seed: 13), r = GradientCheck.randoms(rows * width, seed: 14)
        func forward(_ x: [Float]) -> [Float] {
            var y = x
            tables.apply(&y, rows: rows, rowStride: width, count: 2, vectorStride: 8, inverse: false)
            return y
        }
        var dx = r
        tables.apply(&dx, rows: rows, rowStride: width, count: 2, vectorStride: 8, inverse: true)
        try GradientCheck.assertMatches(dx, x: x, "rope") { GradientCheck.project(forward($0), r) }
    }

    func testCausalAttentionBackward() throws { try checkAttention(length: 5, sampled: nil) }

    /// Longer than one 32-row block: the blocked causal products against a naive forward and sampled finite differences.
    func testCausalAttentionAcrossBlocks() throws { try checkAttention(length: 70, sampled: 40) }

    func checkAttention(length: Int, sampled: Int?) throws {
        let batch = 2, heads = 2, dq = 6, dv = 4, scale: Float = 0.7
        let n = batch * length
        let q = GradientCheck.randoms(n * heads * dq, seed: 15), k = GradientCheck.randoms(n * heads * dq, seed: 16)
        let v = GradientCheck.randoms(n * heads * dv, seed: 17), r = GradientCheck.randoms(n * heads * dv, seed: 18)
        var probabilities = [Float](repeating: 0, count: batch * heads * length * length)
        func forward(_ q: [Float], _ k: [Float], _ v: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: n * heads * dv)
            AttentionOps.forward(q: q, k: k, v: v, batch: batch, length: length, heads: heads, qkDim: dq, valueDim: dv, scale: scale,
                                 out: &out, probabilities: &probabilities)
            return out
        }
        let out = forward(q, k, v)
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<length {
                    var scores = (0...i).map { j -> Double in
                        (0..<dq).reduce(0.0) { $0 + Double(q[((b * length + i) * heads + h) * dq + $1]) * Double(k[((b * length + j) * heads + h) * dq + $1]) } * Double(scale)
                    }
                    let m = scores.max()!
                    scores = scores.map { exp($0 - m) }
                    let total = scores.reduce(0, +)
                    for c in 0..<dv {
                        let expected = (0...i).reduce(0.0) { $0 + scores[$1] / total * Double(v[((b * length + $1) * heads + h) * dv + c]) }
                        XCTAssertEqual(Double(out[((b * length + i) * heads + h) * dv + c]), expected, accuracy: 1e-5)
                    }
                }
            }
        }
        // Causality: the first token of each sequence attends only to itself, so its output is its value.
        for h in 0..<heads { for j in 0..<dv { XCTAssertEqual(out[h * dv + j], v[h * dv + j], accuracy: 1e-6) } }
        var dq_ = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dvOut = [Float](repeating: 0, count: v.count)
        AttentionOps.backward(q: q, k: k, v: v, probabilities: probabilities, dOut: r, batch: batch, length: length, heads: heads,
                              qkDim: dq, valueDim: dv, scale: scale, dq: &dq_, dk: &dk, dv: &dvOut)
        func pick(_ count: Int) -> [Int]? { sampled.map { s in (0..<s).map { ($0 * 7919 + 13) % count } } }
        try GradientCheck.assertMatches(dq_, x: q, indices: pick(q.count), "attention dq") { GradientCheck.project(forward($0, k, v), r) }
        try GradientCheck.assertMatches(dk, x: k, indices: pick(k.count), "attention dk") { GradientCheck.project(forward(q, $0, v), r) }
        try GradientCheck.assertMatches(dvOut, x: v, indices: pick(v.count), "attention dv") { GradientCheck.project(forward(q, k, $0), r) }
    }
}
