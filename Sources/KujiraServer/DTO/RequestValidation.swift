import Foundation
import Hummingbird

/// Checks a request body the way the routes do before anything reaches a model (used by the request fuzz target):
/// JSON parsing, then the typed fields of `/v1/chat/completions` or `/v1/completions`.
public enum RequestValidation {
    /// Throws the `APIError` the server would answer with; returns normally when the body would be accepted.
    public static func validate(body: Data, path: String) throws {
        let fields = try RequestFields.parse(ByteBuffer(bytes: body))
        if path.hasSuffix("chat/completions") {
            _ = try ChatCompletionRequest(fields)
        } else {
            _ = try CompletionRequest(fields)
        }
    }
}
