import Foundation
import Kujira
import XCTest

/// The `Kujira` product's API on the embedded model: streaming chat, the summary, conversation reuse, cancellation,
/// and clear errors for bad input.
final class ChatModelTests: XCTestCase {
    func testChatStreamsAnAnswerAndASummary() async throws {
        let model = try await ChatModel.load(.embedded)
        var content = "", reasoning = "", pieces = 0
        var summary: ChatSummary?
        for try await event in model.chat([.user("What is 2+3?")]) {
            XCTAssertNil(summary, "nothing after .finished")
            switch event {
            case .content(let text): content += text; pieces += 1
            case .reasoning(let text): reasoning += text
            case .toolCalls: XCTFail("the arithmetic model calls no tools")
            case .finished(let s): summary = s
            }
        }
        let s = try XCTUnwrap(summary)
        XCTAssertEqual(content.trimmingCharacters(in: .whitespacesAndNewlines), "5", "reasoning: \(reasoning)")
        XCTAssertGreaterThan(pieces, 0)
        XCTAssertFalse(reasoning.isEmpty, "the R1-style model thinks first")
        XCTAssertEqual(s.finishReason, .stop)
        XCTAssertGreaterThan(s.promptTokens, 0)
        XCTAssertGreaterThan(s.completionTokens, s.reasoningTokens)
        XCTAssertGreaterThan(s.reasoningTokens, 0)
        XCTAssertGreaterThan(s.promptSeconds, 0)
        let reply = try await model.reply(to: [.user("What is 2+3?")])
        XCTAssertEqual(reply, content, "greedy decoding is deterministic")
    }

    func testContinuedConversationReusesTheCache() async throws {
        let model = try await ChatModel.load(.embedded)
        let first = try await model.reply(to: [.user("What is 12+30?")])
        var summary: ChatSummary?
        for try await event in model.chat([.user("What is 12+30?"), .assistant(first), .user("What is 7+8?")]) {
            if case .finished(let s) = event { summary = s }
        }
        XCTAssertGreaterThan(try XCTUnwrap(summary).cachedPromptTokens, 0)
    }

    func testMaxTokensAndStoppingEarly() async throws {
        let model = try await ChatModel.load(.embedded)
        var summary: ChatSummary?
        for try await event in model.chat([.user("What is 123+456?")], options: ChatOptions(maxTokens: 3)) {
            if case .finished(let s) = event { summary = s }
        }
        XCTAssertEqual(summary?.finishReason, .length)
        XCTAssertEqual(summary?.completionTokens, 3)
        // Leaving the loop after the first event cancels the generation; the model serves the next request normally.
        for try await _ in model.chat([.user("What is 999+999?")]) { break }
        let reply = try await model.reply(to: [.user("What is 2+3?")])
        XCTAssertEqual(reply.trimmingCharacters(in: .whitespacesAndNewlines), "5")
    }

    /// Cancelling the task that consumes the stream stops generation before the next token: the request ends
    /// `.cancelled` with about as many tokens as the consumer saw, far fewer than the full answer, and its cache is
    /// released (the next request reuses nothing).
    func testCancellingTheConsumingTaskStopsGeneration() async throws {
        let model = try await ChatModel.load(.embedded)
        let question = [ChatMessage.user("What is 98765+12345?")]
        let full = try await model.reply(to: question)
        let completeSummary = await model.lastSummary
        let complete = try XCTUnwrap(completeSummary)
        XCTAssertEqual(complete.finishReason, .stop, full)
        XCTAssertGreaterThan(complete.completionTokens, 20)
        let task = Task { () -> (seen: Int, summary: ChatSummary?) in
            var seen = 0, summary: ChatSummary?
            for try await event in model.chat(question) {
                if case .reasoning = event { seen += 1 }
                if case .finished(let s) = event { summary = s }
                if seen == 3 { withUnsafeCurrentTask { $0?.cancel() } }
            }
            return (seen, summary)
        }
        let (seen, streamed) = try await task.value
        let cancelled = try XCTUnwrap(streamed, "the stream ends with .finished")
        XCTAssertEqual(cancelled.finishReason, .cancelled)
        XCTAssertLessThanOrEqual(seen, 4, "no token after the one in flight when the task was cancelled")
        XCTAssertLessThanOrEqual(cancelled.completionTokens, seen + 1)
        XCTAssertLessThan(cancelled.completionTokens, complete.completionTokens)
        let recorded = await model.lastSummary
        XCTAssertEqual(recorded, cancelled)
        for try await event in model.chat(question) {
            if case .finished(let s) = event { XCTAssertEqual(s.cachedPromptTokens, 0, "the cancelled request's cache was released") }
        }
    }

