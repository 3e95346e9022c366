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
        let id = Self.newID("cmpl-")
        let created = Self.now
        let model = pipeline.modelName
        let tokenizer = pipeline.tokenizer
        let echo = completion.echo ? prompt.text : ""
        @Sendable func choice(_ text: String, finish: FinishReason?, logprobs: [TokenLogprob]?, offset: Int) -> ResponseJSON {
            .object([
                ("text", .string(text)), ("index", .int(0)),
                ("logprobs", logprobs.map { Self.legacyLogprobs($0, tokenizer: tokenizer, offset: offset) } ?? .null),
                ("finish_reason", finish.map { .string($0.rawValue) } ?? .null),
            ])
        }
        @Sendable func envelope(_ choices: [ResponseJSON], usage: GenerationUsage?) -> ResponseJSON {
            var fields: [(String, ResponseJSON)] = [("id", .string(id)), ("object", .string("text_completion")),
                                                 ("created", .int(created)), ("model", .string(model)),
                                                 ("system_fingerprint", .string("kujira")), ("choices", .array(choices))]
            if let usage { fields.append(("usage", Self.usage(usage))) }
            return .object(fields)
        }
        if !completion.stream {
            let wantLogprobs = options.logprobs
            return try await Self.jsonWhenDone(handle) { events, reason, usage in
                var text = echo
                var logprobs: [TokenLogprob] = []
                for event in events {
                    switch event {
                    case .content(let piece), .reasoning(let piece): text += piece
                    case .logprob(let lp): logprobs.append(lp)
                    case .toolCalls: break
                    }
                }
                return envelope([choice(text, finish: reason, logprobs: wantLogprobs ? logprobs : nil, offset: echo.utf8.count)],
                                usage: usage)
            }
        }
        let includeUsage = completion.includeUsage
        let wantLogprobs = options.logprobs
        let body = ResponseBody { writer in
            do {
                if !echo.isEmpty { try await writer.write(ServerSentEvents.event(envelope([choice(echo, finish: nil, logprobs: nil, offset: 0)], usage: nil))) }
                var pending: [TokenLogprob] = []
                var offset = echo.utf8.count
                stream: for await output in handle.stream {
                    switch output {
                    case .events(let events):
                        for event in events {
                            switch event {
                            case .logprob(let lp): pending.append(lp)
                            case .content(let text), .reasoning(let text):
                                try await writer.write(ServerSentEvents.event(envelope(
                                    [choice(text, finish: nil, logprobs: wantLogprobs ? pending : nil, offset: offset)], usage: nil)))
                                offset += text.utf8.count
                                pending.removeAll()
                            case .toolCalls: break
                            }
                        }
                    case .finished(let reason, let usage):
                        try await writer.write(ServerSentEvents.event(envelope(
                            [choice("", finish: reason, logprobs: wantLogprobs ? pending : nil, offset: offset)], usage: nil)))
                        if includeUsage { try await writer.write(ServerSentEvents.event(envelope([], usage: usage))) }
                        break stream
                    case .failed(let error):
                        try await writer.write(ServerSentEvents.event(error.json))
                        break stream
                    }
                }
                try await writer.write(ServerSentEvents.done)
                try await writer.finish(nil)
            } catch {
                handle.cancel()
                throw error
            }
        }
        return Response(status: .ok, headers: ServerSentEvents.headers, body: body)
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
