import Foundation
import Hummingbird
import KujiraGeneration
import KujiraTokenizer

extension Routes {
    /// `POST /v1/chat/completions` (and `/chat/completions`): messages → chat template → generation, JSON or SSE.
    func chatCompletions(_ request: Request) async throws -> Response {
        let fields = try await readFields(request)
        let chat = try ChatCompletionRequest(fields)
        let scheduler = try host.scheduler()
        let pipeline = scheduler.pipeline
        var options = pipeline.options(sampling: chat.sampling)
        options.stopStrings = chat.stop
        options.logprobs = chat.logprobs
        options.topLogprobs = chat.topLogprobs
        options.jsonObject = chat.jsonObject
        // JSON mode constrains the whole output, so it is all answer (no reasoning block).
        options.splitReasoning = !chat.jsonObject
        var forced = ""
        switch chat.toolChoice {
        case .none:
            options.toolCallFormat = nil
            if let format = pipeline.toolCallFormat, let id = pipeline.tokenizer.tokenToId(format.callsBegin) { options.bannedTokens = [id] }
        case .auto:
            break
        case .required, .function:
            guard let format = pipeline.toolCallFormat else {
                throw APIError.invalidParameter("tool_choice", "model '\(pipeline.modelName)' has no tool-call tokens, so it cannot be forced to call a tool")
            }
            forced = format.callsBegin
            if case .function(let name) = chat.toolChoice {
                forced += format.callBegin + "function" + format.separator + name + "\n```json\n"
            }
        }
        if chat.jsonObject && !forced.isEmpty {
            throw APIError.invalidParameter("response_format", "json_object cannot be combined with a forced tool_choice")
        }
        let prompt = try pipeline.chatPrompt(messages: chat.messages, tools: chat.tools, forcedOutput: forced)
        options.maxTokens = try Self.budget(prompt: prompt, requested: chat.maxTokens, pipeline: pipeline)
        let handle = try scheduler.submit(prompt: prompt, options: options)
        let id = Self.newID("chatcmpl-")
        let created = Self.now
        let tokenizer = pipeline.tokenizer
        if chat.stream {
            return streamChat(handle, id: id, created: created, model: pipeline.modelName, includeUsage: chat.includeUsage,
                              tokenizer: tokenizer)
        }
        let startsInReasoning = prompt.startsInReasoning
        let wantLogprobs = chat.logprobs
        let model = pipeline.modelName
        return try await Self.jsonWhenDone(handle) { events, reason, usage in
            var content = "", reasoning = "", calls: [ToolCall] = [], logprobs: [ResponseJSON] = []
            var sawReasoning = false
            for event in events {
                switch event {
                case .content(let text): content += text
                case .reasoning(let text): reasoning += text; sawReasoning = true
                case .toolCalls(let list): calls += list
                case .logprob(let lp): logprobs.append(Self.logprobEntry(lp, tokenizer: tokenizer))
                }
            }
            var message: [(String, ResponseJSON)] = [("role", .string("assistant")),
                                                  ("content", calls.isEmpty || !content.isEmpty ? .string(content) : .null)]
            if sawReasoning || startsInReasoning { message.append(("reasoning_content", .string(reasoning))) }
            if !calls.isEmpty { message.append(("tool_calls", Self.toolCallsJSON(calls, withIndex: false))) }
            let choice: ResponseJSON = .object([
                ("index", .int(0)), ("message", .object(message)),
                ("logprobs", wantLogprobs ? .object([("content", .array(logprobs))]) : .null),
                ("finish_reason", .string(reason.rawValue)),
            ])
            return .object([
                ("id", .string(id)), ("object", .string("chat.completion")), ("created", .int(created)),
                ("model", .string(model)), ("system_fingerprint", .string("kujira")),
                ("choices", .array([choice])), ("usage", Self.usage(usage)),
            ])
        }
    }

    static func toolCallsJSON(_ calls: [ToolCall], withIndex: Bool) -> ResponseJSON {
        .array(calls.enumerated().map { index, call in
            var fields: [(String, ResponseJSON)] = withIndex ? [("index", .int(index))] : []
            fields += [("id", .string(newID("call_"))), ("type", .string("function")),
                       ("function", .object([("name", .string(call.name)), ("arguments", .string(call.arguments))]))]
            return .object(fields)
        })
    }

    /// SSE: a role chunk, one chunk per text piece, a finish chunk, the usage chunk if asked, `[DONE]`.
    private func streamChat(_ handle: GenerationHandle, id: String, created: Int, model: String, includeUsage: Bool,
                            tokenizer: Tokenizer) -> Response {
        @Sendable func chunk(_ delta: [(String, ResponseJSON)], finish: FinishReason? = nil, logprobs: [ResponseJSON]? = nil) -> ResponseJSON {
            let choice: ResponseJSON = .object([
                ("index", .int(0)), ("delta", .object(delta)),
                ("logprobs", logprobs.map { .object([("content", .array($0))]) } ?? .null),
                ("finish_reason", finish.map { .string($0.rawValue) } ?? .null),
            ])
            return .object([("id", .string(id)), ("object", .string("chat.completion.chunk")), ("created", .int(created)),
                            ("model", .string(model)), ("system_fingerprint", .string("kujira")), ("choices", .array([choice]))])
        }
        let body = ResponseBody { writer in
            do {
                try await writer.write(ServerSentEvents.event(chunk([("role", .string("assistant")), ("content", .string(""))])))
                var pendingLogprobs: [ResponseJSON] = []
                stream: for await output in handle.stream {
                    switch output {
                    case .events(let events):
                        for event in events {
                            var delta: [(String, ResponseJSON)]
                            switch event {
                            case .logprob(let lp): pendingLogprobs.append(Self.logprobEntry(lp, tokenizer: tokenizer)); continue
                            case .content(let text): delta = [("content", .string(text))]
                            case .reasoning(let text): delta = [("reasoning_content", .string(text))]
                            case .toolCalls(let calls): delta = [("tool_calls", Self.toolCallsJSON(calls, withIndex: true))]
                            }
                            try await writer.write(ServerSentEvents.event(chunk(delta, logprobs: pendingLogprobs.isEmpty ? nil : pendingLogprobs)))
                            pendingLogprobs.removeAll()
                        }
                    case .finished(let reason, let usage):
                        try await writer.write(ServerSentEvents.event(chunk([], finish: reason, logprobs: pendingLogprobs.isEmpty ? nil : pendingLogprobs)))
                        if includeUsage {
                            let usageChunk: ResponseJSON = .object([
                                ("id", .string(id)), ("object", .string("chat.completion.chunk")), ("created", .int(created)),
                                ("model", .string(model)), ("system_fingerprint", .string("kujira")), ("choices", .array([])),
                                ("usage", Self.usage(usage)),
                            ])
                            try await writer.write(ServerSentEvents.event(usageChunk))
                        }
                        break stream
                    case .failed(let error):
                        try await writer.write(ServerSentEvents.event(error.json))
                        break stream
                    }
                }
                try await writer.write(ServerSentEvents.done)
                try await writer.finish(nil)
            } catch {
                // The client went away: stop generating and free the slot.
                handle.cancel()
                throw error
            }
        }
        return Response(status: .ok, headers: ServerSentEvents.headers, body: body)
    }
}
