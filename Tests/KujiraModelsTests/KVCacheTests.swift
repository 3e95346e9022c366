import XCTest
import KujiraModels

/// The incremental path (prefill, then one token at a time) computes the same function as a full recompute.
final class KVCacheTests: XCTestCase {
    /// Each decode step's logits equal the last row of a recompute of the whole sequence so far. (That is the exact
    /// sense: DeepSeek-V3.2's reference picks among tied index scores by the length of the pass's row, so rows of a
    /// longer recompute can differ where ties sit at the top-k boundary; `SparseAttentionTests` covers the full rows.)
    func testIncrementalLogitsMatchFullRecompute() throws {
        for name in ["deepseek-v3-tiny", "deepseek-v2-lite-tiny", "qwen2-tiny", "llama-tiny", "deepseek-v3-tiny-fp8", "qwen3-tiny", "qwen3-moe-tiny",
                     "deepseek-v32-tiny", "deepseek-v4-tiny"] {
            let dir = FixturePaths.model(name)
            let model = try ModelRegistry.load(directory: dir)
            // The longest case: past DeepSeek-V3.2's index_topk, so its decode steps attend sparsely.
            let tokens = try Golden.load(dir).max { $0.tokens.count < $1.tokens.count }!.tokens
            let cache = model.makeCache()
            let split = tokens.count / 2, v = model.vocabSize
            var incremental = try model.forward(Array(tokens[..<split]), cache: cache, allLogits: true)
            for token in tokens[split...] {
                incremental += try model.forward([token], cache: cache, allLogits: true)
            }
            XCTAssertEqual(cache.length, tokens.count)
            XCTAssertEqual(incremental.count, tokens.count * v)
            var maxError: Float = 0
            for t in (split - 1)..<tokens.count {
                let recomputed = try model.forward(Array(tokens[...t]), cache: model.makeCache(), allLogits: false)
                maxError = max(maxError, zip(recomputed, incremental[(t * v)..<((t + 1) * v)]).map { abs($0 - $1) }.max() ?? 0)
            }
            XCTAssertLessThanOrEqual(maxError, 1e-4, name)
        }
    }

    func testTruncateRewindsTheCache() throws {
        let model = try ModelRegistry.load(directory: FixturePaths.model("deepseek-v3-tiny"))
        let cache = model.makeCache()
        _ = try model.forward([5, 6, 7, 8], cache: cache, allLogits: false)
        let expected = try model.forward([9], cache: cache, allLogits: false)
        cache.truncate(to: 4)
        let again = try model.forward([9], cache: cache, allLogits: false)
        XCTAssertEqual(expected, again)
        cache.truncate(to: 2)
        let different = try model.forward([9], cache: cache, allLogits: false)
        XCTAssertNotEqual(expected, different)
    }

    func testMLACacheStoresOnlyTheLatent() throws {
        let model = try ModelRegistry.load(directory: FixturePaths.model("deepseek-v3-tiny"))
        // kv_lora_rank 16 + qk_rope_head_dim 8 per token per layer.
        XCTAssertEqual(model.makeCache().rowWidth, 24)
        XCTAssertEqual(model.summary.kvValuesPerTokenPerLayer, 24)
    }

    func testBadTokensAreRejected() throws {
        let model = try ModelRegistry.load(directory: FixturePaths.model("llama-tiny"))
        XCTAssertThrowsError(try model.forward([1, 256], cache: model.makeCache(), allLogits: false)) { error in
            XCTAssertEqual(error as? ModelError, .tokenOutOfRange(token: 256, vocabSize: 256))
        }
        XCTAssertThrowsError(try model.forward([-1], cache: model.makeCache(), allLogits: false))
        XCTAssertThrowsError(try model.forward([], cache: model.makeCache(), allLogits: false))
        XCTAssertThrowsError(try model.forward(Array(repeating: 1, count: 513), cache: model.makeCache(), allLogits: false)) { error in
            XCTAssertEqual(error as? ModelError, .contextTooLong(requested: 513, maximum: 512))
        }
    }
}

/// Expert-load statistics count every routed token once per chosen expert.
final class ExpertLoadTests: XCTestCase {
    func testExpertLoadCountsRoutedTokens() throws {
        let model = try ModelRegistry.load(directory: FixturePaths.model("deepseek-v3-tiny"))
        let cache = model.makeCache()
        let load = ExpertLoad()
        cache.expertLoad = load
        _ = try model.forward(Array(1...20), cache: cache, allLogits: false)
        // Layers 1 and 2 are MoE with top-2 of 8: 20 tokens × 2 choices each.
        XCTAssertEqual(load.counts.keys.sorted(), [1, 2])
        for layer in [1, 2] { XCTAssertEqual(load.counts[layer]!.reduce(0, +), 40) }
        XCTAssertGreaterThanOrEqual(load.maxOverMean, 1)
        // Without a recorder nothing is collected and results are identical.
        let plain = try model.forward(Array(1...20), cache: model.makeCache(), allLogits: false)
        let again = model.makeCache()
        again.expertLoad = ExpertLoad()
        XCTAssertEqual(plain, try model.forward(Array(1...20), cache: again, allLogits: false))
    }
}
