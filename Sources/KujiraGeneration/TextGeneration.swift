import Foundation
import KujiraModels
import KujiraTokenizer

/// What to generate and when to stop, for one request.
public struct GenerationOptions: Sendable {
    /// Most new tokens (the context length may stop earlier).
    public var maxTokens: Int
    public var sampling: SamplingConfiguration
    /// Text that ends generation; it is not part of the output.
    public var stopStrings: [String]
    /// Token ids that end generation (EOS); not part of the output text.
    public var stopTokens: Set<Int>
    /// Report each token's log-probability, with `topLogprobs` alternatives.
    public var logprobs: Bool
    public var topLogprobs: Int
    /// Constrain the output to one JSON object (`response_format: {type: json_object}`).
    public var jsonObject: Bool
    /// Constrain the output to one JSON value valid against this schema (`response_format: {type: json_schema}`).
    public var jsonSchema: JSONSchema?
    /// Parse tool calls written in this format into `.toolCalls` events.
    public var toolCallFormat: ToolCallFormat?
    /// Tokens that may never be sampled (e.g. the tool-call opener under `tool_choice: none`).
    public var bannedTokens: Set<Int>
    /// Split `<think>…</think>` into reasoning events.
    public var splitReasoning: Bool
    /// Draft tokens and verify them in one forward pass (`Speculation`; the output does not change).
    public var speculation: Speculation = .off
    /// The drafting model of `Speculation.draft` (same tokenizer as the model).
    public var draftModel: (any LanguageModel)?

    public init(maxTokens: Int, sampling: SamplingConfiguration = SamplingConfiguration(), stopStrings: [String] = [],
                stopTokens: Set<Int> = [], logprobs: Bool = false, topLogprobs: Int = 0, jsonObject: Bool = false,
                toolCallFormat: ToolCallFormat? = nil, bannedTokens: Set<Int> = [], splitReasoning: Bool = true) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopTokens = stopTokens
        self.logprobs = logprobs
        self.topLogprobs = topLogprobs
        self.jsonObject = jsonObject
        self.toolCallFormat = toolCallFormat
        self.bannedTokens = bannedTokens
        self.splitReasoning = splitReasoning
    }
}

/// A piece of streamed output, in order.
public enum GenerationEvent: Sendable, Equatable {
    /// Thinking text (inside `<think>…</think>`).
    case reasoning(String)
    /// Answer text.
    case content(String)
    /// Function calls parsed from the model's tool-call tokens (sent once, at the end).
    case toolCalls([ToolCall])
    /// The log-probability of the token just chosen.
    case logprob(TokenLogprob)
}

/// Why generation ended (OpenAI's `finish_reason`, plus `cancelled` for a client that went away).
public enum FinishReason: String, Sendable, Equatable {
    case stop
    case length
    case toolCalls = "tool_calls"
    case cancelled
}

/// Token counts of one request (OpenAI/DeepSeek `usage`).
public struct GenerationUsage: Sendable, Equatable {
    public var promptTokens = 0
    /// Prompt tokens whose KV cache was reused from the slot's previous request.
    public var cachedPromptTokens = 0
    public var completionTokens = 0
    /// Completion tokens generated inside the reasoning block.
    public var reasoningTokens = 0
    /// Speculation: tokens drafted, and how many of them the model's own choice confirmed.
    public var draftedTokens = 0, acceptedDrafts = 0

    public init() {}
    public var totalTokens: Int { promptTokens + completionTokens }

    /// The usage of several choices of one prompt (`n` > 1): the prompt counted once (as the first choice saw its
    /// cache), completion and reasoning tokens summed.
    public static func choices(_ usages: [GenerationUsage]) -> GenerationUsage {
        var total = usages.first ?? GenerationUsage()
        total.completionTokens = usages.reduce(0) { $0 + $1.completionTokens }
        total.reasoningTokens = usages.reduce(0) { $0 + $1.reasoningTokens }
        return total
    }
    public var uncachedPromptTokens: Int { promptTokens - cachedPromptTokens }
}

