import Foundation
import KujiraGeneration
import KujiraServer
import XCTest

/// Continuous batching: sequences decoding in the same round run as one `decodeBatch`, and greedy output is exactly
/// what each request gives alone.
final class ServerBatchingTests: XCTestCase {
    func testBatchedGreedyRequestsMatchEachAlone() async throws {
        let pipeline = try ServerFixtures.pipeline()
        let prompts = ["go", "Once upon a time there was", "1 2 3 4 5 6 7 8 9 10 11 12"]
        var options = pipeline.options(maxTokens: 24)
        options.stopTokens = []  // run all 24 steps, so the sequences stay in the batch together
        func text(_ events: [GenerationEvent]) -> String {
            events.map { event -> String in
                switch event {
                case .reasoning(let t): return "R:" + t
                case .content(let t): return "C:" + t
                default: return ""
                }
            }.joined()
        }
        func collect(_ handle: GenerationHandle) async -> (String, Int) {
            var out = "", completion = -1
            for await output in handle.stream {
                switch output {
                case .events(let events): out += text(events)
                case .finished(_, let usage): completion = usage.completionTokens
                case .failed(let error): XCTFail("\(error)")
                }
            }
            return (out, completion)
        }
        // Each request alone (one slot, so nothing is batched with it).
        let single = GenerationScheduler(pipeline: pipeline, maxConcurrent: 1, maxQueue: 4)
        var expected: [(String, Int)] = []
        for prompt in prompts {
            expected.append(await collect(try single.submit(prompt: pipeline.completionPrompt(prompt), options: options)))
        }
        XCTAssertEqual(single.largestDecodeBatch, 1)
        single.shutdown()
        // All three at once, on three slots: every round after the prefill decodes them as one batch.
        let scheduler = GenerationScheduler(pipeline: pipeline, maxConcurrent: 3, maxQueue: 4)
        scheduler.pause()
        let handles = try prompts.map { try scheduler.submit(prompt: pipeline.completionPrompt($0), options: options) }
        scheduler.resume()
        for (index, handle) in handles.enumerated() {
            let (out, completion) = await collect(handle)
            XCTAssertEqual(out, expected[index].0, "request \(index): batched text differs from the request alone")
            XCTAssertEqual(completion, expected[index].1, "request \(index)")
            XCTAssertEqual(completion, 24, "request \(index)")
        }
        XCTAssertEqual(scheduler.largestDecodeBatch, 3, "the three sequences decoded in one batched step")
        XCTAssertEqual(scheduler.activeCount, 0)
        scheduler.shutdown()
    }
}
