import Foundation
import Hummingbird
import KujiraGeneration
import KujiraModels

/// An error in OpenAI's envelope `{"error": {"message", "type", "param", "code"}}` with DeepSeek's status split:
/// 400 bad request / context too long / truncated body, 401 key, 413 body too large, 422 invalid parameter,
/// 429 queue full, 503 loading, shutting down or too many connections.
public struct APIError: Error, HTTPResponseError, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    /// 400: the body is not JSON, or not the right shape.
    public static func badRequest(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    /// 400: prompt longer than the context.
    public static func contextTooLong(_ message: String) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: "messages",
                 code: "context_length_exceeded")
    }

    /// 400: the body ended before its Content-Length (the client closed or half-closed early) or could not be read.
    public static func truncatedBody(_ detail: String) -> APIError {
        APIError(status: .badRequest, message: "the request body could not be read completely: \(detail)",
                 type: "invalid_request_error", code: "incomplete_body")
    }

    /// 401: missing or wrong API key.
    public static func unauthorized(_ message: String) -> APIError {
        APIError(status: .unauthorized, message: message, type: "authentication_error", code: "invalid_api_key")
    }

    /// 404: no such route.
    public static func notFound(_ path: String) -> APIError {
        APIError(status: .notFound, message: "no route for \(path)", type: "invalid_request_error", code: "not_found")
    }

    /// 413: the body is over the limit.
    public static func tooLarge(limit: Int) -> APIError {
        APIError(status: .contentTooLarge, message: "request body is larger than the limit of \(limit) bytes",
                 type: "invalid_request_error", code: "request_too_large")
    }

    /// 422: a parameter has the wrong type or value; `param` names it.
    public static func invalidParameter(_ param: String, _ message: String) -> APIError {
        APIError(status: .unprocessableContent, message: "invalid '\(param)': \(message)", type: "invalid_request_error",
                 param: param, code: "invalid_parameter")
    }

    /// 429: the queue is full.
    public static func queueFull(_ depth: Int) -> APIError {
        APIError(status: .tooManyRequests, message: "server busy: \(depth) requests are already waiting; retry later",
                 type: "rate_limit_error", code: "queue_full")
    }

    /// 503: the model is still loading (or failed to load).
    public static func unavailable(_ message: String) -> APIError {
        APIError(status: .serviceUnavailable, message: message, type: "service_unavailable_error", code: "model_loading")
    }

    /// 503: the server is stopping (SIGTERM/SIGINT); open streams end with this as their last event.
    public static let shuttingDown = APIError(status: .serviceUnavailable, message: "server is shutting down",
                                              type: "service_unavailable_error", code: "server_shutting_down")

    /// 503: `--max-connections` connections are open (written raw before the connection is closed).
    public static let tooManyConnections = APIError(status: .serviceUnavailable,
                                                    message: "too many open connections; retry shortly",
                                                    type: "service_unavailable_error", code: "too_many_connections")

    /// 500: something broke on our side (never for bad input).
    public static func internalError(_ message: String) -> APIError {
        APIError(status: .internalServerError, message: message, type: "server_error", code: "internal_error")
    }

    /// Maps errors thrown by the pipeline to the status they deserve.
    public static func from(_ error: any Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as TextPipelineError:
            switch e {
            case .contextTooLong: return .contextTooLong(e.description)
            case .fimUnsupported: return .badRequest(e.description, param: "suffix", code: "fim_not_supported")
            case .template: return .badRequest(e.description, param: "messages", code: "template_error")
            }
        case let e as GenerationError:
            switch e {
            case let .invalidParameter(name, detail): return .invalidParameter(name, detail)
            }
        case let e as ModelError:
            switch e {
            case .contextTooLong: return .contextTooLong(e.description)
            case .tokenOutOfRange: return .badRequest("\(e.description): the prompt holds ids this model cannot read", param: "prompt")
            case .emptyInput: return .badRequest(e.description, param: "prompt")
            case .batchMismatch, .duplicateCacheInBatch: return .internalError(e.description)
            }
        case let e as HTTPError where e.status == .contentTooLarge:
            return .tooLarge(limit: ServerConfiguration.defaultMaxBodyBytes)
        default:
            return .internalError("\(error)")
        }
    }

    /// The JSON envelope as text.
    public var body: String { json.text }

    /// The JSON envelope.
    public var json: ResponseJSON {
        let error: ResponseJSON = .object([
            ("message", .string(message)), ("type", .string(type)),
            ("param", param.map(ResponseJSON.string) ?? .null), ("code", code.map(ResponseJSON.string) ?? .null),
        ])
        return ResponseJSON.object([("error", error)])
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        makeResponse()
    }

    /// The error as an HTTP response with a JSON body.
    public func makeResponse() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}
