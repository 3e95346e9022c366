import Foundation
import Hummingbird
import HummingbirdTesting
import KujiraGeneration
import KujiraServer
import KujiraTokenizer
import XCTest

/// Every error class of the API, in OpenAI's envelope, with DeepSeek's status split; and the API key.
final class ServerErrorTests: XCTestCase {
    static let pipeline = Result { try ServerFixtures.pipeline() }

    static func chat(_ extra: [String: Any] = [:]) -> ByteBuffer {
        var body: [String: Any] = ["model": "tiny-chat", "messages": [["role": "user", "content": "Hi"]], "max_tokens": 2]
        for (k, v) in extra { body[k] = v }
        return jsonBody(body)
    }

    func testAuthRequiresTheKeyExceptOnHealth() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try Self.pipeline.get()) { $0.apiKey = "sk-test-123" }
        try await Application(router: router).test(.router) { client in
            let missing = try await client.execute(uri: "/v1/models", method: .get)
            let error = try missing.errorEnvelope(.unauthorized)
            XCTAssertEqual(error["type"] as? String, "authentication_error")
            let wrong = try await client.execute(uri: "/v1/chat/completions", method: .post,
                                                 headers: [.authorization: "Bearer sk-test-124", .contentType: "application/json"], body: Self.chat())
            _ = try wrong.errorEnvelope(.unauthorized)
            let basic = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Basic sk-test-123"])
            _ = try basic.errorEnvelope(.unauthorized)
            let right = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer sk-test-123"])
            XCTAssertEqual(right.status, .ok)
            let health = try await client.execute(uri: "/health", method: .get)
            XCTAssertEqual(health.status, .ok)
        }
    }

    func testConstantTimeCompare() {
        XCTAssertTrue(constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        XCTAssertFalse(constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        XCTAssertFalse(constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
        XCTAssertFalse(constantTimeEquals([], Array("a".utf8)))
        XCTAssertTrue(constantTimeEquals([], []))
    }

    func testBadJSONIs400() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try Self.pipeline.get())
        try await Application(router: router).test(.router) { client in
            for body in ["{not json", "[1, 2]", "", "\"text\""] {
                let response = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                                        body: ByteBuffer(string: body))
                let error = try response.errorEnvelope(.badRequest)
                XCTAssertEqual(error["type"] as? String, "invalid_request_error", body)
            }
        }
    }

    func testContextTooLongIs400AndSaysHowLong() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try ServerFixtures.pipeline(contextLength: 32))
        try await Application(router: router).test(.router) { client in
            let long = jsonBody(["messages": [["role": "user", "content": String(repeating: "word ", count: 20)]]])
            let response = try await client.execute(uri: "/chat/completions", method: .post, headers: jsonHeaders, body: long)
            let error = try response.errorEnvelope(.badRequest)
            XCTAssertEqual(error["code"] as? String, "context_length_exceeded")
            XCTAssertTrue((error["message"] as? String ?? "").contains("32 tokens"), "\(error)")
        }
    }

    func testBodyOverTheLimitIs413() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try Self.pipeline.get()) { $0.maxBodyBytes = 512 }
        try await Application(router: router).test(.router) { client in
            let big = jsonBody(["messages": [["role": "user", "content": String(repeating: "x", count: 2000)]]])
            let response = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: big)
            _ = try response.errorEnvelope(.contentTooLarge)
        }
    }

    func testInvalidParametersAre422AndNameTheParameter() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try Self.pipeline.get())
        let cases: [(String, [String: Any], String)] = [
            ("/v1/chat/completions", ["temperature": "hot"], "temperature"),
            ("/v1/chat/completions", ["temperature": 3], "temperature"),
            ("/v1/chat/completions", ["top_p": 0], "top_p"),
            ("/v1/chat/completions", ["n": 9], "n"),
            ("/v1/chat/completions", ["n": 0], "n"),
            ("/v1/completions", ["prompt": "x", "n": 2], "n"),
            ("/v1/chat/completions", ["max_tokens": 0], "max_tokens"),
            ("/v1/chat/completions", ["max_tokens": 1.5], "max_tokens"),
            ("/v1/chat/completions", ["presence_penalty": 5], "presence_penalty"),
            ("/v1/chat/completions", ["stop": Array(repeating: "x", count: 17)], "stop"),
            ("/v1/chat/completions", ["stop": 5], "stop"),
            ("/v1/chat/completions", ["top_logprobs": 3], "top_logprobs"),
            ("/v1/chat/completions", ["seed": "abc"], "seed"),
            ("/v1/chat/completions", ["stream": "yes"], "stream"),
            ("/v1/chat/completions", ["response_format": ["type": "xml"]], "response_format"),
            ("/v1/chat/completions", ["messages": []], "messages"),
            ("/v1/chat/completions", ["messages": [["role": "wizard", "content": "x"]]], "messages[0].role"),
            ("/v1/chat/completions", ["messages": [["role": "user", "content": 5]]], "messages[0].content"),
            ("/v1/chat/completions", ["tools": [["type": "function"]]], "tools[0]"),
            ("/v1/chat/completions", ["tool_choice": "required"], "tool_choice"),
            ("/v1/chat/completions", ["tools": [["type": "function", "function": ["name": "f"]]],
                                      "tool_choice": ["type": "function", "function": ["name": "g"]]], "tool_choice"),
            ("/v1/completions", ["prompt": 5], "prompt"),
            ("/v1/completions", ["prompt": [999_999]], "prompt"),
            ("/v1/completions", ["prompt": "x", "logprobs": 50], "logprobs"),
        ]
        let requests: [(String, ByteBuffer, String, String)] = cases.map { path, extra, param in
            if path.hasSuffix("chat/completions") { return (path, Self.chat(extra), param, "\(extra)") }
            var fields: [String: Any] = ["model": "tiny-chat"]
            for (k, v) in extra { fields[k] = v }
            return (path, jsonBody(fields), param, "\(extra)")
        }
        try await Application(router: router).test(.router) { client in
            for (path, body, param, extra) in requests {
                let response = try await client.execute(uri: path, method: .post, headers: jsonHeaders, body: body)
                let error = try response.errorEnvelope(.unprocessableContent)
                XCTAssertEqual(error["param"] as? String, param, "\(extra): \(error)")
            }
            let missing = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                                   body: jsonBody(["model": "x"]))
            XCTAssertEqual(try missing.errorEnvelope(.unprocessableContent)["param"] as? String, "messages")
        }
    }

    func testQueueFullIs429() async throws {
        let pipeline = try Self.pipeline.get()
        let (router, scheduler) = ServerFixtures.router(pipeline: pipeline, maxConcurrent: 1, maxQueue: 0)
        let s = try XCTUnwrap(scheduler)
        s.pause()
        let occupying = try s.submit(prompt: pipeline.completionPrompt("hold"), options: pipeline.options(maxTokens: 2))
        try await Application(router: router).test(.router) { client in
            let response = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: Self.chat())
            let error = try response.errorEnvelope(.tooManyRequests)
            XCTAssertEqual(error["type"] as? String, "rate_limit_error")
        }
        s.resume()
        var finished = false
        for await output in occupying.stream { if case .finished = output { finished = true } }
        XCTAssertTrue(finished)
    }

    func testLoadingIs503AndHealthNeedsNoKey() async throws {
        let (router, _) = ServerFixtures.router(pipeline: nil) { $0.apiKey = "k" }
        try await Application(router: router).test(.router) { client in
            let health = try await client.execute(uri: "/health", method: .get)
            _ = try health.errorEnvelope(.serviceUnavailable)
            let chatResponse = try await client.execute(uri: "/v1/chat/completions", method: .post,
                                                        headers: [.authorization: "Bearer k", .contentType: "application/json"], body: Self.chat())
            _ = try chatResponse.errorEnvelope(.serviceUnavailable)
        }
    }

    func testFIMWithoutFIMTokensIsAClear400() async throws {
        // The same tiny model with a tokenizer that has no FIM (or tool-call) tokens.
        let base = try Self.pipeline.get()
        let tokenizer = try Tokenizer.load(path: ServerFixtures.fixtures.appendingPathComponent("tokenizers/tiny/tokenizer.json").path)
        let plain = TextPipeline(model: base.model, tokenizer: tokenizer,
                                 chatTemplate: try ChatTemplate(source: TextPipeline.fallbackTemplate), modelName: "plain")
        XCTAssertNil(plain.fimFormat)
        let (router, _) = ServerFixtures.router(pipeline: plain)
        try await Application(router: router).test(.router) { client in
            let response = try await client.execute(uri: "/beta/completions", method: .post, headers: jsonHeaders,
                                                    body: jsonBody(["model": "plain", "prompt": "def f(", "suffix": "):", "max_tokens": 2]))
            let error = try response.errorEnvelope(.badRequest)
            XCTAssertEqual(error["param"] as? String, "suffix")
            let forced = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: Self.chat([
                "tools": [["type": "function", "function": ["name": "f"]]], "tool_choice": "required"]))
            XCTAssertEqual(try forced.errorEnvelope(.unprocessableContent)["param"] as? String, "tool_choice")
        }
    }

    func testUnknownRouteIs404Envelope() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try Self.pipeline.get())
        try await Application(router: router).test(.router) { client in
            let response = try await client.execute(uri: "/v1/nothing", method: .get)
            _ = try response.errorEnvelope(.notFound)
        }
    }
}