/// A prompt ready to run: its ids, its text, and where the template left the model.
public struct PreparedPrompt: Sendable, Equatable {
    public var tokens: [Int]
    public var text: String
    /// The rendered prompt ends inside an open `<think>` (DeepSeek-R1 style templates).
    public var startsInReasoning: Bool
    /// Output text forced by the request (e.g. a tool-call opener for `tool_choice`), already part of `tokens`.
    public var forcedOutput: String

    public init(tokens: [Int], text: String, startsInReasoning: Bool = false, forcedOutput: String = "") {
        self.tokens = tokens
        self.text = text
        self.startsInReasoning = startsInReasoning
        self.forcedOutput = forcedOutput
    }
}

/// A KV cache plus the ids it holds: one per concurrent sequence; the next request on the slot reuses the longest
/// common prefix of its prompt (`prompt_cache_hit_tokens`).
public final class SequenceSlot {
    public let cache: KVCache
    /// The ids whose keys/values are in `cache`, in order.
    public private(set) var tokens: [Int] = []

    public init(model: any LanguageModel) { cache = model.makeCache() }

    /// Keeps the longest common prefix with `prompt` (at most `prompt.count - 1` tokens, since the last prompt
    /// token must run to give logits) and returns its length.
    public func reusePrefix(of prompt: [Int]) -> Int {
        var common = 0
        let limit = min(tokens.count, prompt.count - 1, cache.length)
        while common < limit && tokens[common] == prompt[common] { common += 1 }
        // A cache with windows or compressed streams cannot keep a prefix: it restarts empty (truncate says so).
        common = cache.truncate(to: common)
        tokens.removeLast(tokens.count - common)
        return common
    }

    /// Records ids just appended to the cache by a forward pass.
    public func didFeed(_ ids: [Int]) { tokens.append(contentsOf: ids) }

    /// Keeps the first `count` tokens (all or nothing for caches that cannot keep a prefix); returns what is kept.
    @discardableResult
    public func truncate(to count: Int) -> Int {
        let kept = cache.truncate(to: count)
        tokens.removeLast(tokens.count - min(tokens.count, kept))
        return kept
    }

    /// Records one decoded token (no array built).
    public func didFeed(token: Int) { tokens.append(token) }

    /// Forgets everything (after a failed forward pass the cache contents are unknown).
    public func reset() {
        cache.truncate(to: 0)
        tokens.removeAll()
    }
}

/// One request's generation as a state machine: `nextInput()` gives the ids to run, `consume(logits:)` takes the
/// last row of logits and returns the text events. A scheduler can interleave many sequences (or batch their
/// inputs into one forward pass) because the forward call lives outside.
public final class TextSequence {
    public let prompt: PreparedPrompt
    public let options: GenerationOptions
    public let contextLength: Int
    public private(set) var usage = GenerationUsage()
    public private(set) var finishReason: FinishReason?
    /// Ids generated so far (stop tokens included).
    public private(set) var generated: [Int] = []
    /// The logits row being chosen from, reused across decoding steps.
    private var row: [Float] = []

    private let tokenizer: Tokenizer
    private var processor: LogitProcessor
    private var detokenizer: StreamingDetokenizer
    private var matcher: StopStringMatcher
    private var splitter: ReasoningSplitter?
    private var json: JSONPrefixValidator?
    private var schemaJSON: JSONSchemaValidator?
    private var inToolCalls = false
    private var toolText = ""
    /// Drafts for the next step (`prepareDrafts`).
    private var drafts: [Int] = []
    /// Where the prompt's rows go once its prefill is done (`attach(to:prefixCache:)`).
    private var prefixCache: PrefixCache?
    /// When to draft and how many (`Speculation`); nil without speculation.
    private var policy: DraftingPolicy?
    /// The MTP drafter (`Speculation.mtp` / `.auto` on a model with an MTP module), made on the first step.
    private var mtpDrafter: MTPDrafter?
    /// The draft model's drafter (`Speculation.draft`), made on the first draft.
    private var modelDrafter: ModelDrafter?
    private var mtpResolved = false
    /// Next prompt position to feed (prefill runs in chunks so other sequences are not starved).
    private var promptCursor = 0
    private var lastToken: Int?
    /// Prompt ids fed per forward pass while prefilling.
    public var prefillChunk = 512

