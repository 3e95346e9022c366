import XCTest
import KujiraModels
import KujiraTensor

/// `CausalAttention` runs heads in parallel once a prompt or context is long: the logits must be the same bits on
/// 1 and 2 threads (each head's scores and sums are computed in one order whatever the split), for grouped-query
/// attention and MLA, for a long prompt (heads split over the threads) and the decode steps after it.
final class AttentionThreadingTests: XCTestCase {
    func logits(_ model: any LanguageModel, prompt: [Int], decodeSteps: Int) throws -> [Float] {
        let cache = model.makeCache()
        var out = try model.forward(prompt, cache: cache, allLogits: true)
        var token = prompt.last!
        for _ in 0..<decodeSteps {
            let row = try model.decode(token, cache: cache)
            out += row
            token = row.indices.max { row[$0] < row[$1] }!
        }
        return out
    }

    func testLongContextsGiveTheSameBitsOnOneAndTwoThreads() throws {
        let pool = ThreadPool.shared
        try XCTSkipIf(pool.maxThreads < 2, "one core: nothing runs in parallel")
        let saved = pool.activeThreads
        defer { pool.setActiveThreads(saved) }
        for (name, length) in [("qwen2-tiny", 300), ("deepseek-v3-tiny", 200)] {
            let model = try ModelRegistry.load(directory: FixturePaths.model(name))
            // Long enough that the prefill splits its heads over the pool (≥ 8k score/accumulate pairs per head range);
            // the decode steps after it (a few hundred pairs per head) stay on the caller.
            let prompt = (0..<length).map { ($0 * 37 + 11) % model.vocabSize }
            pool.setActiveThreads(1)
            let one = try logits(model, prompt: prompt, decodeSteps: 40)
            pool.setActiveThreads(2)
            let two = try logits(model, prompt: prompt, decodeSteps: 40)
            XCTAssertEqual(one.count, two.count)
            XCTAssertEqual(one.map(\.bitPattern), two.map(\.bitPattern), "\(name): logits differ between 1 and 2 threads")
            XCTAssertTrue(one.allSatisfy(\.isFinite), "\(name)")
        }
    }
}
