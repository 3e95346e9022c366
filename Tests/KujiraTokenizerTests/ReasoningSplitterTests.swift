import XCTest
@testable import KujiraTokenizer

final class ReasoningSplitterTests: XCTestCase {
    private struct Sample {
        var text: String
        var startsInReasoning: Bool
        var reasoning: String
        var content: String
    }

    private let samples: [Sample] = [
        Sample(text: "<think>\nLet me add: 2+2.\n</think>\n\nThe answer is 4.", startsInReasoning: false,
               reasoning: "\nLet me add: 2+2.\n", content: "\n\nThe answer is 4."),
        Sample(text: "R1 opened the tag in the prompt.</think>Answer with a literal <think> inside.",
               startsInReasoning: true,
               reasoning: "R1 opened the tag in the prompt.", content: "Answer with a literal <think> inside."),
        Sample(text: "Plain answer, then <think> is just text.", startsInReasoning: false,
               reasoning: "", content: "Plain answer, then <think> is just text."),
        Sample(text: "\n <think>考える、<</think>答えは「４」。</think>", startsInReasoning: false,
               reasoning: "考える、<", content: "\n 答えは「４」。</think>"),
        Sample(text: "<think>never closed </thi", startsInReasoning: false,
               reasoning: "never closed </thi", content: ""),
        Sample(text: "  <thin", startsInReasoning: false, reasoning: "", content: "  <thin"),
    ]

    /// Runs the splitter over `chunks` and returns the concatenated reasoning and content, checking
    /// that no event carries a tag and that events alternate kinds sensibly.
    private func split(_ chunks: [String], startsInReasoning: Bool) -> (reasoning: String, content: String) {
        var splitter = ReasoningSplitter(startsInReasoning: startsInReasoning)
        var events: [ReasoningSplitter.Event] = []
        for chunk in chunks { events += splitter.feed(chunk) }
        events += splitter.finish()
        var reasoning = ""
        var content = ""
        for event in events {
            switch event {
            case .reasoning(let text):
                XCTAssertFalse(text.isEmpty)
                reasoning += text
            case .content(let text):
                XCTAssertFalse(text.isEmpty)
                content += text
            }
        }
        return (reasoning, content)
    }

    func testWholeText() {
        for sample in samples {
            let result = split([sample.text], startsInReasoning: sample.startsInReasoning)
            XCTAssertEqual(result.reasoning, sample.reasoning, sample.text)
            XCTAssertEqual(result.content, sample.content, sample.text)
        }
    }

    /// Every single split point, and every pair of split points, gives the same result.
    func testEverySplitPoint() {
        for sample in samples {
            let scalars = Array(sample.text.unicodeScalars)
            func piece(_ range: Range<Int>) -> String { String(String.UnicodeScalarView(scalars[range])) }
            for i in 0...scalars.count {
                let result = split([piece(0..<i), piece(i..<scalars.count)], startsInReasoning: sample.startsInReasoning)
                XCTAssertEqual(result.reasoning, sample.reasoning, "split at \(i) of \(sample.text)")
                XCTAssertEqual(result.content, sample.content, "split at \(i) of \(sample.text)")
                for j in i...scalars.count {
                    let three = split([piece(0..<i), piece(i..<j), piece(j..<scalars.count)],
                                      startsInReasoning: sample.startsInReasoning)
                    XCTAssertEqual(three.reasoning, sample.reasoning, "split at \(i),\(j) of \(sample.text)")
                    XCTAssertEqual(three.content, sample.content, "split at \(i),\(j) of \(sample.text)")
                }
            }
        }
    }

    func testOneScalarAtATime() {
        for sample in samples {
            let chunks = sample.text.unicodeScalars.map { String($0) }
            let result = split(chunks, startsInReasoning: sample.startsInReasoning)
            XCTAssertEqual(result.reasoning, sample.reasoning)
            XCTAssertEqual(result.content, sample.content)
        }
    }

    func testHoldsBackOnlyPossibleTagPrefixes() {
        var splitter = ReasoningSplitter()
        XCTAssertEqual(splitter.feed("<thi"), [])
        XCTAssertEqual(splitter.feed("nk>abc</th"), [.reasoning("abc")])
        XCTAssertTrue(splitter.isReasoning)
        XCTAssertEqual(splitter.feed("e"), [.reasoning("</the")])
        XCTAssertEqual(splitter.feed("</think>ok"), [.content("ok")])
        XCTAssertFalse(splitter.isReasoning)
        XCTAssertEqual(splitter.finish(), [])
    }

    func testStartModeFromRenderedPrompt() throws {
        let template = try ChatTemplate.load(path: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/chat-templates/deepseek-r1-distill-qwen/template.jinja").path)
        // This template closes the think block unless `enable_thinking` is set.
        let thinking = try template.render(messages: [["role": "user", "content": "Hi"]], addGenerationPrompt: true,
                                           extra: ["enable_thinking": true])
        XCTAssertTrue(thinking.hasSuffix("<think>\n"), thinking)
        XCTAssertTrue(ReasoningSplitter(continuingPrompt: thinking).isReasoning)
        let closed = try template.render(messages: [["role": "user", "content": "Hi"]], addGenerationPrompt: true)
        XCTAssertTrue(closed.hasSuffix("<think>\n</think>"), closed)
        XCTAssertFalse(ReasoningSplitter(continuingPrompt: closed).isReasoning)
        XCTAssertFalse(ReasoningSplitter(continuingPrompt: "<think>a</think>b").isReasoning)
        XCTAssertFalse(ReasoningSplitter(continuingPrompt: "no tags").isReasoning)
    }
}
