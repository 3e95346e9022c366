import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Where the Hub is and the token to send: `HF_ENDPOINT` (default https://huggingface.co), `HF_TOKEN` (else the
/// `huggingface-cli login` token file). The token is never printed: `description` hides it.
public struct HubConfiguration: Sendable, CustomStringConvertible {
    public var endpoint: String
    public var token: String?

    public init(endpoint: String = "https://huggingface.co", token: String? = nil) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.token = token.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `HF_ENDPOINT`; `HF_TOKEN` (or the legacy `HUGGING_FACE_HUB_TOKEN`), else the file `$HF_TOKEN_PATH` or `$HF_HOME/token`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> HubConfiguration {
        let endpoint = environment["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://huggingface.co"
        var token = environment["HF_TOKEN"].flatMap { $0.isEmpty ? nil : $0 } ?? environment["HUGGING_FACE_HUB_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if token == nil {
            let path = environment["HF_TOKEN_PATH"].flatMap { $0.isEmpty ? nil : HubCache.expand($0, environment) }
                ?? HubCache.hfHome(environment) + "/token"
            token = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return HubConfiguration(endpoint: endpoint, token: token)
    }

    public var description: String { "HubConfiguration(endpoint: \(endpoint), token: \(token == nil ? "none" : "set"))" }
}

/// One file of a repo at a commit, from the tree API.
public struct HubFile: Sendable, Equatable {
    public var path: String
    public var size: Int
    /// git blob id (sha1); the Hub's ETag of a non-LFS file.
    public var gitOID: String
    /// sha256 of the content for LFS files (their ETag).
    public var sha256: String?

    public init(path: String, size: Int, gitOID: String, sha256: String?) {
        self.path = path; self.size = size; self.gitOID = gitOID; self.sha256 = sha256
    }

    /// The blob's name in the cache: what huggingface_hub uses (the normalized ETag: sha256 for LFS, else the git id).
    public var blobName: String { sha256 ?? gitOID }
}

/// Hugging Face Hub HTTP API: repo info, file tree, file downloads (redirects followed by hand so the token never
/// goes to another host).
public final class HubClient: Sendable {
    public let configuration: HubConfiguration
    let http: HTTPClient

    public init(configuration: HubConfiguration) {
        self.configuration = configuration
        var config = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                              timeout: .init(connect: .seconds(20), read: .seconds(60)))
        config.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    /// Closes the connection pool; call once when done.
    public func shutdown() async { try? await http.shutdown() }

    /// The commit a revision points to, from `GET /api/models/{repo}/revision/{rev}`.
    public func commit(repo: String, revision: String) async throws -> String {
        struct Info: Decodable { var sha: String? }
        let data = try await getJSON(apiURL(repo: repo, suffix: "revision/" + encodeComponent(revision)), repo: repo, revision: revision)
        guard let info = try? JSONDecoder().decode(Info.self, from: data), let sha = info.sha, isCommitHash(sha) else {
            throw HubError.badResponse(repo: repo, reason: "the model info has no commit sha")
        }
        return sha
    }

    /// Every file of the repo at `revision` (best a commit sha): `GET /api/models/{repo}/tree/{rev}?recursive=true`,
    /// following `Link: rel="next"` pages.
    public func files(repo: String, revision: String) async throws -> [HubFile] {
        struct Entry: Decodable {
            struct LFS: Decodable { var oid: String; var size: Int }
            var type: String
            var path: String
            var size: Int?
            var oid: String?
            var lfs: LFS?
        }
        var url = apiURL(repo: repo, suffix: "tree/" + encodeComponent(revision)) + "?recursive=true"
        var result: [HubFile] = []
        for _ in 0..<1000 {
            let (data, headers) = try await getJSONWithHeaders(url, repo: repo, revision: revision)
            guard let entries = try? JSONDecoder().decode([Entry].self, from: data) else {
                throw HubError.badResponse(repo: repo, reason: "the file tree is not a JSON list of entries")
            }
            for entry in entries where entry.type == "file" {
                let sha = entry.lfs.map { $0.oid.hasPrefix("sha256:") ? String($0.oid.dropFirst(7)) : $0.oid }
                result.append(HubFile(path: entry.path, size: entry.lfs?.size ?? entry.size ?? 0, gitOID: entry.oid ?? "", sha256: sha))
            }
            guard let next = nextLink(headers), sameOrigin(next, configuration.endpoint) else { break }
            url = next
        }
        for file in result {
            guard isSafeRelativePath(file.path), file.sha256 == nil || isHex(file.sha256!, count: 64),
                  file.sha256 != nil || isHex(file.gitOID, count: 40) else {
                throw HubError.badResponse(repo: repo, reason: "the tree lists an unusable entry")
            }
        }
        return result
    }

    /// `{endpoint}/{repo}/resolve/{rev}/{path}` after redirects: a response with status 200 or 206 whose body the caller
    /// streams, or 416 (range past the end). `offset` > 0 asks for `Range: bytes=offset-`.
    public func download(repo: String, revision: String, path: String, offset: Int) async throws -> HTTPClientResponse {
        var url = configuration.endpoint + "/" + encodeRepo(repo) + "/resolve/" + encodeComponent(revision) + "/"
            + path.split(separator: "/", omittingEmptySubsequences: false).map { encodeComponent(String($0)) }.joined(separator: "/")
        for _ in 0..<10 {
            var request = HTTPClientRequest(url: url)
            addHeaders(&request, url: url)
            if offset > 0 { request.headers.add(name: "Range", value: "bytes=\(offset)-") }
            let response = try await http.execute(request, deadline: .distantFuture)
            if [301, 302, 303, 307, 308].contains(Int(response.status.code)), let location = response.headers.first(name: "Location") {
                _ = try? await response.body.collect(upTo: 1 << 20)
                guard let next = URL(string: location, relativeTo: URL(string: url))?.absoluteURL.absoluteString else {
                    throw HubError.badResponse(repo: repo, reason: "a redirect for \(path) has no usable Location")
                }
                url = next
                continue
            }
            let code = Int(response.status.code)
            if code == 200 || code == 206 || code == 416 { return response }
            _ = try? await response.body.collect(upTo: 1 << 20)
            throw statusError(code, headers: response.headers, repo: repo, revision: revision, file: path)
        }
        throw HubError.badResponse(repo: repo, reason: "too many redirects for \(path)")
    }

    // MARK: - helpers

    private func apiURL(repo: String, suffix: String) -> String { configuration.endpoint + "/api/models/" + encodeRepo(repo) + "/" + suffix }

    private func addHeaders(_ request: inout HTTPClientRequest, url: String) {
        request.headers.add(name: "User-Agent", value: "kujira/1 (swift; huggingface_hub-compatible)")
        if let token = configuration.token, sameOrigin(url, configuration.endpoint) {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
    }

    private func getJSON(_ url: String, repo: String, revision: String) async throws -> Data {
        try await getJSONWithHeaders(url, repo: repo, revision: revision).0
    }

    private func getJSONWithHeaders(_ url: String, repo: String, revision: String) async throws -> (Data, HTTPHeaders) {
        var attempt = 0
        while true {
            do {
                var request = HTTPClientRequest(url: url)
                addHeaders(&request, url: url)
                let response = try await http.execute(request, timeout: .seconds(60))
                let body = try await response.body.collect(upTo: 256 << 20)
                let code = Int(response.status.code)
                if code >= 500, attempt < 3 { attempt += 1; try await Task.sleep(nanoseconds: UInt64(attempt) * 500_000_000); continue }
                guard code == 200 else { throw statusError(code, headers: response.headers, repo: repo, revision: revision, file: nil) }
                return (Data(body.readableBytesView), response.headers)
            } catch let error as HubError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                if attempt < 3 { attempt += 1; try await Task.sleep(nanoseconds: UInt64(attempt) * 500_000_000); continue }
                throw HubError.network(repo: repo, file: nil, reason: describeNetworkError(error))
            }
        }
    }

    func statusError(_ code: Int, headers: HTTPHeaders, repo: String, revision: String, file: String?) -> HubError {
        let errorCode = headers.first(name: "X-Error-Code") ?? ""
        if errorCode == "RepoNotFound" || errorCode == "RevisionNotFound" || errorCode == "EntryNotFound" {
            return .notFound(repo: repo, revision: revision, file: file, what: errorCode)
        }
        switch code {
        case 401, 403: return .unauthorized(repo: repo, file: file, tokenSent: configuration.token != nil, endpoint: configuration.endpoint)
        case 404: return .notFound(repo: repo, revision: revision, file: file, what: file == nil ? "RepoNotFound" : "EntryNotFound")
        default: return .httpStatus(repo: repo, file: file, status: code)
        }
    }
}

/// A short, byte-free description of a transport error.
func describeNetworkError(_ error: Error) -> String {
    if let error = error as? HTTPClientError { return "\(error)".prefix(120).description }
    return String(describing: type(of: error))
}

/// `org/name` with each part percent-encoded.
func encodeRepo(_ repo: String) -> String { repo.split(separator: "/").map { encodeComponent(String($0)) }.joined(separator: "/") }

/// Percent-encodes everything but RFC 3986 unreserved characters (Python's `quote(s, safe="")`).
func encodeComponent(_ text: String) -> String {
    var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
    allowed.remove(charactersIn: "")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}

/// Same scheme, host and port.
func sameOrigin(_ a: String, _ b: String) -> Bool {
    guard let x = URLComponents(string: a), let y = URLComponents(string: b) else { return false }
    func port(_ c: URLComponents) -> Int? { c.port ?? (c.scheme == "https" ? 443 : c.scheme == "http" ? 80 : nil) }
    return x.scheme?.lowercased() == y.scheme?.lowercased() && x.host?.lowercased() == y.host?.lowercased() && port(x) == port(y)
}

/// The `rel="next"` URL of a `Link` header.
func nextLink(_ headers: HTTPHeaders) -> String? {
    for value in headers["Link"] {
        for part in value.split(separator: ",") where part.contains("rel=\"next\"") {
            if let open = part.firstIndex(of: "<"), let close = part.firstIndex(of: ">"), open < close {
                return String(part[part.index(after: open)..<close])
            }
        }
    }
    return nil
}

/// A repo-relative path with no empty, `.` or `..` component and no leading `/`.
func isSafeRelativePath(_ path: String) -> Bool {
    guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\\"), !path.contains("\0") else { return false }
    return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
}

func isHex(_ text: String, count: Int) -> Bool { text.count == count && text.allSatisfy { $0.isHexDigit && !$0.isUppercase } }

/// 40 hex digits.
public func isCommitHash(_ text: String) -> Bool { isHex(text, count: 40) }