    public init(prompt: PreparedPrompt, options: GenerationOptions, tokenizer: Tokenizer, contextLength: Int) throws {
        guard options.maxTokens >= 0 else {
            throw GenerationError.invalidParameter(name: "max_tokens", detail: "must be ≥ 0, got \(options.maxTokens)")
        }
        guard !prompt.tokens.isEmpty else { throw GenerationError.invalidParameter(name: "prompt", detail: "is empty") }
        guard prompt.tokens.count < contextLength else {
            throw TextPipelineError.contextTooLong(promptTokens: prompt.tokens.count, contextLength: contextLength)
        }
        self.prompt = prompt
        self.options = options
        self.contextLength = contextLength
        self.tokenizer = tokenizer
        try options.sampling.validate(vocabularySize: tokenizer.vocabSize)
        processor = try LogitProcessor(options.sampling, promptTokens: prompt.tokens)
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var markers = options.stopStrings
        if let format = options.toolCallFormat { markers.append(format.callsBegin) }
        matcher = StopStringMatcher(markers)
        if options.splitReasoning { splitter = ReasoningSplitter(startsInReasoning: prompt.startsInReasoning) }
        if options.jsonObject { json = JSONPrefixValidator() }
        if let schema = options.jsonSchema { schemaJSON = JSONSchemaValidator(schema: schema) }
        usage.promptTokens = prompt.tokens.count
        policy = options.speculation.initialPolicy
        if !prompt.forcedOutput.isEmpty { _ = process(prompt.forcedOutput) }
        if options.maxTokens == 0 { finishReason = .length }
    }

    /// Binds the sequence to a slot, reusing the slot's cached prefix, then extending it from the shared `prefixCache`
    /// (which also receives this prompt's blocks once they are computed).
    public func attach(to slot: SequenceSlot, prefixCache: PrefixCache? = nil) {
        var reused = slot.reusePrefix(of: prompt.tokens)
        if let prefixCache { reused = prefixCache.restore(prompt: prompt.tokens, into: slot, holding: reused) }
        self.prefixCache = prefixCache
        usage.cachedPromptTokens = reused
        promptCursor = reused
    }

    public var isFinished: Bool { finishReason != nil }

    /// Ids to run next: a chunk of the prompt, or the last generated token.
    public func nextInput() -> [Int] {
        if promptCursor < prompt.tokens.count {
            return Array(prompt.tokens[promptCursor..<min(prompt.tokens.count, promptCursor + prefillChunk)])
        }
        return lastToken.map { [$0] } ?? []
    }

    /// The token a decoding step runs next (the prompt is fully fed and the sequence is not finished), else nil (a
    /// prefill chunk is next, or nothing). A scheduler runs these for many sequences as one `decodeBatch` and hands
    /// each its row through `consumeDecoded`.
    public var pendingDecodeToken: Int? {
        guard !isFinished, promptCursor >= prompt.tokens.count else { return nil }
        return lastToken
    }

    /// Runs `nextInput()` through the model on `slot` and consumes the logits. A decoding step goes through
    /// `LanguageModel.decode` and the sequence's reused logits row, so the model part of the step does not allocate.
    public func step(model: any LanguageModel, slot: SequenceSlot) throws -> [GenerationEvent] {
        guard !isFinished else { return [] }
        let drafter = try mtpDrafter(model: model, slot: slot)
        if let token = pendingDecodeToken {
            if let drafter { return try mtpStep(token, drafter: drafter, model: model, slot: slot) }
            if drafts.isEmpty { _ = prepareDrafts(slot: slot) }
            if !drafts.isEmpty { return try speculate(token, model: model, slot: slot) }
            let logits: UnsafeBufferPointer<Float>
            do {
                logits = try model.decode(token, cache: slot.cache)
            } catch {
                slot.reset()
                throw error
            }
            return consumeDecoded(logits: logits, slot: slot)
        }
        let input = nextInput()
        var logits: [Float]
        do {
            if let drafter {
                let hidden = try hiddenStates(input, drafter: drafter, model: model, slot: slot)
                drafter.record(UnsafeBufferPointer(hidden), rows: input.count)
                logits = Array(drafter.stack.lastLogits(fromHidden: hidden, n: input.count, workspace: slot.cache.workspace))
                drafter.feed(knownTokens: prompt.tokens.count + generated.count, token: token(at:))
            } else {
                logits = try model.forward(input, cache: slot.cache, allLogits: false)
            }
        } catch {
            slot.reset()
            throw error
        }
        slot.didFeed(input)
        if promptCursor < prompt.tokens.count {
            promptCursor += input.count
            if promptCursor < prompt.tokens.count { return [] }
            prefixCache?.insert(prompt: prompt.tokens, cache: slot.cache)
        }
        return consume(logits: logits)
    }

