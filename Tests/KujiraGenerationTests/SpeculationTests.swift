import Foundation
@testable import KujiraGeneration
import KujiraModels
import KujiraTokenizer
import XCTest

/// Speculative decoding inside `TextSequence` (`Speculation.ngram`): the same tokens, events, logprobs and finish
/// reason as without it, greedy and sampled, while drafts are accepted; and the drafter itself.
final class SpeculationTests: XCTestCase {
    func testNgramDrafterTakesWhatFollowedTheLatestEarlierOccurrence() {
        XCTAssertEqual(NgramDrafter.draft([1, 2, 3, 4, 5, 9, 2, 3, 4], ngram: 3, maxDraft: 4), [5, 9, 2, 3])
        XCTAssertEqual(NgramDrafter.draft([1, 2, 3, 4, 5, 9, 2, 3, 4], ngram: 3, maxDraft: 1), [5])
        XCTAssertEqual(NgramDrafter.draft([7, 3, 4, 8, 1, 2, 3, 4], ngram: 3, maxDraft: 2), [8, 1], "falls back to 2-token suffixes")
        XCTAssertEqual(NgramDrafter.draft([1, 2, 3, 4], ngram: 3, maxDraft: 4), [], "no suffix recurs")
        XCTAssertEqual(NgramDrafter.draft([5, 5, 5, 5], ngram: 3, maxDraft: 4), [5], "the latest occurrence, up to the end")
        XCTAssertEqual(NgramDrafter.draft([4], ngram: 3, maxDraft: 4), [])
        XCTAssertEqual(NgramDrafter.draft([1, 2, 3, 4, 5], [9, 2, 3, 4], ngram: 3, maxDraft: 4), [5, 9, 2, 3], "prompt and output as one history")
    }

    func run(_ pipeline: TextPipeline, _ prompt: PreparedPrompt, sampling: SamplingConfiguration, speculation: Speculation, maxTokens: Int,
             logprobs: Bool = false) throws -> (events: [GenerationEvent], result: TextPipeline.Result) {
        var options = pipeline.options(maxTokens: maxTokens, sampling: sampling)
        options.speculation = speculation
        options.logprobs = logprobs
        options.topLogprobs = logprobs ? 2 : 0
        var events: [GenerationEvent] = []
        let result = try pipeline.run(prompt: prompt, options: options, slot: SequenceSlot(model: pipeline.model)) { events.append($0) }
        return (events, result)
    }

    /// The tiny test model loops when it writes long, so its own output gives the drafter material: identical output,
    /// drafts accepted, fewer forward passes than tokens.
    func testTinyModelSameOutputWithDraftsAccepted() throws {
        let pipeline = try TextPipeline.load(path: TextPipelineTests.tinyChat)
        let prompt = try pipeline.chatPrompt(messages: [["role": "user", "content": "Say something long, and repeat it."]])
        var accepted = 0
        var penalised = SamplingConfiguration(temperature: 0, presencePenalty: 0.5)
        penalised.logitBias = [42: 3]
        for sampling in [SamplingConfiguration(temperature: 0), SamplingConfiguration(temperature: 0.8, seed: 5), penalised] {
            let plain = try run(pipeline, prompt, sampling: sampling, speculation: .off, maxTokens: 200, logprobs: true)
            let fast = try run(pipeline, prompt, sampling: sampling, speculation: .ngram(ngram: 3, maxDraft: 6), maxTokens: 200, logprobs: true)
            XCTAssertEqual(fast.result.tokens, plain.result.tokens, "\(sampling)")
            XCTAssertEqual(fast.events, plain.events, "\(sampling)")
            XCTAssertEqual(fast.result.finishReason, plain.result.finishReason)
            XCTAssertEqual(fast.result.usage.completionTokens, plain.result.usage.completionTokens)
            XCTAssertEqual(plain.result.usage.draftedTokens, 0)
            accepted += fast.result.usage.acceptedDrafts
        }
        XCTAssertGreaterThan(accepted, 10, "the drafter found the model's repetitions (18 when written)")
    }

    /// SmolLM2 asked to repeat a passage (what prompt lookup is for): the same greedy text, most drafts accepted.
    func testSmolLM2RepeatingAPassage() throws {
        let path = ProcessInfo.processInfo.environment["SMOLLM2_GGUF"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/kujira/models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("no SmolLM2 GGUF (scripts/fetch-smollm2.sh)") }
        let pipeline = try TextPipeline.load(path: path, contextLength: 1024)
        let passage = "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step. "
            + "All that glitters is not gold. Actions speak louder than words."
        let prompt = try pipeline.chatPrompt(messages: [["role": "user", "content": .string("Repeat this text exactly: \(passage)")]])
        let plain = try run(pipeline, prompt, sampling: SamplingConfiguration(temperature: 0), speculation: .off, maxTokens: 60)
        let fast = try run(pipeline, prompt, sampling: SamplingConfiguration(temperature: 0), speculation: .defaultNgram, maxTokens: 60)
        XCTAssertEqual(fast.result.tokens, plain.result.tokens)
        XCTAssertEqual(fast.events, plain.events)
        let usage = fast.result.usage
        XCTAssertGreaterThan(usage.acceptedDrafts, usage.completionTokens / 3, "accepted \(usage.acceptedDrafts) of \(usage.draftedTokens)")
    }
}
