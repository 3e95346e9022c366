import Foundation
@testable import KujiraGeneration
import KujiraTokenizer
import XCTest

/// `PrefixCache` between slots: a second conversation with the same system prompt on a fresh slot imports the shared
/// blocks, and generates exactly what it generates without them.
final class PrefixCacheSlotTests: XCTestCase {
    func testAFreshSlotImportsTheSharedSystemPrompt() throws {
        let pipeline = try TextPipeline.load(path: TextPipelineTests.tinyChat)
        let system = String(repeating: "You are a careful assistant who answers briefly. ", count: 3)
        func prompt(_ question: String) throws -> PreparedPrompt {
            try pipeline.chatPrompt(messages: [["role": "system", "content": .string(system)], ["role": "user", "content": .string(question)]])
        }
        let cache = try PrefixCache(model: "tiny", layout: pipeline.model.makeCache().layoutDescription, blockSize: 32, budgetBytes: 1 << 20)
        func run(_ question: String, slot: SequenceSlot, shared: PrefixCache?) throws -> TextPipeline.Result {
            let sequence = try pipeline.makeSequence(prompt: try prompt(question), options: pipeline.options(maxTokens: 8))
            sequence.attach(to: slot, prefixCache: shared)
            while !sequence.isFinished { _ = try sequence.step(model: pipeline.model, slot: slot) }
            return TextPipeline.Result(finishReason: sequence.finishReason ?? .stop, usage: sequence.usage, tokens: sequence.generated)
        }
        let first = try run("What is 2+2?", slot: SequenceSlot(model: pipeline.model), shared: cache)
        XCTAssertEqual(first.usage.cachedPromptTokens, 0)
        XCTAssertGreaterThan(cache.residentBytes, 0)
        let withCache = try run("Name a colour.", slot: SequenceSlot(model: pipeline.model), shared: cache)
        let without = try run("Name a colour.", slot: SequenceSlot(model: pipeline.model), shared: nil)
        let common = zip(try prompt("What is 2+2?").tokens, try prompt("Name a colour.").tokens).prefix { $0 == $1 }.count
        XCTAssertEqual(withCache.usage.cachedPromptTokens, common / 32 * 32, "every whole shared block (\(common) tokens in common)")
        XCTAssertGreaterThanOrEqual(withCache.usage.cachedPromptTokens, 64)
        XCTAssertEqual(withCache.tokens, without.tokens)
    }
}
