import Foundation
import XCTest
@testable import KujiraTokenizer

/// Hostile or broken templates must produce thrown errors, never a crash or a hang.
final class ChatTemplateRobustnessTests: XCTestCase {
    /// SplitMix64: a small deterministic generator so failures reproduce.
    private struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/chat-templates")

    func testMutatedTemplatesThrowOrRender() throws {
        let sources = try ["deepseek-r1-distill-qwen", "deepseek-v3", "qwen2.5-instruct", "smollm2-gguf"].map {
            try String(contentsOf: fixtures.appendingPathComponent("\($0)/template.jinja"), encoding: .utf8)
        }
        let fragments = ["{{", "}}", "{%", "%}", "{#", "#}", "-", "+", "(", ")", "[", "]", "{", "}", "'", "\"", "\\",
                         "|", ".", ",", ":", "=", "is", "not", "in", "if", "else", "endif", "for", "endfor", "set",
                         "macro", "loop", "messages", "1", "-1", "0.5", "~", "*", "**", "//", "%", "[::-1]", "\n", " "]
        let messages: [JinjaValue] = [
            ["role": "system", "content": "sys"], ["role": "user", "content": "hi"],
            ["role": "assistant", "content": "<think>x</think>y", "tool_calls": [
                ["type": "function", "function": ["name": "f", "arguments": "{}"]]]],
            ["role": "tool", "content": "r"],
        ]
        var generator = SeededGenerator(state: 20_261_129)
        var parsed = 0
        var rendered = 0
        for _ in 0..<1500 {
            var scalars = Array(sources[Int(generator.next() % UInt64(sources.count))].unicodeScalars)
            for _ in 0..<(1 + generator.next() % 4) {
                let position = Int(generator.next() % UInt64(scalars.count + 1))
                switch generator.next() % 3 {
                case 0:
                    let length = min(Int(generator.next() % 12), scalars.count - position)
                    scalars.removeSubrange(position..<position + length)
                case 1:
                    let fragment = fragments[Int(generator.next() % UInt64(fragments.count))]
                    scalars.insert(contentsOf: fragment.unicodeScalars, at: position)
                default:
                    if position < scalars.count { scalars[position] = "}" }
                }
            }
            let source = String(String.UnicodeScalarView(scalars))
            guard let template = try? ChatTemplate(source: source) else { continue }
            parsed += 1
            if (try? template.render(messages: messages, addGenerationPrompt: true, bosToken: "<s>")) != nil {
                rendered += 1
            }
        }
        // Both outcomes must actually occur, or the mutations are not exercising anything.
        XCTAssertGreaterThan(parsed, 50)
        XCTAssertLessThan(parsed, 1500)
        XCTAssertGreaterThan(rendered, 10)
    }

    func testDeepNestingIsRejected() {
        let parentheses = String(repeating: "(", count: 5_000) + "1" + String(repeating: ")", count: 5_000)
        XCTAssertThrowsError(try ChatTemplate(source: "{{ \(parentheses) }}"))
        XCTAssertThrowsError(try ChatTemplate(source: "{{ " + String(repeating: "not ", count: 5_000) + "x }}"))
        XCTAssertThrowsError(try ChatTemplate(source: "{{ " + String(repeating: "-", count: 5_000) + "1 }}"))
        let blocks = String(repeating: "{% if x %}", count: 5_000) + String(repeating: "{% endif %}", count: 5_000)
        XCTAssertThrowsError(try ChatTemplate(source: blocks))
        let list = String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)
        XCTAssertThrowsError(try ChatTemplate(source: "{{ \(list) }}"))
        // Moderate nesting still works.
        XCTAssertEqual(try ChatTemplate(source: "{{ ((((1)))) + [[[2]]][0][0][0] }}").render(context: [:]), "3")
    }

    func testRuntimeLimits() throws {
        for source in ["{{ 'x' * 100000000000 }}", "{{ range(100000000000) | length }}", "{{ 1 ** -1 }}{{ 2 ** 1000 }}",
                       "{{ 'a' | indent(1e300) }}", "{{ [1] | batch(0) }}", "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
                       "{{ 1 // 0 }}", "{{ 1.0 % 0 }}", "{{ -9223372036854775807 - 2 }}"] {
            XCTAssertThrowsError(try ChatTemplate(source: source).render(context: [:]), source)
        }
        XCTAssertEqual(try ChatTemplate(source: "{{ 1 ** 1000000000000 }} {{ (-1) ** 1000000000001 }}").render(context: [:]),
                       "1 -1")
    }
}
