import Foundation
import Hummingbird
import HummingbirdTesting
import KujiraGeneration
import KujiraServer
import XCTest

/// Chat, streaming, completions, FIM, models, metrics and the scheduler, in memory on the tiny model.
final class ServerGenerationTests: XCTestCase {
    static let pipeline = Result { try ServerFixtures.pipeline() }

    static func chatBody(_ extra: [String: Any] = [:]) -> ByteBuffer {
        var body: [String: Any] = ["model": "tiny-chat", "messages": [["role": "user", "content": "What is 2+2?"]],
                                   "max_tokens": 10, "temperature": 0]
        for (k, v) in extra { body[k] = v }
        return jsonBody(body)
    }

    static func checkUsage(_ usage: [String: Any], maxCompletion: Int, file: StaticString = #filePath, line: UInt = #line) -> (prompt: Int, hit: Int) {
        let prompt = usage["prompt_tokens"] as? Int ?? -1
        let completion = usage["completion_tokens"] as? Int ?? -1
        XCTAssertGreaterThan(prompt, 0, file: file, line: line)
        XCTAssertTrue((1...maxCompletion).contains(completion), "\(usage)", file: file, line: line)
        XCTAssertEqual(usage["total_tokens"] as? Int, prompt + completion, file: file, line: line)
        let hit = usage["prompt_cache_hit_tokens"] as? Int ?? -1
        XCTAssertEqual(hit + (usage["prompt_cache_miss_tokens"] as? Int ?? -1), prompt, file: file, line: line)
        XCTAssertEqual((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int, hit, file: file, line: line)
        let reasoning = (usage["completion_tokens_details"] as? [String: Any])?["reasoning_tokens"] as? Int ?? -1
        XCTAssertTrue((0...completion).contains(reasoning), file: file, line: line)
        return (prompt, hit)
    }

    func testChatCompletionShapeUsageAndPrefixReuse() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try Self.pipeline.get())
        try await Application(router: router).test(.router) { client in
            let first = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: Self.chatBody())
            XCTAssertEqual(first.status, .ok, first.text)
            let json = try first.json()
            XCTAssertEqual(json["object"] as? String, "chat.completion")
            XCTAssertEqual(json["model"] as? String, "tiny-chat")
            let choice = try XCTUnwrap((json["choices"] as? [[String: Any]])?.first)
            let message = try XCTUnwrap(choice["message"] as? [String: Any])
            XCTAssertEqual(message["role"] as? String, "assistant")
            XCTAssertNotNil(message["reasoning_content"] as? String, "the template opens <think>: \(message)")
            XCTAssertTrue(["stop", "length"].contains(choice["finish_reason"] as? String ?? ""))
            let usage = try XCTUnwrap(json["usage"] as? [String: Any])
            let (prompt, hit) = Self.checkUsage(usage, maxCompletion: 10)
            XCTAssertEqual(hit, 0)
            // The same prompt again (DeepSeek base_url without /v1) hits the slot's cache for all but the last token.
            let second = try await client.execute(uri: "/chat/completions", method: .post, headers: jsonHeaders, body: Self.chatBody())
            let json2 = try second.json()
            let (prompt2, hit2) = Self.checkUsage(try XCTUnwrap(json2["usage"] as? [String: Any]), maxCompletion: 10)
            XCTAssertEqual(prompt2, prompt)
            XCTAssertEqual(hit2, prompt - 1)
            let message2 = (json2["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
            XCTAssertEqual(message2?["content"] as? String, message["content"] as? String)
            XCTAssertEqual(message2?["reasoning_content"] as? String, message["reasoning_content"] as? String)
        }
    }

