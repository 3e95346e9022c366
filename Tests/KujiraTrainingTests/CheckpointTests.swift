import Foundation
import KujiraFormats
import KujiraModels
import KujiraTokenizer
import KujiraTraining
import XCTest

final class CheckpointTests: XCTestCase {
    func makeTrainer() throws -> Trainer {
        var values = ModelGradientTests.tinyConfig(qLoraRank: 8, mtp: true).values
        values["vocab_size"] = .number(32)
        var s = TrainingSettings()
        s.steps = 6; s.batch = 2; s.length = 64; s.seed = 7; s.evalEvery = 0
        s.optimizer.totalSteps = 6; s.optimizer.warmupSteps = 2
        s.balanceGamma = 0.01; s.balanceAlpha = 0.01
        s.task = ArithmeticTask(operations: [.addition, .subtraction], digits: 1...2)
        return try Trainer(config: ModelConfig(values: values, path: "tiny"), settings: s)
    }

    func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-ckpt-\(UUID().uuidString)").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Train 2 steps, save, train 2 more; resuming the save and training 2 steps gives bit-identical weights,
    /// optimizer moments, selection biases, data stream and history.
    func testResumeContinuesIdentically() throws {
        let directory = temporaryDirectory()
        let trainer = try makeTrainer()
        for _ in 0..<2 { try trainer.trainStep() }
        try Checkpoint.save(trainer, to: directory)
        for _ in 0..<2 { try trainer.trainStep() }

        let resumed = try Checkpoint.resume(from: directory)
        XCTAssertEqual(resumed.step, 2)
        for _ in 0..<2 { try resumed.trainStep() }
        XCTAssertEqual(resumed.step, trainer.step)
        XCTAssertEqual(resumed.random, trainer.random)
        let a = trainer.model.parameters, b = resumed.model.parameters
        XCTAssertEqual(Array(UnsafeBufferPointer(start: a.values, count: a.count)), Array(UnsafeBufferPointer(start: b.values, count: b.count)))
        XCTAssertEqual(trainer.optimizer.v.array, resumed.optimizer.v.array)
        XCTAssertEqual(trainer.history.map(\.loss), resumed.history.map(\.loss))
    }

    /// The saved directory is a Hugging Face checkpoint the inference engine loads: same logits as training's forward.
    func testCheckpointLoadsInInferenceEngineWithSameLogits() throws {
        let directory = temporaryDirectory()
        let trainer = try makeTrainer()
        try trainer.trainStep()
        let biases = trainer.model.parameters.entries.filter { $0.kind == .balanceBias }
        XCTAssertEqual(biases.count, 2)
        for bias in biases {
            XCTAssertEqual(Set(try trainer.model.parameters.array(bias.name).map(abs)), [0.01], "after one step every bias moved by γ")
        }
        let published = try Checkpoint.save(trainer, to: directory)
        XCTAssertEqual(published, "\(directory)/step-1")
        for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(directory)/latest/\(file)"), file)
        }
        let loaded = try ModelRegistry.load(directory: directory)  // the run directory opens its newest checkpoint
        let deepseek = try XCTUnwrap(loaded as? DeepseekV3Model)
        XCTAssertNotNil(deepseek.multiTokenPrediction, "the MTP layer loads as layer num_hidden_layers")
        let store = try SafeTensorsStore(directory: published)
        // deepseek-ai's per-expert layout (what transformers 4/5, vLLM and SGLang read), not the trainer's stacked one.
        XCTAssertTrue(store.contains("model.layers.2.mlp.experts.0.gate_proj.weight") && store.contains("model.layers.2.mlp.experts.3.down_proj.weight"))
        XCTAssertFalse(store.tensorNames.contains { $0.hasSuffix("experts.gate_up_proj") || $0.hasSuffix("experts.down_proj") })
        XCTAssertTrue(store.contains("model.layers.2.embed_tokens.weight"))

