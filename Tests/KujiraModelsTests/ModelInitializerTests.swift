import Foundation
import XCTest
import KujiraFormats
import KujiraModels
import KujiraTensor

/// `kujira init` writes loadable, deterministic models whose tensors are exactly the architecture's layout.
final class ModelInitializerTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-init-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func testLayoutMatchesRealCheckpoints() throws {
        for name in ["llama-tiny", "qwen2-tiny", "deepseek-v2-lite-tiny", "qwen3-tiny", "qwen3-moe-tiny", "deepseek-v32-tiny", "deepseek-v4-tiny"] {
            let (config, weights) = try ModelRegistry.open(FixturePaths.model(name))
            let entries = try ParameterLayout.entries(for: config)
            let model = try ModelRegistry.build(config: config, weights: weights)
            // Integer tables (DeepSeek-V4's hash-routing `tid2eid`) are stored but are not parameters.
            XCTAssertEqual(entries.filter { $0.dtype.isFloatingPoint }.reduce(0) { $0 + $1.count }, model.summary.totalParameters, name)
            for entry in entries where !entry.name.contains(".experts.") {
                XCTAssertEqual(try weights.tensor(entry.name).shape, entry.shape, "\(name) \(entry.name)")
            }
        }
    }

    func testInitialisedModelsLoadAndAreDeterministic() throws {
        for name in ["deepseek-v3-tiny-mtp", "deepseek-v2-lite-tiny", "qwen2-tiny", "llama-tiny", "qwen3-tiny", "qwen3-moe-tiny", "deepseek-v32-tiny", "deepseek-v4-tiny"] {
            let config = try ModelConfig(path: FixturePaths.model(name))
            let a = directory.appendingPathComponent("\(name)-a").path, b = directory.appendingPathComponent("\(name)-b").path
            let c = directory.appendingPathComponent("\(name)-c").path
            try ModelInitializer.write(config: config, to: a, seed: 1)
            try ModelInitializer.write(config: config, to: b, seed: 1)
            try ModelInitializer.write(config: config, to: c, seed: 2, storage: .bf16)
            let modelA = try ModelRegistry.load(directory: a), modelB = try ModelRegistry.load(directory: b)
            let modelC = try ModelRegistry.load(directory: c)
            let logitsA = try modelA.forward([1, 2, 3], cache: modelA.makeCache(), allLogits: true)
            XCTAssertEqual(logitsA, try modelB.forward([1, 2, 3], cache: modelB.makeCache(), allLogits: true), name)
            XCTAssertNotEqual(logitsA, try modelC.forward([1, 2, 3], cache: modelC.makeCache(), allLogits: true), name)
            XCTAssertTrue(logitsA.allSatisfy(\.isFinite))
        }
    }

    func testInitialisedWeightsHaveTheRequestedScale() throws {
        let config = try ModelConfig(path: FixturePaths.model("llama-tiny"))
        try ModelInitializer.write(config: config, to: directory.path, seed: 3)
        let (_, weights) = try ModelRegistry.open(directory.path)
        let values = try weights.tensor("model.layers.0.mlp.gate_proj.weight").toFloatArray()
        let mean = values.reduce(0, +) / Float(values.count)
        let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.001)  // initializer_range of the config
        XCTAssertEqual(mean, 0, accuracy: 0.001)
        XCTAssertEqual(try weights.tensor("model.norm.weight").toFloatArray(), [Float](repeating: 1, count: 64))
    }

    func testInitialisedMTPModelHasTheModule() throws {
        let config = try ModelConfig(path: FixturePaths.model("deepseek-v3-tiny-mtp"))
        try ModelInitializer.write(config: config, to: directory.path, seed: 4)
        let model = try XCTUnwrap(try ModelRegistry.load(directory: directory.path) as? DeepseekV3Model)
        XCTAssertNotNil(model.multiTokenPrediction)
    }

    /// `--dtype fp8` writes DeepSeek-V3's layout: e4m3 projections with 128×128 `weight_scale_inv`, bf16 embeddings,
    /// head and router, and a `quantization_config`; every weight is the f32 init's within e4m3's rounding.
    func testFP8InitFollowsDeepSeekV3Layout() throws {
        let config = try ModelConfig(path: FixturePaths.model("deepseek-v3-tiny"))
        let f32 = directory.appendingPathComponent("f32").path, fp8 = directory.appendingPathComponent("fp8").path
        try ModelInitializer.write(config: config, to: f32, seed: 5)
        try ModelInitializer.write(config: config, to: fp8, seed: 5, storage: .fp8)
        let written = try ModelConfig(path: fp8)
        guard case let .object(quantization)? = written.values["quantization_config"] else { return XCTFail("no quantization_config") }
        XCTAssertEqual(quantization["weight_block_size"], .array([.integer(128), .integer(128)]))
        XCTAssertEqual(quantization["quant_method"], .string("fp8"))
        let (_, exact) = try ModelRegistry.open(f32), (_, quantized) = try ModelRegistry.open(fp8)
        XCTAssertEqual(try quantized.tensor("model.embed_tokens.weight").dtype, .bf16)
        XCTAssertEqual(try quantized.tensor("model.layers.1.mlp.gate.weight").dtype, .bf16)
        for name in ["model.layers.0.self_attn.kv_b_proj.weight", "model.layers.1.mlp.experts.3.down_proj.weight"] {
            let t = try quantized.tensor(name)
            XCTAssertEqual(t.dtype, .f8e4m3, name)
            let weight = try quantized.linear(name, rows: t.shape[0], cols: t.shape[1], blockSize: [128, 128])
            let scale = try XCTUnwrap(weight.blockScales).values.max()!
            for (a, b) in zip(try exact.tensor(name).toFloatArray(), weight.toFloatArray()) {
                // 3 mantissa bits: half a step is ≤ 1/16 of the value; below e4m3's normal range the step is 2^-9 · scale.
                XCTAssertLessThanOrEqual(abs(a - b), max(abs(a) / 16, scale / 512) * 1.0001, name)
            }
        }
        let model = try ModelRegistry.load(directory: fp8)
        XCTAssertTrue(try model.forward([1, 2, 3], cache: model.makeCache(), allLogits: true).allSatisfy(\.isFinite))
    }

    /// The streamed, parallel initialiser gives every tensor the values of ONE sequential N(0, σ) stream over the layout
    /// in order (two SplitMix64 draws per value), whatever the chunking; a DeepSeek-V4 model (grouped output projection
    /// whose rank does not fill FP8's 128-row blocks) written in fp8 loads and runs.
    func testWeightsContinueOneRandomStreamAndV4FP8Loads() throws {
        let config = try ModelConfig(path: FixturePaths.model("llama-tiny"))
        try ModelInitializer.write(config: config, to: directory.path, seed: 11)
        let (_, weights) = try ModelRegistry.open(directory.path)
        var random = SplitMix64(seed: 11)
        let std = Float(try config.float("initializer_range", default: 0.02))
        var checked = 0
        for entry in try ParameterLayout.entries(for: config) {
            guard case .normal = entry.initial else { continue }
            let expected = (0..<entry.shape.reduce(1, *)).map { _ in random.nextNormal() * std }
            XCTAssertEqual(try weights.tensor(entry.name).toFloatArray(), expected, entry.name)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 5)

        let v4 = directory.appendingPathComponent("v4-fp8").path
        try ModelInitializer.write(config: try ModelConfig(path: FixturePaths.model("deepseek-v4-tiny")), to: v4, seed: 2, storage: .fp8)
        let model = try ModelRegistry.load(directory: v4)
        XCTAssertTrue(try model.forward([1, 2, 3], cache: model.makeCache(), allLogits: true).allSatisfy(\.isFinite))
    }

    func testFP8EncoderRoundsToTheNearestCode() {
        for code in UInt8(0)..<0x7F {
            let value = FloatConversion.decodeF8E4M3(code)
            XCTAssertEqual(FP8BlockQuantizer.encode(value), code)
            if code > 0 { XCTAssertEqual(FP8BlockQuantizer.encode(-value), code | 0x80) }
        }
        XCTAssertEqual(FP8BlockQuantizer.encode(1000), 0x7E)  // saturates at 448
        XCTAssertEqual(FloatConversion.decodeF8E4M3(FP8BlockQuantizer.encode(1.06)), 1.0)  // 1, 1.125: nearest is 1
    }
}
