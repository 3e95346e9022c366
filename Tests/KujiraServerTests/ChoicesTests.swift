import Foundation
import Hummingbird
import HummingbirdTesting
import KujiraGeneration
import KujiraServer
import XCTest

/// `n` > 1 on chat completions: choice i is the reply the same request with seed + i gives alone, streamed or not;
/// the usage counts the prompt once and every choice's tokens.
final class ChoicesTests: XCTestCase {
    static func choices(_ response: TestResponse) throws -> [[String: Any]] {
        try XCTUnwrap(try response.json()["choices"] as? [[String: Any]])
    }

    static func text(_ choice: [String: Any]) -> String {
        let message = choice["message"] as? [String: Any] ?? [:]
        return (message["reasoning_content"] as? String ?? "") + "|" + (message["content"] as? String ?? "")
    }

    func testChoicesEqualSingleRequestsWithConsecutiveSeeds() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try ServerGenerationTests.pipeline.get(), maxConcurrent: 2, maxQueue: 8)
        try await Application(router: router).test(.router) { client in
            func chat(_ extra: [String: Any]) async throws -> TestResponse {
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                         body: ServerGenerationTests.chatBody(["temperature": 1, "max_tokens": 6].merging(extra) { $1 }))
            }
            let many = try await chat(["n": 3, "seed": 40])
            XCTAssertEqual(many.status, .ok)
            let choices = try Self.choices(many)
            XCTAssertEqual(choices.map { $0["index"] as? Int }, [0, 1, 2])
            var completionTokens = 0
            for (index, choice) in choices.enumerated() {
                let alone = try await chat(["seed": 40 + index])
                let single = try Self.choices(alone)
                XCTAssertEqual(Self.text(choice), Self.text(single[0]), "choice \(index)")
                completionTokens += (try alone.json()["usage"] as? [String: Any])?["completion_tokens"] as? Int ?? -1
            }
            XCTAssertGreaterThan(Set(choices.map(Self.text)).count, 1, "three seeds gave one reply")
            let usage = try XCTUnwrap(try many.json()["usage"] as? [String: Any])
            XCTAssertEqual(usage["completion_tokens"] as? Int, completionTokens)
            XCTAssertEqual(usage["total_tokens"] as? Int, (usage["prompt_tokens"] as? Int ?? 0) + completionTokens)

            // Streamed: chunks carry their choice's index; joined per index they give the same replies; one usage chunk.
            let streamed = try await chat(["n": 3, "seed": 40, "stream": true, "stream_options": ["include_usage": true]])
            var joined = [String](repeating: "", count: 3), reasoning = [String](repeating: "", count: 3)
            var usageChunks = 0, finishes = 0
            for line in String(buffer: streamed.body).split(separator: "\n") where line.hasPrefix("data: {") {
                let chunk = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any])
                if chunk["usage"] is [String: Any] { usageChunks += 1 }
                for c in chunk["choices"] as? [[String: Any]] ?? [] {
                    let index = try XCTUnwrap(c["index"] as? Int)
                    let delta = c["delta"] as? [String: Any] ?? [:]
                    joined[index] += delta["content"] as? String ?? ""
                    reasoning[index] += delta["reasoning_content"] as? String ?? ""
                    if c["finish_reason"] is String { finishes += 1 }
                }
            }
            XCTAssertEqual(zip(reasoning, joined).map { $0 + "|" + $1 }, choices.map(Self.text))
            XCTAssertEqual(usageChunks, 1)
            XCTAssertEqual(finishes, 3)
        }
    }
}
