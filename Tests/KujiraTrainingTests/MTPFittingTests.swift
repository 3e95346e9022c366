import Foundation
import KujiraFormats
import KujiraGeneration
import KujiraModels
import KujiraTraining
import XCTest

/// `kujira train-mtp`: a fresh MTP module fitted to the frozen model's greedy output learns to predict it, the written
/// directory keeps the main weights bit for bit and drafts with the module at identical greedy output, and what cannot
/// be fitted is refused by name.
final class MTPFittingTests: XCTestCase {
    func temporary(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-mtp-\(name)-\(UUID().uuidString)").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// `model` fixture's config and weights with the 256-id tiny-chat tokenizer, in a temporary directory.
    func modelDirectory(_ model: String) throws -> String {
        let directory = temporary(model)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (from, name) in [("models/\(model)", "config.json"), ("models/\(model)", "model.safetensors"),
                             ("server/tiny-chat", "tokenizer.json"), ("server/tiny-chat", "tokenizer_config.json")] {
            try FileManager.default.copyItem(atPath: Fixtures.path("\(from)/\(name)"), toPath: "\(directory)/\(name)")
        }
        return directory
    }

    static let prompts = ["Say something long, and repeat it.", "Count to ten.", "Tell me a story about a whale.", "What is 2+2?",
                          "Write a poem.", "Explain the sea.", "Hello!", "List some colours."]

    func settings(model: String, prompts: String, steps: Int) -> MTPFitSettings {
        var s = MTPFitSettings()
        s.model = model; s.prompts = prompts; s.newTokens = 48; s.steps = steps; s.batch = 4; s.heldOutEvery = 0
        s.optimizer = OptimizerSettings(learningRate: 3e-3, minLearningRate: 3e-4, warmupSteps: 5, weightDecay: 0)
        return s
    }

    func testFittedModuleLearnsTheContinuationsAndDraftsAtIdenticalOutput() throws {
        let model = try modelDirectory("deepseek-v3-tiny")
        let promptsFile = temporary("prompts.txt")
        try Self.prompts.joined(separator: "\n").write(toFile: promptsFile, atomically: true, encoding: .utf8)
        let fitter = try MTPFitter(settings: settings(model: model, prompts: promptsFile, steps: 80))
        XCTAssertFalse(fitter.startedFromStoredModule)
        try fitter.prepare(prompts: try MTPFitter.readPrompts(promptsFile))
        XCTAssertEqual(fitter.trainSequences.count, Self.prompts.count)
        XCTAssertTrue(fitter.trainSequences.allSatisfy { $0.tokens.count > $0.promptLength + 2 }, "the model continued every prompt")
        let before = try XCTUnwrap(try fitter.score(heldOut: false))
        while fitter.step < fitter.totalSteps { try fitter.trainStep() }
        let after = try XCTUnwrap(try fitter.score(heldOut: false))
        XCTAssertLessThan(after.loss, before.loss * 0.5, "loss \(before.loss) → \(after.loss)")
        XCTAssertGreaterThan(after.accuracy, before.accuracy + 0.3, "accuracy \(before.accuracy) → \(after.accuracy)")

        let out = temporary("out")
        let report = MTPFitReport(settings: fitter.settings, trainSequences: fitter.trainSequences.count, heldOutSequences: 0,
                                  trainTokens: after.tokens, heldOutTokens: 0, steps: fitter.step, trainBefore: before, trainAfter: after,
                                  heldOutBefore: nil, heldOutAfter: nil, losses: fitter.losses, generationSeconds: 0, trainingSeconds: 0)
        try fitter.write(to: out, report: report)
        XCTAssertThrowsError(try fitter.write(to: out, report: report)) { XCTAssertTrue("\($0)".contains("exists"), "\($0)") }

        // The main model's tensors are the original bytes; the module's are the fitted values.
        let (config, written) = try ModelRegistry.open(out)
        XCTAssertEqual(try config.int("num_nextn_predict_layers"), 1)
        let (_, original) = try ModelRegistry.open(model)
        for name in original.tensorNames {
            let a = try original.tensor(name), b = try written.tensor(name)
            XCTAssertEqual(Array(a.bytes), Array(b.bytes), name)
        }
        for e in fitter.parameters.entries {
            XCTAssertEqual(try written.tensor(e.name).toFloatArray(), try fitter.parameters.array(e.name), e.name)
        }

        // Drafting with the module: the same greedy tokens as without it, and drafts accepted.
        let pipeline = try TextPipeline.load(path: out)
        var accepted = 0
        for text in Self.prompts.prefix(4) {
            let prompt = try pipeline.chatPrompt(messages: [["role": "user", "content": .string(text)]])
            func run(_ speculation: Speculation) throws -> TextPipeline.Result {
                var options = pipeline.options(maxTokens: 48, sampling: SamplingConfiguration(temperature: 0))
                options.speculation = speculation
                return try pipeline.run(prompt: prompt, options: options, slot: SequenceSlot(model: pipeline.model)) { _ in }
            }
            let plain = try run(.off), fast = try run(.mtp(maxDraft: 1))
            XCTAssertEqual(fast.tokens, plain.tokens, text)
            XCTAssertGreaterThan(fast.usage.draftedTokens, 0, text)
            accepted += fast.usage.acceptedDrafts
        }
        XCTAssertGreaterThan(accepted, 40, "the fitted module's drafts are accepted")
    }

    /// A checkpoint with a module (trained or not) is fitted from it; the written directory drops the stored module
    /// from the rewritten weight file (each tensor in one file) and keeps every other tensor's bytes.
    func testAStoredModuleIsFittedFurtherAndReplaced() throws {
        let model = try modelDirectory("deepseek-v3-tiny-mtp")
        let promptsFile = temporary("prompts.txt")
        try Self.prompts.prefix(4).joined(separator: "\n").write(toFile: promptsFile, atomically: true, encoding: .utf8)
        let fitter = try MTPFitter(settings: settings(model: model, prompts: promptsFile, steps: 3))
        XCTAssertTrue(fitter.startedFromStoredModule)
        let (_, original) = try ModelRegistry.open(model)
        for e in fitter.parameters.entries where original.contains(e.name) {
            XCTAssertEqual(try fitter.parameters.array(e.name), try original.tensor(e.name).toFloatArray(), e.name)
        }
        try fitter.prepare(prompts: try MTPFitter.readPrompts(promptsFile))
        while fitter.step < fitter.totalSteps { try fitter.trainStep() }
        let out = temporary("out")
        try fitter.write(to: out, report: MTPFitReport(settings: fitter.settings, trainSequences: 4, heldOutSequences: 0, trainTokens: 0,
                                                       heldOutTokens: 0, steps: 3, trainBefore: nil, trainAfter: nil, heldOutBefore: nil,
                                                       heldOutAfter: nil, losses: fitter.losses, generationSeconds: 0, trainingSeconds: 0))
        let (_, written) = try ModelRegistry.open(out)
        var changed = 0
        for name in original.tensorNames {
            if fitter.parameters.contains(name) {
                let fitted = try fitter.parameters.array(name)
                XCTAssertEqual(try written.tensor(name).toFloatArray(), fitted, name)
                if try original.tensor(name).toFloatArray() != fitted { changed += 1 }
            } else {
                XCTAssertEqual(Array(try written.tensor(name).bytes), Array(try original.tensor(name).bytes), name)
            }
        }
        XCTAssertGreaterThan(changed, 5, "the fit moved the module's tensors")
        XCTAssertEqual(Set(written.tensorNames), Set(original.tensorNames).union(fitter.parameters.entries.map(\.name)))
    }

    func testWhatCannotBeFittedIsRefusedByName() throws {
        let promptsFile = temporary("prompts.txt")
        try "Hello\n".write(toFile: promptsFile, atomically: true, encoding: .utf8)
        let llama = try modelDirectory("llama-tiny")
        XCTAssertThrowsError(try MTPFitter(settings: settings(model: llama, prompts: promptsFile, steps: 1))) {
            XCTAssertTrue("\($0)".contains("model_type 'llama'"), "\($0)")
        }
        let gguf = temporary("model.gguf")
        try Data([0x47, 0x47, 0x55, 0x46]).write(to: URL(fileURLWithPath: gguf))
        XCTAssertThrowsError(try MTPFitter(settings: settings(model: gguf, prompts: promptsFile, steps: 1))) {
            XCTAssertTrue("\($0)".contains("needs a Hugging Face model directory"), "\($0)")
        }
        let model = try modelDirectory("deepseek-v3-tiny")
        var tight = settings(model: model, prompts: promptsFile, steps: 1)
        tight.hiddenStateBudget = 1024
        XCTAssertThrowsError(try MTPFitter(settings: tight).prepare(prompts: ["Hello", "Count to ten."])) {
            XCTAssertTrue("\($0)".contains("hidden states of 2 sequences") && "\($0)".contains("use fewer prompts"), "\($0)")
        }
        let empty = temporary("empty.txt")
        try "\n  \n".write(toFile: empty, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try MTPFitter.readPrompts(empty)) { XCTAssertTrue("\($0)".contains("\(empty): no prompts"), "\($0)") }
        XCTAssertThrowsError(try MTPFitter.readPrompts(temporary("missing.txt"))) { XCTAssertTrue("\($0)".contains("cannot read"), "\($0)") }
    }
}
