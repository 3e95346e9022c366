import Foundation
import Hummingbird
import HummingbirdTesting
import KujiraGeneration
import KujiraServer
import XCTest

/// `logit_bias` (OpenAI): +100 forces a token, −100 keeps the greedy one out, malformed biases are a 422 naming it.
final class LogitBiasTests: XCTestCase {
    static func reply(_ response: TestResponse) throws -> String {
        let message = try XCTUnwrap((try response.json()["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])
        return (message["reasoning_content"] as? String ?? "") + (message["content"] as? String ?? "")
    }

    func testBiasForcesAndBansTokens() async throws {
        let pipeline = try ServerGenerationTests.pipeline.get()
        let forced = try XCTUnwrap(pipeline.tokenizer.tokenToId("x"))
        let (router, _) = ServerFixtures.router(pipeline: pipeline)
        try await Application(router: router).test(.router) { client in
            func chat(_ extra: [String: Any]) async throws -> TestResponse {
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                         body: ServerGenerationTests.chatBody(["max_tokens": 3].merging(extra) { $1 }))
            }
            let plain = try Self.reply(try await chat([:]))
            let pushed = try await chat(["logit_bias": ["\(forced)": 100]])
            XCTAssertEqual(pushed.status, .ok)
            XCTAssertEqual(try Self.reply(pushed), "xxx", "a +100 bias makes greedy decoding pick the token every step")
            XCTAssertNotEqual(plain, "xxx")
            // Ban the greedy reply's first token: the reply must start differently.
            let first = try XCTUnwrap(pipeline.tokenizer.encode(plain).first)
            let banned = try Self.reply(try await chat(["logit_bias": ["\(first)": -100]]))
            XCTAssertNotEqual(banned.prefix(1), plain.prefix(1), "\(plain) vs \(banned)")

            for (bias, needle) in [(["\(forced)": 101] as [String: Any], "[-100, 100]"), (["abc": 1], "token ids"),
                                   (["\(pipeline.tokenizer.vocabSize + 5)": 1], "outside the vocabulary")] {
                let bad = try await chat(["logit_bias": bias])
                XCTAssertEqual(bad.status, .unprocessableContent, "\(bias)")
                let error = try XCTUnwrap(try bad.json()["error"] as? [String: Any])
                XCTAssertEqual(error["param"] as? String, "logit_bias")
                XCTAssertTrue((error["message"] as? String ?? "").contains(needle), "\(error)")
            }
        }
    }
}
