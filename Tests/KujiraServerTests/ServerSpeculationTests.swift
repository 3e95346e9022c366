import Foundation
import Hummingbird
import HummingbirdTesting
import KujiraGeneration
import KujiraServer
import XCTest

/// `kujira serve --speculative ngram`: through the HTTP API the streamed reply is the same as without speculation
/// (greedy and seeded sampling, two requests at once so the drafting sequence leaves the batched decode), and usage
/// is unchanged.
final class ServerSpeculationTests: XCTestCase {
    func streamedReplies(_ pipeline: TextPipeline) async throws -> [String] {
        let (router, _) = ServerFixtures.router(pipeline: pipeline, maxConcurrent: 2)
        return try await Application(router: router).test(.router) { client in
            var replies: [String] = []
            for extra: [String: Any] in [["temperature": 0], ["temperature": 0.8, "seed": 9]] {
                var body: [String: Any] = ["model": "tiny-chat", "messages": [["role": "user", "content": "Say something long, and repeat it."]],
                                           "max_tokens": 150, "stream": true, "stream_options": ["include_usage": true]]
                body.merge(extra) { $1 }
                let buffer = jsonBody(body)
                async let first = client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: buffer)
                async let second = client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: buffer)
                for response in try await [first, second] {
                    XCTAssertEqual(response.status, .ok)
                    var text = ""
                    for event in response.sseEvents() where event != "[DONE]" {
                        let chunk = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any])
                        if let usage = chunk["usage"] as? [String: Any] { text += "|usage \(usage["completion_tokens"] ?? "")" }
                        for choice in chunk["choices"] as? [[String: Any]] ?? [] {
                            let delta = choice["delta"] as? [String: Any] ?? [:]
                            text += (delta["reasoning_content"] as? String ?? "") + (delta["content"] as? String ?? "")
                            if let reason = choice["finish_reason"] as? String { text += "|\(reason)" }
                        }
                    }
                    replies.append(text)
                }
            }
            return replies
        }
    }

    func testStreamedRepliesAreTheSameWithNgramSpeculation() async throws {
        let plain = try await streamedReplies(try ServerFixtures.pipeline())
        let base = try ServerFixtures.pipeline()
        let speculative = TextPipeline(model: base.model, tokenizer: base.tokenizer, chatTemplate: base.chatTemplate, modelName: base.modelName,
                                       speculation: .ngram(ngram: 3, maxDraft: 6))
        let fast = try await streamedReplies(speculative)
        XCTAssertEqual(fast.count, 4)
        XCTAssertEqual(fast, plain)
        XCTAssertTrue(plain.allSatisfy { $0.count > 20 }, "\(plain)")
    }
}
