import Foundation
@testable import KujiraHub
import XCTest

/// Digests, file selection, repo ids, cache location rules, list and rm.
final class HubUnitTests: XCTestCase {
    func testSHA256MatchesTheFIPSVectorsInAnyChunking() {
        func sha(_ text: String) -> String { var h = SHA256Digest(); h.update(Array(text.utf8)); return h.hexDigest() }
        XCTAssertEqual(sha(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(sha("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var million = SHA256Digest()
        let chunk = [UInt8](repeating: 0x61, count: 1000)
        for _ in 0..<1000 { million.update(chunk) }
        XCTAssertEqual(million.hexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Odd chunk sizes give the same digest as one update.
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }
        var whole = SHA256Digest(); whole.update(data)
        var pieces = SHA256Digest()
        var i = 0, step = 1
        while i < data.count { let end = min(data.count, i + step); pieces.update(data[i..<end]); i = end; step = step * 3 % 97 + 1 }
        XCTAssertEqual(pieces.hexDigest(), whole.hexDigest())
    }

    func testGitBlobIDsMatchGit() {
        func oid(_ text: String) -> String { var h = GitBlobSHA1(size: text.utf8.count); h.update(Array(text.utf8)); return h.hexDigest() }
        XCTAssertEqual(oid(""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")  // git hash-object /dev/null
        XCTAssertEqual(oid("hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a")
        XCTAssertEqual(oid(String(repeating: "x", count: 200)), oid2(String(repeating: "x", count: 200)))
        func oid2(_ text: String) -> String {
            var h = GitBlobSHA1(size: text.utf8.count)
            for byte in text.utf8 { h.update([byte]) }
            return h.hexDigest()
        }
    }

    func testModelReferences() {
        XCTAssertEqual(ModelReference(parsing: "unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF:Q4_K_M"),
                       ModelReference(repo: "unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF", suffix: "Q4_K_M"))
        XCTAssertEqual(ModelReference(parsing: "org/name"), ModelReference(repo: "org/name"))
        XCTAssertEqual(ModelReference(parsing: "org/name:*.safetensors")?.suffix, "*.safetensors")
        for bad in ["name", "a/b/c", "/abs/path", "./x", "../up/dir", "org/", "org/name:", "~/models", "org/na me", "org--x/y"] {
            XCTAssertNil(ModelReference(parsing: bad), bad)
        }
    }

    func testFileSelection() throws {
        func file(_ path: String) -> HubFile { HubFile(path: path, size: 1, gitOID: String(repeating: "a", count: 40), sha256: nil) }
        let gguf = ["m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf", "m-Q4_K.gguf", "m-Q4_K_S.gguf", "m.Q8_0.gguf",
                    "Q2_K_XL/m-UD-Q2_K_XL-00001-of-00001.gguf", "README.md"].map(file)
        XCTAssertEqual(try FileSelection.select(gguf, suffix: "q4_k_m", repo: "o/m").map(\.path), ["m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf"])
        XCTAssertEqual(try FileSelection.select(gguf, suffix: "Q4_K", repo: "o/m").map(\.path), ["m-Q4_K.gguf"])
        XCTAssertEqual(try FileSelection.select(gguf, suffix: "Q8_0", repo: "o/m").map(\.path), ["m.Q8_0.gguf"])
        XCTAssertEqual(try FileSelection.select(gguf, suffix: "ud-q2_k_xl", repo: "o/m").count, 1)
        XCTAssertEqual(try FileSelection.select(gguf, suffix: "Q2_K_XL/*", repo: "o/m").count, 1)
        XCTAssertEqual(FileSelection.quants(in: gguf), ["Q2_K_XL", "Q4_K", "Q4_K_M", "Q4_K_S", "Q8_0"])
        XCTAssertThrowsError(try FileSelection.select(gguf, suffix: "IQ1_S", repo: "o/m")) { XCTAssertTrue("\($0)".contains("available: Q2_K_XL")) }
        let hf = ["config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer.model",
                  "pytorch_model.bin", "tf_model.h5", "chat_template.jinja", "figures/plot.png", "LICENSE", "README.md"].map(file)
        XCTAssertEqual(Set(try FileSelection.select(hf, suffix: nil, repo: "o/m").map(\.path)),
                       ["config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer.model",
                        "chat_template.jinja", "README.md"])
        XCTAssertEqual(try FileSelection.select(hf, suffix: "*.json", repo: "o/m").count, 3)
        XCTAssertEqual(FileSelection.shardIndex("a/x-00002-of-00003.gguf")?.0, 2)
    }

    func testCacheLocationFollowsHuggingFaceHub() {
        let home = ["HOME": "/home/u"]
        XCTAssertEqual(HubCache.fromEnvironment(home).root.path, "/home/u/.cache/huggingface/hub")
        XCTAssertEqual(HubCache.fromEnvironment(home.merging(["XDG_CACHE_HOME": "/x"]) { $1 }).root.path, "/x/huggingface/hub")
        XCTAssertEqual(HubCache.fromEnvironment(home.merging(["HF_HOME": "~/hf"]) { $1 }).root.path, "/home/u/hf/hub")
        XCTAssertEqual(HubCache.fromEnvironment(home.merging(["HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/old"]) { $1 }).root.path, "/old")
        XCTAssertEqual(HubCache.fromEnvironment(home.merging(["HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/old", "HF_HUB_CACHE": "$HOME/c"]) { $1 }).root.path,
                       "/home/u/c")
        XCTAssertEqual(HubCache.folderName(repo: "unsloth/DeepSeek-R1-GGUF"), "models--unsloth--DeepSeek-R1-GGUF")
        let config = HubConfiguration.fromEnvironment(["HF_ENDPOINT": "http://127.0.0.1:1/", "HF_TOKEN": "hf_secret", "HF_HOME": "/nonexistent"])
        XCTAssertEqual(config.endpoint, "http://127.0.0.1:1")
        XCTAssertEqual(config.token, "hf_secret")
        XCTAssertFalse("\(config)".contains("hf_secret"))
    }

    func testDiskFullIsReportedAsSuch() throws {
        let fd = open("/dev/full", O_WRONLY)
        try XCTSkipIf(fd < 0, "no /dev/full")
        defer { close(fd) }
        let bytes = [UInt8](repeating: 7, count: 4096)
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try writeAll(fd: fd, $0, path: "/dev/full") }) { XCTAssertTrue($0 is DiskFull, "\($0)") }
        let message = HubError.diskFull(repo: "o/m", file: "w.gguf", directory: "/c", needed: nil, available: nil).description
        XCTAssertTrue(message.contains("o/m/w.gguf") && message.contains("ENOSPC"), message)
    }

    func testTokenFileIsUsedWithoutHFToken() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-hf-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeFileAtomically(Data("hf_from_file\n".utf8), to: dir.appendingPathComponent("token"))
        XCTAssertEqual(HubConfiguration.fromEnvironment(["HF_HOME": dir.path]).token, "hf_from_file")
    }

    func testListAndRemove() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-hub-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let cache = HubCache(root: root)
        let commit = String(repeating: "b", count: 40)
        try writeFileAtomically(Data(repeating: 1, count: 10), to: cache.blobsDirectory("a/b").appendingPathComponent("blob1"))
        try writeFileAtomically(Data(repeating: 1, count: 5), to: cache.blobsDirectory("a/b").appendingPathComponent("blob2.incomplete"))
        try cache.linkSnapshot("a/b", commit: commit, path: "dir/config.json", blob: "blob1")
        try cache.writeRef("a/b", revision: "main", commit: commit)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: cache.snapshotDirectory("a/b", commit: commit).appendingPathComponent("dir/config.json").path),
                       "../../../blobs/blob1")
        let repos = cache.cachedRepos()
        XCTAssertEqual(repos.count, 1)
        XCTAssertEqual(repos[0].repo, "a/b")
        XCTAssertEqual(repos[0].bytes, 10)
        XCTAssertEqual(repos[0].incompleteBytes, 5)
        XCTAssertEqual(repos[0].snapshots, [commit])
        XCTAssertEqual(cache.commit("a/b", revision: "main"), commit)
        XCTAssertTrue(try cache.remove("a/b"))
        XCTAssertFalse(try cache.remove("a/b"))
        XCTAssertEqual(cache.cachedRepos().count, 0)
        XCTAssertNil(try ModelResolver.resolve("not-a-repo-id", cache: cache))
        XCTAssertEqual(try ModelResolver.resolve(root.path, cache: cache), root.path)
        XCTAssertThrowsError(try ModelResolver.resolve("a/b", cache: cache)) { XCTAssertTrue("\($0)".contains("kujira pull a/b"), "\($0)") }
    }
}