        let tokens = try trainer.tokenizer.encode(CharacterTokenizer.beginOfSentence + "<｜User｜>12+34<｜Assistant｜><think>\n2+4+0=6")
        let shape = TrainingShape(batch: 1, length: tokens.count)
        let expected = try trainer.model.forwardBackward(tokens: tokens, targets: DecoderTrainingModel.nextTokenTargets(tokens, shape: shape),
                                                         shape: shape, settings: LossSettings(keepLogits: true))
        let logits = try loaded.forward(tokens, cache: loaded.makeCache(), allLogits: true)
        let reference = try XCTUnwrap(expected.logits)
        XCTAssertEqual(logits.count, reference.count)
        let worst = zip(logits, reference).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThan(worst, 1e-4)
        // The model evaluation decodes with (the inference blocks over the training parameters) serves the same logits.
        let memory = trainer.model.inference
        let memoryLogits = try memory.forward(tokens, cache: memory.makeCache(), allLogits: true)
        XCTAssertEqual(memoryLogits.count, logits.count)
        XCTAssertLessThan(zip(memoryLogits, logits).map { abs($0 - $1) }.max() ?? .infinity, 1e-5)
    }

    /// A run saved before routed experts were kept per expert in memory has optimizer moments named for stacked
    /// experts (`exp_avg.….experts.gate_up_proj` (E, 2I, H), `….experts.down_proj` (E, H, I)): it resumes with each
    /// expert's moments sliced out of them, equal to the per-expert ones.
    func testResumeReadsMomentsSavedForStackedExperts() throws {
        let directory = temporaryDirectory()
        let trainer = try makeTrainer()
        try trainer.trainStep()
        let published = try Checkpoint.save(trainer, to: directory)
        let path = "\(published)/optimizer.safetensors"
        let saved = try SafeTensorsStore(files: [path], source: path)
        var tensors: [SafeTensorsWriter.Tensor] = [], stacked: [String: [(Int, String)]] = [:]
        for name in saved.tensorNames {
            let parts = name.split(separator: ".")
            if let at = parts.firstIndex(of: "experts"), let expert = Int(parts[at + 1]) {
                stacked[parts[..<(at + 1)].joined(separator: "."), default: []].append((expert, String(parts[at + 2])))
            } else {
                let t = try saved.tensor(name)
                tensors.append(.float32(name, shape: t.shape, values: t.toFloatArray()))
            }
        }
        XCTAssertFalse(stacked.isEmpty)
        for (prefix, members) in stacked {
            let experts = Set(members.map(\.0)).count
            let gate = try saved.tensor("\(prefix).0.gate_proj.weight")
            var gateUp: [Float] = [], down: [Float] = []
            for e in 0..<experts {
                gateUp += try saved.tensor("\(prefix).\(e).gate_proj.weight").toFloatArray() + saved.tensor("\(prefix).\(e).up_proj.weight").toFloatArray()
                down += try saved.tensor("\(prefix).\(e).down_proj.weight").toFloatArray()
            }
            tensors.append(.float32("\(prefix).gate_up_proj", shape: [experts, 2 * gate.shape[0], gate.shape[1]], values: gateUp))
            tensors.append(.float32("\(prefix).down_proj", shape: [experts, gate.shape[1], gate.shape[0]], values: down))
        }
        try SafeTensorsWriter.write(tensors, metadata: ["step": "1"], to: path)
        XCTAssertFalse(try SafeTensorsStore(files: [path], source: path).tensorNames.contains { $0.contains(".experts.0.") })
        let resumed = try Checkpoint.resume(from: directory)
        XCTAssertEqual(resumed.optimizer.m.array, trainer.optimizer.m.array)
        XCTAssertEqual(resumed.optimizer.v.array, trainer.optimizer.v.array)
    }

    func testResumeRejectsMismatchedFiles() throws {
        let directory = temporaryDirectory()
        let trainer = try makeTrainer()
        try trainer.trainStep()
        try Checkpoint.save(trainer, to: directory)
        let statePath = "\(directory)/step-1/trainer_state.json"
        var state = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: statePath))) as? [String: Any])
        XCTAssertEqual(state["step"] as? Int, 1)
        state["step"] = 5
        try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: statePath))
        XCTAssertThrowsError(try Checkpoint.resume(from: directory)) { error in
            XCTAssertTrue("\(error)".contains("model.safetensors"), "\(error)")
        }
        XCTAssertThrowsError(try Checkpoint.resume(from: "\(directory)/missing"))
    }
}

/// The tokenizer files a checkpoint carries load in Kujira's own tokenizer and chat-template engine unchanged.
final class TokenizerFileTests: XCTestCase {
    func testKujiraTokenizerAndChatTemplateReadTheWrittenFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-tok-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ours = CharacterTokenizer()
        try ours.write(to: directory)
        let loaded = try Tokenizer.load(path: directory)
        let problem = ArithmeticProblem(a: 978, b: 345, operation: .addition)
        let text = CharacterTokenizer.beginOfSentence + CharacterTokenizer.user + problem.question + CharacterTokenizer.assistant
            + problem.reply + CharacterTokenizer.endOfSentence
        XCTAssertEqual(loaded.encode(text), try ours.encode(text))
        XCTAssertEqual(loaded.decode(try ours.encode(text)), text)
        let template = try ChatTemplate.load(path: directory)
        let prompt = try template.render(messages: [["role": "user", "content": problem.question]], addGenerationPrompt: true,
                                         bosToken: CharacterTokenizer.beginOfSentence, eosToken: CharacterTokenizer.endOfSentence)
        XCTAssertEqual(prompt, CharacterTokenizer.beginOfSentence + CharacterTokenizer.user + problem.question + CharacterTokenizer.assistant + "<think>\n")
    }
}
