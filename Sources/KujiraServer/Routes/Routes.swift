import Foundation
import HTTPTypes
import Hummingbird
import KujiraGeneration
import KujiraTokenizer
import NIOCore

/// The handlers; `KujiraServer.makeRouter` binds them to paths.
struct Routes: Sendable {
    let host: ModelHost
    let configuration: ServerConfiguration
    let metrics: ServerMetrics

    static let knownPaths: Set<String> = [
        "/", "/health", "/metrics", "/v1/models", "/models", "/v1/chat/completions", "/chat/completions",
        "/v1/completions", "/completions", "/beta/completions", "/beta/v1/completions",
    ]

    /// `GET /health`: 200 when the model is ready, 503 while loading (no key needed).
    func health() -> Response {
        do {
            let scheduler = try host.scheduler()
            let body = ResponseJSON.object([("status", .string("ok")), ("model", .string(scheduler.pipeline.modelName))])
            return Self.json(body)
        } catch {
            return APIError.from(error).makeResponse()
        }
    }

    /// `GET /`: the web chat (`WebChatPage`), served from the binary.
    func webChat() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("Content-Security-Policy")!] = "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: WebChatPage.html)))
    }

    /// `GET /metrics`: Prometheus text format.
    func metricsText() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.render())))
    }

    private func modelObject(_ name: String) -> ResponseJSON {
        .object([("id", .string(name)), ("object", .string("model")), ("created", .int(host.created)),
                 ("owned_by", .string("kujira"))])
    }

    /// `GET /v1/models`.
    func models() throws -> Response {
        let name = try host.scheduler().pipeline.modelName
        return Self.json(.object([("object", .string("list")), ("data", .array([modelObject(name)]))]))
    }

    /// `GET /v1/models/{id}`.
    func model(id: String) throws -> Response {
        let name = try host.scheduler().pipeline.modelName
        guard id == name else {
            throw APIError(status: .notFound, message: "the model '\(id)' does not exist (this server has '\(name)')",
                           type: "invalid_request_error", param: "model", code: "model_not_found")
        }
        return Self.json(modelObject(name))
    }

    /// Reads the JSON body: 413 for a body over the limit, 400 for one that ends early (fewer bytes than its
    /// Content-Length before the client closed or half-closed) or whose stream fails.
    func readFields(_ request: Request) async throws -> RequestFields {
        let limit = configuration.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw APIError.tooLarge(limit: limit)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(limit: limit)
        } catch {
            throw APIError.truncatedBody("\(error)")
        }
        return try RequestFields.parse(buffer)
    }

    static func json(_ value: ResponseJSON, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: value.text)))
    }

    /// The `usage` object: OpenAI's fields (speculative drafts as its predicted-output counts) plus DeepSeek's cache accounting.
    static func usage(_ u: GenerationUsage) -> ResponseJSON {
        .object([
            ("prompt_tokens", .int(u.promptTokens)),
            ("completion_tokens", .int(u.completionTokens)),
            ("total_tokens", .int(u.totalTokens)),
            ("prompt_tokens_details", .object([("cached_tokens", .int(u.cachedPromptTokens))])),
            ("completion_tokens_details", .object([("reasoning_tokens", .int(u.reasoningTokens)),
                                                   ("accepted_prediction_tokens", .int(u.acceptedDrafts)),
                                                   ("rejected_prediction_tokens", .int(u.draftedTokens - u.acceptedDrafts))])),
            ("prompt_cache_hit_tokens", .int(u.cachedPromptTokens)),
            ("prompt_cache_miss_tokens", .int(u.uncachedPromptTokens)),
        ])
    }

    /// Checks that the prompt leaves room to generate and returns how many tokens may be generated.
    static func budget(prompt: PreparedPrompt, requested: Int?, pipeline: TextPipeline) throws -> Int {
        let room = pipeline.contextLength - prompt.tokens.count
        guard room > 0 else {
            throw TextPipelineError.contextTooLong(promptTokens: prompt.tokens.count, contextLength: pipeline.contextLength)
        }
        return min(requested ?? room, room)
    }

    /// A non-streaming JSON response that still notices a client that hangs up: the first output is awaited
    /// before answering (so early failures keep their status), then, while generation runs, a newline — leading
    /// whitespace is valid JSON, and DeepSeek's API sends the same keep-alive — is written at most every 0.5 s; a
    /// failed write cancels the request and frees its slot.
    static func jsonWhenDone(_ handle: GenerationHandle,
                             render: @escaping @Sendable ([GenerationEvent], FinishReason, GenerationUsage) -> ResponseJSON)
        async throws -> Response
    {
        try await jsonWhenDone([handle]) { results in render(results[0].events, results[0].reason, results[0].usage) }
    }

    /// One choice's whole generation.
    typealias ChoiceResult = (events: [GenerationEvent], reason: FinishReason, usage: GenerationUsage)

    /// `jsonWhenDone` of several choices of one request (`n` > 1): rendered once every choice has finished; a failure
    /// of any choice answers with its error and cancels the others.
    static func jsonWhenDone(_ handles: [GenerationHandle], render: @escaping @Sendable ([ChoiceResult]) -> ResponseJSON)
        async throws -> Response
    {
        let iterators = handles.map { StreamIterator($0.stream) }
        let cancelAll: @Sendable () -> Void = { handles.forEach { $0.cancel() } }
        var results: [ChoiceResult] = []
        var firstEvents: [GenerationEvent] = []
        let first = await withTaskCancellationHandler { await iterators[0].next() } onCancel: { cancelAll() }
        switch first {
        case nil: cancelAll(); throw APIError.unavailable("generation was stopped")
        case .failed(let error)?: cancelAll(); throw error
        case .finished(let reason, let usage)?: results.append(([], reason, usage))
        case .events(let batch)?: firstEvents = batch
        }
        if results.count == handles.count { return json(render(results)) }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let (finished, collected) = (results, firstEvents)
        let body = ResponseBody { writer in
            var results = finished, events = collected
            var lastWrite = ContinuousClock.now
            do {
                while results.count < handles.count {
                    guard let output = await iterators[results.count].next() else {
                        cancelAll()
                        try await writer.write(ByteBuffer(string: APIError.unavailable("generation was stopped").body))
                        try await writer.finish(nil)
                        return
                    }
                    switch output {
                    case .events(let batch):
                        events += batch
                        if ContinuousClock.now - lastWrite > .milliseconds(500) {
                            try await writer.write(ByteBuffer(string: "\n"))
                            lastWrite = .now
                        }
                    case .finished(let reason, let usage):
                        results.append((events, reason, usage))
                        events = []
                    case .failed(let error):
                        cancelAll()
                        try await writer.write(ByteBuffer(string: error.body))
                        try await writer.finish(nil)
                        return
                    }
                }
                try await writer.write(ByteBuffer(string: render(results).text))
                try await writer.finish(nil)
            } catch {
                cancelAll()
                throw error
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    static func newID(_ prefix: String) -> String {
        prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }

    static var now: Int { Int(Date().timeIntervalSince1970) }

    /// OpenAI's chat `logprobs.content` entry for one token.
    static func logprobEntry(_ lp: TokenLogprob, tokenizer: Tokenizer) -> ResponseJSON {
        func item(_ token: Int, _ logprob: Float) -> [(String, ResponseJSON)] {
            let bytes = tokenizer.bytes(of: token)
            return [("token", .string(String(decoding: bytes, as: UTF8.self))),
                    ("logprob", .double(logprob.isFinite ? Double(logprob) : -9999.0)),
                    ("bytes", .array(bytes.map { .int(Int($0)) }))]
        }
        let top = lp.top.map { ResponseJSON.object(item($0.token, $0.logprob)) }
        return .object(item(lp.token, lp.logprob) + [("top_logprobs", .array(top))])
    }
}

/// Lets the handler read the first output and the response body the rest, one reader at a time.
final class StreamIterator: @unchecked Sendable {
    private var iterator: AsyncStream<SchedulerOutput>.AsyncIterator

    init(_ stream: AsyncStream<SchedulerOutput>) { iterator = stream.makeAsyncIterator() }

    func next() async -> SchedulerOutput? { await iterator.next() }
}
