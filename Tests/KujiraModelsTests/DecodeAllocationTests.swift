import XCTest
import KujiraModels
import AllocationCounting

/// Heap allocations made by `body` on any thread of this process.
func countAllocations(_ body: () throws -> Void) rethrows -> Int {
    kujira_allocations_start()
    defer { _ = kujira_allocations_stop() }
    try body()
    return kujira_allocations_stop()
}

/// The fewest allocations over three windows of `body`: the counter sees every thread of the process, and on a busy
/// machine a worker thread may run a chunk for the first time (the Swift runtime's one-time lazy setup) or another
/// thread may allocate inside the window. A decode loop that allocates per token allocates in every window, so the
/// minimum still catches it.
func steadyStateAllocations(_ body: () throws -> Void) rethrows -> Int {
    var fewest = Int.max
    for _ in 0..<3 where fewest > 0 { fewest = min(fewest, try countAllocations(body)) }
    return fewest
}

/// A decoding step (`LanguageModel.decode`) through the whole model reuses the sequence's workspace: once the
/// buffers have grown, it makes no heap allocation at all (counted by interposing malloc: Tests/AllocationCounting).
final class DecodeAllocationTests: XCTestCase {
    func allocationsPerStep(_ model: any LanguageModel, steps: Int = 16) throws -> Int {
        try XCTSkipUnless(kujira_allocations_available() == 1, "allocations are counted by interposing glibc's malloc")
        let cache = model.makeCache()
        cache.reserve(128)
        _ = try model.forward(Array(1...8), cache: cache, allLogits: false)
        var token = 9
        for _ in 0..<4 { token = argmax(try model.decode(token, cache: cache)) }  // workspace grows to the n = 1 sizes
        var checksum: Float = 0
        let count = try steadyStateAllocations {
            for _ in 0..<steps {
                let logits = try model.decode(token, cache: cache)
                checksum += logits[0]
                token = argmax(logits)
            }
        }
        XCTAssertTrue(checksum.isFinite)
        return count
    }

    func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return best
    }

    func testDecodeStepsDoNotAllocate() throws {
        for name in ["deepseek-v3-tiny", "deepseek-v2-lite-tiny", "llama-tiny", "qwen2-tiny", "qwen3-tiny", "qwen3-moe-tiny", "deepseek-v32-tiny", "deepseek-v4-tiny"] {
            for precision in KVCachePrecision.allCases {
                let model = try ModelRegistry.load(directory: FixturePaths.model(name), cachePrecision: precision)
                XCTAssertEqual(try allocationsPerStep(model), 0, "\(name), \(precision) cache: allocations in 16 decode steps")
            }
        }
    }

    /// Kernel scratch (activation quantization for block formats, phase-split activations for F16/BF16/FP8).
    func testQuantizedWeights() throws {
        let gguf = FixturePaths.root.appendingPathComponent("gguf")
        for path in [FixturePaths.model("deepseek-v3-tiny-bf16"), FixturePaths.model("deepseek-v3-tiny-fp8"),
                     gguf.appendingPathComponent("deepseek-v3-tiny-q4_0.gguf").path, gguf.appendingPathComponent("qwen2-tiny-q8_0.gguf").path,
                     gguf.appendingPathComponent("deepseek-v3-tiny-f16.gguf").path] {
            let model = try ModelRegistry.load(directory: path)
            XCTAssertEqual(try allocationsPerStep(model), 0, "\(path): allocations in 16 decode steps")
        }
    }

    /// A LoRA adapter applied unmerged (PEFT's, on every projection) adds its two small products from the linear
    /// kernels' per-thread scratch: still no allocation per token.
    func testDecodeWithALoRAAdapterDoesNotAllocate() throws {
        for name in ["llama-tiny", "qwen3-tiny"] {
            let adapter = FixturePaths.root.appendingPathComponent("lora/\(name)/adapter").path
            let model = try ModelRegistry.load(directory: FixturePaths.model(name), lora: adapter)
            XCTAssertEqual(try allocationsPerStep(model), 0, "\(name) with its LoRA adapter: allocations in 16 decode steps")
        }
    }

    /// A batched step of 3 sequences (`decodeBatch`) reuses the first cache's workspace: no allocation either.
    func testBatchedDecodeStepsDoNotAllocate() throws {
        try XCTSkipUnless(kujira_allocations_available() == 1, "allocations are counted by interposing glibc's malloc")
        let gguf = FixturePaths.root.appendingPathComponent("gguf")
        for path in [FixturePaths.model("deepseek-v3-tiny"), FixturePaths.model("qwen2-tiny"), gguf.appendingPathComponent("qwen2-tiny-q8_0.gguf").path] {
            let model = try ModelRegistry.load(directory: path)
            let caches = (0..<3).map { _ in model.makeCache() }
            for (b, cache) in caches.enumerated() {
                cache.reserve(128)
                _ = try model.forward(Array(1...(3 + 2 * b)), cache: cache, allLogits: false)
            }
            var tokens = [9, 10, 11]
            func step() throws -> Float {
                let logits = try model.decodeBatch(tokens, caches: caches)
                for b in 0..<tokens.count {
                    tokens[b] = argmax(UnsafeBufferPointer(rebasing: logits[(b * model.vocabSize)..<((b + 1) * model.vocabSize)]))
                }
                return logits[0]
            }
            for _ in 0..<4 { _ = try step() }  // the workspace grows to the n = 3 sizes
            var checksum: Float = 0
            let count = try steadyStateAllocations {
                for _ in 0..<16 { checksum += try step() }
            }
            XCTAssertTrue(checksum.isFinite)
            XCTAssertEqual(count, 0, "\(path): allocations in 16 batched decode steps of 3 sequences")
        }
    }

    /// The counter itself sees allocations (so a zero above is a measurement, not a dead hook).
    func testCounterSeesAllocations() throws {
        let model = try ModelRegistry.load(directory: FixturePaths.model("llama-tiny"))
        let cache = model.makeCache()
        let count = try countAllocations { _ = try model.forward([1, 2, 3], cache: cache, allLogits: true) }
        XCTAssertGreaterThan(count, 0)
    }

    /// `decode` returns the same logits as `forward` of one token.
    func testDecodeMatchesForward() throws {
        for name in ["deepseek-v3-tiny", "llama-tiny"] {
            let model = try ModelRegistry.load(directory: FixturePaths.model(name))
            let a = model.makeCache(), b = model.makeCache()
            _ = try model.forward([1, 2, 3], cache: a, allLogits: false)
            _ = try model.forward([1, 2, 3], cache: b, allLogits: false)
            for token in [4, 5, 6] {
                XCTAssertEqual(Array(try model.decode(token, cache: a)), try model.forward([token], cache: b, allLogits: false), name)
            }
        }
    }
}