    /// Two requests at once: the second runs in its own cache while the first holds the conversation's, token by token
    /// in turn, and each gets the answer it gets alone.
    func testConcurrentRequestsEachGetTheirAnswer() async throws {
        let model = try await ChatModel.load(.embedded)
        let aloneA = try await model.reply(to: [.user("What is 2+3?")]), aloneB = try await model.reply(to: [.user("What is 12+30?")])
        async let a = model.reply(to: [.user("What is 2+3?")])
        async let b = model.reply(to: [.user("What is 12+30?")])
        let (x, y) = try await (a, b)
        XCTAssertEqual(x, aloneA)
        XCTAssertEqual(y, aloneB)
        XCTAssertEqual(y.trimmingCharacters(in: .whitespacesAndNewlines), "42")
    }

    /// `jsonSchema` constrains the reply (the tiny test model, whose 256-token vocabulary holds every byte): it parses and
    /// has the schema's shape; `ngramDrafts` leaves the reply unchanged; a bad schema is a clear error.
    func testJSONSchemaRepliesAndSpeculationLeavesTheReplyUnchanged() async throws {
        let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/server/tiny-chat").path
        let model = try await ChatModel.load(.path(tiny))
        let schema = #"{"type": "object", "properties": {"answer": {"type": "integer"}, "unit": {"enum": ["cm", "m"]}}, "required": ["answer", "unit"], "additionalProperties": false}"#
        var options = ChatOptions(maxTokens: 120, sampling: SamplingConfiguration(temperature: 0.7, seed: 4), jsonSchema: schema)
        let text = try await model.reply(to: [.user("How tall?")], options: options)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
        XCTAssertEqual(Set(object.keys), ["answer", "unit"], text)
        XCTAssertNotNil(object["answer"] as? Int, text)
        XCTAssertTrue(["cm", "m"].contains(object["unit"] as? String ?? ""), text)

        options = ChatOptions(maxTokens: 80)
        let plain = try await model.reply(to: [.user("Say something long, and repeat it.")], options: options)
        options.ngramDrafts = 6
        let drafted = try await model.reply(to: [.user("Say something long, and repeat it.")], options: options)
        XCTAssertEqual(drafted, plain)

        do {
            _ = try await model.reply(to: [.user("x")], options: ChatOptions(jsonSchema: #"{"type": "string", "pattern": "a"}"#))
            XCTFail("a schema with 'pattern' was accepted")
        } catch let error as ChatModelError {
            XCTAssertTrue(error.description.contains("pattern"), error.description)
        }
    }

    func testBadInputGetsClearErrors() async throws {
        do {
            _ = try await ChatModel.load(.path("/nonexistent/model"))
            XCTFail("loaded a missing path")
        } catch {
            XCTAssertTrue("\(error)".contains("/nonexistent/model"), "\(error)")
        }
        do {
            _ = try await ChatModel.load(.hub("not a repo id"))
            XCTFail("accepted a bad repo id")
        } catch {
            XCTAssertTrue("\(error)".contains("not a repo id"), "\(error)")
        }
        let model = try await ChatModel.load(.embedded)
        do {
            _ = try await model.reply(to: [.user("hi")], options: ChatOptions(sampling: SamplingConfiguration(temperature: -1)))
            XCTFail("accepted a negative temperature")
        } catch {
            XCTAssertTrue("\(error)".contains("temperature"), "\(error)")
        }
        do {
            _ = try await model.reply(to: [.user("hi")], options: ChatOptions(toolsJSON: "{\"not\": \"an array\"}"))
            XCTFail("accepted tools that are not an array")
        } catch {
            XCTAssertTrue("\(error)".contains("toolsJSON"), "\(error)")
        }
    }
}
