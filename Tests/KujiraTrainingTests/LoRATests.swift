import Foundation
import KujiraFormats
import KujiraModels
import KujiraTensor
import KujiraTraining
import XCTest

/// LoRA against Python PEFT 0.21 (scripts/make-lora-goldens.py): an adapter PEFT saved gives PEFT's logits when Kujira
/// applies it unmerged, its A/B gradients equal PEFT's, an adapter Kujira writes reads back identically, and LoRA
/// trains on a quantized GGUF base that stays untouched.
final class LoRATests: XCTestCase {
    struct Golden {
        let tokens: [Int], logits: [Float], loss: Double
    }

    func golden(_ model: String) throws -> Golden {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("lora/\(model)/golden.json")))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let logits = try XCTUnwrap(json["logits"] as? [Any]).flatMap { row -> [Float] in
            if let values = row as? [Double] { return values.map(Float.init) }
            return [Float(try XCTUnwrap(row as? Double))]
        }
        return Golden(tokens: try XCTUnwrap(json["tokens"] as? [Int]), logits: logits, loss: try XCTUnwrap(json["loss"] as? Double))
    }

    func assertLogitsMatchPEFT(_ name: String) throws {
        let g = try golden(name)
        let adapted = try ModelRegistry.load(directory: Fixtures.path("models/\(name)"), lora: Fixtures.path("lora/\(name)/adapter"))
        let logits = try adapted.forward(g.tokens, cache: adapted.makeCache(), allLogits: true)
        XCTAssertEqual(logits.count, g.logits.count)
        let worst = zip(logits, g.logits).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, 1e-4, "\(name): max |Δ| vs PEFT")
        let base = try ModelRegistry.load(directory: Fixtures.path("models/\(name)"))
        let plain = try base.forward(g.tokens, cache: base.makeCache(), allLogits: true)
        XCTAssertGreaterThan(zip(plain, g.logits).map { abs($0 - $1) }.max() ?? 0, 1e-2, "\(name): the adapter must change the logits")
    }

    func testLlamaAdapterGivesPEFTLogits() throws { try assertLogitsMatchPEFT("llama-tiny") }
    func testQwen3AdapterGivesPEFTLogits() throws { try assertLogitsMatchPEFT("qwen3-tiny") }

    func assertGradientsMatchPEFT(_ name: String) throws {
        let g = try golden(name)
        let model = try DecoderTrainingModel.lora(path: Fixtures.path("models/\(name)"), adapterDirectory: Fixtures.path("lora/\(name)/adapter"))
        let shape = TrainingShape(batch: 1, length: g.tokens.count)
        model.parameters.zeroGradients()
        let result = try model.forwardBackward(tokens: g.tokens, targets: DecoderTrainingModel.nextTokenTargets(g.tokens, shape: shape), shape: shape)
        XCTAssertEqual(result.loss, g.loss, accuracy: 1e-5)
        let grads = try SafeTensorsStore(files: [Fixtures.path("lora/\(name)/grads.safetensors")], source: "grads")
        XCTAssertEqual(Set(model.parameters.entries.map(\.name)), Set(grads.tensorNames), "only the adapters are parameters, named as PEFT names them")
        for tensor in grads.tensorNames {
            let expected = try grads.tensor(tensor).toFloatArray(), actual = try model.parameters.gradient(tensor)
            GradientCheck.assertClose(actual, to: expected, "\(name) \(tensor)")
        }
    }

    func testLlamaLoRAGradientsEqualPEFT() throws { try assertGradientsMatchPEFT("llama-tiny") }
    func testQwen3LoRAGradientsEqualPEFT() throws { try assertGradientsMatchPEFT("qwen3-tiny") }

    func temporary(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-lora-\(name)-\(UUID().uuidString)").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// An adapter Kujira writes is PEFT's layout: the same tensors and config fields read back, the same logits.
    func testWrittenAdapterReadsBackIdentically() throws {
        let name = "llama-tiny", g = try golden(name)
        let model = try DecoderTrainingModel.lora(path: Fixtures.path("models/\(name)"), adapterDirectory: Fixtures.path("lora/\(name)/adapter"))
        let out = temporary("adapter")
        try model.writeAdapter(to: out, baseModel: Fixtures.path("models/\(name)"))
        let original = try PEFTAdapter(directory: Fixtures.path("lora/\(name)/adapter")), written = try PEFTAdapter(directory: out)
        XCTAssertEqual(written.config.rank, original.config.rank)
        XCTAssertEqual(written.config.alpha, original.config.alpha)
        XCTAssertEqual(Set(written.config.targetModules), Set(original.config.targetModules))
        XCTAssertEqual(Set(written.adapters.keys), Set(original.adapters.keys))
        for (weight, adapter) in original.adapters {
            let other = try XCTUnwrap(written.adapters[weight])
            XCTAssertEqual(other.aName, adapter.aName)
            XCTAssertEqual(other.a.toFloatArray(), adapter.a.toFloatArray())
            XCTAssertEqual(other.b.toFloatArray(), adapter.b.toFloatArray())
        }
        let adapted = try ModelRegistry.load(directory: Fixtures.path("models/\(name)"), lora: out)
        let logits = try adapted.forward(g.tokens, cache: adapted.makeCache(), allLogits: true)
        XCTAssertLessThanOrEqual(zip(logits, g.logits).map { abs($0 - $1) }.max() ?? .infinity, 1e-4)
    }

    /// Adapters that cannot apply are refused by name, never ignored.
    func testMismatchedAdaptersAreRefused() throws {
        // The llama adapter on qwen2-tiny: same names, but qwen2's k/v projections have other shapes or names.
        XCTAssertThrowsError(try ModelRegistry.load(directory: Fixtures.path("models/deepseek-v3-tiny"), lora: Fixtures.path("lora/llama-tiny/adapter"))) {
            XCTAssertTrue("\($0)".contains("adapter"), "\($0)")
        }
        let missing = temporary("empty")
        try FileManager.default.createDirectory(atPath: missing, withIntermediateDirectories: true)
        XCTAssertThrowsError(try PEFTAdapter(directory: missing)) { XCTAssertTrue("\($0)".contains("adapter_config.json"), "\($0)") }
        XCTAssertThrowsError(try DecoderTrainingModel.lora(path: Fixtures.path("models/llama-tiny"),
                                                           config: LoRAConfig(rank: 4, alpha: 8, targetModules: ["kv_b_proj"]), seed: 1)) {
            XCTAssertTrue("\($0)".contains("kv_b_proj"), "\($0)")
        }
    }

    /// QLoRA-style: LoRA over a Q8_0 GGUF base trains (the loss falls), only adapters are parameters, the file is untouched.
    func testLoRATrainsOnAQuantizedBase() throws {
        let path = Fixtures.path("gguf/qwen2-tiny-q8_0.gguf")
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let lora = LoRAConfig(rank: 8, alpha: 16, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        let model = try DecoderTrainingModel.lora(path: path, config: lora, seed: 3)
        XCTAssertTrue(model.stack.layers.count > 0)
        let adapterSize = model.adapters.values.reduce(0) { $0 + $1.a.elementCount + $1.b.elementCount }
        XCTAssertEqual(model.parameters.count, adapterSize)
        var settings = OptimizerSettings()
        settings.learningRate = 1e-2; settings.warmupSteps = 1; settings.totalSteps = 40; settings.weightDecay = 0
        let optimizer = AdamW(settings: settings, parameterCount: model.parameters.count)
        let tokens = (0..<32).map { ($0 * 7 + 3) % 200 }, shape = TrainingShape(batch: 1, length: 32)
        let targets = DecoderTrainingModel.nextTokenTargets(tokens, shape: shape)
        var losses: [Double] = []
        for _ in 0..<40 {
            model.parameters.zeroGradients()
            losses.append(try model.forwardBackward(tokens: tokens, targets: targets, shape: shape).loss)
            optimizer.update(model.parameters)
            try model.refresh()
        }
        print("LoRA on Q8_0: loss \(losses.first!) → \(losses.last!)")
        XCTAssertLessThan(losses.last!, 0.5 * losses.first!)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
    }

    /// `kujira merge`'s result loads as a plain model and gives the adapted (PEFT) logits.
    func testMergedModelGivesTheAdaptedLogits() throws {
        let g = try golden("llama-tiny")
        let base = try SFTTests.chatModel()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: base) }
        let out = temporary("merged")
        try LoRAMerge.merge(base: base, adapter: Fixtures.path("lora/llama-tiny/adapter"), out: out, dtype: .f32)
        let merged = try ModelRegistry.load(directory: out)
        let logits = try merged.forward(g.tokens, cache: merged.makeCache(), allLogits: true)
        XCTAssertLessThanOrEqual(zip(logits, g.logits).map { abs($0 - $1) }.max() ?? .infinity, 1e-4)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/tokenizer.json"))
        XCTAssertThrowsError(try LoRAMerge.merge(base: Fixtures.path("gguf/qwen2-tiny-q8_0.gguf"), adapter: Fixtures.path("lora/llama-tiny/adapter"),
                                                 out: temporary("gguf"), dtype: .f32)) { XCTAssertTrue("\($0)".contains("tokenizer.json"), "\($0)") }
    }
}
