import Foundation
import XCTest
import KujiraModels

/// GGUF files converted by llama.cpp load and run: f32/f16 files reproduce the HF goldens, quantized files follow
/// llama.cpp's own greedy tokens.
final class GGUFModelTests: XCTestCase {
    static let ggufDirectory = FixturePaths.root.appendingPathComponent("gguf")

    struct LlamaCppGolden {
        let tokens: [Int]
        let greedy: [Int]
        let lastLogits: [Float]
    }

    static func llamaCppGoldens(_ file: String) throws -> [LlamaCppGolden] {
        let url = ggufDirectory.appendingPathComponent(file.replacingOccurrences(of: ".gguf", with: ".golden.json"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (json["cases"] as! [[String: Any]]).map {
            LlamaCppGolden(tokens: ($0["tokens"] as! [NSNumber]).map(\.intValue), greedy: ($0["greedy"] as! [NSNumber]).map(\.intValue),
                           lastLogits: ($0["last_logits"] as! [NSNumber]).map(\.floatValue))
        }
    }

    func model(_ file: String) throws -> any LanguageModel {
        try ModelRegistry.load(directory: Self.ggufDirectory.appendingPathComponent(file).path)
    }

    /// An f32 GGUF is the same function as the HF checkpoint it came from (same 1e-4 as the safetensors goldens).
    /// f16 files round every weight to half precision (~5e-4 relative), which moves logits by up to ~1e-2 here.
    func testFloatFilesReproduceTheHFGoldens() throws {
        for (file, source, tolerance) in [("deepseek-v3-tiny-f32.gguf", "deepseek-v3-tiny", Float(1e-4)), ("qwen2-tiny-f32.gguf", "qwen2-tiny", 1e-4),
                                          ("deepseek-v3-tiny-f16.gguf", "deepseek-v3-tiny", 2e-2), ("qwen2-tiny-f16.gguf", "qwen2-tiny", 2e-2),
                                          ("qwen3-tiny-f32.gguf", "qwen3-tiny", 1e-4), ("qwen3-moe-tiny-f32.gguf", "qwen3-moe-tiny", 1e-4)] {
            let model = try model(file)
            for golden in try Golden.load(FixturePaths.model(source)) {
                let logits = try model.forward(golden.tokens, cache: model.makeCache(), allLogits: true)
                var maxError: Float = 0
                for (t, row) in golden.logits.enumerated() {
                    for (v, expected) in row.enumerated() { maxError = max(maxError, abs(logits[t * model.vocabSize + v] - expected)) }
                }
                print("\(file) vs HF \(source): max |Δlogit| = \(maxError)")
                XCTAssertLessThanOrEqual(maxError, tolerance, "\(file) vs HF \(source)")
            }
        }
    }

    /// Quantized fixtures agree with llama.cpp where llama.cpp's own decision is robust: dense models' first-step
    /// logits are close to its logits, and wherever its top-2 margin is wide the top-1 token is the same. (MoE
    /// models are excluded from the closeness bound: where a router's top-k is a near-tie, 8-bit activations flip an
    /// expert and the logits jump by ~2 — the fixtures README warns of this.)
    /// (Exact greedy agreement is not required: llama.cpp itself changes 6 of these 49 four-token continuations
    /// when only its attention settings change — scripts/llama-cpp-gguf-fixtures-self-check.py, docs/inference.md.)
    func testQuantizedFilesFollowLlamaCpp() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.ggufDirectory.path).filter { $0.hasSuffix(".gguf") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 27)
        var worst: Float = 0
        for file in files {
            let model = try model(file)
            for (index, golden) in try Self.llamaCppGoldens(file).enumerated() {
                let logits = try model.forward(golden.tokens, cache: model.makeCache(), allLogits: false)
                let difference = zip(logits, golden.lastLogits).map { abs($0 - $1) }.max() ?? .infinity
                worst = max(worst, difference)
                if !file.hasPrefix("deepseek") {
                    XCTAssertLessThanOrEqual(difference, Self.logitTolerance, "\(file) case \(index): first-step logits")
                }
                let sorted = golden.lastLogits.sorted(by: >)
                if sorted[0] - sorted[1] > 4 * Self.logitTolerance {
                    XCTAssertEqual(argmax(logits), argmax(golden.lastLogits), "\(file) case \(index): first-step top-1")
                }
            }
        }
        print("largest first-step logit difference from llama.cpp over the quantized fixtures (MoE included): \(worst)")
    }

    /// Activation quantization (8-bit, both engines) and llama.cpp's f16 KV cache; llama.cpp's own settings move
    /// SmolLM2's logits by 0.4 (docs/inference.md).
    static let logitTolerance: Float = 0.25

    func testGGUFArchitecturesMapToTheirModels() throws {
        XCTAssertEqual(try model("deepseek-v3-tiny-q8_0.gguf").summary.architecture, "deepseek_v3")
        XCTAssertEqual(try model("deepseek-v3-tiny-q8_0.gguf").summary.kvValuesPerTokenPerLayer, 24)
        XCTAssertEqual(try model("qwen2-tiny-q8_0.gguf").summary.architecture, "qwen2")
        XCTAssertEqual(try model("llama-256-q4_k_m.gguf").summary.architecture, "llama")
        XCTAssertEqual(try model("qwen3-tiny-q8_0.gguf").summary.architecture, "qwen3")
        XCTAssertEqual(try model("qwen3-moe-tiny-q8_0.gguf").summary.architecture, "qwen3_moe")
    }

    func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}
