import XCTest
import KujiraModels

/// Every fixture model reproduces HF transformers' logits and greedy tokens.
final class GoldenLogitsTests: XCTestCase {
    func check(_ name: String, tolerance: Float) throws {
        let dir = FixturePaths.model(name)
        let model = try ModelRegistry.load(directory: dir)
        for (index, golden) in try Golden.load(dir).enumerated() {
            let logits = try model.forward(golden.tokens, cache: model.makeCache(), allLogits: true)
            XCTAssertEqual(logits.count, golden.tokens.count * model.vocabSize)
            XCTAssertEqual(golden.logits[0].count, model.vocabSize, "\(name) case \(index): golden rows are the whole vocabulary")
            var maxError: Float = 0
            for (t, row) in golden.logits.enumerated() {
                for (v, expected) in row.enumerated() { maxError = max(maxError, abs(logits[t * model.vocabSize + v] - expected)) }
            }
            print("\(name) case \(index) (\(golden.tokens.count) tokens): max |Δlogit| = \(maxError)")
            XCTAssertLessThanOrEqual(maxError, tolerance, "\(name) case \(index)")
        }
    }

    func testDeepseekV3() throws { try check("deepseek-v3-tiny", tolerance: 1e-4) }
    func testDeepseekV3BF16() throws { try check("deepseek-v3-tiny-bf16", tolerance: 1e-4) }
    func testDeepseekV3FP8() throws { try check("deepseek-v3-tiny-fp8", tolerance: 1e-3) }
    func testDeepseekV2Lite() throws { try check("deepseek-v2-lite-tiny", tolerance: 1e-4) }
    func testQwen2() throws { try check("qwen2-tiny", tolerance: 1e-4) }
    func testLlama() throws { try check("llama-tiny", tolerance: 1e-4) }
    func testQwen3() throws { try check("qwen3-tiny", tolerance: 1e-4) }
    func testQwen3MoE() throws { try check("qwen3-moe-tiny", tolerance: 1e-4) }
    func testDeepseekV32() throws { try check("deepseek-v32-tiny", tolerance: 1e-4) }
    func testDeepseekV4() throws { try check("deepseek-v4-tiny", tolerance: 1e-4) }
}
