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

/// Special-token metadata and pipeline names of GGUF vocabularies.
final class GGUFVocabularyMetadataTests: XCTestCase {
    func vocab(_ name: String) throws -> Tokenizer {
        try Tokenizer.load(path: TokenizerFixtures.path("tokenizers/gguf-vocab/ggml-vocab-\(name).gguf"))
    }

    func testBOSAndEOS() throws {
        // llama-bpe has no add_bos_token key: llama.cpp's Llama 3 default (add BOS) applies.
        let llama = try vocab("llama-bpe")
        XCTAssertEqual(llama.bosTokenId, 128_000)
        XCTAssertEqual(llama.eosTokenIds.first, 128_001)
        XCTAssertEqual(llama.encode("Hello", addSpecialTokens: true).first, 128_000)
        XCTAssertEqual(llama.encode("Hello", addSpecialTokens: false).first, 9906)
        // deepseek-llm says add_bos_token = true; gpt-2 says nothing and is not Llama 3.
        XCTAssertEqual(try vocab("deepseek-llm").encode("a", addSpecialTokens: true).first, 100_000)
        XCTAssertEqual(try vocab("gpt-2").encode("a", addSpecialTokens: true), [64])
    }

    func testControlTokensAreMatchedAndSkippable() throws {
        let qwen = try vocab("qwen2")
        let id = try XCTUnwrap(qwen.tokenToId("<|im_start|>"))
        XCTAssertTrue(qwen.isSpecial(id))
        let ids = qwen.encode("<|im_start|>user\nhi")
        XCTAssertEqual(ids.first, id)
        XCTAssertEqual(qwen.decode(ids, skipSpecialTokens: true), "user\nhi")
        XCTAssertEqual(qwen.decode(ids, skipSpecialTokens: false), "<|im_start|>user\nhi")
    }

    /// The GGUF "deepseek-v3" pipeline is the same as DeepSeek-V3's tokenizer.json: run the HF goldens through it.
    func testDeepseekV3PipelineNameMatchesTokenizerJSON() throws {
        let json = try TokenizerFixtures.deepseekV3.get()
        var definition = json.definition
        let named = try GGUFVocabularyLoader.preTokenizer(named: "deepseek-v3", path: "test")
        definition.preTokenizer = PreTokenizer(steps: named.steps)
        let tokenizer = Tokenizer(definition: definition)
        let golden = try TokenizerFixtures.json("tokenizers/deepseek-v3/golden.json")
        for c in try XCTUnwrap(golden["cases"] as? [[String: Any]]) {
            let text = try XCTUnwrap(c["text"] as? String)
            XCTAssertEqual(tokenizer.encode(text), try XCTUnwrap(c["ids"] as? [Int]), text.debugDescription)
        }
    }

    func testUnknownPreTokenizerNameIsAClearError() {
        XCTAssertThrowsError(try GGUFVocabularyLoader.preTokenizer(named: "no-such-pre", path: "x.gguf")) { error in
            XCTAssertEqual(error as? TokenizerError, .unsupported(path: "x.gguf", feature: "tokenizer.ggml.pre 'no-such-pre'"))
        }
    }
}
