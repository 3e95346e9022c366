import Foundation
@testable import KujiraGeneration
import KujiraFormats
import KujiraModels
import KujiraTokenizer
import XCTest

/// Speculative decoding inside `TextSequence` (`Speculation.ngram`, `.mtp`, `.auto`): the same tokens, events, logprobs
/// and finish reason as without it, greedy and sampled, while drafts are accepted; the drafters and the drafting policy.
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

    static let arithmetic = DefaultModelTests.repository.appendingPathComponent("Models/kujira-arith").path

    /// The embedded model's trained MTP head drafts for it: identical output greedy, sampled and with penalties and
    /// logprobs, most drafts accepted — also when the prompt's prefix comes from the slot's cache (the module then
    /// starts at the first position run).
    func testMTPDraftsOnTheEmbeddedModelChangeNothing() throws {
        let pipeline = try TextPipeline.load(path: Self.arithmetic)
        var penalised = SamplingConfiguration(temperature: 0, presencePenalty: 0.3)
        penalised.logitBias = [9: 1]
        var accepted = 0, drafted = 0
        for problem in ["12+34", "987-654", "5+5"] {
            let prompt = try pipeline.chatPrompt(messages: [["role": "user", "content": .string("What is \(problem)?")]])
            for sampling in [SamplingConfiguration(temperature: 0), SamplingConfiguration(temperature: 0.9, seed: 3), penalised] {
                let plain = try run(pipeline, prompt, sampling: sampling, speculation: .off, maxTokens: 60, logprobs: true)
                for maxDraft in [1, 3] {
                    let fast = try run(pipeline, prompt, sampling: sampling, speculation: .mtp(maxDraft: maxDraft), maxTokens: 60, logprobs: true)
                    XCTAssertEqual(fast.result.tokens, plain.result.tokens, "\(problem) \(sampling) \(maxDraft)")
                    XCTAssertEqual(fast.events, plain.events)
                    XCTAssertEqual(fast.result.finishReason, plain.result.finishReason)
                    XCTAssertEqual(fast.result.usage.completionTokens, plain.result.usage.completionTokens)
                    accepted += fast.result.usage.acceptedDrafts
                    drafted += fast.result.usage.draftedTokens
                }
            }
        }
        XCTAssertGreaterThan(drafted, 100)
        XCTAssertGreaterThan(accepted, drafted / 2, "the trained head agrees with the model most of the time: \(accepted) of \(drafted)")

        // A second request on the same slot reuses the shared prefix of the prompt.
        let slot = SequenceSlot(model: pipeline.model)
        var options = pipeline.options(maxTokens: 40, sampling: SamplingConfiguration(temperature: 0))
        for problem in ["41+17", "41+18"] {
            let prompt = try pipeline.chatPrompt(messages: [["role": "user", "content": .string("What is \(problem)?")]])
            options.speculation = .off
            let plain = try pipeline.run(prompt: prompt, options: options, slot: SequenceSlot(model: pipeline.model)) { _ in }
            options.speculation = .mtp(maxDraft: 2)
            let fast = try pipeline.run(prompt: prompt, options: options, slot: slot) { _ in }
            XCTAssertEqual(fast.tokens, plain.tokens, problem)
            XCTAssertGreaterThan(fast.usage.acceptedDrafts, 0)
        }
        XCTAssertGreaterThan(slot.cache.length, 0)
    }

    /// `auto` (the CLI default) drafts with an MTP head only while that measures faster; on a model without one it
    /// does nothing, and `mtp` there is a clear error.
    func testAutoNeedsAnMTPHeadAndMTPSaysWhenThereIsNone() throws {
        let arithmetic = try TextPipeline.load(path: Self.arithmetic)
        XCTAssertEqual(arithmetic.speculation, .defaultAuto, "pipelines draft when it pays by default")
        let prompt = try arithmetic.chatPrompt(messages: [["role": "user", "content": "What is 123+456?"]])
        let plain = try run(arithmetic, prompt, sampling: SamplingConfiguration(temperature: 0), speculation: .off, maxTokens: 60)
        let auto = try run(arithmetic, prompt, sampling: SamplingConfiguration(temperature: 0), speculation: .defaultAuto, maxTokens: 60)
        XCTAssertEqual(auto.result.tokens, plain.result.tokens)
        XCTAssertEqual(auto.events, plain.events)
        XCTAssertGreaterThan(auto.result.usage.draftedTokens, 0, "auto measures drafting while warming up")

        let tiny = try TextPipeline.load(path: TextPipelineTests.tinyChat)
        let tinyPrompt = try tiny.chatPrompt(messages: [["role": "user", "content": "Hello"]])
        let tinyAuto = try run(tiny, tinyPrompt, sampling: SamplingConfiguration(temperature: 0), speculation: .defaultAuto, maxTokens: 20)
        XCTAssertEqual(tinyAuto.result.usage.draftedTokens, 0)
        XCTAssertEqual(tinyAuto.result.tokens, try run(tiny, tinyPrompt, sampling: SamplingConfiguration(temperature: 0), speculation: .off, maxTokens: 20).result.tokens)
        XCTAssertThrowsError(try run(tiny, tinyPrompt, sampling: SamplingConfiguration(temperature: 0), speculation: .mtp(maxDraft: 2), maxTokens: 5)) {
            XCTAssertTrue("\($0)".contains("MTP module"), "\($0)")
        }
        XCTAssertEqual(try Speculation(flag: "auto"), .defaultAuto)
        XCTAssertEqual(try Speculation(flag: "mtp", draftTokens: 2), .mtp(maxDraft: 2))
        XCTAssertThrowsError(try Speculation(flag: "mtp", draftTokens: 0))
        XCTAssertThrowsError(try Speculation(flag: "eagle"))
    }

    /// The policy: warm-up alternates drafting and plain steps, then the cheaper per token wins, the other is retried
    /// every `probeInterval` steps (so a change in cost is noticed), and the draft length follows acceptance.
    func testDraftingPolicyKeepsTheCheaperKindOfStep() {
        func settle(draftCost: Double, plainCost: Double) -> [Bool] {
            var policy = DraftingPolicy(maxDraft: 3, whenFaster: true, initialBudget: 1)
            var choices: [Bool] = []
            for _ in 0..<(2 * DraftingPolicy.warmupSteps + 2 * DraftingPolicy.probeInterval) {
                let drafting = policy.shouldDraft()
                choices.append(drafting)
                policy.recordTime(drafting: drafting, seconds: drafting ? 2 * draftCost : plainCost, tokens: drafting ? 2 : 1)
            }
            return choices
        }
        let warmup = 2 * DraftingPolicy.warmupSteps
        let slow = settle(draftCost: 1.5, plainCost: 1.0)
        XCTAssertEqual(Array(slow.prefix(warmup)), Array(repeating: [true, false], count: DraftingPolicy.warmupSteps).flatMap { $0 })
        XCTAssertEqual(slow.dropFirst(warmup).filter { $0 }.count, 2, "slower drafting is only re-tried: \(slow)")
        let fast = settle(draftCost: 0.6, plainCost: 1.0)
        XCTAssertEqual(fast.dropFirst(warmup).filter { !$0 }.count, 2, "faster drafting is kept: \(fast)")

        var policy = DraftingPolicy(maxDraft: 4, whenFaster: false, initialBudget: 1)
        XCTAssertTrue(policy.shouldDraft())
        policy.recordAcceptance(accepted: 1, drafted: 1)
        XCTAssertEqual(policy.budget, 2)
        policy.recordAcceptance(accepted: 2, drafted: 2)
        policy.recordAcceptance(accepted: 4, drafted: 4)
        XCTAssertEqual(policy.budget, 4, "at most maxDraft")
        policy.recordAcceptance(accepted: 0, drafted: 4)
        XCTAssertEqual(policy.budget, 1)
    }

    /// A draft model with the tiny chat model's tokenizer: the model itself (its greedy drafts agree until penalties or
    /// sampling choose otherwise) and a differently initialised copy (most drafts rejected) — the output is the same as
    /// without drafting every time; a draft model whose tokenizer differs is refused when loading.
    func testDraftModelChangesNothing() throws {
        let other = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-draft-\(UUID().uuidString)").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: other) }
        let source = URL(fileURLWithPath: TextPipelineTests.tinyChat)
        try ModelInitializer.write(config: try ModelConfig(path: source.appendingPathComponent("config.json").path), to: other, seed: 99)
        for file in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: source.appendingPathComponent(file).resolvingSymlinksInPath().path, toPath: other + "/" + file)
        }
        var penalised = SamplingConfiguration(temperature: 0, presencePenalty: 0.5)
        penalised.logitBias = [42: 3]
        for draft in [TextPipelineTests.tinyChat, other] {
            let pipeline = try TextPipeline.load(path: TextPipelineTests.tinyChat, speculation: .draft(maxDraft: 5), draftModel: draft)
            let prompt = try pipeline.chatPrompt(messages: [["role": "user", "content": "Say something long, and repeat it."]])
            var accepted = 0, drafted = 0, greedyAccepted = 0, greedyDrafted = 0
            for sampling in [SamplingConfiguration(temperature: 0), SamplingConfiguration(temperature: 0.8, seed: 5), penalised] {
                let plain = try run(pipeline, prompt, sampling: sampling, speculation: .off, maxTokens: 120, logprobs: true)
                let fast = try run(pipeline, prompt, sampling: sampling, speculation: .draft(maxDraft: 5), maxTokens: 120, logprobs: true)
                XCTAssertEqual(fast.result.tokens, plain.result.tokens, "\(draft) \(sampling)")
                XCTAssertEqual(fast.events, plain.events)
                XCTAssertEqual(fast.result.finishReason, plain.result.finishReason)
                accepted += fast.result.usage.acceptedDrafts
                drafted += fast.result.usage.draftedTokens
                if sampling.temperature == 0 && sampling.presencePenalty == 0 {
                    (greedyAccepted, greedyDrafted) = (fast.result.usage.acceptedDrafts, fast.result.usage.draftedTokens)
                }
            }
            XCTAssertGreaterThan(drafted, 0)
            if draft == TextPipelineTests.tinyChat {
                XCTAssertGreaterThan(greedyDrafted, 0)
                // Every draft but possibly the last: a draft that is the reply's stop token or its last allowed token ends the
                // reply instead of counting as accepted.
                XCTAssertGreaterThanOrEqual(greedyAccepted, greedyDrafted - 1, "the model drafting for itself greedily is right")
                XCTAssertLessThan(accepted, drafted, "sampling and penalties choose otherwise at times")
            } else {
                XCTAssertLessThan(accepted, drafted, "a different model's drafts are rejected at times: \(accepted) of \(drafted)")
            }
        }
        XCTAssertThrowsError(try TextPipeline.load(path: TextPipelineTests.tinyChat, speculation: .draft(maxDraft: 4), draftModel: Self.arithmetic)) {
            XCTAssertTrue("\($0)".contains("tokenizer"), "\($0)")
        }
        XCTAssertThrowsError(try TextPipeline.load(path: TextPipelineTests.tinyChat, speculation: .draft(maxDraft: 4))) {
            XCTAssertTrue("\($0)".contains("draft model"), "\($0)")
        }
    }

    /// The MTP drafter fed in batches while it does not draft (`feedIfFull` keeps the newest row back) drafts exactly what
    /// a drafter fed everything at once drafts: entry p pairs hidden state p with token p + 1 either way.
    func testMTPDrafterFedInBatchesDraftsTheSame() throws {
        let model = try XCTUnwrap(try ModelRegistry.load(directory: Self.arithmetic) as? DeepseekV3Model)
        let mtp = try XCTUnwrap(model.multiTokenPrediction)
        let tokens = (0..<(MTPDrafter.feedBatch + 9)).map { [8, 9, 17, 10, 20, 12, 22][$0 % 7] }
        let hidden = model.stack.hiddenStates(tokens, cache: model.makeCache())
        let batched = MTPDrafter(stack: model.stack, mtp: mtp, startPosition: 0)
        let whole = MTPDrafter(stack: model.stack, mtp: mtp, startPosition: 0)
        hidden.withUnsafeBufferPointer { h in
            for p in 0..<tokens.count {
                batched.record(UnsafeBufferPointer(rebasing: h[(p * mtp.hidden)..<((p + 1) * mtp.hidden)]), rows: 1)
                batched.feedIfFull(knownTokens: p + 1, token: { tokens[$0] })
            }
            whole.record(h, rows: tokens.count)
        }
        XCTAssertGreaterThan(batched.cache.length, 0, "a batch was fed")
        XCTAssertGreaterThan(batched.pendingRows, 0, "the newest row is kept back")
        let a = batched.draft(count: 2, knownTokens: tokens.count, token: { tokens[$0] })
        let b = whole.draft(count: 2, knownTokens: tokens.count, token: { tokens[$0] })
        XCTAssertEqual(a.count, 2)
        XCTAssertEqual(a, b)
        XCTAssertEqual(batched.cache.length, tokens.count - 1, "chained entries dropped, every known pair kept")
    }
}
