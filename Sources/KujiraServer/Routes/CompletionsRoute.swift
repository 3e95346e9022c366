import Foundation
import Hummingbird
import KujiraGeneration
import KujiraTokenizer

extension Routes {
    /// `POST /v1/completions` (prompt in, text out) and `POST /beta/completions` (DeepSeek FIM with `suffix`).
    func completions(_ request: Request, fim: Bool) async throws -> Response {
        let fields = try await readFields(request)
        let completion = try CompletionRequest(fields)
        let scheduler = try host.scheduler()
        let pipeline = scheduler.pipeline
        let prompt: PreparedPrompt
        if let suffix = completion.suffix {
            guard let text = completion.prompt else {
                throw APIError.invalidParameter("prompt", "must be a string when 'suffix' (FIM) is given")
            }
            prompt = try pipeline.fimPrompt(prefix: text, suffix: suffix)
        } else if let text = completion.prompt {
            prompt = pipeline.completionPrompt(text)
        } else {
            let ids = completion.promptTokens ?? []
            if let bad = ids.first(where: { $0 >= pipeline.model.vocabSize }) {
                throw APIError.invalidParameter("prompt", "token id \(bad) is outside the vocabulary (0..<\(pipeline.model.vocabSize))")
            }
            prompt = PreparedPrompt(tokens: ids, text: pipeline.tokenizer.decode(ids))
        }
        guard !prompt.tokens.isEmpty else { throw APIError.invalidParameter("prompt", "is empty") }
        var options = pipeline.options(sampling: completion.sampling)
        options.toolCallFormat = nil
        options.splitReasoning = false
        options.stopStrings = completion.stop
        options.logprobs = completion.logprobs != nil
        options.topLogprobs = completion.logprobs ?? 0
        options.maxTokens = try Self.budget(prompt: prompt, requested: completion.maxTokens, pipeline: pipeline)
        let handle = try scheduler.submit(prompt: prompt, options: options)
        let encoder = CompletionStreamEncoder(id: Self.newID("cmpl-"), created: Self.now, model: pipeline.modelName,
                                              tokenizer: pipeline.tokenizer, echo: completion.echo ? prompt.text : "",
                                              wantLogprobs: options.logprobs, includeUsage: completion.includeUsage)
        if completion.stream { return ServerSentEvents.response(handle, encoder: encoder) }
        return try await Self.jsonWhenDone(handle) { events, reason, usage in
            var text = encoder.echo
            var logprobs: [TokenLogprob] = []
            for event in events {
                switch event {
                case .content(let piece), .reasoning(let piece): text += piece
                case .logprob(let lp): logprobs.append(lp)
                case .toolCalls: break
                }
            }
            return encoder.envelope([encoder.choice(text, finish: reason, logprobs: logprobs, offset: encoder.echo.utf8.count)],
                                    usage: usage)
        }
    }

    /// The legacy completions `logprobs` object: tokens, token_logprobs, top_logprobs, text_offset.
    static func legacyLogprobs(_ list: [TokenLogprob], tokenizer: Tokenizer, offset: Int) -> ResponseJSON {
        var tokens: [ResponseJSON] = [], values: [ResponseJSON] = [], tops: [ResponseJSON] = [], offsets: [ResponseJSON] = []
        var position = offset
        func text(_ id: Int) -> String { String(decoding: tokenizer.bytes(of: id), as: UTF8.self) }
        func number(_ v: Float) -> ResponseJSON { .double(v.isFinite ? Double(v) : -9999.0) }
        for lp in list {
            let t = text(lp.token)
            tokens.append(.string(t))
            values.append(number(lp.logprob))
            var seen = Set<String>()
            tops.append(.object(lp.top.compactMap { alt in
                let key = text(alt.token)
                return seen.insert(key).inserted ? (key, number(alt.logprob)) : nil
            }))
            offsets.append(.int(position))
            position += t.utf8.count
        }
        return .object([("tokens", .array(tokens)), ("token_logprobs", .array(values)), ("top_logprobs", .array(tops)),
                        ("text_offset", .array(offsets))])
    }
}

/// Legacy completions chunks (`text_completion` objects): the echoed prompt if asked, one chunk per text piece with its
/// logprobs, a finish chunk, the usage chunk if asked. The non-streaming response uses the same envelope.
struct CompletionStreamEncoder: StreamChunkEncoder {
    let id: String, created: Int, model: String
    let tokenizer: Tokenizer
    let echo: String
    let wantLogprobs: Bool, includeUsage: Bool
    private var pending: [TokenLogprob] = []
    private var offset = 0

    init(id: String, created: Int, model: String, tokenizer: Tokenizer, echo: String, wantLogprobs: Bool, includeUsage: Bool) {
        self.id = id
        self.created = created
        self.model = model
        self.tokenizer = tokenizer
        self.echo = echo
        self.wantLogprobs = wantLogprobs
        self.includeUsage = includeUsage
    }

    /// One choice; `logprobs` is ignored unless the request asked for them (the echo chunk carries none).
    func choice(_ text: String, finish: FinishReason?, logprobs: [TokenLogprob]?, offset: Int) -> ResponseJSON {
        .object([
            ("text", .string(text)), ("index", .int(0)),
            ("logprobs", wantLogprobs ? logprobs.map { Routes.legacyLogprobs($0, tokenizer: tokenizer, offset: offset) } ?? .null : .null),
            ("finish_reason", finish.map { .string($0.rawValue) } ?? .null),
        ])
    }

    func envelope(_ choices: [ResponseJSON], usage: GenerationUsage?) -> ResponseJSON {
        var fields: [(String, ResponseJSON)] = [("id", .string(id)), ("object", .string("text_completion")),
                                             ("created", .int(created)), ("model", .string(model)),
                                             ("system_fingerprint", .string("kujira")), ("choices", .array(choices))]
        if let usage { fields.append(("usage", Routes.usage(usage))) }
        return .object(fields)
    }

    private mutating func textChunk(_ text: String, finish: FinishReason?) -> ResponseJSON {
        let chunk = envelope([choice(text, finish: finish, logprobs: pending, offset: offset)], usage: nil)
        offset += text.utf8.count
        pending.removeAll()
        return chunk
    }

    mutating func opening() -> [ResponseJSON] {
        offset = echo.utf8.count
        return echo.isEmpty ? [] : [envelope([choice(echo, finish: nil, logprobs: nil, offset: 0)], usage: nil)]
    }

    mutating func chunks(for event: GenerationEvent) -> [ResponseJSON] {
        switch event {
        case .logprob(let lp): pending.append(lp); return []
        case .content(let text), .reasoning(let text): return [textChunk(text, finish: nil)]
        case .toolCalls: return []
        }
    }

    mutating func closing(reason: FinishReason, usage: GenerationUsage) -> [ResponseJSON] {
        [textChunk("", finish: reason)] + (includeUsage ? [envelope([], usage: usage)] : [])
    }
}
