import Foundation
import XCTest
@testable import KujiraTokenizer

/// The hand-written scanners must give exactly the regex's matches: compare them with the ICU fallback
/// path on random text built from the characters where the patterns branch.
final class PreTokenizerScannerTests: XCTestCase {
    static let alphabet: [String] = [
        "a", "b", "Z", "s", "t", "S", "T", "r", "e", "R", "E", "l", "L", "d", "m", "v", "é", "ß", "Ж", "日", "本", "の",
        "ア", "한", "\u{301}", "\u{94D}", "0", "7", "٣", "５", "½", "!", ".", ",", "'", "\"", "-", "(", "「", "。", "’",
        "$", "+", "<", "🐳", "©", " ", " ", " ", "\t", "\n", "\r", "\r\n", "\u{A0}", "\u{3000}", "\u{2028}", "\u{85}",
        "\u{B}", "\u{200D}", "_", "`", "~",
    ]

    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    func randomTexts(count: Int, seed: UInt64) -> [String] {
        var generator = SeededGenerator(state: seed)
        return (0..<count).map { _ in
            let length = Int.random(in: 0...40, using: &generator)
            return (0..<length).map { _ in Self.alphabet.randomElement(using: &generator)! }.joined()
        }
    }

    func matches(_ pattern: SplitPattern, _ string: String) -> [Range<Int>] {
        let text = ScalarText(string)
        var out: [Range<Int>] = []
        pattern.findMatches(in: text, range: 0..<text.count, into: &out)
        return out
    }

    func assertScannerAgreesWithICU(_ regex: String, expectScanner: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let fast = try SplitPattern.compile(regex: regex)
        if case .regex = fast { XCTAssertFalse(expectScanner, "\(regex) fell back to ICU", file: file, line: line) }
        let icu = SplitPattern.regex(try ICURegexPattern(pattern: regex))
        for text in randomTexts(count: 3000, seed: UInt64(regex.utf8.count)) {
            XCTAssertEqual(matches(fast, text), matches(icu, text), "\(regex) on \(text.debugDescription)", file: file, line: line)
        }
    }

    func testKnownPatternsAgreeWithICU() throws {
        try assertScannerAgreesWithICU(KnownPattern.gpt2Pattern, expectScanner: true)
        try assertScannerAgreesWithICU(KnownPattern.llama3Pattern, expectScanner: true)
        try assertScannerAgreesWithICU(KnownPattern.qwen2Pattern, expectScanner: true)
        try assertScannerAgreesWithICU(KnownPattern.deepseekV3Pattern, expectScanner: true)
    }

    func testSimpleClassPatternsAgreeWithICU() throws {
        for regex in [#"\p{N}{1,3}"#, #"\p{N}"#, #"\p{N}+"#, #"[\r\n]"#, #"\s?\p{L}+"#, #"\s?\p{P}+"#,
                      "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+", #"[^\s\p{L}]+"#,
                      "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{3000}-\u{3002}]+", #"[\p{P}\$\+<=>\^~\|]+"#, "[0-9][0-9][0-9]"] {
            try assertScannerAgreesWithICU(regex, expectScanner: regex != "[0-9][0-9][0-9]")
        }
        try assertScannerAgreesWithICU(#"\s+$"#, expectScanner: true)
    }

    func testDeepSeekPatternWithLiteralNewlinesIsRecognized() {
        let fromJSON = KnownPattern.deepseekV3Pattern.replacingOccurrences(of: #"\r\n"#, with: "\r\n")
        XCTAssertNotEqual(fromJSON, KnownPattern.deepseekV3Pattern)
        XCTAssertEqual(KnownPattern(pattern: fromJSON), .deepseekV3)
    }

    func testLongInputsAreLinear() throws {
        // Long single lines (one pre-token of letters, of CJK, one run of spaces) take the heap BPE and the
        // linear scanners and round-trip; scripts/bench-tokenizer.sh times 1 MB and 2 MB lines in release.
        let tokenizer = try TokenizerFixtures.deepseekV3.get()
        for unit in ["abcdefghij", "          ", "日本語"] {
            let text = String(repeating: unit, count: 100_000 / unit.utf8.count)
            let ids = tokenizer.encode(text)
            XCTAssertFalse(ids.isEmpty)
            XCTAssertEqual(tokenizer.decode(ids), text)
        }
    }

    func testHeapAndSmallMergeAgree() throws {
        let tokenizer = try TokenizerFixtures.deepseekV3.get()
        // The same long words through the heap merge and through the quadratic small-word merge.
        var generator = SeededGenerator(state: 7)
        let letters = Array("etaoinshrdlucmfwypvbgkqjxz")
        for _ in 0..<20 {
            let length = Int.random(in: 129...400, using: &generator)
            let word = String((0..<length).map { _ in letters.randomElement(using: &generator)! })
            let bytes = Array(word.utf8)
            var heapIds: [Int32] = []
            var smallIds: [Int32] = []
            var workspace = BPEWorkspace()
            bytes.withUnsafeBufferPointer { buffer in
                tokenizer.definition.model.encodeWord(buffer, into: &heapIds, workspace: &workspace, smallLimit: 128)
                tokenizer.definition.model.encodeWord(buffer, into: &smallIds, workspace: &workspace, smallLimit: Int.max)
            }
            XCTAssertEqual(heapIds, smallIds, word)
            XCTAssertEqual(tokenizer.decode(heapIds.map { Int($0) }), word)
        }
    }

    func testEmptyAndWhitespaceInputs() throws {
        let tokenizer = try TokenizerFixtures.deepseekV3.get()
        XCTAssertEqual(tokenizer.encode(""), [])
        XCTAssertEqual(tokenizer.encode("", addSpecialTokens: true), [])
        XCTAssertEqual(tokenizer.decode([]), "")
        XCTAssertEqual(tokenizer.decode(tokenizer.encode("\r\n\u{0}\u{7F}")), "\r\n\u{0}\u{7F}")
    }
}
