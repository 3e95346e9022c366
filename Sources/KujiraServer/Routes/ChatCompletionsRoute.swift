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
        options.jsonSchema = chat.jsonSchema
        // JSON mode constrains the whole output, so it is all answer (no reasoning block).
        options.splitReasoning = !chat.jsonObject && chat.jsonSchema == nil
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
            if case .function(let name) = chat.toolChoice {
                forced = format.forcedPrefix(function: name)
            } else {
                forced = format.forcedPrefix(function: nil)
            }
        }
        if chat.jsonObject && !forced.isEmpty {
            throw APIError.invalidParameter("response_format", "json_object cannot be combined with a forced tool_choice")
        }
        let prompt = try pipeline.chatPrompt(messages: chat.messages, tools: chat.tools, extra: chat.templateArguments, forcedOutput: forced)
        options.maxTokens = try Self.budget(prompt: prompt, requested: chat.maxTokens, pipeline: pipeline)
        // n choices: one sequence each, seeds seed, seed + 1, … (greedy choices are equal, as with OpenAI).
        var handles: [GenerationHandle] = []
        do {
            for index in 0..<chat.choices {
                var choiceOptions = options
                choiceOptions.sampling.seed = options.sampling.seed &+ UInt64(index)
                handles.append(try scheduler.submit(prompt: prompt, options: choiceOptions))
            }
        } catch {
            handles.forEach { $0.cancel() }
            throw error
        }
        let id = Self.newID("chatcmpl-")
        let created = Self.now
        let tokenizer = pipeline.tokenizer
        if chat.stream {
            return ServerSentEvents.response(handles, encoder: ChatStreamEncoder(
                id: id, created: created, model: pipeline.modelName, includeUsage: chat.includeUsage, tokenizer: tokenizer))
        }
        let startsInReasoning = prompt.startsInReasoning
        let wantLogprobs = chat.logprobs
        let model = pipeline.modelName
        return try await Self.jsonWhenDone(handles) { results in
            let choices: [ResponseJSON] = results.enumerated().map { index, result in
                var content = "", reasoning = "", calls: [ToolCall] = [], logprobs: [ResponseJSON] = []
                var sawReasoning = false
                for event in result.events {
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
                return .object([
                    ("index", .int(index)), ("message", .object(message)),
                    ("logprobs", wantLogprobs ? .object([("content", .array(logprobs))]) : .null),
                    ("finish_reason", .string(result.reason.rawValue)),
                ])
            }
            return .object([
                ("id", .string(id)), ("object", .string("chat.completion")), ("created", .int(created)),
                ("model", .string(model)), ("system_fingerprint", .string("kujira")),
                ("choices", .array(choices)), ("usage", Self.usage(GenerationUsage.choices(results.map(\.usage)))),
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

}

/// Chat SSE chunks: a role chunk, one chunk per text piece (logprobs ride on the next one), a finish chunk, the usage
/// chunk if asked.
struct ChatStreamEncoder: StreamChunkEncoder {
    let id: String, created: Int, model: String, includeUsage: Bool
    let tokenizer: Tokenizer
    private var pendingLogprobs: [ResponseJSON] = []
    /// The choice being streamed and how many there are (`n`); the usage chunk follows the last one.
    private var choice = 0, choiceCount = 1

    init(id: String, created: Int, model: String, includeUsage: Bool, tokenizer: Tokenizer) {
        self.id = id
        self.created = created
        self.model = model
        self.includeUsage = includeUsage
        self.tokenizer = tokenizer
    }

    private func envelope(_ choices: [ResponseJSON], usage: GenerationUsage? = nil) -> ResponseJSON {
        var fields: [(String, ResponseJSON)] = [("id", .string(id)), ("object", .string("chat.completion.chunk")),
                                             ("created", .int(created)), ("model", .string(model)),
                                             ("system_fingerprint", .string("kujira")), ("choices", .array(choices))]
        if let usage { fields.append(("usage", Routes.usage(usage))) }
        return .object(fields)
    }

    private mutating func chunk(_ delta: [(String, ResponseJSON)], finish: FinishReason? = nil) -> ResponseJSON {
        let logprobs = pendingLogprobs
        pendingLogprobs.removeAll()
        return envelope([.object([
            ("index", .int(choice)), ("delta", .object(delta)),
            ("logprobs", logprobs.isEmpty ? .null : .object([("content", .array(logprobs))])),
            ("finish_reason", finish.map { .string($0.rawValue) } ?? .null),
        ])])
    }

    mutating func opening() -> [ResponseJSON] { [chunk([("role", .string("assistant")), ("content", .string(""))])] }

    mutating func chunks(for event: GenerationEvent) -> [ResponseJSON] {
        switch event {
        case .logprob(let lp): pendingLogprobs.append(Routes.logprobEntry(lp, tokenizer: tokenizer)); return []
        case .content(let text): return [chunk([("content", .string(text))])]
        case .reasoning(let text): return [chunk([("reasoning_content", .string(text))])]
        case .toolCalls(let calls): return [chunk([("tool_calls", Routes.toolCallsJSON(calls, withIndex: true))])]
        }
    }

    mutating func closing(reason: FinishReason, usage: GenerationUsage) -> [ResponseJSON] {
        [chunk([], finish: reason)] + (includeUsage && choice == choiceCount - 1 ? [envelope([], usage: usage)] : [])
    }

    mutating func begin(choice: Int, of count: Int) {
        self.choice = choice
        choiceCount = count
        pendingLogprobs.removeAll()
    }
}
