import Hummingbird
import KujiraGeneration

/// Server-sent events as OpenAI streams them: `data: {json}\n\n` per chunk, then `data: [DONE]\n\n`.
public enum ServerSentEvents {
    /// One `data:` event.
    public static func event(_ json: ResponseJSON) -> ByteBuffer { ByteBuffer(string: "data: " + json.text + "\n\n") }

    /// The closing sentinel.
    public static let done = ByteBuffer(string: "data: [DONE]\n\n")

    /// Headers of a streaming response.
    public static var headers: HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        headers[.connection] = "keep-alive"
        return headers
    }

    /// A streaming response that turns a generation's outputs into chunks with `encoder`: its opening chunks, the
    /// chunks of every event, its closing chunks, or an error event on failure; then `[DONE]`. A client that goes
    /// away cancels the generation (its slot is freed).
    static func response<Encoder: StreamChunkEncoder>(_ handle: GenerationHandle, encoder: Encoder) -> Response {
        let body = ResponseBody { writer in
            var encoder = encoder
            do {
                for chunk in encoder.opening() { try await writer.write(event(chunk)) }
                stream: for await output in handle.stream {
                    switch output {
                    case .events(let events):
                        for generated in events {
                            for chunk in encoder.chunks(for: generated) { try await writer.write(event(chunk)) }
                        }
                    case .finished(let reason, let usage):
                        for chunk in encoder.closing(reason: reason, usage: usage) { try await writer.write(event(chunk)) }
                        break stream
                    case .failed(let error):
                        try await writer.write(event(error.json))
                        break stream
                    }
                }
                try await writer.write(done)
                try await writer.finish(nil)
            } catch {
                handle.cancel()
                throw error
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}

/// Turns one endpoint's generation events into its streamed JSON chunks (chat or legacy completions).
protocol StreamChunkEncoder: Sendable {
    /// Chunks sent before any token (the chat role chunk, the completions echo).
    mutating func opening() -> [ResponseJSON]
    /// Chunks for one event (none while an event, e.g. a logprob, waits for the text it belongs to).
    mutating func chunks(for event: GenerationEvent) -> [ResponseJSON]
    /// The finish chunk and, when asked for, the usage chunk.
    mutating func closing(reason: FinishReason, usage: GenerationUsage) -> [ResponseJSON]
}
