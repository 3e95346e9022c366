import Foundation
import XCTest
import KujiraGeneration
import KujiraModels

/// Greedy decoding through the KV cache reproduces HF `generate(do_sample=False)` on every fixture (the goldens
/// run past EOS, so EOS does not stop these runs).
final class GreedyGoldenTests: XCTestCase {
    static let models = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models")

    func testGreedyContinuationsMatchGoldens() throws {
        for name in ["deepseek-v3-tiny", "deepseek-v3-tiny-bf16", "deepseek-v3-tiny-fp8", "deepseek-v2-lite-tiny", "qwen2-tiny", "llama-tiny", "qwen3-tiny", "qwen3-moe-tiny", "deepseek-v32-tiny", "deepseek-v4-tiny"] {
            let dir = Self.models.appendingPathComponent(name)
            let model = try ModelRegistry.load(directory: dir.path)
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("golden.json"))) as! [String: Any]
            for (index, c) in (json["cases"] as! [[String: Any]]).enumerated() {
                let tokens = (c["tokens"] as! [NSNumber]).map(\.intValue)
                let greedy = (c["greedy"] as! [NSNumber]).map(\.intValue)
                XCTAssertFalse(greedy.isEmpty)
                let generated = try Generator(model: model).generate(prompt: tokens, maxTokens: greedy.count,
                                                                     sampling: SamplingConfiguration(temperature: 0), stopTokens: [])
                XCTAssertEqual(generated, greedy, "\(name) case \(index)")
            }
        }
    }

    func testSamplingIsDeterministicPerSeed() throws {
        let model = try ModelRegistry.load(directory: Self.models.appendingPathComponent("llama-tiny").path)
        let sampling = SamplingConfiguration(temperature: 1.0, topK: 50, topP: 0.9, seed: 7)
        let a = try Generator(model: model).generate(prompt: [1, 2, 3], maxTokens: 12, sampling: sampling, stopTokens: [])
        let b = try Generator(model: model).generate(prompt: [1, 2, 3], maxTokens: 12, sampling: sampling, stopTokens: [])
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.count, 12)
        var other = sampling
        other.seed = 8
        let c = try Generator(model: model).generate(prompt: [1, 2, 3], maxTokens: 12, sampling: other, stopTokens: [])
        XCTAssertNotEqual(a, c)
    }

    func testInvalidSamplingConfigurationsAreRejected() throws {
        XCTAssertThrowsError(try LogitProcessor(SamplingConfiguration(temperature: -1)))
        XCTAssertThrowsError(try LogitProcessor(SamplingConfiguration(temperature: 1, topP: 0)))
        XCTAssertThrowsError(try LogitProcessor(SamplingConfiguration(temperature: 1, topK: -3)))
    }
}
