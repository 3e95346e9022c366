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
}
