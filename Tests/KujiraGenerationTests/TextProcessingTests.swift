import Foundation
import XCTest
import KujiraGeneration
import KujiraTokenizer

/// JSON constraint, stop strings, tool-call parsing and logit processing, without a model.
final class TextProcessingTests: XCTestCase {
    func accepts(_ text: String) -> (valid: Bool, complete: Bool) {
        var v = JSONPrefixValidator()
        let ok = v.accept(Array(text.utf8))
        return (ok, v.isComplete)
    }

    func testJSONValidatorAcceptsObjectsAndRejectsAtTheFirstBadByte() {
        for text in [#"{}"#, #"{"a": 1}"#, #"{"a": [1, -2.5e+3, true, false, null, "x\"\u00e9"], "b": {"c": {}}}"#, " {\"k\": 0.0}"] {
            XCTAssertEqual(accepts(text).valid, true, text)
            XCTAssertEqual(accepts(text).complete, true, text)
        }
        for prefix in [#"{"a": "#, #"{"a": [1, "#, #"{"a": tr"#, #"{"a": -"#, #"{"#] {
            XCTAssertEqual(accepts(prefix).valid, true, prefix)
            XCTAssertEqual(accepts(prefix).complete, false, prefix)
        }
        for bad in ["[1]", "1", #"{"a" 1}"#, #"{"a": 01}"#, #"{"a": tru e}"#, #"{a: 1}"#, #"{"a": 1,}"#, "{}}", #"{"a": "\q"}"#,
                    #"{"a": 1.}"#, #"{"a": [1 2]}"#, "{\"a\": \"\u{01}\"}"] {
            XCTAssertFalse(accepts(bad).valid, bad)
        }
    }