    /// Drafts for the next step when speculation is on, a token is pending and the cache can drop rejected drafts; true
    /// when there are some, or when an MTP drafter runs this sequence (a scheduler then runs it with `step` instead of
    /// in its batched decode).
    public func prepareDrafts(slot: SequenceSlot) -> Bool {
        drafts = []
        if mtpDrafter != nil { return pendingDecodeToken != nil }
        guard let policy, pendingDecodeToken != nil, slot.cache.canKeepPrefix else { return false }
        let room = min(policy.budget, contextLength - slot.cache.length - 1, options.maxTokens - generated.count)
        guard room > 0 else { return false }
        switch options.speculation {
        case let .ngram(ngram, _):
            drafts = NgramDrafter.draft(prompt.tokens, generated, ngram: ngram, maxDraft: room)
        case .draft:
            guard let draftModel = options.draftModel else { return false }
            if modelDrafter == nil { modelDrafter = ModelDrafter(model: draftModel) }
            // A failing draft model only costs the speculation: this step decodes plainly, later ones do not draft.
            do { drafts = try modelDrafter!.draft(prompt.tokens, generated, count: room) } catch { self.policy = nil }
        case .off, .mtp, .auto:
            return false
        }
        return !drafts.isEmpty
    }

    /// The id at `position` of prompt + output.
    private func token(at position: Int) -> Int {
        position < prompt.tokens.count ? prompt.tokens[position] : generated[position - prompt.tokens.count]
    }

    /// The MTP drafter, made on the first step under `.mtp` / `.auto` when the model has an MTP module and the cache can
    /// drop rejected drafts; `.mtp` without them is an error.
    private func mtpDrafter(model: any LanguageModel, slot: SequenceSlot) throws -> MTPDrafter? {
        guard !mtpResolved else { return mtpDrafter }
        mtpResolved = true
        let required: Bool
        switch options.speculation {
        case .mtp: required = true
        case .auto: required = false
        case .off, .ngram, .draft: return nil
        }
        guard let stackModel = model as? any DecoderStackModel, let mtp = stackModel.multiTokenPrediction, slot.cache.canKeepPrefix,
              policy != nil, slot.cache.length == promptCursor else {
            if required {
                throw GenerationError.invalidParameter(name: "speculative", detail: "mtp needs a model with an MTP module (num_nextn_predict_layers ≥ 1) whose cache can drop drafts")
            }
            self.policy = nil
            return nil
        }
        mtpDrafter = MTPDrafter(stack: stackModel.stack, mtp: mtp, startPosition: slot.cache.length)
        return mtpDrafter
    }

    /// The main model's final hidden states of `input` (extending the cache), in the cache's workspace.
    private func hiddenStates(_ input: [Int], drafter: MTPDrafter, model: any LanguageModel, slot: SequenceSlot) throws
        -> UnsafeMutableBufferPointer<Float> {
        try model.validate(input, cache: slot.cache)
        return drafter.stack.hiddenStates(count: input.count, cache: slot.cache) { input[$0] }
    }

