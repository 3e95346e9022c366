import Foundation
import Hummingbird
import HummingbirdTesting
import KujiraHub
import Logging
import NIOCore

/// A local stand-in for the Hugging Face Hub on 127.0.0.1 (random port): the info and tree APIs, `resolve` (302 to
/// `/cdn/…` for LFS files, like the real CDN redirect), byte ranges, and scripted faults.
final class FakeHub: @unchecked Sendable {
    struct Repo {
        var commit: String
        var files: [String: [UInt8]]
        var lfs: Set<String> = []
        var gated = false
        /// Served with one byte flipped (the listed sha256 is of the right bytes).
        var corrupt: Set<String> = []
        /// The first CDN request of these stops halfway and drops the connection.
        var cutFirst: Set<String> = []
        /// Redirect to `localhost` instead of `127.0.0.1`: another host, so no token may follow.
        var crossHostCDN = false
    }

    struct Logged { var path: String; var range: String?; var authorization: String? }

    static let token = "hf_fake_secret_token_123"
    private let lock = NSLock()
    private var repos: [String: Repo] = [:]
    private var log: [Logged] = []
    private var cut: Set<String> = []

    func add(_ name: String, _ repo: Repo) { lock.withLock { repos[name] = repo } }
    var requests: [Logged] { lock.withLock { log } }
    func clearLog() { lock.withLock { log.removeAll() } }

