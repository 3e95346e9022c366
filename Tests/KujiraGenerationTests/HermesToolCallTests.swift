import Foundation
import KujiraGeneration
import KujiraTokenizer
import XCTest

/// Qwen's Hermes-style tool calls (`<tool_call>{"name", "arguments"}</tool_call>`): what Qwen3's own chat template
/// writes for a conversation's tool calls parses back to the same calls, and a forced call's prefix completes to one.
final class HermesToolCallTests: XCTestCase {
    static let qwen3Template = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/chat-templates/qwen3/template.jinja").path

    func testQwen3TemplateRoundTrip() throws {
        let template = try ChatTemplate.load(path: Self.qwen3Template)
        let calls: JinjaValue = [
            ["type": "function", "function": ["name": "get_weather", "arguments": "{\"city\": \"Paris\"}"]],
            ["type": "function", "function": ["name": "get_time", "arguments": ["zone": "CET", "fmt": [1, 2]]]],
        ]
        let rendered = try template.render(messages: [
            ["role": "user", "content": "Weather and time?"],
            ["role": "assistant", "content": "", "tool_calls": calls],
        ])
        let format = try XCTUnwrap(ToolCallFormat.detect { ["<tool_call>", "</tool_call>"].contains($0) })
        XCTAssertEqual(format.style, .hermes)
        let start = try XCTUnwrap(rendered.range(of: format.callsBegin))
        let parsed = format.parse(String(rendered[start.upperBound...]))
        XCTAssertEqual(parsed.map(\.name), ["get_weather", "get_time"])
        XCTAssertEqual(parsed.first?.arguments, "{\"city\": \"Paris\"}", "a string argument is taken as written")
        let time = try XCTUnwrap(parsed.last.flatMap { try JSONSerialization.jsonObject(with: Data($0.arguments.utf8)) as? [String: Any] })
        XCTAssertEqual(time["zone"] as? String, "CET")
        XCTAssertEqual(time["fmt"] as? [Int], [1, 2])
        // A call cut off before </tool_call> is not reported; nor is a block that is not a {"name": …} object.
        XCTAssertEqual(format.parse("\n{\"name\": \"f\", \"arguments\": {}}"), [])
        XCTAssertEqual(format.parse("\nnot json\n</tool_call>"), [])
    }

    func testForcedPrefixCompletesToACall() throws {
        let format = try XCTUnwrap(ToolCallFormat.hermes { _ in true })
        let prefix = format.forcedPrefix(function: "get_\"weather")
        XCTAssertTrue(prefix.hasPrefix("<tool_call>\n{\"name\": \"get_\\\"weather\", \"arguments\": "), prefix)
        let generated = prefix + "{\"city\": \"Paris\"}}\n</tool_call>"
        let calls = format.parse(String(generated.dropFirst(format.callsBegin.count)))
        XCTAssertEqual(calls, [ToolCall(name: "get_\"weather", arguments: "{\"city\": \"Paris\"}")])
        XCTAssertEqual(format.forcedPrefix(function: nil), "<tool_call>\n")
        // DeepSeek's tokens win when a vocabulary has both; neither gives no format.
        XCTAssertEqual(ToolCallFormat.detect { _ in true }?.style, .deepSeek)
        XCTAssertNil(ToolCallFormat.detect { _ in false })
    }
}
