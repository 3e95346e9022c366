import Foundation
import Hummingbird
import HummingbirdTesting
@testable import KujiraGeneration
import KujiraServer
import XCTest

/// The shared prefix cache (`--cache-ram`, `--cache-dir`) through the HTTP API: a restarted server hits it from disk, a corrupt or truncated file is ignored (never trusted), the replies
/// are exactly those without the cache, and RAM stays within its budget.
final class PrefixCacheTests: XCTestCase {
    static let system = String(repeating: "You are a careful assistant who answers briefly. ", count: 3)

    static func ask(_ client: some TestClientProtocol, _ question: String) async throws -> (content: String, hits: Int) {
        let body = jsonBody(["model": "tiny-chat", "max_tokens": 6, "temperature": 0,
                             "messages": [["role": "system", "content": Self.system], ["role": "user", "content": question]]])
        let response = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body)
        XCTAssertEqual(response.status, .ok, response.text)
        let json = try response.json()
        let message = (json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
        let content = "\(message?["reasoning_content"] as? String ?? "")|\(message?["content"] as? String ?? "")"
        return (content, (json["usage"] as? [String: Any])?["prompt_cache_hit_tokens"] as? Int ?? -1)
    }

    func replies(_ prefixCache: PrefixCache?, _ questions: [String]) async throws -> [(content: String, hits: Int)] {
        let (router, _) = ServerFixtures.router(pipeline: try ServerGenerationTests.pipeline.get(), maxConcurrent: 2, prefixCache: prefixCache)
        return try await Application(router: router).test(.router) { client in
            var out: [(content: String, hits: Int)] = []
            for question in questions { out.append(try await Self.ask(client, question)) }
            return out
        }
    }

    func makeCache(_ directory: String?, budget: Int = 1 << 20) throws -> PrefixCache {
        let pipeline = try ServerGenerationTests.pipeline.get()
        return try PrefixCache(model: "tiny-chat", layout: pipeline.model.makeCache().layoutDescription, blockSize: 32,
                               budgetBytes: budget, directory: directory)
    }

    func testSharedAcrossSlotsSurvivesRestartAndIgnoresCorruptFiles() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-prefix-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let questions = ["What is 2+2?", "Name a colour."]
        let plain = try await replies(nil, questions)

        // One server with the cache: the same replies; its blocks are written to the directory.
        let first = try makeCache(directory)
        let shared = try await replies(first, questions)
        XCTAssertEqual(shared.map(\.content), plain.map(\.content), "imported rows give the same replies")
        XCTAssertEqual(shared[0].hits, 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".kvblock") }
        XCTAssertGreaterThanOrEqual(files.count, 2)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: directory).contains { $0.contains(".tmp") }, "no temp files left")

        // A restarted server (a new cache over the same directory) hits from disk.
        let restarted = try makeCache(directory)
        let again = try await replies(restarted, ["Name a colour."])
        XCTAssertEqual(again[0].content, plain[1].content)
        XCTAssertGreaterThanOrEqual(again[0].hits, 64, "the system prompt's blocks came from disk")
        XCTAssertGreaterThan(restarted.diskHits, 0)

        // Corrupt one file and truncate another: neither is trusted, the reply is still the plain one.
        for (i, name) in files.sorted().enumerated() {
            let path = directory + "/" + name
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            if i % 2 == 0 { bytes[bytes.count / 2] ^= 0x40 } else { bytes.removeLast(bytes.count / 3) }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        let damaged = try makeCache(directory)
        let afterDamage = try await replies(damaged, ["Name a colour."])
        XCTAssertEqual(afterDamage[0].content, plain[1].content)
        XCTAssertEqual(afterDamage[0].hits, 0)
        XCTAssertGreaterThan(damaged.rejectedFiles, 0)

        // Another model's (fingerprint's) files are never used.
        let pipeline = try ServerGenerationTests.pipeline.get()
        let foreign = try PrefixCache(model: "other-weights", layout: pipeline.model.makeCache().layoutDescription, blockSize: 32,
                                      budgetBytes: 1 << 20, directory: directory)
        let foreignReply = try await replies(foreign, ["What is 2+2?"])
        XCTAssertEqual(foreignReply[0].hits, 0)
    }

    /// Room for two blocks: the prompts' blocks (five or six each) are evicted least recently used first.
    func testRAMStaysWithinItsBudget() async throws {
        let block = 32 * (try ServerGenerationTests.pipeline.get()).model.makeCache().exportBytesPerToken
        let cache = try makeCache(nil, budget: 2 * block)
        _ = try await replies(cache, ["What is 2+2?", "Name a colour.", "And another?"])
        XCTAssertEqual(cache.residentBytes, 2 * block)
    }
}
