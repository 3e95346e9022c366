import Foundation
import KujiraFormats
import KujiraModels
import KujiraTraining
import XCTest

final class GRPOTests: XCTestCase {
    /// Tokens with advantages of both signs and ratios inside and outside the clip range.
    func makeTokens(_ count: Int, seed: UInt64) -> [GRPOToken] {
        var rng = TrainingRandom(seed: seed)
        return (0..<count).map { _ in
            GRPOToken(advantage: rng.uniform() * 2 - 1, oldLogProbability: -2 + rng.uniform() * 1.5,
                      referenceLogProbability: -2 + rng.uniform() * 1.5, weight: 0.1 + rng.uniform())
        }
    }

    func testObjectiveGradientMatchesFiniteDifferences() {
        let infos = makeTokens(40, seed: 3)
        var rng = TrainingRandom(seed: 4)
        let l = (0..<40).map { _ in -2 + rng.uniform() * 1.5 }
        let (stats, gradient) = GRPOObjective.evaluate(logProbabilities: l, tokens: infos, clip: 0.2, beta: 0.1)
        XCTAssertGreaterThan(stats.clipFraction, 0, "some ratios must be clipped for this test to cover both branches")
        XCTAssertLessThan(stats.clipFraction, 1)
        XCTAssertGreaterThan(stats.kl, 0)
        for i in 0..<40 {
            var plus = l, minus = l
            plus[i] += 1e-6; minus[i] -= 1e-6
            let numeric = (GRPOObjective.evaluate(logProbabilities: plus, tokens: infos, clip: 0.2, beta: 0.1).statistics.loss
                - GRPOObjective.evaluate(logProbabilities: minus, tokens: infos, clip: 0.2, beta: 0.1).statistics.loss) / 2e-6
            XCTAssertEqual(gradient[i], numeric, accuracy: 1e-6, "token \(i)")
        }
    }

    func testAdvantagesAreGroupNormalised() {
        let grpo = GRPOObjective.advantages(rewards: [1.2, 0, 0.2, 1.2], lossType: .grpo)
        XCTAssertEqual(grpo.reduce(0, +), 0, accuracy: 1e-12)
        XCTAssertEqual((grpo.map { $0 * $0 }.reduce(0, +) / 4).squareRoot(), 1, accuracy: 1e-3)
        for (value, expected) in zip(GRPOObjective.advantages(rewards: [1.2, 0, 0.2, 1.2], lossType: .drGRPO), [0.55, -0.65, -0.45, 0.55]) {
            XCTAssertEqual(value, expected, accuracy: 1e-12)
        }
        XCTAssertEqual(GRPOObjective.advantages(rewards: [1, 1, 1], lossType: .grpo), [0, 0, 0])
    }

    /// The GRPO loss through the whole model (via `LossSettings.tokenObjective`) against finite differences.
    func testModelGradientOfTheGRPOLoss() throws {
        let model = try DecoderTrainingModel(config: ModelGradientTests.tinyConfig(qLoraRank: 8, mtp: false))
        var rng = TrainingRandom(seed: 11)
        model.parameters.initialize(std: 0.3, rng: &rng)
        try model.refresh()
        let batch = 2, length = 7, shape = TrainingShape(batch: batch, length: length)
        let tokens = (0..<(batch * length)).map { _ in rng.below(19) }
        // Completion = the last 4 positions of each sequence.
        var targets = [Int](repeating: -1, count: batch * length)
        for b in 0..<batch { for t in 2..<(length - 1) { targets[b * length + t] = tokens[b * length + t + 1] } }
        // π_old and π_ref near the current policy, as in a GRPO step: ratios from 0.67 to 1.5 (inside and outside the
        // clip range 1 ± 0.2), advantages of both signs. (Far-off log-probabilities make exp(ref − l) amplify float32
        // rounding beyond what central differences resolve.)
        final class Captured: @unchecked Sendable { var values: [Double] = [] }
        let current = Captured()
        try model.forwardBackward(tokens: tokens, targets: targets, shape: shape, settings: LossSettings(tokenObjective: { l in
            current.values = l
            return (0, l.map { _ in 0 })
        }))
        var tokenRandom = TrainingRandom(seed: 13)
        let infos = current.values.map { l in
            GRPOToken(advantage: tokenRandom.uniform() * 2 - 1, oldLogProbability: l + (tokenRandom.uniform() * 0.8 - 0.4),
                      referenceLogProbability: l + (tokenRandom.uniform() - 0.5), weight: 0.1 + tokenRandom.uniform())
        }
        let objective: TokenObjective = { l in
            let (stats, gradient) = GRPOObjective.evaluate(logProbabilities: l, tokens: infos, clip: 0.2, beta: 0.3)
            return (stats.loss, gradient)
        }
        let settings = LossSettings(tokenObjective: objective)
        let store = model.parameters
        store.zeroGradients()
        try model.forwardBackward(tokens: tokens, targets: targets, shape: shape, settings: settings)
        let gradients = try Dictionary(uniqueKeysWithValues: store.entries.map { ($0.name, try store.gradient($0.name)) })
        for entry in store.entries where entry.trainable {
            let analytic = try XCTUnwrap(gradients[entry.name], entry.name)
            let original = try store.array(entry.name)
            let indices = GradientCheck.entries(of: analytic)
            try GradientCheck.assertMatches(analytic, x: original, epsilon: 2e-3, indices: indices, entry.name) { values in
                try store.setValues(entry.name, values)
                try model.refresh()
                defer { try? store.setValues(entry.name, original); try? model.refresh() }
                return try model.forwardBackward(tokens: tokens, targets: targets, shape: shape, settings: settings).loss
            }
        }
    }