    func testJSONValidatorAgreesWithJSONSerializationOnMutations() throws {
        var rng = XorShift(state: 0x9E37_79B9_7F4A_7C15)
        let base = Array(#"{"name": "Kujira", "n": [1, 2.5, -3e2], "ok": true, "nested": {"x": null, "s": "a\\b\"c"}}"#.utf8)
        let alphabet = Array(#"{}[]:,"\ 0123456789.-+eEtrufalsn"#.utf8)
        for _ in 0..<3000 {
            var text = base
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let i = Int.random(in: 0..<text.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: text.remove(at: i)
                case 1: text.insert(alphabet.randomElement(using: &rng)!, at: i)
                default: text[i] = alphabet.randomElement(using: &rng)!
                }
                if text.isEmpty { break }
            }
            var v = JSONPrefixValidator()
            let accepted = v.accept(text) && v.isComplete
            // Foundation on Linux accepts trailing commas ("[1,]"), which JSON forbids: those must be rejected.
            let trailingComma = String(decoding: text, as: UTF8.self).replacingOccurrences(of: " ", with: "")
            if trailingComma.contains(",]") || trailingComma.contains(",}") {
                XCTAssertFalse(accepted, String(decoding: text, as: UTF8.self))
                continue
            }
            let parsed = (try? JSONSerialization.jsonObject(with: Data(text))) is [String: Any]
            XCTAssertEqual(accepted, parsed, String(decoding: text, as: UTF8.self))
        }
    }

    func testStopMatcherHoldsBackPartialStopsAndSplitsAcrossChunks() {
        let text = "The answer is 42.\nUser: next"
        for chunkSize in 1...6 {
            var matcher = StopStringMatcher(["\nUser:", "STOP"])
            var emitted = ""
            var found: String?
            var index = text.startIndex
            while index < text.endIndex, found == nil {
                let end = text.index(index, offsetBy: chunkSize, limitedBy: text.endIndex) ?? text.endIndex
                let result = matcher.feed(String(text[index..<end]))
                emitted += result.text
                found = result.marker
                XCTAssertFalse(emitted.contains("\n"), "held back the start of a stop string (chunk \(chunkSize))")
                index = end
            }
            XCTAssertEqual(found, "\nUser:")
            XCTAssertEqual(emitted, "The answer is 42.")
        }
        var matcher = StopStringMatcher(["abc"])
        XCTAssertEqual(matcher.feed("xxab").text, "xx")
        XCTAssertEqual(matcher.feed("d").text, "abd")
        XCTAssertEqual(matcher.feed("a").text, "")
        XCTAssertEqual(matcher.finish(), "a")
    }

    func testToolCallsRenderedByDeepSeekV3TemplateParseBack() throws {
        let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tokenizers/deepseek-v3/tokenizer_config.json")
        let template = try ChatTemplate.load(path: config.path)
        let calls: JinjaValue = [
            ["type": "function", "function": ["name": "get_weather", "arguments": "{\"city\": \"Paris\"}"]],
            ["type": "function", "function": ["name": "get_time", "arguments": "{\"zone\": \"CET\", \"fmt\": [1, 2]}"]],
        ]
        let rendered = try template.render(messages: [
            ["role": "user", "content": "Weather and time?"],
            ["role": "assistant", "content": nil, "tool_calls": calls],
        ])
        let format = ToolCallFormat()
        let start = try XCTUnwrap(rendered.range(of: format.callsBegin))
        let parsed = format.parse(String(rendered[start.upperBound...]))
        XCTAssertEqual(parsed, [ToolCall(name: "get_weather", arguments: "{\"city\": \"Paris\"}"),
                                ToolCall(name: "get_time", arguments: "{\"zone\": \"CET\", \"fmt\": [1, 2]}")])
        // A call cut off before its end token is not reported.
        let cut = String(rendered[start.upperBound...]).components(separatedBy: format.callEnd)[0]
        XCTAssertEqual(format.parse(cut), [])
    }

    /// DeepSeek-V3.1 writes `NAME<｜tool▁sep｜>ARGS` (no type, no fence): a template in that style (the tool-call lines of
    /// V3.1's, as llama.cpp's parser reads them) is recognised, its calls parse back, and a forced call is written in it;
    /// the V3 template keeps the fenced style.
    func testDeepSeekV31ToolCallSyntax() throws {
        let v31 = """
            {%- for message in messages %}{%- if message['tool_calls'] %}{{'<｜tool▁calls▁begin｜>'}}\
            {%- for tool in message['tool_calls'] %}{{'<｜tool▁call▁begin｜>'+ tool['function']['name'] + '<｜tool▁sep｜>' + \
            tool['function']['arguments'] + '<｜tool▁call▁end｜>'}}{%- endfor %}{{'<｜tool▁calls▁end｜>'}}{%- endif %}{%- endfor %}
            """
        let format = ToolCallFormat().matching(template: v31)
        XCTAssertTrue(format.nameBeforeSeparator)
        let v3 = try ChatTemplate.load(path: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tokenizers/deepseek-v3/tokenizer_config.json").path)
        XCTAssertFalse(ToolCallFormat().matching(template: v3.source).nameBeforeSeparator)
        let rendered = try ChatTemplate(source: v31).render(messages: [
            ["role": "assistant", "content": nil, "tool_calls": [
                ["type": "function", "function": ["name": "get_weather", "arguments": "{\"city\": \"Paris\"}"]],
                ["type": "function", "function": ["name": "get_time", "arguments": "{}"]],
            ] as JinjaValue],
        ])
        let start = try XCTUnwrap(rendered.range(of: format.callsBegin))
        XCTAssertEqual(format.parse(String(rendered[start.upperBound...])),
                       [ToolCall(name: "get_weather", arguments: "{\"city\": \"Paris\"}"), ToolCall(name: "get_time", arguments: "{}")])
        XCTAssertEqual(format.forcedPrefix(function: "get_time"), "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>")
        XCTAssertEqual(ToolCallFormat().forcedPrefix(function: "f"), "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n")
    }

    func testLogitProcessorGreedyFiltersAndSeeds() throws {
        let logits: [Float] = [0.5, 2.0, 1.0, -1.0]
        var greedy = try LogitProcessor(SamplingConfiguration(temperature: 0))
        XCTAssertEqual(greedy.choose(logits), 1)
        var topOne = try LogitProcessor(SamplingConfiguration(temperature: 1.5, topK: 1, seed: 3))
        var minP = try LogitProcessor(SamplingConfiguration(temperature: 1.5, minP: 1, seed: 3))
        for _ in 0..<20 {
            XCTAssertEqual(topOne.choose(logits), 1)
            XCTAssertEqual(minP.choose(logits), 1)
        }
        // Same seed, same draws; the empirical distribution follows softmax.
        var a = try LogitProcessor(SamplingConfiguration(temperature: 1, seed: 11))
        var b = try LogitProcessor(SamplingConfiguration(temperature: 1, seed: 11))
        var counts = [0, 0, 0, 0]
        let draws = 20000
        for _ in 0..<draws {
            let x = a.choose(logits)!
            XCTAssertEqual(x, b.choose(logits))
            counts[x] += 1
        }
        let exps = logits.map { exp(Double($0)) }
        let total = exps.reduce(0, +)
        for i in 0..<4 { XCTAssertEqual(Double(counts[i]) / Double(draws), exps[i] / total, accuracy: 0.015) }
        // top_p keeps the smallest set reaching p: here only token 1 (p ≈ 0.61 ≥ 0.5).
        var nucleus = try LogitProcessor(SamplingConfiguration(temperature: 1, topP: 0.5, seed: 5))
        for _ in 0..<50 { XCTAssertEqual(nucleus.choose(logits), 1) }
    }

    func testPenalties() throws {
        var p = try LogitProcessor(SamplingConfiguration(presencePenalty: 0.5, frequencyPenalty: 0.25, repetitionPenalty: 2),
                                   promptTokens: [0])
        p.record(2)
        p.record(2)
        var logits: [Float] = [1, 1, 1, -1]
        p.applyPenalties(&logits)
        XCTAssertEqual(logits[0], 0.5)             // prompt token: repetition penalty only
        XCTAssertEqual(logits[1], 1)
        XCTAssertEqual(logits[2], 0.5 - 0.5 - 0.5) // repetition, then presence 0.5 + frequency 0.25 × 2
        XCTAssertEqual(logits[3], -1)
        XCTAssertThrowsError(try LogitProcessor(SamplingConfiguration(topP: 0)))
        XCTAssertThrowsError(try LogitProcessor(SamplingConfiguration(repetitionPenalty: 0)))
    }
}

/// A small seeded generator so the mutation test is reproducible.
struct XorShift: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
