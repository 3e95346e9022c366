import Foundation
import KujiraFormats
import KujiraGeneration
import KujiraModels
import KujiraTraining
import XCTest

final class ArithmeticEvaluationTests: XCTestCase {
    func testReplyFormat() {
        XCTAssertTrue(ReplyFormat.isWellFormed("<think>\n2+4+0=6\n</think>\n\n6<｜end▁of▁sentence｜>"))
        XCTAssertTrue(ReplyFormat.isWellFormed("<think>\nx\n</think>\n\n-12"))
        XCTAssertFalse(ReplyFormat.isWellFormed("6"), "no scratchpad")
        XCTAssertFalse(ReplyFormat.isWellFormed("<think>\n2+4+0=6\n</think>\n\n"), "no answer")
        XCTAssertFalse(ReplyFormat.isWellFormed("<think>\n1\n</think>\n\n6 7"), "answer is not one integer")
        XCTAssertFalse(ReplyFormat.isWellFormed("<think>\n<think>\n</think>\n\n6"), "nested think")
        XCTAssertFalse(ReplyFormat.isWellFormed("<think>\n1\n</think>\n\n6<｜end▁of▁sentence｜>7"), "text after EOS")
        // Empty reasoning, where the opening newline is also the closing one's: trapped (a range upside down) in a GRPO run.
        XCTAssertTrue(ReplyFormat.isWellFormed("<think>\n</think>\n\n5"))
        XCTAssertTrue(ReplyFormat.isWellFormed("<think>\n\n</think>\n\n5"))
        // Every string of up to 5 fragments is classified without trapping.
        let pieces = ["<think>", "\n", "</think>", "5", "<｜end▁of▁sentence｜>", "-"]
        var strings = [""]
        for _ in 0..<5 { strings = strings.flatMap { s in pieces.map { s + $0 } } }
        XCTAssertEqual(strings.filter { ReplyFormat.isWellFormed($0) }.count, strings.filter { ReplyFormat.isWellFormed($0) }.count)
    }

    func testNaturalQuestionsAppearInTrainingBatchesOnlyWhenEnabled() throws {
        var settings = TrainingSettings()
        settings.batch = 8; settings.length = 64; settings.steps = 1
        settings.task = ArithmeticTask(operations: [.addition], digits: 1...2, naturalQuestions: true)
        var values = ModelGradientTests.tinyConfig(qLoraRank: 8, mtp: true).values
        values["vocab_size"] = .number(32)
        let config = ModelConfig(values: values, path: "tiny")
        let natural = try Trainer(config: config, settings: settings).nextBatch().tokens
        let tokenizer = CharacterTokenizer()
        XCTAssertTrue(tokenizer.decode(natural).contains("hat is "))
        settings.task.naturalQuestions = nil
        let bare = try Trainer(config: config, settings: settings).nextBatch().tokens
        XCTAssertFalse(tokenizer.decode(bare).contains("hat is "))
    }

    func testMixedLengthsDrawOperandLengthsIndependently() {
        func lengths(_ task: ArithmeticTask) -> [(Int, Int)] {
            var rng = TrainingRandom(seed: 8)
            return (0..<300).map { _ in let p = task.sample(&rng); return (String(p.a).count, String(p.b).count) }
        }
        let mixed = lengths(ArithmeticTask(operations: [.addition], digits: 1...3, mixedLengths: true))
        XCTAssertTrue(mixed.contains { $0.0 != $0.1 })
        XCTAssertTrue(mixed.allSatisfy { (1...3).contains($0.0) && (1...3).contains($0.1) })
        XCTAssertFalse(lengths(ArithmeticTask(operations: [.addition], digits: 1...3)).contains { $0.0 != $0.1 })
    }

