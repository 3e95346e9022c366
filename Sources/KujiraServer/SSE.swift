import Hummingbird

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
}
