import Foundation
import KujiraFormats
import KujiraModels
import KujiraTraining
import XCTest

/// GRPO on the user's data: the reward rules, the objective's gradient through the blocks' training passes, and whole
/// steps (full and LoRA) on the tiny chat model.
final class ChatGRPOTests: XCTestCase {
    func testAnswerExtraction() {
        XCTAssertEqual(Rewards.extractAnswer("<think>\nmaybe 3\n</think>\n\nSo \\boxed{\\frac{1}{2}} is it."), "\\frac{1}{2}")
        XCTAssertEqual(Rewards.extractAnswer("first \\boxed{1} then \\boxed{ 42 }"), "42")
        XCTAssertEqual(Rewards.extractAnswer("Let me add.\n27 + 82 = 109\n\n"), "27 + 82 = 109")
        XCTAssertEqual(Rewards.extractAnswer("<think>109</think>"), "")
        XCTAssertEqual(Rewards.lastNumber("27 + 82 = 109."), 109)
        XCTAssertEqual(Rewards.lastNumber("<think>-3</think> it is -2.5"), -2.5)
        XCTAssertNil(Rewards.lastNumber("<think>7</think> no idea"))
    }

    func testRewardRulesAndWeights() throws {
        let r = try RewardFunction(specs: ["exact", "0.5*regex:^\\s*\\d+\\s*$", "length:4"])
        XCTAssertEqual(r.score("109", tokens: 2, answer: "109"), 1.5)
        XCTAssertEqual(r.score("So \\boxed{109}", tokens: 6, answer: "109"), 1 - 0.5)
        XCTAssertEqual(r.score("27 + 82 = 109", tokens: 4, answer: "109"), 0)
        XCTAssertEqual(try RewardFunction(specs: ["number"]).score("27 + 82 = 109", tokens: 4, answer: "109"), 1)
        XCTAssertEqual(try RewardFunction(specs: ["number"]).isCorrect("= 110", answer: "109"), false)
        XCTAssertNil(try RewardFunction(specs: ["json"]).isCorrect("{}", answer: "1"))

        let schema = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-schema-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: schema) }
        try #"{"type": "object", "required": ["name", "tags"], "additionalProperties": false, "properties": {"name": {"type": "string", "minLength": 1}, "age": {"type": "integer", "minimum": 0}, "mood": {"enum": ["happy", "sad"]}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}, "home": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#
            .write(toFile: schema, atomically: true, encoding: .utf8)
        let json = try RewardFunction(specs: ["json-schema:\(schema)"])
        let valid = #"{"name": "Ann", "age": 3, "mood": "happy", "tags": ["a"], "home": {"city": "Oslo"}}"#
        XCTAssertEqual(json.score(valid, tokens: 10, answer: nil), 1)
        for invalid in [#"{"name": "Ann"}"#, #"{"name": "Ann", "tags": [1]}"#, #"{"name": "Ann", "tags": [], "age": -1}"#,
                        #"{"name": "Ann", "tags": [], "age": 2.5}"#, #"{"name": "Ann", "tags": [], "mood": "ok"}"#,
                        #"{"name": "Ann", "tags": [], "extra": 1}"#, #"{"name": "", "tags": []}"#, #"{"name": "A", "tags": ["a", "b", "c"]}"#,
                        #"{"name": "A", "tags": [], "home": {}}"#, #"{"name": true, "tags": []}"#, "not json"] {
            XCTAssertEqual(json.score(invalid, tokens: 10, answer: nil), 0, invalid)
        }
        XCTAssertEqual(try RewardFunction(specs: ["json"]).score(" [1, 2] ", tokens: 3, answer: nil), 1)
        for bad in ["regex:(", "length:0", "bogus", "json-schema:/nonexistent.json"] {
            XCTAssertThrowsError(try RewardFunction(specs: [bad]), bad)
        }
    }

    /// At ratio 1 with β = 0, advantage 1 and weight 1/count, GRPO's gradient is the mean cross-entropy's: the
    /// objective path through `CrossEntropy.objectiveForwardBackward` and the pullbacks gives the same gradients.
    func testObjectiveGradientEqualsCrossEntropyAtRatioOne() throws {
        let model = try DecoderTrainingModel(path: Fixtures.path("models/qwen2-tiny"))
        let tokens = (0..<24).map { ($0 * 37 + 11) % 256 }, shape = TrainingShape(batch: 2, length: 12)
        let targets = DecoderTrainingModel.nextTokenTargets(tokens, shape: shape)
        let count = targets.filter { $0 >= 0 }.count
        model.parameters.zeroGradients()
        try model.forwardBackward(tokens: tokens, targets: targets, shape: shape)
        let expected = try model.parameters.entries.map { try model.parameters.gradient($0.name) }
        model.parameters.zeroGradients()
        let infos = (0..<count).map { _ in GRPOToken(advantage: 1, oldLogProbability: nil, referenceLogProbability: 0, weight: 1 / Double(count)) }
        let objective: TokenObjective = { l in
            let result = GRPOObjective.evaluate(logProbabilities: l, tokens: infos, clip: 0.2, beta: 0)
            return (result.statistics.loss, result.gradient)
        }
        try model.forwardBackward(tokens: tokens, targets: targets, shape: shape, settings: LossSettings(tokenObjective: objective))
        for (e, want) in zip(model.parameters.entries, expected) {
            let got = try model.parameters.gradient(e.name)
            let scale = want.map { abs($0) }.max() ?? 0
            XCTAssertLessThanOrEqual(zip(got, want).map { abs($0 - $1) }.max() ?? 0, 1e-5 * max(scale, 1e-6), e.name)
        }
    }

    func prompts(_ count: Int) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-grpo-\(UUID().uuidString).jsonl").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try (0..<count).map { #"{"messages": [{"role": "user", "content": "Say \#($0 % 3)"}], "answer": "\#($0 % 3)"}"# }
            .joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Whole steps run (full fine-tuning and LoRA), record statistics, evaluate and save a loadable checkpoint.
    func testStepsRunFullAndLoRA() throws {
        let model = try SFTTests.chatModel()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: model) }
        for lora in [nil, SFTLoRASettings(rank: 4, alpha: 8, targets: ["q_proj", "v_proj"])] {
            var s = ChatGRPOSettings()
            s.model = model; s.data = try prompts(6); s.evalData = s.data; s.rewards = ["number", "0.1*regex:\\d"]
            s.steps = 2; s.promptsPerStep = 2; s.groupSize = 3; s.maxNewTokens = 6; s.lora = lora; s.beta = lora == nil ? 0.04 : 0
            let trainer = try ChatGRPOTrainer(settings: s)
            let before = try trainer.parameters()
            for _ in 0..<2 { try trainer.trainStep() }
            XCTAssertEqual(trainer.history.count, 2)
            XCTAssertNotNil(trainer.history[0].passRate)
            XCTAssertTrue((0...1).contains(try trainer.evaluate()))
            XCTAssertNotEqual(try trainer.parameters(), before, "a step with reward variance must move the parameters")
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-grpo-run-\(UUID().uuidString)").path
            addTeardownBlock { try? FileManager.default.removeItem(atPath: out) }
            let checkpoint = try trainer.save(to: out)
            XCTAssertNoThrow(lora == nil ? try ModelRegistry.load(directory: checkpoint) : try ModelRegistry.load(directory: model, lora: checkpoint))
        }
    }

    /// A run saved at step 2 and resumed ends like an uninterrupted run: same rewards, same adapter values.
    func testResumeContinuesTheSameRun() throws {
        let model = try SFTTests.chatModel()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: model) }
        var s = ChatGRPOSettings()
        s.model = model; s.data = try prompts(6); s.rewards = ["number", "0.1*regex:\\d"]
        s.steps = 4; s.promptsPerStep = 2; s.groupSize = 3; s.maxNewTokens = 5; s.lora = SFTLoRASettings(rank: 2, alpha: 4, targets: ["q_proj"])
        let reference = try ChatGRPOTrainer(settings: s)
        for _ in 0..<4 { try reference.trainStep() }
        let first = try ChatGRPOTrainer(settings: s)
        for _ in 0..<2 { try first.trainStep() }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-grpo-resume-\(UUID().uuidString)").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: out) }
        try first.save(to: out)
        XCTAssertTrue(ChatGRPOTrainer.isRun(out))
        let resumed = try ChatGRPOTrainer.resume(from: out)
        XCTAssertEqual(resumed.step, 2)
        while resumed.step < 4 { try resumed.trainStep() }
        XCTAssertEqual(resumed.history.map(\.rewardMean), reference.history.map(\.rewardMean))
        XCTAssertEqual(try resumed.parameters(), try reference.parameters())
    }

    func testBadPromptFilesNameTheLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-grpo-bad-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        for (line, expected) in [(#"{"prompt": "hi"}"#, "needs an \"answer\""), (#"{"messages": [{"role": "assistant", "content": "x"}]}"#, "end with a user"),
                                 ("[1]", "not a JSON object"), (#"{"x": 1}"#, "\"messages\" array")] {
            try ([#"{"prompt": "ok", "answer": "1"}"#, line].joined(separator: "\n")).write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try ChatGRPOTrainer.load(path, needsAnswer: true)) { error in
                XCTAssertTrue("\(error)".hasPrefix("\(path):2: ") && "\(error)".contains(expected), "\(error)")
            }
        }
    }
}

extension ChatGRPOTrainer {
    /// Every trained value (tests).
    func parameters() throws -> [Float] { Array(UnsafeBufferPointer(start: policy.parameters.values, count: policy.parameters.count)) }
}
