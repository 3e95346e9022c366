import Foundation
import Hummingbird
import HummingbirdTesting
import KujiraGeneration
import KujiraModels
import KujiraServer
import KujiraTokenizer
import XCTest

/// `chat_template_kwargs` reaches the chat template (how clients switch Qwen3's thinking off), and bad ones are refused (422).
final class TemplateArgumentsTests: XCTestCase {
    /// A template whose prompt grows by a marker when `enable_thinking` is false, so the prompt's token count shows
    /// whether the variable arrived.
    static let template = "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
        + "{% for m in messages %}{{ m['content'] }}{% endfor %}"

    func router() throws -> Hummingbird.Router<BasicRequestContext> {
        let tokenizer = try Tokenizer.load(path: ServerFixtures.tinyChat)
        let pipeline = TextPipeline(model: try ModelRegistry.load(directory: ServerFixtures.tinyChat), tokenizer: tokenizer,
                                    chatTemplate: try ChatTemplate(source: Self.template), modelName: "tiny-chat")
        return ServerFixtures.router(pipeline: pipeline).0
    }

    func testTemplateArgumentsReachTheTemplate() async throws {
        try await Application(router: try router()).test(.router) { client in
            func promptTokens(_ extra: [String: Any]) async throws -> (status: HTTPResponse.Status, tokens: Int?) {
                var fields = extra
                fields["max_tokens"] = 1
                let response = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                                        body: ServerGenerationTests.chatBody(fields))
                let usage = (try? response.json())?["usage"] as? [String: Any]
                return (response.status, usage?["prompt_tokens"] as? Int)
            }
            let plain = try await promptTokens([:])
            let thinkingOff = try await promptTokens(["chat_template_kwargs": ["enable_thinking": false]])
            let thinkingOn = try await promptTokens(["chat_template_kwargs": ["enable_thinking": true]])
            XCTAssertEqual(plain.status, .ok)
            XCTAssertEqual(thinkingOn.tokens, plain.tokens)
            XCTAssertGreaterThan(try XCTUnwrap(thinkingOff.tokens), try XCTUnwrap(plain.tokens), "enable_thinking=false did not reach the template")
            for (kwargs, field) in [("yes" as Any, "chat_template_kwargs"), (["messages": []], "chat_template_kwargs.messages"),
                                    (["bad key": 1], "chat_template_kwargs")] {
                let response = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                                        body: ServerGenerationTests.chatBody(["chat_template_kwargs": kwargs]))
                let error = try response.errorEnvelope(.unprocessableContent)
                XCTAssertEqual(error["param"] as? String, field, "\(kwargs)")
            }
        }
    }
}
