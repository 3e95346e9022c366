import Foundation
import XCTest
import KujiraFormats
import KujiraModels

/// What `kujira inspect --config` derives from the real DeepSeek-V3 config (the published 671B model).
final class ModelSummaryTests: XCTestCase {
    func testDeepseekV3FullSizeFacts() throws {
        let config = try ModelConfig(path: FixturePaths.root.appendingPathComponent("configs/deepseek-v3-671b.json").path)
        let summary = try ModelSummary(config: config)
        // MLA caches c_kv (512) + k_pe (64) per layer: 576 values, 70,272 bytes per token at 16-bit over 61 layers.
        XCTAssertEqual(summary.kvValuesPerTokenPerLayer, 576)
        XCTAssertEqual(summary.kvValuesPerTokenPerLayer * summary.layers * 2, 70_272)
        XCTAssertEqual(summary.kvBytesPerToken(bits: 16), 70_272)
        // --kv-bits 8: 576 int8 codes + 18 four-byte scales (groups of 32) per layer = 648 bytes; 39,528 over 61 layers.
        XCTAssertEqual(summary.kvCacheGroupSize, 32)
        XCTAssertEqual(summary.kvBytesPerToken(bits: 8), 39_528)
        // DeepSeek reports 671B main-model parameters, 37B activated per token, and 685B in the HF checkpoint, whose
        // MTP layer also stores its own copies of the embedding and the output head.
        let mtp = try ParameterLayout.entries(for: config).filter { $0.name.hasPrefix("model.layers.61.") }.reduce(0) { $0 + $1.shape.reduce(1, *) }
        let copies = 2 * 129_280 * 7168
        XCTAssertEqual(Double(summary.totalParameters - mtp) / 1e9, 671, accuracy: 1)
        XCTAssertEqual(Double(summary.totalParameters + copies) / 1e9, 685, accuracy: 1)
        XCTAssertEqual(Double(summary.activeParameters) / 1e9, 37, accuracy: 1)
    }

    func summary(_ name: String) throws -> ModelSummary {
        try ModelSummary(config: ModelConfig(path: FixturePaths.root.appendingPathComponent("configs/\(name).json").path))
    }

    /// The published configs (scripts and sources in docs/inference.md) against their model cards: Qwen3-8B 8.2B;
    /// Qwen3-30B-A3B 30.5B total, 3.3B activated; DeepSeek-V4-Flash 284B total, 13B activated.
    func testPublishedConfigsGiveTheModelCardsCounts() throws {
        let qwen = try summary("qwen3-8b")
        XCTAssertEqual(Double(qwen.totalParameters) / 1e9, 8.2, accuracy: 0.05)
        XCTAssertEqual(qwen.activeParameters, qwen.totalParameters)
        XCTAssertEqual(qwen.kvBytesPerToken(bits: 16), 2 * 36 * 8 * 128 * 2)  // K and V, 36 layers, 8 KV heads of 128
        let moe = try summary("qwen3-30b-a3b")
        XCTAssertEqual(Double(moe.totalParameters) / 1e9, 30.5, accuracy: 0.05)
        XCTAssertEqual(Double(moe.activeParameters) / 1e9, 3.3, accuracy: 0.1)
        let v4 = try summary("deepseek-v4-flash")
        XCTAssertEqual(Double(v4.totalParameters) / 1e9, 284, accuracy: 1)
        // 13.8B with the embedding and output head, 12.7B without them; the card says 13B.
        XCTAssertEqual(Double(v4.activeParameters) / 1e9, 13.8, accuracy: 0.1)
        // Growing cache: 21 CSA layers × (512/4 latent + 128/4 indexer keys) + 20 HCA layers × 512/128 values per token.
        XCTAssertEqual(v4.kvValuesPerToken, 21 * (128 + 32) + 20 * 4)
        XCTAssertEqual(v4.kvBytesPerToken(bits: 16), 6880)
        let v32 = try summary("deepseek-v3.2-exp")
        XCTAssertEqual(v32.kvBytesPerTokenByStream(bits: 16).map(\.bytes), [70_272, 61 * 128 * 2])
        // V4-Flash's growing cache is 8% of V3.2's (the card: 7% at 1M tokens).
        XCTAssertEqual(Double(v4.kvBytesPerToken(bits: 16)) / Double(v32.kvBytesPerToken(bits: 16)), 0.08, accuracy: 0.005)
    }

    func testConfigSummaryAgreesWithLoadedModels() throws {
        for name in ["deepseek-v3-tiny-mtp", "deepseek-v2-lite-tiny", "qwen2-tiny", "llama-tiny", "qwen3-tiny", "qwen3-moe-tiny", "deepseek-v32-tiny", "deepseek-v4-tiny"] {
            let (config, weights) = try ModelRegistry.open(FixturePaths.model(name))
            let loaded = try ModelRegistry.build(config: config, weights: weights).summary
            let derived = try ModelSummary(config: config)
            XCTAssertEqual(derived.kvValuesPerTokenPerLayer, loaded.kvValuesPerTokenPerLayer, name)
            XCTAssertEqual(derived.layers, loaded.layers, name)
            XCTAssertEqual(derived.kvBytesPerToken(bits: 8), loaded.kvBytesPerToken(bits: 8), name)
            XCTAssertEqual(derived.totalParameters, loaded.totalParameters, name)
            XCTAssertEqual(derived.activeParameters, loaded.activeParameters, name)
        }
    }
}
