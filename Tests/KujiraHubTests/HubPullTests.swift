import Foundation
import KujiraHub
import XCTest

/// `kujira pull` against a fake hub on 127.0.0.1: cache layout, resume, checksums, auth, 404, quant selection,
/// and `--model org/name` resolution. Nothing here touches the network beyond the loopback.
final class HubPullTests: XCTestCase {
    static let commit = "0123456789abcdef0123456789abcdef01234567"

    var cacheRoot: URL!

    override func setUp() {
        cacheRoot = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-hub-\(UUID().uuidString)/hub")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: cacheRoot.deletingLastPathComponent())
    }

    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    static let tiny = FakeHub.Repo(
        commit: commit,
        files: ["config.json": Array(#"{"model_type": "qwen2"}"#.utf8), "tokenizer.json": Array("{}\n".utf8),
                "model.safetensors": bytes(300_000, seed: 1), "README.md": Array("# tiny\n".utf8),
                "sub/extra.json": Array("[1, 2]\n".utf8), "pytorch_model.bin": bytes(1000, seed: 2), "empty.txt": []],
        lfs: ["model.safetensors", "pytorch_model.bin"],
        cutFirst: ["model.safetensors"])

    func makeHub() -> FakeHub {
        let hub = FakeHub()
        hub.add("kujira-test/tiny", Self.tiny)
        hub.add("kujira-test/broken", FakeHub.Repo(commit: Self.commit, files: ["config.json": Array("{}".utf8), "model.safetensors": Self.bytes(5000, seed: 3)],
                                                  lfs: ["model.safetensors"], corrupt: ["model.safetensors"]))
        hub.add("kujira-test/gated", FakeHub.Repo(commit: Self.commit, files: ["config.json": Array("{}".utf8), "model.safetensors": Self.bytes(4000, seed: 4)],
                                                 lfs: ["model.safetensors"], gated: true, crossHostCDN: true))
        var gguf: [String: [UInt8]] = [:]
        for (i, name) in ["tiny-Q4_K_M-00001-of-00002.gguf", "tiny-Q4_K_M-00002-of-00002.gguf", "tiny-Q4_K_S.gguf", "tiny-Q8_0.gguf"].enumerated() {
            gguf[name] = Self.bytes(2000 + i, seed: UInt64(10 + i))
        }
        gguf["README.md"] = Array("gguf\n".utf8)
        hub.add("kujira-test/tiny-GGUF", FakeHub.Repo(commit: Self.commit, files: gguf, lfs: Set(gguf.keys.filter { $0.hasSuffix(".gguf") })))
        return hub
    }

    static func pull(_ root: URL, _ endpoint: String, _ reference: String, token: String? = nil) async throws -> PullResult {
        let client = HubClient(configuration: HubConfiguration(endpoint: endpoint, token: token))
        let downloader = HubDownloader(client: client, cache: HubCache(root: root))
        await downloader.setRetryPolicy(maxRetries: 3, initialBackoff: .milliseconds(10))
        do {
            let result = try await downloader.pull(ModelReference(parsing: reference)!)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    func testPullBuildsTheHuggingFaceCacheLayoutResumesADroppedConnectionAndASecondPullDownloadsNothing() async throws {
        let hub = makeHub()
        let root = cacheRoot!
        try await hub.run { endpoint in
            let result = try await Self.pull(root, endpoint, "kujira-test/tiny")
            XCTAssertEqual(result.commit, Self.commit)
            XCTAssertEqual(Set(result.files.map(\.path)), ["config.json", "tokenizer.json", "model.safetensors", "README.md", "sub/extra.json", "empty.txt"])
            let repoDir = root.appendingPathComponent("models--kujira-test--tiny")
            XCTAssertEqual(try String(contentsOf: repoDir.appendingPathComponent("refs/main"), encoding: .utf8), Self.commit)
            let snapshot = repoDir.appendingPathComponent("snapshots/\(Self.commit)")
            XCTAssertEqual(result.snapshot.path, snapshot.path)
            let sha = FakeHub.sha256(Self.tiny.files["model.safetensors"]!)
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: snapshot.appendingPathComponent("model.safetensors").path), "../../blobs/\(sha)")
            let extraOID = FakeHub.gitOID(Self.tiny.files["sub/extra.json"]!)
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: snapshot.appendingPathComponent("sub/extra.json").path), "../../../blobs/\(extraOID)")
            for (path, bytes) in Self.tiny.files where path != "pytorch_model.bin" {
                XCTAssertEqual(Array(try Data(contentsOf: snapshot.appendingPathComponent(path))), bytes, path)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: snapshot.appendingPathComponent("pytorch_model.bin").path))
            let blobs = try FileManager.default.contentsOfDirectory(atPath: repoDir.appendingPathComponent("blobs").path)
            XCTAssertFalse(blobs.contains { $0.hasSuffix(".incomplete") })
            XCTAssertTrue(blobs.contains(sha))
            // The first CDN request was cut halfway: the retry asked for the rest with a Range and the sha256 matched.
            let cdn = hub.requests.filter { $0.path.hasPrefix("/cdn/kujira-test/tiny/model.safetensors") }
            XCTAssertEqual(cdn.count, 2)
            XCTAssertNil(cdn.first?.range)
            let resumedAt = cdn.last?.range.flatMap { Int($0.dropFirst("bytes=".count).dropLast()) } ?? 0
            XCTAssertTrue(resumedAt > 0 && resumedAt < 300_000, "\(cdn)")

