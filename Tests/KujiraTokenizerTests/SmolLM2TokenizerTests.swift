import Foundation
import XCTest
@testable import KujiraTokenizer

/// The real SmolLM2-135M-Instruct GGUF (fetched by scripts/fetch-smollm2.sh) against llama.cpp's prompt tokens.
final class SmolLM2TokenizerTests: XCTestCase {
    static var modelPath: String {
        ProcessInfo.processInfo.environment["KUJIRA_SMOLLM2_GGUF"]
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/kujira/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    func testPromptTokensMatchLlamaCpp() throws {
        let path = Self.modelPath
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("SmolLM2 GGUF not found at \(path); run scripts/fetch-smollm2.sh or set KUJIRA_SMOLLM2_GGUF")
        }
        let tokenizer = try Tokenizer.load(path: path)
        let golden = try TokenizerFixtures.json("smollm2/golden.json")
        let cases = try XCTUnwrap(golden["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 4)
        for c in cases {
            let text = try XCTUnwrap(c["text"] as? String)
            let expected = try XCTUnwrap(c["prompt_tokens"] as? [Int])
            XCTAssertEqual(tokenizer.encode(text, addSpecialTokens: true), expected, text.debugDescription)
            XCTAssertEqual(tokenizer.decode(expected), text)
        }
        XCTAssertEqual(tokenizer.idToToken(1), "<|im_start|>")
        XCTAssertTrue(tokenizer.eosTokenIds.contains(2))
        XCTAssertTrue(try XCTUnwrap(tokenizer.chatTemplate).contains("<|im_start|>"))
    }
}
