import Foundation
import XCTest
import KujiraFormats
import KujiraModels

/// `kujira init` writes loadable, deterministic models whose tensors are exactly the architecture's layout.
final class ModelInitializerTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-init-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func testLayoutMatchesRealCheckpoints() throws {
        for name in ["llama-tiny", "qwen2-tiny", "deepseek-v2-lite-tiny"] {
            let (config, weights) = try ModelRegistry.open(FixturePaths.model(name))
            let entries = try ParameterLayout.entries(for: config)
            let model = try ModelRegistry.build(config: config, weights: weights)
            XCTAssertEqual(entries.reduce(0) { $0 + $1.shape.reduce(1, *) }, model.summary.totalParameters, name)
            for entry in entries where !entry.name.contains(".experts.") {
                XCTAssertEqual(try weights.tensor(entry.name).shape, entry.shape, "\(name) \(entry.name)")
            }
        }
    }

    func testInitialisedModelsLoadAndAreDeterministic() throws {
        for name in ["deepseek-v3-tiny-mtp", "deepseek-v2-lite-tiny", "qwen2-tiny", "llama-tiny"] {
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
}