            hub.clearLog()
            let again = try await Self.pull(root, endpoint, "kujira-test/tiny")
            XCTAssertEqual(again.downloadedBytes, 0)
            XCTAssertEqual(again.downloadedFiles, [])
            XCTAssertFalse(hub.requests.contains { $0.path.contains("/resolve/") || $0.path.hasPrefix("/cdn/") })

            // `--model org/name` finds the snapshot directory (it has config.json).
            XCTAssertEqual(try ModelResolver.resolve("kujira-test/tiny", cache: HubCache(root: root)), snapshot.path)
            let listed = HubCache(root: root).cachedRepos()
            XCTAssertEqual(listed.map(\.repo), ["kujira-test/tiny"])
            XCTAssertEqual(listed[0].refs, ["main": Self.commit])
            XCTAssertEqual(listed[0].bytes, Self.tiny.files.filter { $0.key != "pytorch_model.bin" }.values.reduce(0) { $0 + $1.count })
        }
    }

    func testALaterRunContinuesAnIncompleteFile() async throws {
        let hub = makeHub()
        let root = cacheRoot!
        let bytes = Self.tiny.files["model.safetensors"]!
        let blobs = root.appendingPathComponent("models--kujira-test--tiny/blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try Data(bytes[..<1234]).write(to: blobs.appendingPathComponent(FakeHub.sha256(bytes) + ".incomplete"))
        try await hub.run { endpoint in
            let result = try await Self.pull(root, endpoint, "kujira-test/tiny:model.safetensors")
            XCTAssertEqual(result.downloadedBytes, bytes.count - 1234)
            XCTAssertEqual(hub.requests.first { $0.path.hasPrefix("/cdn/") }?.range, "bytes=1234-")
            XCTAssertEqual(Array(try Data(contentsOf: result.snapshot.appendingPathComponent("model.safetensors"))), bytes)
        }
    }

    func testACorruptedDownloadIsRefusedAndNothingEntersTheSnapshot() async throws {
        let hub = makeHub()
        let root = cacheRoot!
        try await hub.run { endpoint in
            do {
                _ = try await Self.pull(root, endpoint, "kujira-test/broken")
                XCTFail("a corrupted file was accepted")
            } catch let error as HubError {
                guard case let .checksumMismatch(repo, file, _, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(repo, "kujira-test/broken")
                XCTAssertEqual(file, "model.safetensors")
                XCTAssertTrue(error.description.contains("kujira-test/broken/model.safetensors"))
            }
            let repoDir = root.appendingPathComponent("models--kujira-test--broken")
            let blobs = try FileManager.default.contentsOfDirectory(atPath: repoDir.appendingPathComponent("blobs").path)
            XCTAssertFalse(blobs.contains { $0 == FakeHub.sha256(Self.bytes(5000, seed: 3)) || $0.hasSuffix(".incomplete") }, "\(blobs)")
            let snapshot = repoDir.appendingPathComponent("snapshots/\(Self.commit)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: snapshot.appendingPathComponent("model.safetensors").path))
            XCTAssertNil(try? FileManager.default.destinationOfSymbolicLink(atPath: snapshot.appendingPathComponent("model.safetensors").path))
        }
    }

    func testAGatedRepoNeedsTheTokenWhichNeverLeavesTheHubHost() async throws {
        let hub = makeHub()
        let root = cacheRoot!
        try await hub.run { endpoint in
            do {
                _ = try await Self.pull(root, endpoint, "kujira-test/gated")
                XCTFail("gated repo pulled without a token")
            } catch let error as HubError {
                guard case .unauthorized(let repo, _, let tokenSent, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(repo, "kujira-test/gated")
                XCTAssertFalse(tokenSent)
                XCTAssertTrue(error.description.contains("HF_TOKEN"))
                XCTAssertFalse(error.description.contains("raw bytes"))
            }
            do {
                _ = try await Self.pull(root, endpoint, "kujira-test/gated", token: "hf_wrong")
                XCTFail("gated repo pulled with a wrong token")
            } catch let error as HubError {
                XCTAssertFalse(error.description.contains("hf_wrong"))
                guard case .unauthorized(_, _, true, _) = error else { return XCTFail("\(error)") }
            }
            hub.clearLog()
            let result = try await Self.pull(root, endpoint, "kujira-test/gated", token: FakeHub.token)
            XCTAssertEqual(result.files.count, 2)
            let resolve = hub.requests.filter { $0.path.contains("/resolve/") }
            XCTAssertFalse(resolve.isEmpty)
            XCTAssertTrue(resolve.allSatisfy { $0.authorization == "Bearer \(FakeHub.token)" })
            let cdn = hub.requests.filter { $0.path.hasPrefix("/cdn/") }
            XCTAssertEqual(cdn.count, 1)
            XCTAssertNil(cdn[0].authorization, "the token followed a redirect to another host")
        }
    }

    func testAMissingRepoIs404NamingIt() async throws {
        let hub = makeHub()
        let root = cacheRoot!
        try await hub.run { endpoint in
            do {
                _ = try await Self.pull(root, endpoint, "kujira-test/nope")
                XCTFail("pulled a missing repo")
            } catch let error as HubError {
                guard case .notFound(let repo, _, _, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(repo, "kujira-test/nope")
                XCTAssertTrue(error.description.contains("kujira-test/nope"))
            }
            do {
                _ = try await Self.pull(root, endpoint, "kujira-test/tiny:no-such-file.gguf")
                XCTFail("selected a missing quant")
            } catch let error as HubError {
                guard case .invalidRequest(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains("kujira-test/tiny"))
            }
        }
    }

    func testAQuantPullTakesEveryShardAndModelResolutionFindsTheFirst() async throws {
        let hub = makeHub()
        let root = cacheRoot!
        try await hub.run { endpoint in
            do {
                _ = try await Self.pull(root, endpoint, "kujira-test/tiny-GGUF")
                XCTFail("pulled every quant without being asked")
            } catch let error as HubError {
                XCTAssertTrue(error.description.contains("Q4_K_M"), error.description)
                XCTAssertTrue(error.description.contains("Q8_0"), error.description)
            }
            let cache = HubCache(root: root)
            XCTAssertThrowsError(try ModelResolver.resolve("kujira-test/tiny-GGUF:Q4_K_M", cache: cache)) { error in
                XCTAssertTrue("\(error)".contains("kujira pull kujira-test/tiny-GGUF:Q4_K_M"), "\(error)")
            }
            let result = try await Self.pull(root, endpoint, "kujira-test/tiny-GGUF:q4_k_m")
            XCTAssertEqual(result.files.map(\.path).sorted(), ["tiny-Q4_K_M-00001-of-00002.gguf", "tiny-Q4_K_M-00002-of-00002.gguf"])
            let snapshot = cache.snapshotDirectory("kujira-test/tiny-GGUF", commit: Self.commit)
            XCTAssertEqual(try ModelResolver.resolve("kujira-test/tiny-GGUF:Q4_K_M", cache: cache),
                           snapshot.appendingPathComponent("tiny-Q4_K_M-00001-of-00002.gguf").path)
            // The only quant cached: no suffix needed.
            XCTAssertEqual(try ModelResolver.resolve("kujira-test/tiny-GGUF", cache: cache),
                           snapshot.appendingPathComponent("tiny-Q4_K_M-00001-of-00002.gguf").path)
            XCTAssertThrowsError(try ModelResolver.resolve("kujira-test/tiny-GGUF:Q8_0", cache: cache))

            let glob = try await Self.pull(root, endpoint, "kujira-test/tiny-GGUF:*Q4_K_S*")
            XCTAssertEqual(glob.files.map(\.path), ["tiny-Q4_K_S.gguf"])
            XCTAssertThrowsError(try ModelResolver.resolve("kujira-test/tiny-GGUF", cache: cache)) { error in
                XCTAssertTrue("\(error)".contains("several quantizations"), "\(error)")
            }
        }
    }
}
