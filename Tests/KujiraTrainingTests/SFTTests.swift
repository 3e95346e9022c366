import Foundation
import KujiraFormats
import KujiraModels
import KujiraTokenizer
import KujiraTraining
import XCTest

/// `kujira sft`'s pieces: reply-only loss masks from the model's chat template, packing, data errors naming the line,
/// learning, and resume continuing the same loss curve.
final class SFTTests: XCTestCase {
    /// llama-tiny's weights with the 256-id tiny-chat tokenizer and its R1-style template, in a temporary directory.
    static func chatModel() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-sft-model-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (from, name) in [("models/llama-tiny", "config.json"), ("models/llama-tiny", "model.safetensors"),
                             ("server/tiny-chat", "tokenizer.json"), ("server/tiny-chat", "tokenizer_config.json")] {
            try FileManager.default.copyItem(atPath: Fixtures.path("\(from)/\(name)"), toPath: "\(directory)/\(name)")
        }
        return directory
    }

    func temporary(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-sft-\(name)-\(UUID().uuidString)").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func write(_ lines: [String], to path: String) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// The trained tokens, decoded, are exactly each reply followed by the template's end-of-turn token.
    func testLossMaskCoversExactlyTheAssistantReplies() throws {
        let model = try Self.chatModel()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: model) }
        let formatter = try SFTFormatter(modelPath: model)
        let line = #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "four"}, {"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "six"}]}"#
        let example = try formatter.example(line: Substring(line), number: 1, file: "t.jsonl")
        let eos = try XCTUnwrap(formatter.tokenizer.eosToken)
        // Runs of consecutive trained positions: two, each a reply + end of sentence; nothing of the system or user turns.
        var runs: [[Int]] = []
        for i in example.tokens.indices where example.trained[i] {
            if let last = runs.last?.last, last == i - 1 { runs[runs.count - 1].append(i) } else { runs.append([i]) }
        }
        let texts = runs.map { formatter.tokenizer.decode($0.map { example.tokens[$0] }) }
        XCTAssertEqual(texts, ["four" + eos, "six" + eos])
        let untrained = formatter.tokenizer.decode(example.tokens.indices.filter { !example.trained[$0] }.map { example.tokens[$0] })
        XCTAssertFalse(untrained.contains("four") || untrained.contains("six"), untrained)
        XCTAssertTrue(untrained.contains("Be brief.") && untrained.contains("2+2?") && untrained.contains("3+3?"))

        let raw = try formatter.example(line: #"{"prompt": "Q: 1+1=", "completion": " 2"}"#, number: 2, file: "t.jsonl")
        XCTAssertEqual(formatter.tokenizer.decode(raw.tokens.indices.filter { raw.trained[$0] }.map { raw.tokens[$0] }), " 2" + eos)
    }

    /// Packed targets are the next token only where it is a trained token of the same example; padding has none.
    func testPackingKeepsTargetsInsideExamples() {
        let a = SFTExample(tokens: [5, 6, 7, 8], trained: [false, false, true, true], line: 1)
        let b = SFTExample(tokens: [9, 10, 11], trained: [false, true, true], line: 2)
        let c = SFTExample(tokens: [12, 13, 14, 15, 16], trained: [false, false, false, true, true], line: 3)
        let packed = SFTSchedule.pack([a, b, c], length: 8, padId: 0)
        XCTAssertEqual(packed.map(\.tokens), [[5, 6, 7, 8, 9, 10, 11, 0], [12, 13, 14, 15, 16, 0, 0, 0]])
        XCTAssertEqual(packed.map(\.targets), [[-1, 7, 8, -1, 10, 11, -1, -1], [-1, -1, 15, 16, -1, -1, -1, -1]])
        let schedule = SFTSchedule(examples: [a, b, c, a, b, c], length: 8, padId: 0, seed: 7)
        XCTAssertEqual(schedule.batch(start: 0, count: 3).count, 3)
        XCTAssertEqual(Set(schedule.order(epoch: 0)), Set(schedule.sequences.indices))
        XCTAssertEqual(schedule.batch(start: 5, count: 4), schedule.batch(start: 5, count: 4), "the data of a step depends on the step only")
    }

    /// Each kind of bad line gets an error naming the file and line.
    func testBadDataNamesTheLine() throws {
        let model = try Self.chatModel()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: model) }
        let formatter = try SFTFormatter(modelPath: model)
        let good = #"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#
        let cases: [(String, String)] = [
            ("{not json", "not valid JSON"),
            (#"{"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]}"#, "unknown role 'wizard'"),
            (#"{"messages": []}"#, "non-empty array"),
            (#"{"messages": [{"role": "user", "content": "only a question"}]}"#, "no assistant message"),
            ("", "empty line"),
            (#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "\#(String(repeating: "long ", count: 200))"}]}"#,
             "longer than the context of 256"),
            (#"[1, 2]"#, "not a JSON object"),
        ]
        for (bad, expected) in cases {
            let file = temporary("data") + ".jsonl"
            try write([good, bad, good], to: file)
            XCTAssertThrowsError(try formatter.load(file: file, maxLength: 256), bad) { error in
                XCTAssertTrue("\(error)".hasPrefix("\(file):2: "), "\(error)")
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
        let file = temporary("data") + ".jsonl"
        try write([good, good], to: file)
        XCTAssertEqual(try formatter.load(file: file, maxLength: 256).count, 2)
    }

    func settings(model: String, data: String, steps: Int) -> SFTSettings {
        var s = SFTSettings()
        s.model = model; s.data = data; s.steps = steps; s.batch = 2; s.accumulation = 2; s.length = 64; s.seed = 5
        s.optimizer.learningRate = 3e-3; s.optimizer.minLearningRate = 3e-4; s.optimizer.warmupSteps = 2; s.optimizer.totalSteps = steps
        s.optimizer.weightDecay = 0; s.evalEvery = 0; s.checkpointEvery = 3
        return s
    }

    func trainingData(count: Int) throws -> String {
        let data = temporary("train") + ".jsonl"
        try write((0..<count).map { i in
            #"{"messages": [{"role": "user", "content": "Say the word \#(i % 7)."}, {"role": "assistant", "content": "kujira \#(i % 7)"}]}"#
        }, to: data)
        return data
    }

    /// Fine-tuning on a fixed reply format drives the reply loss down (it fails if gradients or masks are wrong).
    func testFineTuningLearnsTheReplies() throws {
        let model = try Self.chatModel()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: model) }
        let s = settings(model: model, data: try trainingData(count: 40), steps: 30)
        let data = try SFTData.load(settings: s, formatterPath: model)
        let trainer = try SFTTrainer(model: try DecoderTrainingModel(path: model), settings: s, schedule: data.schedule, evalSequences: data.schedule.sequences)
        let before = try XCTUnwrap(try trainer.evaluate())
        for _ in 0..<s.steps { try trainer.trainStep() }
        let after = try XCTUnwrap(try trainer.evaluate())
        print("reply loss before \(before), after \(after)")
        XCTAssertGreaterThan(before, 4)
        XCTAssertLessThan(after, 0.25 * before)
    }

    /// A run saved at step 3 and resumed from its checkpoint ends with the loss history of an uninterrupted run, bit for bit.
    func testResumeContinuesTheSameLossCurve() throws {
        let model = try Self.chatModel()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: model) }
        let s = settings(model: model, data: try trainingData(count: 20), steps: 6)
        func fresh() throws -> SFTTrainer {
            let data = try SFTData.load(settings: s, formatterPath: model)
            return try SFTTrainer(model: try DecoderTrainingModel(path: model), settings: s, schedule: data.schedule, evalSequences: [])
        }
        let reference = try fresh()
        for _ in 0..<6 { try reference.trainStep() }

        let run = temporary("run")
        let first = try fresh()
        for _ in 0..<3 { try first.trainStep() }
        let checkpoint = try SFTCheckpoint.save(first, to: run)
        for _ in 0..<2 { try first.trainStep() }  // progress after the checkpoint is lost, as in a crash
        let resumed = try SFTCheckpoint.resume(from: run)
        XCTAssertEqual(resumed.step, 3)
        while resumed.step < 6 { try resumed.trainStep() }
        XCTAssertEqual(resumed.history.map(\.loss), reference.history.map(\.loss))
        XCTAssertEqual(try resumed.model.parameters.array("lm_head.weight"), try reference.model.parameters.array("lm_head.weight"))
        // The checkpoint is a model directory the inference engine and tokenizer load.
        XCTAssertNoThrow(try ModelRegistry.load(directory: checkpoint))
        XCTAssertNoThrow(try Tokenizer.load(path: checkpoint))
    }
}

extension SFTTests {
    /// Architectures whose blocks have no training pass yet are refused by name before any step.
    func testUnsupportedBlocksAreRefusedByName() {
        XCTAssertThrowsError(try DecoderTrainingModel(path: Fixtures.path("models/deepseek-v32-tiny"))) { error in
            XCTAssertTrue("\(error)".contains("lightning indexer") && "\(error)".contains("model.layers.0.self_attn"), "\(error)")
        }
        XCTAssertThrowsError(try DecoderTrainingModel(path: Fixtures.path("models/deepseek-v4-tiny"))) { error in
            XCTAssertTrue("\(error)".contains("training does not support"), "\(error)")
        }
    }
}
