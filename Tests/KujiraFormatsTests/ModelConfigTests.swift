import Foundation
import XCTest
import KujiraFormats

/// config.json in both published forms, and errors that name the key.
final class ModelConfigTests: XCTestCase {
    func config(_ json: String) throws -> ModelConfig { try ModelConfig(data: Data(json.utf8), path: "config.json") }

    func testDeepseekAIForm() throws {
        let rope = try config(#"{"rope_theta": 10000, "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}}"#).rope()
        XCTAssertEqual(rope.type, "yarn")
        XCTAssertEqual(rope.theta, 10000)
        XCTAssertEqual(rope.factor, 40)
        XCTAssertEqual(rope.originalMaxPositionEmbeddings, 4096)
        XCTAssertEqual(rope.mscaleAllDim, 1.0)
    }

    func testTransformers5Form() throws {
        let rope = try config(#"{"rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}"#).rope()
        XCTAssertEqual(rope.type, "llama3")
        XCTAssertEqual(rope.theta, 500000)
        XCTAssertEqual(rope.highFreqFactor, 4)
        let plain = try config(#"{"rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}"#).rope()
        XCTAssertEqual(plain, RopeConfig.plain(theta: 1_000_000))
        XCTAssertEqual(try config(#"{}"#).rope(), RopeConfig.plain(theta: 10000))
    }

    func testFixtureConfigsParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/models")
        XCTAssertEqual(try ModelConfig(path: root.appendingPathComponent("deepseek-v3-tiny").path).rope().type, "yarn")
        XCTAssertEqual(try ModelConfig(path: root.appendingPathComponent("deepseek-v2-lite-tiny").path).rope().mscale, 0.707)
        XCTAssertEqual(try ModelConfig(path: root.appendingPathComponent("llama-tiny").path).rope().type, "llama3")
    }

    func testErrorsNameTheKey() throws {
        let c = try config(#"{"hidden_size": "big", "vocab_size": 1.5, "q_lora_rank": null, "unknown_key": [1, {"x": 2}]}"#)
        XCTAssertThrowsError(try c.int("num_hidden_layers")) { XCTAssertEqual($0 as? ConfigError, .missingKey(path: "config.json", key: "num_hidden_layers")) }
        XCTAssertThrowsError(try c.int("hidden_size")) { XCTAssertEqual($0 as? ConfigError, .wrongType(path: "config.json", key: "hidden_size", expected: "an integer")) }
        XCTAssertThrowsError(try c.int("vocab_size"))
        XCTAssertNil(try c.optionalInt("q_lora_rank"))
        XCTAssertThrowsError(try c.modelType) { XCTAssertTrue("\($0)".contains("model_type")) }
    }

    func testUnsupportedRopeTypeAndBadJSON() throws {
        XCTAssertThrowsError(try config(#"{"rope_scaling": {"type": "dynamic-ish", "factor": 2}}"#).rope()) { XCTAssertTrue("\($0)".contains("dynamic-ish")) }
        XCTAssertThrowsError(try config(#"{"rope_scaling": {"type": "yarn"}}"#).rope()) { XCTAssertTrue("\($0)".contains("factor")) }
        XCTAssertThrowsError(try config("[1]")) { XCTAssertEqual($0 as? ConfigError, .invalidJSON(path: "config.json")) }
        XCTAssertThrowsError(try ModelConfig(path: "/nonexistent/config.json")) { XCTAssertEqual($0 as? ConfigError, .unreadable(path: "/nonexistent/config.json")) }
    }

    func testBooleansAreNotNumbers() throws {
        let c = try config(#"{"flag": true, "n": 1}"#)
        XCTAssertEqual(try c.bool("flag", default: false), true)
        XCTAssertThrowsError(try c.int("flag"))
        XCTAssertEqual(try c.int("n"), 1)
    }
}

/// Configs written back keep integers and floats apart (transformers' strict config classes check the types).
final class JSONWritingTests: XCTestCase {
    func testRoundTripKeepsFloatsAndIntegers() throws {
        let source = #"{"routed_scaling_factor": 1.0, "hidden_size": 64, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "name": "a\"b\n", "list": [1, 2.5, null, true], "nested": {}}"#
        let config = try ModelConfig(data: Data(source.utf8), path: "config.json")
        XCTAssertEqual(config.values["routed_scaling_factor"], .number(1))
        XCTAssertEqual(config.values["hidden_size"], .integer(64))
        let written = String(decoding: JSONValue.object(config.values).serialized(pretty: false), as: UTF8.self)
        XCTAssertEqual(written, #"{"hidden_size":64,"list":[1,2.5,null,true],"name":"a\"b\n","nested":{},"rms_norm_eps":1e-06,"rope_theta":10000.0,"routed_scaling_factor":1.0}"#)
        let again = try ModelConfig(data: JSONValue.object(config.values).serialized(), path: "again.json")
        XCTAssertEqual(again.values, config.values)
        XCTAssertEqual(try again.int("hidden_size"), 64)
        XCTAssertEqual(try again.float("routed_scaling_factor"), 1.0)
    }
}