    func testStreamingMatchesNonStreamingAndFramesSSE() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try Self.pipeline.get())
        try await Application(router: router).test(.router) { client in
            let plain = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: Self.chatBody())
            let message = try XCTUnwrap(((try plain.json()["choices"] as? [[String: Any]])?.first)?["message"] as? [String: Any])
            let streamed = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                                    body: Self.chatBody(["stream": true, "stream_options": ["include_usage": true]]))
            XCTAssertEqual(streamed.status, .ok)
            XCTAssertEqual(streamed.headers[.contentType], "text/event-stream")
            let events = streamed.sseEvents()
            XCTAssertEqual(events.last, "[DONE]")
            var content = "", reasoning = "", finish: String?, usage: [String: Any]?
            for (index, event) in events.dropLast().enumerated() {
                let chunk = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any])
                XCTAssertEqual(chunk["object"] as? String, "chat.completion.chunk")
                let choices = try XCTUnwrap(chunk["choices"] as? [[String: Any]])
                if choices.isEmpty { usage = chunk["usage"] as? [String: Any]; continue }
                let delta = try XCTUnwrap(choices[0]["delta"] as? [String: Any])
                if index == 0 { XCTAssertEqual(delta["role"] as? String, "assistant") }
                content += delta["content"] as? String ?? ""
                reasoning += delta["reasoning_content"] as? String ?? ""
                if let reason = choices[0]["finish_reason"] as? String { finish = reason }
            }
            XCTAssertEqual(content, message["content"] as? String)
            XCTAssertEqual(reasoning, message["reasoning_content"] as? String)
            XCTAssertNotNil(finish)
            let (_, _) = Self.checkUsage(try XCTUnwrap(usage, "include_usage sends a final usage chunk"), maxCompletion: 10)
        }
    }

    func testSeedLogprobsAndJSONMode() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try Self.pipeline.get())
        try await Application(router: router).test(.router) { client in
            let seeded = Self.chatBody(["temperature": 1, "seed": 1234, "max_tokens": 12])
            let a = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: seeded)
            let b = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: seeded)
            let messageA = (try a.json()["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
            let messageB = (try b.json()["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
            XCTAssertEqual(messageA?["content"] as? String, messageB?["content"] as? String)
            XCTAssertEqual(messageA?["reasoning_content"] as? String, messageB?["reasoning_content"] as? String)
            // …and the seed is used: another seed samples another reply.
            let other = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                                 body: Self.chatBody(["temperature": 1, "seed": 1235, "max_tokens": 12]))
            let messageC = (try other.json()["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
            func reply(_ m: [String: Any]?) -> String { "\(m?["reasoning_content"] as? String ?? "")|\(m?["content"] as? String ?? "")" }
            XCTAssertNotEqual(reply(messageA), reply(messageC), "seeds 1234 and 1235 sampled the same reply")

            let withLogprobs = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                                        body: Self.chatBody(["logprobs": true, "top_logprobs": 2]))
            let json = try withLogprobs.json()
            let choice = try XCTUnwrap((json["choices"] as? [[String: Any]])?.first)
            let entries = try XCTUnwrap((choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
            XCTAssertEqual(entries.count, (json["usage"] as? [String: Any])?["completion_tokens"] as? Int)
            for entry in entries {
                XCTAssertLessThanOrEqual(entry["logprob"] as? Double ?? 1, 0)
                XCTAssertEqual((entry["top_logprobs"] as? [Any])?.count, 2)
            }

            // JSON mode, checked with Foundation's parser (not the validator that constrains generation): the long
            // reply parses as an object, and the reply cut at 8 tokens is its start.
            func jsonReply(_ maxTokens: Int) async throws -> (content: String, finish: String?) {
                let response = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders,
                                                        body: Self.chatBody(["response_format": ["type": "json_object"], "max_tokens": maxTokens,
                                                                             "temperature": 0.8, "seed": 3]))
                let choice = try XCTUnwrap((try response.json()["choices"] as? [[String: Any]])?.first)
                return (try XCTUnwrap((choice["message"] as? [String: Any])?["content"] as? String), choice["finish_reason"] as? String)
            }
            let long = try await jsonReply(400), short = try await jsonReply(8)
            XCTAssertEqual(long.finish, "stop", long.content)
            XCTAssertTrue(try JSONSerialization.jsonObject(with: Data(long.content.utf8)) is [String: Any], long.content)
            XCTAssertEqual(short.finish, "length")
            XCTAssertTrue(long.content.hasPrefix(short.content), "'\(short.content)' is not the start of '\(long.content)'")
        }
    }

    func testCompletionsFIMModelsAndMetrics() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try Self.pipeline.get())
        try await Application(router: router).test(.router) { client in
            let completion = try await client.execute(uri: "/v1/completions", method: .post, headers: jsonHeaders,
                                                      body: jsonBody(["model": "tiny-chat", "prompt": "Once upon", "max_tokens": 5,
                                                                      "temperature": 0, "logprobs": 2]))
            let json = try completion.json()
            XCTAssertEqual(json["object"] as? String, "text_completion", completion.text)
            let choice = try XCTUnwrap((json["choices"] as? [[String: Any]])?.first)
            XCTAssertNotNil(choice["text"] as? String)
            XCTAssertEqual(((choice["logprobs"] as? [String: Any])?["tokens"] as? [Any])?.count,
                           (json["usage"] as? [String: Any])?["completion_tokens"] as? Int)
            _ = Self.checkUsage(try XCTUnwrap(json["usage"] as? [String: Any]), maxCompletion: 5)

            let streamed = try await client.execute(uri: "/v1/completions", method: .post, headers: jsonHeaders,
                                                    body: jsonBody(["prompt": "Once upon", "max_tokens": 5, "temperature": 0, "stream": true]))
            var text = ""
            for event in streamed.sseEvents().dropLast() {
                let chunk = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any])
                text += ((chunk["choices"] as? [[String: Any]])?.first?["text"] as? String) ?? ""
            }
            XCTAssertEqual(text, choice["text"] as? String)

            let fim = try await client.execute(uri: "/beta/completions", method: .post, headers: jsonHeaders,
                                               body: jsonBody(["model": "tiny-chat", "prompt": "def add(a, b):", "suffix": "    return c",
                                                               "max_tokens": 4]))
            XCTAssertEqual(fim.status, .ok, fim.text)
            _ = Self.checkUsage(try XCTUnwrap(try fim.json()["usage"] as? [String: Any]), maxCompletion: 4)

            for path in ["/v1/models", "/models"] {
                let models = try await client.execute(uri: path, method: .get)
                let list = try models.json()
                XCTAssertEqual(list["object"] as? String, "list")
                XCTAssertEqual((list["data"] as? [[String: Any]])?.first?["id"] as? String, "tiny-chat")
            }
            let one = try await client.execute(uri: "/v1/models/tiny-chat", method: .get)
            XCTAssertEqual(try one.json()["id"] as? String, "tiny-chat")

            let metrics = try await client.execute(uri: "/metrics", method: .get)
            XCTAssertEqual(metrics.status, .ok)
            for name in ["kujira_requests_total", "kujira_generated_tokens_total", "kujira_queue_depth", "kujira_generation_tokens_per_second"] {
                XCTAssertTrue(metrics.text.contains(name), "missing \(name)")
            }
            XCTAssertTrue(metrics.text.contains("endpoint=\"/v1/completions\""), metrics.text)
        }
    }

    func testConcurrentRequestsMatchSequentialOnes() async throws {
        let pipeline = try Self.pipeline.get()
        let prompts = ["Tell me a story.", "What is the capital of France?", "Count to five."]
        func text(_ event: GenerationEvent) -> String {
            switch event {
            case .reasoning(let t): return "R:" + t
            case .content(let t): return "C:" + t
            default: return ""
            }
        }
        // Sequential references, each on a fresh slot.
        var expected: [(text: String, count: Int)] = []
        for prompt in prompts {
            let prepared = try pipeline.chatPrompt(messages: [["role": "user", "content": .string(prompt)]])
            var out = ""
            let result = try pipeline.run(prompt: prepared, options: pipeline.options(maxTokens: 8),
                                          slot: SequenceSlot(model: pipeline.model)) { out += text($0) }
            expected.append((out, result.tokens.count))
        }
        // Three requests, two slots: interleaved round-robin, the third waits for a free slot.
        let scheduler = GenerationScheduler(pipeline: pipeline, maxConcurrent: 2, maxQueue: 4)
        scheduler.pause()
        var handles: [GenerationHandle] = []
        for prompt in prompts {
            let prepared = try pipeline.chatPrompt(messages: [["role": "user", "content": .string(prompt)]])
            handles.append(try scheduler.submit(prompt: prepared, options: pipeline.options(maxTokens: 8)))
        }
        XCTAssertEqual(scheduler.queueDepth, 3)
        scheduler.resume()
        for (index, handle) in handles.enumerated() {
            var out = ""
            var completion = -1
            for await output in handle.stream {
                switch output {
                case .events(let events): out += events.map(text).joined()
                case .finished(_, let usage): completion = usage.completionTokens
                case .failed(let error): XCTFail("\(error)")
                }
            }
            XCTAssertEqual(out, expected[index].text, "request \(index)")
            XCTAssertEqual(completion, expected[index].count, "request \(index)")
        }
        XCTAssertEqual(scheduler.peakActiveCount, 2, "two sequences were stepped in the same rounds")
        XCTAssertEqual(scheduler.activeCount, 0)
        XCTAssertEqual(scheduler.queueDepth, 0)
        scheduler.shutdown()
    }

    func testCancelledRequestStopsAndFreesItsSlot() async throws {
        let pipeline = try Self.pipeline.get()
        let scheduler = GenerationScheduler(pipeline: pipeline, maxConcurrent: 1, maxQueue: 1)
        var options = pipeline.options(maxTokens: 240)
        options.stopTokens = []
        let handle = try scheduler.submit(prompt: pipeline.completionPrompt("go"), options: options)
        var sawFinish = false
        var batches = 0
        for await output in handle.stream {
            switch output {
            case .events:
                batches += 1
                if batches == 1 {
                    scheduler.pause()
                    handle.cancel()
                    scheduler.resume()
                }
            case .finished: sawFinish = true
            case .failed: XCTFail("unexpected failure")
            }
        }
        XCTAssertFalse(sawFinish, "a cancelled request ends without a finish event")
        // The slot is free again: a new request runs to completion.
        let next = try scheduler.submit(prompt: pipeline.completionPrompt("again"), options: pipeline.options(maxTokens: 3))
        var finished = false
        for await output in next.stream { if case .finished = output { finished = true } }
        XCTAssertTrue(finished)
        scheduler.shutdown()
    }
}