    /// The embedded default model answers held-out problems of every operation it was trained on.
    func testEmbeddedModelSolvesHeldOutProblems() throws {
        let path = try DefaultModel.embeddedDirectory()
        guard FileManager.default.fileExists(atPath: path + "/config.json") else { throw XCTSkip("no embedded model at \(path)") }
        let evaluator = ArithmeticEvaluator(model: try ModelRegistry.load(directory: path))
        let problems = ArithmeticTask(operations: [.addition, .subtraction], digits: 1...3, mixedLengths: true).heldOutSet(count: 40, seed: 77)
        let result = try evaluator.evaluate(problems, k: 2, temperature: 0.7, seed: 1)
        XCTAssertEqual(result.problems, 40)
        XCTAssertGreaterThanOrEqual(result.passAt1Greedy, 0.9)
        XCTAssertGreaterThanOrEqual(result.formatRate, 0.9)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(result.passAtK), try XCTUnwrap(result.passAt1Sampled) - 1e-12)
        // Phrased as a user would ask it.
        let p = ArithmeticProblem(a: 123, b: 45, operation: .addition)
        let ids = try evaluator.prompt("What is 123+45?")
        let out = try Generator(model: evaluator.model).generate(prompt: ids, maxTokens: 40, sampling: SamplingConfiguration(), stopTokens: [1])
        XCTAssertTrue(p.isCorrect(evaluator.tokenizer.decode(out)), evaluator.tokenizer.decode(out))
    }
}

final class DistillationTests: XCTestCase {
    func testAnswersOnlyRemovesTheReasoning() {
        let p = ArithmeticProblem(a: 978, b: 345, operation: .addition)
        let stripped = Distillation.answersOnly([TrainingExample(question: p.question, reply: p.reply)])
        XCTAssertEqual(stripped, [TrainingExample(question: "978+345", reply: "<think>\n\n</think>\n\n1323")])
        XCTAssertTrue(ReplyFormat.isWellFormed(stripped[0].reply))
        XCTAssertTrue(p.isCorrect(stripped[0].reply))
    }

    func testTrainerDrawsOnlyFromTheCorpus() throws {
        var values = ModelGradientTests.tinyConfig(qLoraRank: 8, mtp: false).values
        values["vocab_size"] = .number(32)
        var s = TrainingSettings()
        s.batch = 4; s.length = 42; s.steps = 1
        s.corpus = [TrainingExample(question: "1+2", reply: "<think>\n2+1+0=3\n</think>\n\n3")]
        let trainer = try Trainer(config: ModelConfig(values: values, path: "tiny"), settings: s)
        let (tokens, targets) = try trainer.nextBatch()
        let text = CharacterTokenizer().decode(tokens)
        XCTAssertEqual(text.components(separatedBy: "<｜User｜>1+2<｜Assistant｜>").count - 1, 8, "two 21-token examples per 42-token sequence")
        XCTAssertEqual(targets.filter { $0 >= 0 }.count, 8 * 15, "loss on the 14 reply tokens and end-of-sentence only")
    }

    /// Rejection sampling keeps only verified-correct, well-formed traces (on the embedded model as the teacher).
    func testRejectionSamplingKeepsOnlyVerifiedTraces() throws {
        let path = try DefaultModel.embeddedDirectory()
        guard FileManager.default.fileExists(atPath: path + "/config.json") else { throw XCTSkip("no embedded model at \(path)") }
        var rng = TrainingRandom(seed: 5)
        let task = ArithmeticTask(operations: [.addition, .subtraction], digits: 2...3)
        let problems = (0..<6).map { _ in task.sample(&rng) }
        let c = try Distillation.collect(teacher: try ModelRegistry.load(directory: path), problems: problems, samples: 3, temperature: 1.5, seed: 9)
        XCTAssertEqual(c.sampled, 18)
        XCTAssertLessThanOrEqual(c.examples.count, c.verified)
        XCTAssertFalse(c.examples.isEmpty)
        for e in c.examples {
            let problem = try XCTUnwrap(problems.first { $0.question == e.question })
            XCTAssertTrue(problem.isCorrect(e.reply) && ReplyFormat.isWellFormed(e.reply), e.reply)
        }
    }
}