    /// A decoding step with the MTP drafter: drafts when the policy says so, one pass of the main model over the pending
    /// token and the drafts (keeping their hidden states for the module), the rows consumed as in `speculate`.
    private func mtpStep(_ token: Int, drafter: MTPDrafter, model: any LanguageModel, slot: SequenceSlot) throws -> [GenerationEvent] {
        guard var policy else { throw GenerationError.invalidParameter(name: "speculative", detail: "no drafting policy") }
        defer { self.policy = policy }
        let began = policy.whenFaster ? DispatchTime.now().uptimeNanoseconds : 0
        let start = slot.cache.length, known = prompt.tokens.count + generated.count
        let room = min(policy.budget, contextLength - start - 1, options.maxTokens - generated.count)
        let drafted = policy.shouldDraft() && room > 0 ? drafter.draft(count: room, knownTokens: known, token: token(at:)) : []
        let input = [token] + drafted
        var events: [GenerationEvent], consumed: Int
        do {
            let hidden = try hiddenStates(input, drafter: drafter, model: model, slot: slot)
            if drafted.isEmpty {
                events = consumeDecoded(logits: drafter.stack.lastLogits(fromHidden: hidden, n: 1, workspace: slot.cache.workspace), slot: slot)
                consumed = 1
            } else {
                let logits = drafter.stack.logits(fromHidden: UnsafeBufferPointer(hidden), n: input.count, allLogits: true,
                                                  numerics: slot.cache.workspace.numerics)
                (events, consumed) = logits.withUnsafeBufferPointer { consumeDrafted(input, logits: $0, start: start, slot: slot) }
                policy.recordAcceptance(accepted: consumed - 1, drafted: drafted.count)
            }
            drafter.record(UnsafeBufferPointer(hidden), rows: consumed)
        } catch {
            slot.reset()
            throw error
        }
        drafter.feedIfFull(knownTokens: prompt.tokens.count + generated.count, token: token(at:))
        if policy.whenFaster {
            policy.recordTime(drafting: !drafted.isEmpty, seconds: Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9, tokens: consumed)
        }
        return events
    }

    /// One forward pass over the pending token and the drafts; rows are consumed in order while the chosen token equals
    /// the draft (`Speculation`), then the cache keeps only what those rows were computed on.
    private func speculate(_ token: Int, model: any LanguageModel, slot: SequenceSlot) throws -> [GenerationEvent] {
        let input = [token] + drafts
        drafts = []
        let start = slot.cache.length
        let logits: [Float]
        do {
            logits = try model.forward(input, cache: slot.cache, allLogits: true)
        } catch {
            slot.reset()
            throw error
        }
        let (events, consumed) = logits.withUnsafeBufferPointer { consumeDrafted(input, logits: $0, start: start, slot: slot) }
        policy?.recordAcceptance(accepted: consumed - 1, drafted: input.count - 1)
        return events
    }

