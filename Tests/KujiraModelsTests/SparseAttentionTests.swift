import Foundation
import XCTest
import KujiraFormats
import KujiraModels

/// DeepSeek-V3.2's sparse attention is really in the path: the same weights attending densely miss the goldens
/// wherever a query sees more than `index_topk` tokens, and the indexer keys are a second cache stream.
final class SparseAttentionTests: XCTestCase {
    func maxError(_ model: any LanguageModel, _ golden: GoldenCase) throws -> Float {
        let logits = try model.forward(golden.tokens, cache: model.makeCache(), allLogits: true)
        XCTAssertEqual(golden.logits.count, golden.tokens.count)
        var worst: Float = 0
        for (t, row) in golden.logits.enumerated() {
            for (v, expected) in row.enumerated() { worst = max(worst, abs(logits[t * model.vocabSize + v] - expected)) }
        }
        return worst
    }

    func testDenseAttentionMissesTheSparseGolden() throws {
        let dir = FixturePaths.model("deepseek-v32-tiny")
        var values = try ModelConfig(path: dir).values
        let topK = try ModelConfig(path: dir).int("index_topk")
        values["index_topk"] = .integer(4096)
        let dense = try ModelRegistry.build(config: ModelConfig(values: values, path: dir), weights: SafeTensorsStore(directory: dir))
        let sparse = try ModelRegistry.load(directory: dir)
        let cases = try Golden.load(dir)
        let short = try XCTUnwrap(cases.first { $0.tokens.count <= topK }), long = try XCTUnwrap(cases.first { $0.tokens.count > 2 * topK })
        // Up to index_topk tokens every query sees all of them: dense and sparse are one function.
        XCTAssertLessThanOrEqual(try maxError(dense, short), 1e-4)
        XCTAssertLessThanOrEqual(try maxError(sparse, long), 1e-4)
        let denseError = try maxError(dense, long)
        print("deepseek-v32-tiny, \(long.tokens.count) tokens attended densely: max |Δlogit| = \(denseError)")
        XCTAssertGreaterThan(denseError, 1e-2)
    }

    func testIndexerKeysAreASecondCacheStream() throws {
        let dir = FixturePaths.model("deepseek-v32-tiny")
        let summary = try ModelSummary(config: ModelConfig(path: dir))
        // Per layer: the latent (kv_lora_rank 16 + rope 8) and the indexer key (index_head_dim 16), 3 layers.
        XCTAssertEqual(summary.kvBytesPerTokenByStream(bits: 16).map(\.name), ["latent", "indexer keys"])
        XCTAssertEqual(summary.kvBytesPerTokenByStream(bits: 16).map(\.bytes), [3 * 24 * 2, 3 * 16 * 2])
        XCTAssertEqual(summary.kvBytesPerToken(bits: 32), 3 * (24 + 16) * 4)
        let model = try ModelRegistry.load(directory: dir)
        let cache = model.makeCache()
        _ = try model.forward([1, 2, 3], cache: cache, allLogits: false)
        XCTAssertEqual(cache.layout[0].map(\.width), [24, 16])
        XCTAssertEqual(cache.bytesPerToken, summary.kvBytesPerToken(bits: 32))
        XCTAssertNotEqual(cache.rows(layer: 2, stream: 1).value(row: 2, index: 0), 0)
    }

    /// DeepSeek-V4's 40-token case runs past its sliding window (8), closes HCA windows (every 8 tokens) and has more CSA
    /// entries (every 2 tokens) than its indexer keeps (4): widening the window or keeping every entry misses the golden.
    func testDeepseekV4WindowAndIndexerAreInThePath() throws {
        let dir = FixturePaths.model("deepseek-v4-tiny")
        let config = try ModelConfig(path: dir)
        let long = try XCTUnwrap(try Golden.load(dir).first { $0.tokens.count >= 40 })
        XCTAssertLessThanOrEqual(try maxError(try ModelRegistry.load(directory: dir), long), 1e-4)
        for (key, value) in [("sliding_window", 1024), ("index_topk", 1024)] {
            var values = config.values
            values[key] = .integer(value)
            let changed = try ModelRegistry.build(config: ModelConfig(values: values, path: dir), weights: SafeTensorsStore(directory: dir))
            let error = try maxError(changed, long)
            print("deepseek-v4-tiny with \(key) \(value): max |Δlogit| = \(error)")
            XCTAssertGreaterThan(error, 1e-2, key)
        }
    }

    /// V4's cache: a window of `sliding_window` rows per layer (fixed), compressed entries per layer (one per 8 tokens in
    /// HCA layers, one per 2 in the CSA layer) and the CSA indexer's keys (one per 2 tokens); compressor state is fixed.
    func testDeepseekV4CacheGrowsWithCompressedEntriesOnly() throws {
        let dir = FixturePaths.model("deepseek-v4-tiny")
        let summary = try ModelSummary(config: ModelConfig(path: dir))
        // head_dim 32, index_head_dim 16; layers 0–2 HCA (rate 8), layer 3 CSA (rate 2).
        let perToken = 3 * 32.0 / 8 + 32.0 / 2 + 16.0 / 2
        XCTAssertEqual(summary.kvValuesPerToken, perToken)
        XCTAssertEqual(summary.kvBytesPerToken(bits: 32), Int((perToken * 4).rounded(.up)))
        XCTAssertEqual(summary.kvFixedBytes(bits: 32), 4 * (4 * 8 * 32) + 3 * (8 * 64 * 4) + (2 * 2 * 128 * 4) + (2 * 2 * 64 * 4))
        let model = try ModelRegistry.load(directory: dir)
        let cache = model.makeCache()
        _ = try model.forward(long(40), cache: cache, allLogits: false)
        XCTAssertEqual(cache.rows(layer: 0, stream: 1).count, 5)
        XCTAssertEqual(cache.rows(layer: 3, stream: 1).count, 20)
        XCTAssertEqual(cache.rows(layer: 3, stream: 4).count, 20)
        XCTAssertFalse(cache.canKeepPrefix)
        XCTAssertEqual(cache.truncate(to: 30), 0, "a compressed cache starts over rather than keep a prefix")
    }

    private func long(_ n: Int) -> [Int] { (0..<n).map { ($0 * 37 + 11) % 256 } }
}
