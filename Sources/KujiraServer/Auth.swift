import Hummingbird
import HTTPTypes

/// Checks `Authorization: Bearer KEY` (or `X-Api-Key: KEY`, as Anthropic-style clients send it) on every route
/// except `/health`, comparing in constant time.
public struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    public let key: [UInt8]
    /// Paths served without a key.
    public let openPaths: Set<String>

    public init(key: String, openPaths: Set<String> = ["/health"]) {
        self.key = Array(key.utf8)
        self.openPaths = openPaths
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if openPaths.contains(request.uri.path) { return try await next(request, context) }
        if let alternative = request.headers[HTTPField.Name.apiKey], request.headers[.authorization] == nil {
            guard constantTimeEquals(Array(alternative.utf8), key) else { return APIError.unauthorized("incorrect API key").makeResponse() }
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization] else {
            return APIError.unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'").makeResponse()
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return APIError.unauthorized("the Authorization header must be 'Bearer <key>'").makeResponse()
        }
        guard constantTimeEquals(Array(parts[1].utf8), key) else {
            return APIError.unauthorized("incorrect API key").makeResponse()
        }
        return try await next(request, context)
    }
}

/// Compares two byte strings in time that depends only on their lengths (not where they differ).
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
    let count = max(a.count, b.count)
    for i in 0..<count {
        let x = i < a.count ? a[i] : 0
        let y = i < b.count ? b[i] : 0
        difference |= x ^ y
    }
    return difference == 0 && a.count == b.count
}

extension HTTPField.Name {
    /// `X-Api-Key`, the alternative to `Authorization: Bearer`.
    static let apiKey = HTTPField.Name("X-Api-Key")!
}

/// CORS for the configured origins (`--cors-origin`): Hummingbird's `CORSMiddleware` answers the preflight `OPTIONS`
/// (before the API key is checked) and adds `Access-Control-Allow-Origin` to responses, for requests whose `Origin` is
/// allowed; other origins get no CORS headers, so browsers refuse them.
public struct AllowedOriginsMiddleware<Context: RequestContext>: RouterMiddleware {
    public let origins: Set<String>
    private let cors: CORSMiddleware<Context>

    public init(origins: [String]) {
        self.origins = Set(origins)
        cors = CORSMiddleware(allowOrigin: origins.contains("*") ? .all : .originBased,
                              allowHeaders: [.accept, .authorization, .contentType, .origin, .apiKey],
                              allowMethods: [.get, .post, .options], maxAge: .seconds(600))
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], origins.contains("*") || origins.contains(origin) else {
            return try await next(request, context)
        }
        return try await cors.handle(request, context: context, next: next)
    }
}
