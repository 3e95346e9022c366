import XCTest
import KujiraFormats
import KujiraModels

/// `decodeBatch` of several sequences (different prompts and cache lengths) gives, row by row, the logits each
/// sequence gets decoded alone — for every built-in architecture, quantized weights and every cache precision.
final class BatchedDecodeTests: XCTestCase {
    /// Five sequences of different lengths: the kernels' 4-token path and a 1-token tail both run.
    static let prompts = [[1, 2, 3], [7, 5, 3, 2, 9, 4, 11], [12, 4, 8, 15, 16, 23, 42, 8, 4, 2, 1, 6], [5], [3, 3, 3, 3, 3]]

    /// Largest |batched − alone| over every row of `steps` batched steps (greedy tokens from the single-sequence
    /// rows), for batches of the first 2, 3 and all 5 prompts.
    func maxDifference(_ model: any LanguageModel, steps: Int = 5) throws -> Float {
        try [2, 3, Self.prompts.count].map { try maxDifference(model, prompts: Array(Self.prompts.prefix($0)), steps: steps) }.max()!
    }

    func maxDifference(_ model: any LanguageModel, prompts: [[Int]], steps: Int) throws -> Float {
        let alone = prompts.map { _ in model.makeCache() }, batched = prompts.map { _ in model.makeCache() }
        var tokens: [Int] = []
        for (b, prompt) in prompts.enumerated() {
            let first = try model.forward(prompt, cache: alone[b], allLogits: false)
            XCTAssertEqual(try model.forward(prompt, cache: batched[b], allLogits: false), first)
            tokens.append(argmax(first[...]))
        }
        var worst: Float = 0
        for step in 0..<steps {
            let rows = Array(try model.decodeBatch(tokens, caches: batched))
            XCTAssertEqual(rows.count, tokens.count * model.vocabSize)
            for b in 0..<tokens.count {
                let single = Array(try model.decode(tokens[b], cache: alone[b]))
                let row = rows[(b * model.vocabSize)..<((b + 1) * model.vocabSize)]
                for i in 0..<single.count {
                    XCTAssertFalse(row[row.startIndex + i].isNaN, "step \(step) row \(b)")
                    worst = max(worst, abs(row[row.startIndex + i] - single[i]))
                }
                tokens[b] = argmax(single[...])
                XCTAssertEqual(batched[b].length, alone[b].length)
            }
        }
        return worst
    }

    func argmax(_ logits: ArraySlice<Float>) -> Int {
        var best = logits.startIndex
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best - logits.startIndex
    }

    func testFixtureModelsEveryCachePrecision() throws {
        for name in ["deepseek-v3-tiny", "deepseek-v2-lite-tiny", "qwen2-tiny", "llama-tiny", "qwen3-tiny", "qwen3-moe-tiny", "deepseek-v32-tiny", "deepseek-v4-tiny"] {
            for precision in KVCachePrecision.allCases {
                let model = try ModelRegistry.load(directory: FixturePaths.model(name), cachePrecision: precision)
                let worst = try maxDifference(model)
                XCTAssertEqual(worst, 0, "\(name), \(precision) cache: batched rows differ from single-sequence decoding by \(worst)")
            }
        }
    }

    func testQuantizedWeights() throws {
        let gguf = FixturePaths.root.appendingPathComponent("gguf")
        for path in [gguf.appendingPathComponent("qwen2-tiny-q8_0.gguf").path, gguf.appendingPathComponent("deepseek-v3-tiny-q4_0.gguf").path,
                     gguf.appendingPathComponent("qwen2-tiny-q4_k_m.gguf").path, FixturePaths.model("deepseek-v3-tiny-bf16")] {
            let model = try ModelRegistry.load(directory: path)
            let worst = try maxDifference(model)
            XCTAssertEqual(worst, 0, "\(path): batched rows differ from single-sequence decoding by \(worst)")
        }
    }

    /// A model with only `forward` gets `decode` and `decodeBatch` from the protocol extension (a loop over `decode`).
    func testDefaultImplementationLoopsOverDecode() throws {
        let model = ForwardOnlyModel(try ModelRegistry.load(directory: FixturePaths.model("llama-tiny")))
        let worst = try maxDifference(model)
        XCTAssertEqual(worst, 0)
    }

    func testBadBatchesThrow() throws {
        let model = try ModelRegistry.load(directory: FixturePaths.model("llama-tiny"))
        let a = model.makeCache(), b = model.makeCache()
        XCTAssertThrowsError(try model.decodeBatch([1, 2], caches: [a, a])) { XCTAssertEqual($0 as? ModelError, .duplicateCacheInBatch(index: 1)) }
        XCTAssertThrowsError(try model.decodeBatch([1, 2], caches: [a])) { XCTAssertEqual($0 as? ModelError, .batchMismatch(tokens: 2, caches: 1)) }
        XCTAssertThrowsError(try model.decodeBatch([], caches: [])) { XCTAssertEqual($0 as? ModelError, .emptyInput) }
        XCTAssertThrowsError(try model.decodeBatch([1, model.vocabSize], caches: [a, b])) {
            XCTAssertEqual($0 as? ModelError, .tokenOutOfRange(token: model.vocabSize, vocabSize: model.vocabSize))
        }
        XCTAssertEqual(a.length, 0, "a rejected batch leaves the caches untouched")
        XCTAssertEqual(b.length, 0)
    }
}

/// Delegates `forward` only, so `decode` and `decodeBatch` come from the `LanguageModel` extension.
private final class ForwardOnlyModel: LanguageModel, @unchecked Sendable {
    let base: any LanguageModel
    init(_ base: any LanguageModel) { self.base = base }
    var config: ModelConfig { base.config }
    var vocabSize: Int { base.vocabSize }
    var maxPositions: Int { base.maxPositions }
    func makeCache() -> KVCache { base.makeCache() }
    func forward(_ tokens: [Int], cache: KVCache, allLogits: Bool) throws -> [Float] { try base.forward(tokens, cache: cache, allLogits: allLogits) }
    var summary: ModelSummary { base.summary }
}
