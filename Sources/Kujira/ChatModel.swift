import Foundation
import KujiraFormats
import KujiraGeneration
import KujiraHub
import KujiraModels
import KujiraTokenizer

/// A language model loaded with its tokenizer and chat template, ready to chat and complete with streamed events.
///
/// An actor: it owns the KV cache of its conversation, so consecutive requests that extend the same conversation reuse
/// the cached prefix (`ChatSummary.cachedPromptTokens`), and requests run one at a time. Cancel the task that consumes
/// a stream (or stop iterating it) and generation stops before the next token; the cache is then released.
///
/// ```swift
/// let model = try await ChatModel.load(.embedded)
/// for try await event in await model.chat([.user("What is 2+3?")]) {
///     if case .content(let text) = event { print(text, terminator: "") }
/// }
/// ```
public actor ChatModel {
    /// The model, tokenizer and template (the same pipeline `kujira run` and `kujira serve` use).
    public nonisolated let pipeline: TextPipeline
    /// The model's name: its directory or file name.
    public nonisolated var name: String { pipeline.modelName }
    /// Longest prompt + answer accepted, in tokens.
    public nonisolated var contextLength: Int { pipeline.contextLength }
    private var slot: SequenceSlot
    /// The summary of the last request that ran, including one whose consumer went away (it ends `.cancelled`).
    public private(set) var lastSummary: ChatSummary?

    /// Wraps a pipeline built elsewhere (a model loaded with custom options).
    public init(pipeline: TextPipeline) {
        self.pipeline = pipeline
        slot = SequenceSlot(model: pipeline.model)
    }

    /// Loads a model: the embedded default, a path, or a Hugging Face repo id (downloaded into the Hub cache when it is
    /// not there). `contextLength` caps prompt + answer below the model's maximum; `lora` applies a PEFT adapter
    /// directory unmerged. Errors name the file, tensor or field that is wrong.
    public static func load(_ source: ModelSource, contextLength: Int? = nil, lora: String? = nil) async throws -> ChatModel {
        let path = try await resolve(source)
        let pipeline = try await Task.detached(priority: .userInitiated) {
            try TextPipeline.load(path: CheckpointDirectory.modelDirectory(path), lora: lora, contextLength: contextLength)
        }.value
        return ChatModel(pipeline: pipeline)
    }

    /// The local path of `source`, pulling a Hub model into the cache first when needed.
    static func resolve(_ source: ModelSource, environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> String {
        switch source {
        case .embedded:
            return try DefaultModel.directory(environment: environment)
        case .path(let path):
            guard FileManager.default.fileExists(atPath: path) else { throw ChatModelError.missingPath(path) }
            return path
        case .hub(let id):
            guard let reference = ModelReference(parsing: id) else { throw ChatModelError.badRepoID(id) }
            let cache = HubCache.fromEnvironment(environment)
            if let cached = try? ModelResolver.resolve(id, cache: cache) { return cached }
            let downloader = HubDownloader(client: HubClient(configuration: .fromEnvironment(environment)), cache: cache)
            _ = try await downloader.pull(reference)
            guard let path = try ModelResolver.resolve(id, cache: cache) else { throw ChatModelError.badRepoID(id) }
            return path
        }
    }

    /// Streams the assistant's reply to `messages` (rendered with the model's chat template).
    public nonisolated func chat(_ messages: [ChatMessage], options: ChatOptions = ChatOptions()) -> ChatStream {
        ChatStream(model: self, options: options) { pipeline in
            let rendered = try messages.map { try JinjaValue(any: ["role": $0.role, "content": $0.content]) }
            var tools: [JinjaValue]?
            if let json = options.toolsJSON {
                guard case .array(let list) = try JinjaValue(jsonString: json) else { throw ChatModelError.badTools("not a JSON array") }
                tools = list
            }
            return try pipeline.chatPrompt(messages: rendered, tools: tools)
        }
    }

    /// Streams a continuation of raw `text` (no chat template).
    public nonisolated func complete(_ text: String, options: ChatOptions = ChatOptions()) -> ChatStream {
        ChatStream(model: self, options: options) { pipeline in pipeline.completionPrompt(text) }
    }

    /// The whole answer text (content only, reasoning left out) to `messages`.
    public func reply(to messages: [ChatMessage], options: ChatOptions = ChatOptions()) async throws -> String {
        var text = ""
        for try await event in chat(messages, options: options) { if case .content(let piece) = event { text += piece } }
        return text
    }

    // MARK: Requests, stepped by their streams

    /// One request in flight: its sequence, the cache it runs in (the conversation's, or its own while another request
    /// holds that one) and its clock.
    private struct Request {
        let sequence: TextSequence
        let slot: SequenceSlot
        let sharesConversation: Bool
        let started: UInt64
        var firstToken: UInt64?
    }
    private var requests: [Int: Request] = [:]
    private var nextRequest = 0

    /// Starts a request; returns its id.
    func begin(options: ChatOptions, prompt makePrompt: (TextPipeline) throws -> PreparedPrompt) throws -> Int {
        let started = DispatchTime.now().uptimeNanoseconds
        if let maxTokens = options.maxTokens, maxTokens < 1 { throw ChatModelError.badOption("maxTokens must be ≥ 1, got \(maxTokens)") }
        guard (0...64).contains(options.ngramDrafts) else { throw ChatModelError.badOption("ngramDrafts must be in 0...64, got \(options.ngramDrafts)") }
        var generation = pipeline.options(maxTokens: options.maxTokens, sampling: options.sampling)
        generation.stopStrings = options.stop
        if options.ngramDrafts > 0 { generation.speculation = .ngram(ngram: 3, maxDraft: options.ngramDrafts) }
        if let text = options.jsonSchema {
            do {
                generation.jsonSchema = try JSONSchema(json: text)
            } catch {
                throw ChatModelError.badOption("jsonSchema: \(error)")
            }
            // The constraint covers the whole reply, so there is no separate reasoning block.
            generation.splitReasoning = false
        }
        let sequence = try pipeline.makeSequence(prompt: try makePrompt(pipeline), options: generation)
        let shares = !requests.values.contains { $0.sharesConversation }
        let requestSlot = shares ? slot : SequenceSlot(model: pipeline.model)
        sequence.attach(to: requestSlot)
        let id = nextRequest
        nextRequest += 1
        requests[id] = Request(sequence: sequence, slot: requestSlot, sharesConversation: shares, started: started)
        return id
    }

    /// Runs request `id` one token further (the first call also processes the prompt) and returns its events, the
    /// last one `.finished` when it ended. `cancelled`: end it now instead (`.cancelled`, cache released).
    func advance(_ id: Int, cancelled: Bool) throws -> [ChatEvent] {
        guard var request = requests[id] else { return [] }
        let events: [GenerationEvent]
        do {
            events = cancelled ? request.sequence.finish(.cancelled) : try request.sequence.step(model: pipeline.model, slot: request.slot)
        } catch {
            end(id, request, failed: true)
            throw error
        }
        if request.firstToken == nil && !request.sequence.generated.isEmpty { request.firstToken = DispatchTime.now().uptimeNanoseconds }
        requests[id] = request
        var out: [ChatEvent] = events.compactMap {
            switch $0 {
            case .reasoning(let text): return .reasoning(text)
            case .content(let text): return .content(text)
            case .toolCalls(let calls): return .toolCalls(calls)
            case .logprob: return nil
            }
        }
        if request.sequence.isFinished { out.append(.finished(end(id, request, failed: false))) }
        return out
    }

    /// Ends request `id` when its stream was dropped before it finished (the consumer left the loop).
    func abandon(_ id: Int) {
        guard let request = requests[id] else { return }
        _ = request.sequence.finish(.cancelled)
        end(id, request, failed: false)
    }

    /// Removes a request and summarises it. A cancelled or failed request's cache is released (its contents are
    /// partial or unknown), which for the conversation's cache means starting a fresh one.
    @discardableResult
    private func end(_ id: Int, _ request: Request, failed: Bool) -> ChatSummary {
        requests[id] = nil
        let sequence = request.sequence
        if failed || sequence.finishReason == .cancelled, request.sharesConversation { slot = SequenceSlot(model: pipeline.model) }
        let ended = DispatchTime.now().uptimeNanoseconds, first = request.firstToken ?? ended
        let summary = ChatSummary(
            finishReason: failed ? .cancelled : sequence.finishReason ?? .stop,
            promptTokens: sequence.usage.promptTokens, cachedPromptTokens: sequence.usage.cachedPromptTokens,
            completionTokens: sequence.usage.completionTokens, reasoningTokens: sequence.usage.reasoningTokens,
            promptSeconds: Double(first - request.started) / 1e9, generationSeconds: Double(ended - first) / 1e9)
        lastSummary = summary
        return summary
    }
}

/// The events of one request, produced as they are consumed: each `next()` runs the model one token further, so a
/// consumer that stops iterating stops the generation, and cancelling its task ends the request before the next token
/// (with a final `.finished` whose reason is `.cancelled`).
public struct ChatStream: AsyncSequence, Sendable {
    /// The stream's events.
    public typealias Element = ChatEvent
    let model: ChatModel
    let options: ChatOptions
    let prompt: @Sendable (TextPipeline) throws -> PreparedPrompt

    /// An iterator that starts the request on its first `next()`.
    public func makeAsyncIterator() -> Iterator { Iterator(stream: self) }

    /// Steps the request; releases it when dropped unfinished.
    public struct Iterator: AsyncIteratorProtocol {
        let stream: ChatStream
        var handle: RequestHandle?
        var pending: [ChatEvent] = []
        var done = false

        /// The next event, running the model one token further when none is pending; nil after `.finished`.
        public mutating func next() async throws -> ChatEvent? {
            while pending.isEmpty {
                if done { return nil }
                if handle == nil {
                    handle = RequestHandle(model: stream.model, id: try await stream.model.begin(options: stream.options, prompt: stream.prompt))
                }
                guard let handle else { return nil }
                pending = try await stream.model.advance(handle.id, cancelled: Task.isCancelled)
                if case .finished = pending.last { done = true; handle.finished = true }
                if pending.isEmpty && Task.isCancelled { done = true }
            }
            return pending.removeFirst()
        }
    }
}

/// A request id that ends its request on the model when the last iterator holding it goes away unfinished.
final class RequestHandle: @unchecked Sendable {
    let model: ChatModel, id: Int
    var finished = false
    init(model: ChatModel, id: Int) { self.model = model; self.id = id }
    deinit {
        guard !finished else { return }
        let model = model, id = id
        Task { await model.abandon(id) }
    }
}

/// Why a model could not be loaded or a request not run.
public enum ChatModelError: Error, CustomStringConvertible, Equatable {
    case missingPath(String)
    case badRepoID(String)
    case badTools(String)
    case badOption(String)

    /// One line naming what is wrong.
    public var description: String {
        switch self {
        case .missingPath(let path): return "\(path): no such file or directory"
        case .badRepoID(let id): return "'\(id)' is not a Hugging Face repo id (org/name, or org/name:QUANT)"
        case .badTools(let detail): return "toolsJSON: \(detail)"
        case .badOption(let detail): return detail
        }
    }
}
