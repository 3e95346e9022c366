import Foundation
import Hummingbird
import HummingbirdTesting
import KujiraGeneration
import KujiraServer
import XCTest

/// `kujira serve --speculative ngram|mtp|auto`: through the HTTP API the streamed reply is the same as without speculation
/// (greedy and seeded sampling, two requests at once so the drafting sequence leaves the batched decode), and usage
/// is unchanged.
final class ServerSpeculationTests: XCTestCase {
    func streamedReplies(_ pipeline: TextPipeline, content: String = "Say something long, and repeat it.", maxTokens: Int = 150) async throws -> [String] {
        try await streamedRepliesAndAcceptedDrafts(pipeline, content: content, maxTokens: maxTokens).replies
    }

    /// The replies, and the drafts accepted in all of them (`usage.completion_tokens_details.accepted_prediction_tokens`).
    func streamedRepliesAndAcceptedDrafts(_ pipeline: TextPipeline, content: String = "Say something long, and repeat it.", maxTokens: Int = 150)
        async throws -> (replies: [String], accepted: Int) {
        let (router, _) = ServerFixtures.router(pipeline: pipeline, maxConcurrent: 2)
        return try await Application(router: router).test(.router) { client in
            var replies: [String] = [], accepted = 0
            for extra: [String: Any] in [["temperature": 0], ["temperature": 0.8, "seed": 9]] {
                var body: [String: Any] = ["model": "tiny-chat", "messages": [["role": "user", "content": content]],
                                           "max_tokens": maxTokens, "stream": true, "stream_options": ["include_usage": true]]
                body.merge(extra) { $1 }
                let buffer = jsonBody(body)
                async let first = client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: buffer)
                async let second = client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: buffer)
                for response in try await [first, second] {
                    XCTAssertEqual(response.status, .ok)
                    var text = ""
                    for event in response.sseEvents() where event != "[DONE]" {
                        let chunk = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any])
                        if let usage = chunk["usage"] as? [String: Any] {
                            text += "|usage \(usage["completion_tokens"] ?? "")"
                            accepted += (usage["completion_tokens_details"] as? [String: Any])?["accepted_prediction_tokens"] as? Int ?? 0
                        }
                        for choice in chunk["choices"] as? [[String: Any]] ?? [] {
                            let delta = choice["delta"] as? [String: Any] ?? [:]
                            text += (delta["reasoning_content"] as? String ?? "") + (delta["content"] as? String ?? "")
                            if let reason = choice["finish_reason"] as? String { text += "|\(reason)" }
                        }
                    }
                    replies.append(text)
                }
            }
            return (replies, accepted)
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

    /// The embedded model's MTP head drafting in `serve` (`mtp`, and the default `auto`): the same streamed replies.
    func testStreamedRepliesAreTheSameWithMTPDrafting() async throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Models/kujira-arith").path
        let base = try TextPipeline.load(path: path)
        func pipeline(_ speculation: Speculation) -> TextPipeline {
            TextPipeline(model: base.model, tokenizer: base.tokenizer, chatTemplate: base.chatTemplate, modelName: "tiny-chat", speculation: speculation)
        }
        let plain = try await streamedRepliesAndAcceptedDrafts(pipeline(.off), content: "What is 385+447?", maxTokens: 80)
        XCTAssertTrue(plain.replies.allSatisfy { $0.contains("832") }, "\(plain)")
        XCTAssertEqual(plain.accepted, 0)
        for speculation in [Speculation.mtp(maxDraft: 2), .defaultAuto] {
            let fast = try await streamedRepliesAndAcceptedDrafts(pipeline(speculation), content: "What is 385+447?", maxTokens: 80)
            XCTAssertEqual(fast.replies, plain.replies, "\(speculation)")
            XCTAssertGreaterThan(fast.accepted, 0, "\(speculation)")
        }
    }
}