    /// A short GRPO run on a tiny model: statistics are sane, and resuming from a checkpoint continues identically.
    func testStepsAndResumeAreIdentical() throws {
        var values = ModelGradientTests.tinyConfig(qLoraRank: 8, mtp: true).values
        values["vocab_size"] = .number(32)
        var s = TrainingSettings()
        s.steps = 1; s.batch = 2; s.length = 64; s.evalEvery = 0
        s.task = ArithmeticTask(operations: [.addition], digits: 1...1)
        let base = try Trainer(config: ModelConfig(values: values, path: "tiny"), settings: s)
        let root = NSTemporaryDirectory() + "grpo-test-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Checkpoint.save(base, to: root + "/base")
        var g = GRPOSettings()
        g.steps = 3; g.promptsPerStep = 2; g.groupSize = 3; g.maxNewTokens = 6; g.poolSize = 8; g.iterations = 2; g.learningRate = 1e-2
        g.task = s.task
        let a = try GRPOTrainer(modelDirectory: root + "/base", settings: g)
        let first = try a.trainStep()
        // 2 prompts × 3 completions of 1…6 tokens each: the mean is a multiple of 1/6 in [1, 6].
        XCTAssertTrue((1...6).contains(first.completionLength), "\(first.completionLength)")
        XCTAssertEqual((first.completionLength * 6).rounded(), first.completionLength * 6, accuracy: 1e-9)
        XCTAssertEqual(first.kl, 0, accuracy: 1e-4, "the first step samples from the reference policy itself")
        // Reward = correct + formatReward · well-formed, so its mean is fixed by the two rates.
        XCTAssertEqual(first.rewardMean, first.accuracy + g.formatReward * first.formatRate, accuracy: 1e-12)
        // Whole groups only (0, 1/2 or 1 of the 2 prompts), and all of them when no reward varies.
        XCTAssertTrue([0, 0.5, 1].contains(first.zeroVarianceGroups), "\(first.zeroVarianceGroups)")
        if first.rewardStd == 0 { XCTAssertEqual(first.zeroVarianceGroups, 1) }
        if first.zeroVarianceGroups < 1 { XCTAssertGreaterThan(first.rewardStd, 0) }
        try GRPOCheckpoint.save(a, to: root + "/run")
        let continued = try a.trainStep()
        let b = try GRPOCheckpoint.resume(from: root + "/run")
        XCTAssertEqual(b.step, 1)
        let resumed = try b.trainStep()
        XCTAssertEqual(resumed.rewardMean, continued.rewardMean)
        XCTAssertEqual(resumed.kl, continued.kl)
        XCTAssertEqual(try a.policy.parameters.array("lm_head.weight"), try b.policy.parameters.array("lm_head.weight"))
    }
}
