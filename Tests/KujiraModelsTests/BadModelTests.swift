import Foundation
import XCTest
import KujiraFormats
import KujiraModels

/// Loading a model whose files disagree gives an error naming the file, tensor or key — never a crash.
final class BadModelTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    /// Copies a fixture, letting `edit` change its config dictionary.
    func copyFixture(_ name: String, edit: (inout [String: Any]) -> Void) throws -> String {
        try FixturePaths.editedCopy(of: name, into: directory, edit: edit)
    }

    func testShapeThatDisagreesWithTheConfig() throws {
        let dir = try copyFixture("deepseek-v3-tiny") { $0["kv_lora_rank"] = 32 }
        XCTAssertThrowsError(try ModelRegistry.load(directory: dir)) { error in
            guard case let .shapeMismatch(name, file, expected, found)? = error as? WeightStoreError else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "model.layers.0.self_attn.kv_a_proj_with_mqa.weight")
            XCTAssertTrue(file.hasSuffix("model.safetensors"))
            XCTAssertEqual(expected, [40, 64])
            XCTAssertEqual(found, [24, 64])
        }
    }

    func testMissingTensorIsNamed() throws {
        let dir = try copyFixture("llama-tiny") { $0["num_hidden_layers"] = 3 }
        XCTAssertThrowsError(try ModelRegistry.load(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("model.layers.2."), "\(error)")
        }
    }

    func testMissingRequiredKeyIsNamed() throws {
        let dir = try copyFixture("deepseek-v3-tiny") { $0.removeValue(forKey: "qk_rope_head_dim") }
        XCTAssertThrowsError(try ModelRegistry.load(directory: dir)) { error in
            XCTAssertEqual(error as? ConfigError, .missingKey(path: self.directory.appendingPathComponent("config.json").path, key: "qk_rope_head_dim"))
        }
    }

    func testUnknownModelType() throws {
        let dir = try copyFixture("llama-tiny") { $0["model_type"] = "mamba" }
        XCTAssertThrowsError(try ModelRegistry.load(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("mamba"))
        }
    }

    func testImpossibleRouterSettings() throws {
        let dir = try copyFixture("deepseek-v3-tiny") { $0["n_group"] = 3 }
        XCTAssertThrowsError(try ModelRegistry.load(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("n_group"), "\(error)")
        }
    }

    func testUnknownKeysAreIgnored() throws {
        let dir = try copyFixture("qwen2-tiny") { $0["some_future_key"] = ["nested": true] }
        XCTAssertNoThrow(try ModelRegistry.load(directory: dir))
    }

    func testTruncatedWeightsFileNamesTheFile() throws {
        let dir = try copyFixture("qwen2-tiny") { _ in }
        let weights = directory.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: weights)
        try data.prefix(data.count - 100).write(to: weights)
        XCTAssertThrowsError(try ModelRegistry.load(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains(weights.path), "\(error)")
        }
    }
}
