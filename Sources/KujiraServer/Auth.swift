import Hummingbird

/// Checks `Authorization: Bearer KEY` on every route except `/health`, comparing in constant time.
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
        guard let header = request.headers[.authorization] else {
            return APIError.unauthorized("missing API key: send 'Authorization: Bearer <key>'").makeResponse()
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
