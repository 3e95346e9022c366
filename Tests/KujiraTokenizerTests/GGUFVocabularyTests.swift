import Foundation
import XCTest
@testable import KujiraTokenizer

/// llama.cpp's vocabulary test files: GGUF vocabularies with texts (.inp) and ids made by HF tokenizers (.out).
final class GGUFVocabularyTests: XCTestCase {
    /// Texts of a `.inp` file the way llama.cpp's tests/test-tokenizer-0 reads them: the file is cut at every
    /// "\n__ggml_vocab_test__\n"; what follows the last separator is not a test.
    static func readTexts(_ path: String) throws -> [String] {
        let content = try String(contentsOfFile: path, encoding: .utf8)
        let separator = Array("\n__ggml_vocab_test__\n".utf8)
        let bytes = Array(content.utf8)
        var texts: [String] = []
        var start = 0
        var i = 0
        while i + separator.count <= bytes.count {
            if bytes[i..<(i + separator.count)].elementsEqual(separator) {
                texts.append(String(decoding: bytes[start..<i], as: UTF8.self))
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        return texts
    }

    /// Expected ids of a `.out` file: one line per text, ids separated by spaces.
    static func readExpected(_ path: String) throws -> [[Int]] {
        let content = try String(contentsOfFile: path, encoding: .utf8)
        var lines = content.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return try lines.map { line in
            try line.split(separator: " ").map { try XCTUnwrap(Int($0), "bad id \($0) in \(path)") }
        }
    }

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let base = TokenizerFixtures.path("tokenizers/gguf-vocab/ggml-vocab-\(name).gguf")
        let tokenizer = try Tokenizer.load(path: base)
        let texts = try Self.readTexts(base + ".inp")
        let expected = try Self.readExpected(base + ".out")
        XCTAssertEqual(texts.count, 46, file: file, line: line)
        XCTAssertEqual(texts.count, expected.count, "texts vs expected lines of \(name)", file: file, line: line)
        for (text, ids) in zip(texts, expected) {
            let got = tokenizer.encode(text, addSpecialTokens: false)
            XCTAssertEqual(got, ids, "\(name): \(text.debugDescription)", file: file, line: line)
            XCTAssertEqual(tokenizer.decode(got), text, "\(name) round trip of \(text.debugDescription)", file: file, line: line)
        }
    }

    func testSeparatorHandling() throws {
        let texts = try Self.readTexts(TokenizerFixtures.path("tokenizers/gguf-vocab/ggml-vocab-gpt-2.gguf.inp"))
        XCTAssertEqual(texts[0], "ied 4 ½ months")
        XCTAssertEqual(texts[2], "")
        XCTAssertEqual(texts[3], " ")
        XCTAssertEqual(texts[7], "\n")
        XCTAssertEqual(texts[8], "\n\n")
    }

    func testDeepseekLLM() throws { try check("deepseek-llm") }
    func testDeepseekCoder() throws { try check("deepseek-coder") }
    func testQwen2() throws { try check("qwen2") }
    func testLlamaBPE() throws { try check("llama-bpe") }
    func testGPT2() throws { try check("gpt-2") }
}
