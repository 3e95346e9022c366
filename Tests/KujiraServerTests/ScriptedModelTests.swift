import Foundation
import Hummingbird
import HummingbirdTesting
import KujiraFormats
import KujiraGeneration
import KujiraModels
import KujiraServer
import KujiraTokenizer
import XCTest

/// A model that ignores its input and writes a fixed token script after the prompt: it lets the API tests check
/// exact outputs (reasoning split, tool calls, stop strings) that a random model cannot produce on purpose.
final class ScriptedModel: LanguageModel, @unchecked Sendable {
    let config: ModelConfig
    let vocabSize = 256
    let maxPositions = 256
    let eosTokenIds = [1]
    let script: [Int]
    private let lock = NSLock()
    private var starts: [ObjectIdentifier: Int] = [:]

    init(script: [Int], base: any LanguageModel) {
        self.script = script
        self.base = base
        config = ModelConfig(values: ["model_type": .string("scripted"), "vocab_size": .number(256)])
    }

    func makeCache() -> KVCache { KVCache(layerCount: 1, rowWidth: 1) }

    func forward(_ tokens: [Int], cache: KVCache, allLogits: Bool) throws -> [Float] {
        try validate(tokens, cache: cache)
        cache.reserve(cache.length + tokens.count)
        cache.advance(by: tokens.count)
        let key = ObjectIdentifier(cache)
        let index: Int = lock.withLock {
            // A multi-token call is the prompt: the script starts after it.
            if tokens.count > 1 || starts[key] == nil { starts[key] = cache.length }
            return cache.length - starts[key]!
        }
        var logits = [Float](repeating: 0, count: vocabSize)
        logits[script[min(index, script.count - 1)]] = 100
        return logits
    }

    /// Borrowed from the tiny fixture model (the server never asks for it).
    var summary: ModelSummary { base.summary }
    private let base: any LanguageModel
}

final class ScriptedModelTests: XCTestCase {
    static let reply = "Let me check.</think>Sure.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
        + "```json\n{\"city\": \"Oslo\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"

    func router() throws -> Hummingbird.Router<BasicRequestContext> {
        let tokenizer = try Tokenizer.load(path: ServerFixtures.tinyChat)
        let template = try ChatTemplate(source: try XCTUnwrap(tokenizer.chatTemplate))
        let model = ScriptedModel(script: tokenizer.encode(Self.reply) + [1], base: try ModelRegistry.load(directory: ServerFixtures.tinyChat))
        let pipeline = TextPipeline(model: model, tokenizer: tokenizer, chatTemplate: template, modelName: "scripted")
        return ServerFixtures.router(pipeline: pipeline).0
    }

    static func body(_ extra: [String: Any] = [:]) -> ByteBuffer {
        var fields: [String: Any] = ["model": "scripted", "messages": [["role": "user", "content": "Weather in Oslo?"]], "temperature": 0,
                                     "tools": [["type": "function", "function": ["name": "get_weather", "parameters": ["type": "object"]]]]]
        for (k, v) in extra { fields[k] = v }
        return jsonBody(fields)
    }

    func testReasoningContentAndToolCalls() async throws {
        try await Application(router: try router()).test(.router) { client in
            let response = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: Self.body())
            let choice = try XCTUnwrap((try response.json()["choices"] as? [[String: Any]])?.first)
            XCTAssertEqual(choice["finish_reason"] as? String, "tool_calls")
            let message = try XCTUnwrap(choice["message"] as? [String: Any])
            XCTAssertEqual(message["reasoning_content"] as? String, "Let me check.")
            XCTAssertEqual(message["content"] as? String, "Sure.")
            let calls = try XCTUnwrap(message["tool_calls"] as? [[String: Any]])
            XCTAssertEqual(calls.count, 1)
            XCTAssertEqual(calls[0]["type"] as? String, "function")
            XCTAssertTrue((calls[0]["id"] as? String ?? "").hasPrefix("call_"))
            let function = try XCTUnwrap(calls[0]["function"] as? [String: Any])
            XCTAssertEqual(function["name"] as? String, "get_weather")
            XCTAssertEqual(function["arguments"] as? String, "{\"city\": \"Oslo\"}")

            let streamed = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                                    body: Self.body(["stream": true]))
            var content = "", reasoning = "", finish: String?, names: [String] = []
            for event in streamed.sseEvents().dropLast() {
                let chunk = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any])
                guard let c = (chunk["choices"] as? [[String: Any]])?.first else { continue }
                let delta = c["delta"] as? [String: Any] ?? [:]
                content += delta["content"] as? String ?? ""
                reasoning += delta["reasoning_content"] as? String ?? ""
                for call in delta["tool_calls"] as? [[String: Any]] ?? [] {
                    XCTAssertEqual(call["index"] as? Int, 0)
                    names.append(((call["function"] as? [String: Any])?["name"] as? String) ?? "")
                }
                if let f = c["finish_reason"] as? String { finish = f }
            }
            XCTAssertEqual(reasoning, "Let me check.")
            XCTAssertEqual(content, "Sure.")
            XCTAssertEqual(names, ["get_weather"])
            XCTAssertEqual(finish, "tool_calls")
        }
    }

    func testStopStringAndToolChoiceNone() async throws {
        try await Application(router: try router()).test(.router) { client in
            let stopped = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                                   body: Self.body(["stop": ["Sure"]]))
            let choice = try XCTUnwrap((try stopped.json()["choices"] as? [[String: Any]])?.first)
            XCTAssertEqual(choice["finish_reason"] as? String, "stop")
            let message = try XCTUnwrap(choice["message"] as? [String: Any])
            XCTAssertEqual(message["reasoning_content"] as? String, "Let me check.")
            XCTAssertEqual(message["content"] as? String, "")
            XCTAssertNil(message["tool_calls"])

            // tool_choice none bans the tool-call opener; the scripted model's choice is then the next best logit.
            let none = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                                body: Self.body(["tool_choice": "none", "max_tokens": 20]))
            let noneChoice = try XCTUnwrap((try none.json()["choices"] as? [[String: Any]])?.first)
            let noneMessage = try XCTUnwrap(noneChoice["message"] as? [String: Any])
            XCTAssertNil(noneMessage["tool_calls"])
            XCTAssertFalse((noneMessage["content"] as? String ?? "").contains("tool▁calls▁begin"))
        }
    }
}
