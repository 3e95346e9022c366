import Foundation
import XCTest
import KujiraFormats
@testable import KujiraTokenizer

/// A tokenizer written as GGUF metadata and read back by `GGUFVocabularyLoader` tokenizes like the tokenizer.json.
final class GGUFTokenizerMetadataTests: XCTestCase {
    func roundTrip(directory: String, vocabSize: Int) throws -> (Tokenizer, Tokenizer, GGUFFile) {
        let metadata = try XCTUnwrap(try GGUFTokenizerMetadata.make(directory: directory, vocabSize: vocabSize))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-tok-gguf-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("tokenizer.gguf").path
        let writer = try GGUFWriter(path: path, metadata: [("general.architecture", .string("llama"))] + metadata, tensors: [])
        try writer.finish()
        return (try Tokenizer.load(path: directory), try Tokenizer.load(path: path), try GGUFFile(path: path))
    }

    static let texts = [
        "Hello, world! 123+4567=4690\n\n  indented\ttab", "<｜User｜>What is 12+34?<｜Assistant｜><think>\n46</think>",
        "日本語のテキスト、中文字符和English mixed", "emoji 🦙🚀 and café / cafe\u{301}", "'s 're I'VE don't  ",
    ]

    func testDeepSeekV3TokenizerRoundTrips() throws {
        let (json, gguf, file) = try roundTrip(directory: TokenizerFixtures.path("tokenizers/deepseek-v3"), vocabSize: 129_280)
        XCTAssertEqual(file.string("tokenizer.ggml.pre"), "deepseek-v3")
        XCTAssertEqual(file.strings("tokenizer.ggml.tokens")?.count, 129_280)
        XCTAssertEqual(file.strings("tokenizer.ggml.tokens")?.last, "[PAD129279]")
        for text in Self.texts {
            XCTAssertEqual(gguf.encode(text, addSpecialTokens: true), json.encode(text, addSpecialTokens: true), text)
            XCTAssertEqual(gguf.encode(text), json.encode(text), text)
        }
        XCTAssertEqual(gguf.eosTokenIds, json.eosTokenIds)
        XCTAssertEqual(gguf.chatTemplate, json.chatTemplate)
    }

    func testEmbeddedModelTokenizerRoundTrips() throws {
        let directory = TokenizerFixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models/kujira-arith").path
        let (json, gguf, file) = try roundTrip(directory: directory, vocabSize: 32)
        XCTAssertEqual(file.string("tokenizer.ggml.pre"), "gpt-2")
        XCTAssertEqual(file.int("tokenizer.ggml.padding_token_id"), json.tokenToId("<｜▁pad▁｜>"))
        for text in Self.texts + ["<｜User｜>123+45=<｜Assistant｜><think>\n"] {
            XCTAssertEqual(gguf.encode(text, addSpecialTokens: true), json.encode(text, addSpecialTokens: true), text)
        }
        // <think> is added but not special: a user-defined token, still matched in text.
        let thinkID = try XCTUnwrap(json.tokenToId("<think>"))
        XCTAssertEqual(file.ints("tokenizer.ggml.token_type")?[thinkID], 4)
        XCTAssertFalse(gguf.isSpecial(thinkID))
    }

    func testTooSmallVocabularyIsRefused() throws {
        XCTAssertThrowsError(try GGUFTokenizerMetadata.make(directory: TokenizerFixtures.path("tokenizers/deepseek-v3"), vocabSize: 1000)) {
            XCTAssertTrue("\($0)".contains("vocab_size is 1000"), "\($0)")
        }
        XCTAssertNil(try GGUFTokenizerMetadata.make(directory: NSTemporaryDirectory(), vocabSize: 10))
    }
}
