import Foundation
import XCTest
@testable import KujiraTokenizer

/// Tokenizer files come from the internet too: ids that would trap later, or text that would flood an error
/// message, are refused when the file is loaded.
final class TokenizerHostileInputTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// The tiny tokenizer.json with `edit` applied, plus the given configs, written to `directory`.
    private func write(_ edit: (inout [String: Any]) -> Void, config: [String: Any] = [:],
                       generation: [String: Any]? = nil) throws {
        var json = try TokenizerFixtures.json("tokenizers/tiny/tokenizer.json")
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: directory.appendingPathComponent("tokenizer.json"))
        try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("tokenizer_config.json"))
        if let generation {
            try JSONSerialization.data(withJSONObject: generation).write(to: directory.appendingPathComponent("generation_config.json"))
        }
    }

    private func assertInvalidFile(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Tokenizer.load(path: directory.path), file: file, line: line) { error in
            guard case .invalidFile(_, let reason)? = error as? TokenizerError else {
                return XCTFail("expected invalidFile, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(reason.contains(text), reason, file: file, line: line)
        }
    }

    /// Post-processor ids go into every encoded prompt (and from there index the embedding table).
    func testPostProcessorIdsOutsideTheVocabularyAreRefused() throws {
        for ids in [[-1], [1 << 40], [406]] {  // ids 0...405 exist
            try write { json in
                var processor = json["post_processor"] as? [String: Any] ?? [:]
                processor["special_tokens"] = ["<s>": ["id": "<s>", "ids": ids, "tokens": ["<s>"]]]
                json["post_processor"] = processor
            }
            assertInvalidFile("outside the vocabulary")
        }
        try write { json in json["post_processor"] = ["type": "BertProcessing", "cls": ["<s>", -5], "sep": ["</s>", 401]] }
        assertInvalidFile("outside the vocabulary")
        try write { _ in }
        XCTAssertEqual(try Tokenizer.load(path: directory.path).prefixTokenIds, [400])
    }

    /// A negative EOS id from generation_config.json used to trap in `UInt32(_:)` when written to GGUF metadata.
    func testNegativeGenerationConfigEOSIsRefused() throws {
        try write({ _ in }, generation: ["eos_token_id": -1])
        assertInvalidFile("eos_token_id -1")
        XCTAssertThrowsError(try GGUFTokenizerMetadata.make(directory: directory.path, vocabSize: 500))
        try write({ _ in }, generation: ["eos_token_id": [401, 1 << 40]])
        assertInvalidFile("is not a valid token id")
        try write({ _ in }, generation: ["eos_token_id": [401]])
        XCTAssertEqual(try Tokenizer.load(path: directory.path).eosTokenIds, [401])
    }

    /// Names and tokens from the file are quoted short and escaped.
    func testErrorMessagesFromTokenizerFilesAreBounded() throws {
        let hostile = "\u{1B}[2J\u{202E}" + String(repeating: "x", count: 100_000)
        let edits: [(inout [String: Any]) -> Void] = [
            { json in
                var model = json["model"] as? [String: Any] ?? [:]
                var vocab = model["vocab"] as? [String: Any] ?? [:]
                vocab[hostile] = -1
                model["vocab"] = vocab
                json["model"] = model
            },
            { json in
                var model = json["model"] as? [String: Any] ?? [:]
                model["merges"] = [hostile]
                json["model"] = model
            },
            { json in json["pre_tokenizer"] = ["type": hostile] },
            { json in json["normalizer"] = ["type": hostile] },
            { json in json["decoder"] = ["type": hostile] },
            { json in json["post_processor"] = ["type": hostile] },
            { json in json["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "(" + hostile], "behavior": "Isolated"] },
        ]
        for edit in edits {
            try write(edit)
            XCTAssertThrowsError(try Tokenizer.load(path: directory.path)) { error in
                let text = "\(error)"
                XCTAssertLessThan(text.count, 700, String(text.prefix(200)))
                XCTAssertFalse(text.unicodeScalars.contains { $0.value < 0x20 || $0 == "\u{202E}" }, String(text.prefix(200)))
            }
        }
    }
}
