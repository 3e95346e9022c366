import KujiraFormats
import KujiraTraining
import XCTest

final class OptimizerTests: XCTestCase {
    func testScheduleWarmsUpThenDecaysByCosine() {
        var s = OptimizerSettings()
        s.learningRate = 1; s.minLearningRate = 0.1; s.warmupSteps = 4; s.totalSteps = 14
        XCTAssertEqual(s.learningRate(at: 0), 0.25, accuracy: 1e-6)
        XCTAssertEqual(s.learningRate(at: 3), 1, accuracy: 1e-6)
        XCTAssertEqual(s.learningRate(at: 4), 1, accuracy: 1e-6)
        XCTAssertEqual(s.learningRate(at: 9), 0.55, accuracy: 1e-6)
        XCTAssertEqual(s.learningRate(at: 14), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s.learningRate(at: 100), 0.1, accuracy: 1e-6)
    }

    /// One AdamW step by hand: clipping scales g by clip/‖g‖, the first step moves each weight by lr·sign(g)
    /// (m̂/√v̂ = ±1), and decay multiplies matrices (not norms) by 1 − lr·λ.
    func testAdamWClipsDecaysAndUpdates() throws {
        let store = ParameterStore(layout: [("w", [2, 2], .matrix), ("n", [2], .norm), ("b", [2], .balanceBias)])
        try store.setValues("w", [1, 2, 3, 4]); try store.setValues("n", [1, 1]); try store.setValues("b", [0.5, 0.5])
        for i in 0..<store.count { store.grads[i] = [3, 0, -4, 0, 0, 1, 7, 7][i] }
        var s = OptimizerSettings()
        s.learningRate = 0.1; s.warmupSteps = 0; s.totalSteps = 10; s.weightDecay = 0.5; s.clipNorm = 1
        let adam = AdamW(settings: s, parameterCount: store.count)
        let (norm, lr) = adam.update(store)
        XCTAssertEqual(norm, (9 + 16 + 1 as Float).squareRoot(), accuracy: 1e-5)
        XCTAssertEqual(lr, 0.1, accuracy: 1e-7)
        let w = try store.array("w"), n = try store.array("n")
        XCTAssertEqual(w[0], 1 * 0.95 - 0.1, accuracy: 1e-5)
        XCTAssertEqual(w[1], 2 * 0.95, accuracy: 1e-5)
        XCTAssertEqual(w[2], 3 * 0.95 + 0.1, accuracy: 1e-5)
        XCTAssertEqual(n[1], 1 - 0.1, accuracy: 1e-5)
        XCTAssertEqual(n[0], 1, accuracy: 1e-7)
        XCTAssertEqual(try store.array("b"), [0.5, 0.5], "the balancing bias is never updated by gradients")
        XCTAssertEqual(Double(adam.m[0]), 0.1 * 3 / Double(norm), accuracy: 1e-5, "moments see the clipped gradient")
    }

    func testBalancingMovesBiasesAgainstLoad() throws {
        let store = ParameterStore(layout: [("a.e_score_correction_bias", [4], .balanceBias), ("c.e_score_correction_bias", [2], .balanceBias)])
        ExpertBalancing.update(store, loads: [[10, 2, 4, 4], [3, 3]], gamma: 0.01)
        let a = try store.array("a.e_score_correction_bias")
        XCTAssertEqual(a, [-0.01, 0.01, 0.01, 0.01])
        XCTAssertEqual(try store.array("c.e_score_correction_bias"), [0, 0])
        ExpertBalancing.update(store, loads: [[0, 9, 0, 0], [3, 3]], gamma: 0)
        XCTAssertEqual(try store.array("a.e_score_correction_bias"), a, "γ = 0 freezes the biases")
    }
}
