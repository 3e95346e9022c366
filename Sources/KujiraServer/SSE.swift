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
        response([handle], encoder: encoder)
    }

    /// The same for several choices of one request (`n` > 1): each choice's chunks in turn, under its index (clients
    /// join chunks by index), the last closing with the usage of all; a failure ends the stream with its error event
    /// and cancels the other choices.
    static func response<Encoder: StreamChunkEncoder>(_ handles: [GenerationHandle], encoder: Encoder) -> Response {
        let body = ResponseBody { writer in
            var encoder = encoder
            var usages: [GenerationUsage] = []
            do {
                choices: for (index, handle) in handles.enumerated() {
                    encoder.begin(choice: index, of: handles.count)
                    for chunk in encoder.opening() { try await writer.write(event(chunk)) }
                    for await output in handle.stream {
                        switch output {
                        case .events(let events):
                            for generated in events {
                                for chunk in encoder.chunks(for: generated) { try await writer.write(event(chunk)) }
                            }
                        case .finished(let reason, let usage):
                            usages.append(usage)
                            let reported = index == handles.count - 1 ? GenerationUsage.choices(usages) : usage
                            for chunk in encoder.closing(reason: reason, usage: reported) { try await writer.write(event(chunk)) }
                            continue choices
                        case .failed(let error):
                            try await writer.write(event(error.json))
                            break choices
                        }
                    }
                    break choices  // the stream ended without finishing: the scheduler stopped it
                }
                handles.forEach { $0.cancel() }
                try await writer.write(done)
                try await writer.finish(nil)
            } catch {
                handles.forEach { $0.cancel() }
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
    /// Called before choice `choice` of `count` is streamed (`n` > 1).
    mutating func begin(choice: Int, of count: Int)
}

extension StreamChunkEncoder {
    mutating func begin(choice: Int, of count: Int) {}
}