    /// Runs `body` with the hub listening; its argument is the endpoint URL.
    func run(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        var logger = Logger(label: "fake-hub")
        logger.logLevel = .error
        let app = Application(router: makeRouter(), configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        try await app.test(.live) { client in try await body("http://127.0.0.1:\(client.port!)") }
    }

    static func gitOID(_ bytes: [UInt8]) -> String {
        var h = GitBlobSHA1(size: bytes.count); h.update(bytes); return h.hexDigest()
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        var h = SHA256Digest(); h.update(bytes); return h.hexDigest()
    }

    private func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/api/models/:org/:name/revision/:rev") { request, context in
            try self.api(request, context) { repo, _ in
                let siblings = repo.files.keys.sorted().map { ["rfilename": $0] }
                return try JSONSerialization.data(withJSONObject: ["sha": repo.commit, "siblings": siblings, "private": false])
            }
        }
        router.get("/api/models/:org/:name/tree/:rev") { request, context in
            try self.api(request, context) { repo, _ in
                var entries: [[String: Any]] = []
                for (path, bytes) in repo.files.sorted(by: { $0.key < $1.key }) {
                    var entry: [String: Any] = ["type": "file", "path": path, "size": bytes.count,
                                                "oid": Self.gitOID(Array("pointer \(path)".utf8))]
                    if repo.lfs.contains(path) {
                        entry["lfs"] = ["oid": Self.sha256(bytes), "size": bytes.count, "pointerSize": 134]
                    } else {
                        entry["oid"] = Self.gitOID(bytes)
                    }
                    entries.append(entry)
                }
                if repo.files.keys.contains(where: { $0.contains("/") }) { entries.append(["type": "directory", "path": "sub", "oid": "x", "size": 0]) }
                return try JSONSerialization.data(withJSONObject: entries)
            }
        }
        router.get("/:org/:name/resolve/:rev/**") { request, context in
            let name = try self.repoName(context)
            self.record(request)
            guard let repo = self.lock.withLock({ self.repos[name] }) else { return Self.error(404, code: "RepoNotFound") }
            if let denied = self.checkAuth(request, repo) { return denied }
            let rev = context.parameters.get("rev") ?? ""
            guard rev == repo.commit || rev == "main" else { return Self.error(404, code: "RevisionNotFound") }
            let path = context.parameters.getCatchAll().joined(separator: "/")
            guard let bytes = repo.files[path] else { return Self.error(404, code: "EntryNotFound") }
            if repo.lfs.contains(path) {
                let authority = request.head.authority ?? "127.0.0.1"
                let host = repo.crossHostCDN ? authority.replacingOccurrences(of: "127.0.0.1", with: "localhost") : authority
                var headers = HTTPFields()
                headers[.location] = "http://\(host)/cdn/\(name)/\(path)"
                return Response(status: .found, headers: headers)
            }
            return self.serve(bytes, request: request, key: name + "/" + path, repo: repo, path: path)
        }
        router.get("/cdn/:org/:name/**") { request, context in
            let name = try self.repoName(context)
            self.record(request)
            let path = context.parameters.getCatchAll().joined(separator: "/")
            guard let repo = self.lock.withLock({ self.repos[name] }), let bytes = repo.files[path] else { return Self.error(404, code: nil) }
            return self.serve(bytes, request: request, key: name + "/" + path, repo: repo, path: path)
        }
        return router
    }

    private func repoName(_ context: BasicRequestContext) throws -> String {
        guard let org = context.parameters.get("org"), let name = context.parameters.get("name") else { throw HTTPError(.badRequest) }
        return "\(org)/\(name)"
    }

    private func record(_ request: Request) {
        let entry = Logged(path: request.uri.path, range: request.headers[.range], authorization: request.headers[.authorization])
        lock.withLock { log.append(entry) }
    }

    private func checkAuth(_ request: Request, _ repo: Repo) -> Response? {
        guard repo.gated, request.headers[.authorization] != "Bearer \(Self.token)" else { return nil }
        return Self.error(401, code: "GatedRepo")
    }

    private func api(_ request: Request, _ context: BasicRequestContext, _ make: (Repo, String) throws -> Data) throws -> Response {
        let name = try repoName(context)
        record(request)
        guard let repo = lock.withLock({ repos[name] }) else { return Self.error(401, code: "RepoNotFound") }
        if let denied = checkAuth(request, repo) { return denied }
        let rev = context.parameters.get("rev") ?? ""
        guard rev == repo.commit || rev == "main" else { return Self.error(404, code: "RevisionNotFound") }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(data: try make(repo, name))))
    }

    static func error(_ status: Int, code: String?) -> Response {
        var headers = HTTPFields()
        if let code { headers[.init("X-Error-Code")!] = code }
        headers[.contentType] = "application/json"
        return Response(status: .init(code: status), headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"error":"\u0000<raw bytes that must never be echoed>"}"#)))
    }

    /// The bytes (or the asked range), corrupted or cut as scripted.
    private func serve(_ original: [UInt8], request: Request, key: String, repo: Repo, path: String) -> Response {
        var bytes = original
        if repo.corrupt.contains(path) { bytes[bytes.count / 2] ^= 0x5A }
        var start = 0
        var status = HTTPResponse.Status.ok
        var headers = HTTPFields()
        headers[.acceptRanges] = "bytes"
        headers[.init("X-Linked-Etag")!] = "\"\(Self.sha256(original))\""
        if let range = request.headers[.range], range.hasPrefix("bytes="), let from = Int(range.dropFirst(6).split(separator: "-").first ?? "") {
            guard from < bytes.count else {
                headers[.contentRange] = "bytes */\(bytes.count)"
                return Response(status: .init(code: 416), headers: headers)
            }
            start = from
            status = .partialContent
            headers[.contentRange] = "bytes \(from)-\(bytes.count - 1)/\(bytes.count)"
        }
        let body = Array(bytes[start...])
        headers[.contentLength] = "\(body.count)"
        let cutNow = repo.cutFirst.contains(path) && lock.withLock { cut.insert(key).inserted }
        if cutNow {
            let half = Array(body[..<(body.count / 2)])
            return Response(status: status, headers: headers, body: ResponseBody(contentLength: body.count) { writer in
                try await writer.write(ByteBuffer(bytes: half))
                throw CancellationError()  // the server drops the connection mid-body
            })
        }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
