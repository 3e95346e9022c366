import Foundation
import XCTest
import KujiraGeneration
import KujiraModels
import KujiraTokenizer

/// The shared text pipeline on the tiny DeepSeek-V3 model with a 256-id DeepSeek-style tokenizer.
final class TextPipelineTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let tinyChat = fixtures.appendingPathComponent("server/tiny-chat").path

    func loadPipeline(contextLength: Int? = nil) throws -> TextPipeline {
        try TextPipeline.load(path: Self.tinyChat, contextLength: contextLength)
    }

    func collect(_ pipeline: TextPipeline, _ prompt: PreparedPrompt, _ options: GenerationOptions, slot: SequenceSlot? = nil)
        throws -> (reasoning: String, content: String, calls: [ToolCall], logprobs: [TokenLogprob], result: TextPipeline.Result)
    {
        var reasoning = "", content = "", calls: [ToolCall] = [], logprobs: [TokenLogprob] = []
        let result = try pipeline.run(prompt: prompt, options: options, slot: slot ?? SequenceSlot(model: pipeline.model)) { event in
            switch event {
            case .reasoning(let t): reasoning += t
            case .content(let t): content += t
            case .toolCalls(let c): calls += c
            case .logprob(let l): logprobs.append(l)
            }
        }
        return (reasoning, content, calls, logprobs, result)
    }

    func testChatPromptUsesTemplateAndStartsInReasoning() throws {
        let pipeline = try loadPipeline()
        let prompt = try pipeline.chatPrompt(messages: [["role": "system", "content": "Be brief."], ["role": "user", "content": "Hi"]])
        XCTAssertEqual(prompt.text, "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜><think>\n")
        XCTAssertTrue(prompt.startsInReasoning)
        XCTAssertEqual(prompt.tokens, pipeline.tokenizer.encode(prompt.text))
        XCTAssertEqual(prompt.tokens.first, 0)
        XCTAssertTrue(prompt.tokens.allSatisfy { $0 < pipeline.model.vocabSize })
        XCTAssertEqual(pipeline.stopTokens, [1, 10], "EOS from the config, <|EOT|> by name")
        XCTAssertNotNil(pipeline.toolCallFormat)
        XCTAssertNotNil(pipeline.fimFormat)
    }

    func testGreedyRunMatchesGeneratorAndAccountsTokens() throws {
        let pipeline = try loadPipeline()
        let prompt = try pipeline.chatPrompt(messages: [["role": "user", "content": "What is 2+2?"]])
        let options = GenerationOptions(maxTokens: 12, stopTokens: [])
        let run = try collect(pipeline, prompt, options)
        let reference = try Generator(model: pipeline.model).generate(prompt: prompt.tokens, maxTokens: 12,
                                                                      sampling: SamplingConfiguration(), stopTokens: [])
        XCTAssertEqual(run.result.tokens, reference)
        XCTAssertEqual(run.result.finishReason, .length)
        XCTAssertEqual(run.result.usage.completionTokens, 12)
        XCTAssertEqual(run.result.usage.promptTokens, prompt.tokens.count)
        XCTAssertEqual(run.result.usage.cachedPromptTokens, 0)
        // Reasoning + content is the decoded text minus the </think> tag.
        let decoded = pipeline.tokenizer.decode(reference, skipSpecialTokens: true)
        XCTAssertEqual(run.reasoning + run.content, decoded.replacingOccurrences(of: "</think>", with: ""))
        XCTAssertLessThanOrEqual(run.result.usage.reasoningTokens, 12)
    }

    func testSlotReusesPrefixWithoutChangingOutput() throws {
        let pipeline = try loadPipeline()
        let slot = SequenceSlot(model: pipeline.model)
        let options = GenerationOptions(maxTokens: 6, stopTokens: [])
        let first = try pipeline.chatPrompt(messages: [["role": "user", "content": "Tell me about whales."]])
        let a = try collect(pipeline, first, options, slot: slot)
        let again = try collect(pipeline, first, options, slot: slot)
        XCTAssertEqual(again.result.usage.cachedPromptTokens, first.tokens.count - 1)
        XCTAssertEqual(again.result.tokens, a.result.tokens)
        // A different prompt sharing a prefix reuses exactly the common part and matches a fresh slot.
        let second = try pipeline.chatPrompt(messages: [["role": "user", "content": "Tell me about dolphins."]])
        var common = 0
        while first.tokens[common] == second.tokens[common] { common += 1 }
        let reused = try collect(pipeline, second, options, slot: slot)
        let fresh = try collect(pipeline, second, options)
        XCTAssertEqual(reused.result.usage.cachedPromptTokens, common)
        XCTAssertEqual(reused.result.tokens, fresh.result.tokens)
    }

    func testStopStringCutsOutputAndNothingOfItLeaks() throws {
        let pipeline = try loadPipeline()
        let prompt = pipeline.completionPrompt("Once upon a time")
        var options = GenerationOptions(maxTokens: 24, stopTokens: [], splitReasoning: false)
        let full = try collect(pipeline, prompt, options)
        let scalars = Array(full.content.unicodeScalars)
        XCTAssertGreaterThan(scalars.count, 8)
        // A stop string taken from the middle of the unconstrained output.
        let stop = String(String.UnicodeScalarView(scalars[5..<8]))
        options.stopStrings = [stop]
        let stopped = try collect(pipeline, prompt, options)
        let expected = full.content.components(separatedBy: stop)[0]
        XCTAssertEqual(stopped.content, expected)
        XCTAssertEqual(stopped.result.finishReason, .stop)
    }

    func testSeededSamplingIsDeterministic() throws {
        let pipeline = try loadPipeline()
        let prompt = pipeline.completionPrompt("abc")
        var options = GenerationOptions(maxTokens: 16, sampling: SamplingConfiguration(temperature: 1, seed: 42), stopTokens: [],
                                        splitReasoning: false)
        let a = try collect(pipeline, prompt, options)
        let b = try collect(pipeline, prompt, options)
        XCTAssertEqual(a.result.tokens, b.result.tokens)
        options.sampling.seed = 43
        let c = try collect(pipeline, prompt, options)
        XCTAssertNotEqual(a.result.tokens, c.result.tokens)
    }

    /// JSON mode, checked with Foundation's parser rather than the validator that constrains generation: a finished
    /// reply parses as an object, and a reply cut at the length limit is a prefix of the same seed's longer reply that
    /// does parse (the constraint does not depend on the limit, so the cut one is that reply's start).
    func testJSONModeProducesAValidJSONPrefixOrObject() throws {
        let pipeline = try loadPipeline()
        let prompt = try pipeline.chatPrompt(messages: [["role": "user", "content": "Reply in JSON."]])
        var finished = 0, cut = 0
        for seed in 0..<6 as Range<UInt64> {
            func run(_ maxTokens: Int) throws -> (content: String, finish: FinishReason?) {
                var options = pipeline.options(maxTokens: maxTokens, sampling: SamplingConfiguration(temperature: 1, seed: seed))
                options.jsonObject = true
                options.splitReasoning = false
                let run = try collect(pipeline, prompt, options)
                return (run.content, run.result.finishReason)
            }
            let long = try run(400)
            guard long.finish == .stop else { continue }
            finished += 1
            let object = try JSONSerialization.jsonObject(with: Data(long.content.utf8))
            XCTAssertTrue(object is [String: Any], "seed \(seed): \(long.content)")
            let short = try run(6)
            if short.finish == .length {
                cut += 1
                XCTAssertTrue(long.content.hasPrefix(short.content), "seed \(seed): '\(short.content)' is not the start of '\(long.content)'")
                if short.content.count < long.content.trimmingCharacters(in: .whitespacesAndNewlines).count {
                    XCTAssertThrowsError(try JSONSerialization.jsonObject(with: Data(short.content.utf8)), "seed \(seed): a cut reply is incomplete")
                }
            }
        }
        XCTAssertGreaterThanOrEqual(finished, 2, "too few finished JSON replies to check")
        XCTAssertGreaterThanOrEqual(cut, 1, "no reply was cut at the limit")
    }

    func testLogprobsAreNormalisedAndIncludeTheChosenToken() throws {
        let pipeline = try loadPipeline()
        var options = GenerationOptions(maxTokens: 5, stopTokens: [], logprobs: true, topLogprobs: 3, splitReasoning: false)
        options.sampling = SamplingConfiguration(temperature: 0)
        let run = try collect(pipeline, pipeline.completionPrompt("xyz"), options)
        XCTAssertEqual(run.logprobs.count, 5)
        for (lp, token) in zip(run.logprobs, run.result.tokens) {
            XCTAssertEqual(lp.token, token)
            XCTAssertEqual(lp.top.count, 3)
            XCTAssertEqual(lp.top[0].token, token, "greedy picks the most likely token")
            XCTAssertEqual(lp.top[0].logprob, lp.logprob, accuracy: 1e-6)
            XCTAssertLessThanOrEqual(lp.logprob, 0)
            XCTAssertGreaterThanOrEqual(lp.top[0].logprob, lp.top[1].logprob)
        }
    }

    func testFIMPromptUsesDeepSeekTokens() throws {
        let pipeline = try loadPipeline()
        let prompt = try pipeline.fimPrompt(prefix: "def f(", suffix: "):")
        XCTAssertEqual(prompt.tokens.first, pipeline.tokenizer.tokenToId("<｜fim▁begin｜>"))
        XCTAssertEqual(prompt.tokens.last, pipeline.tokenizer.tokenToId("<｜fim▁end｜>"))
    }

    func testContextTooLongIsReported() throws {
        let pipeline = try loadPipeline(contextLength: 16)
        let prompt = pipeline.completionPrompt(String(repeating: "a", count: 40))
        XCTAssertThrowsError(try pipeline.makeSequence(prompt: prompt, options: GenerationOptions(maxTokens: 4))) { error in
            XCTAssertEqual(error as? TextPipelineError, .contextTooLong(promptTokens: prompt.tokens.count, contextLength: 16))
        }
    }

    func testForcedToolCallOpenerIsParsedIntoToolCalls() throws {
        let pipeline = try loadPipeline()
        let format = try XCTUnwrap(pipeline.toolCallFormat)
        // The forced output already holds a complete call; EOS right away must yield it as a tool call.
        let forced = format.callsBegin + format.callBegin + "function" + format.separator + "get_weather\n```json\n{\"city\": \"Oslo\"}\n```" + format.callEnd
        let prompt = try pipeline.chatPrompt(messages: [["role": "user", "content": "Weather?"]], forcedOutput: forced)
        let sequence = try pipeline.makeSequence(prompt: prompt, options: pipeline.options(maxTokens: 4))
        var logits = [Float](repeating: 0, count: pipeline.model.vocabSize)
        logits[1] = 10  // EOS
        let events = sequence.consume(logits: logits)
        XCTAssertEqual(events, [.toolCalls([ToolCall(name: "get_weather", arguments: "{\"city\": \"Oslo\"}")])])
        XCTAssertEqual(sequence.finishReason, .toolCalls)
    }
}