    /// Consumes the rows of `logits` (one per `input` token, run from cache position `start`) in order while the chosen
    /// token equals the next input (a draft); the cache then keeps only what the consumed rows were computed on.
    private func consumeDrafted(_ input: [Int], logits: UnsafeBufferPointer<Float>, start: Int, slot: SequenceSlot)
        -> (events: [GenerationEvent], consumed: Int) {
        let vocab = logits.count / input.count
        usage.draftedTokens += input.count - 1
        var events: [GenerationEvent] = [], consumed = 0
        for j in 0..<input.count {
            if row.count != vocab { row = [Float](repeating: 0, count: vocab) }
            row.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: UnsafeBufferPointer(rebasing: logits[(j * vocab)..<((j + 1) * vocab)])) }
            events += consumeRow()
            consumed = j + 1
            if isFinished || j == input.count - 1 || lastToken != input[j + 1] { break }
            usage.acceptedDrafts += 1
        }
        slot.cache.truncate(to: start + consumed)
        slot.didFeed(Array(input.prefix(consumed)))
        return (events, consumed)
    }

    /// Takes the logits of `pendingDecodeToken`, which a decoding step (`decode`, or row b of `decodeBatch`) has just
    /// appended to `slot.cache`: records the token in the slot, chooses the next one and returns the events.
    public func consumeDecoded(logits: UnsafeBufferPointer<Float>, slot: SequenceSlot) -> [GenerationEvent] {
        guard let token = pendingDecodeToken else { return [] }
        slot.didFeed(token: token)
        if row.count != logits.count { row = [Float](repeating: 0, count: logits.count) }
        row.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: logits) }
        return consumeRow()
    }

    /// Chooses the next token from the last row of logits and returns the events it completes.
    public func consume(logits: [Float]) -> [GenerationEvent] {
        guard !isFinished else { return [] }
        row = logits
        return consumeRow()
    }

    /// `consume` of the logits in `row` (penalised and masked in place).
    private func consumeRow() -> [GenerationEvent] {
        guard !isFinished else { return [] }
        processor.applyPenalties(&row)
        for token in options.bannedTokens where token >= 0 && token < row.count { row[token] = -.infinity }
        var events: [GenerationEvent] = []
        guard let token = chooseToken(&row) else { return finish(.stop) }
        if options.logprobs { events.append(.logprob(LogitProcessor.logprobs(row, token: token, top: options.topLogprobs))) }
        processor.record(token)
        generated.append(token)
        lastToken = token
        usage.completionTokens += 1
        if splitter?.isReasoning == true && !inToolCalls { usage.reasoningTokens += 1 }
        if options.stopTokens.contains(token) { return events + finish(.stop) }
        if json != nil { _ = json!.accept(tokenizer.bytes(of: token)) }
        if schemaJSON != nil { _ = schemaJSON!.accept(tokenizer.bytes(of: token)) }
        events += process(detokenizer.append(token))
        if isFinished { return events }
        if json?.isComplete == true || schemaJSON?.isComplete == true { return events + finish(.stop) }
        if generated.count >= options.maxTokens || prompt.tokens.count + generated.count >= contextLength {
            return events + finish(.length)
        }
        return events
    }

    /// Ends the sequence (flushing held-back text); `consume` calls this itself on stop/length.
    public func finish(_ reason: FinishReason) -> [GenerationEvent] {
        guard !isFinished else { return [] }
        var events: [GenerationEvent] = []
        if reason != .cancelled {
            events += process(detokenizer.finish())
            if !isFinished { events += route(matcher.finish()) }
        }
        finishReason = isFinished ? finishReason : reason
        if let splitter {
            var s = splitter
            events += s.finish().map(Self.event)
            self.splitter = s
        }
        if inToolCalls, let format = options.toolCallFormat {
            let calls = format.parse(toolText)
            if calls.isEmpty {
                // Not a well-formed call: give the text back as content.
                events.append(.content(format.callsBegin + toolText))
            } else {
                events.append(.toolCalls(calls))
                if finishReason == .stop { finishReason = .toolCalls }
            }
            inToolCalls = false
        }
        return events
    }

    private func chooseToken(_ row: inout [Float]) -> Int? {
        guard json != nil || schemaJSON != nil else { return processor.choose(row) }
        let validator = json, schemaValidator = schemaJSON
        func allowed(_ token: Int) -> Bool {
            guard !tokenizer.isSpecial(token), !options.stopTokens.contains(token) else { return false }
            let bytes = tokenizer.bytes(of: token)
            guard !bytes.isEmpty else { return false }
            return validator?.allows(bytes) ?? schemaValidator!.allows(bytes)
        }
        // Rejection first (usually the top choice is fine), then mask the whole vocabulary.
        for _ in 0..<16 {
            guard let token = processor.choose(row) else { return nil }
            if allowed(token) { return token }
            row[token] = -.infinity
        }
        for token in row.indices where row[token] > -.infinity && !allowed(token) { row[token] = -.infinity }
        return processor.choose(row)
    }

    /// Stop strings and the tool-call opener, then the reasoning split.
    private func process(_ text: String) -> [GenerationEvent] {
        guard !text.isEmpty, !isFinished else { return [] }
        if inToolCalls { toolText += text; return [] }
        let result = matcher.feed(text)
        var events = route(result.text)
        if let marker = result.marker {
            if let format = options.toolCallFormat, marker == format.callsBegin {
                inToolCalls = true
                toolText = result.remainder
            } else {
                if let splitter {
                    var s = splitter
                    events += s.finish().map(Self.event)
                    self.splitter = s
                }
                finishReason = .stop
            }
        }
        return events
    }

    private func route(_ text: String) -> [GenerationEvent] {
        guard !text.isEmpty else { return [] }
        guard var s = splitter else { return [.content(text)] }
        let events = s.feed(text).map(Self.event)
        splitter = s
        return events
    }

    private static func event(_ e: ReasoningSplitter.Event) -> GenerationEvent {
        switch e {
        case .reasoning(let text): return .reasoning(text)
        case .content(let text): return .content(text)
        }
    }
}
