import XCTest
@testable import KujiraTokenizer

final class StreamingDetokenizerTests: XCTestCase {
    func testStreamingEqualsDecodeAndHoldsBackSplitCharacters() throws {
        let tokenizer = try TokenizerFixtures.deepseekV3.get()
        let text = "emoji 🐳🦙 and 👨‍👩‍👧‍👦 family, 日本語のテキスト<｜end▁of▁sentence｜>"
        let ids = tokenizer.encode(text)
        var stream = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: false)
        var pieces: [String] = []
        var sawHeldBack = false
        for id in ids {
            let piece = stream.append(id)
            pieces.append(piece)
            if piece.isEmpty { sawHeldBack = true }
            XCTAssertFalse(piece.unicodeScalars.contains("\u{FFFD}"), "emitted a partial character for id \(id)")
        }
        pieces.append(stream.finish())
        XCTAssertEqual(pieces.joined(), text)
        XCTAssertTrue(sawHeldBack, "the emoji are split across byte tokens, so some step must emit nothing")
    }

    func testSkipSpecialTokens() throws {
        let tokenizer = try TokenizerFixtures.deepseekV3.get()
        var stream = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: true)
        let out = stream.append(contentsOf: tokenizer.encode("<｜begin▁of▁sentence｜>Hi<｜end▁of▁sentence｜>")) + stream.finish()
        XCTAssertEqual(out, "Hi")
    }

    func testInvalidUTF8BecomesReplacementCharacters() throws {
        let tokenizer = try TokenizerFixtures.deepseekV3.get()
        // Single-byte tokens: find the ids of raw bytes 0xE6, 0x97 (a truncated 3-byte character) and 0xFF.
        func id(ofByte byte: UInt8) throws -> Int {
            try XCTUnwrap(tokenizer.tokenToId(ByteLevel.encode([byte])))
        }
        var stream = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: false)
        XCTAssertEqual(stream.append(try id(ofByte: 0xE6)), "")
        XCTAssertEqual(stream.append(try id(ofByte: 0x97)), "")
        XCTAssertEqual(stream.finish(), "\u{FFFD}")
        XCTAssertEqual(stream.append(try id(ofByte: 0xFF)), "\u{FFFD}")
        XCTAssertEqual(stream.append(try id(ofByte: 0xE6)) + stream.append(try tokenizer.encode("a")[0]), "\u{FFFD}a")
        XCTAssertEqual(tokenizer.decode([try id(ofByte: 0xE6), try id(ofByte: 0x97)]), "\u{FFFD}")
        XCTAssertEqual(tokenizer.decode([-5, 10_000_000]), "")
    }

    func testIncompleteSuffixLength() {
        XCTAssertEqual(StreamingDetokenizer.incompleteSuffixLength([]), 0)
        XCTAssertEqual(StreamingDetokenizer.incompleteSuffixLength([0x41]), 0)
        XCTAssertEqual(StreamingDetokenizer.incompleteSuffixLength([0xF0, 0x9F]), 2)
        XCTAssertEqual(StreamingDetokenizer.incompleteSuffixLength([0xF0, 0x9F, 0x90]), 3)
        XCTAssertEqual(StreamingDetokenizer.incompleteSuffixLength([0xF0, 0x9F, 0x90, 0xB3]), 0)
        XCTAssertEqual(StreamingDetokenizer.incompleteSuffixLength([0xE0, 0x80]), 0)  // overlong: invalid now
        XCTAssertEqual(StreamingDetokenizer.incompleteSuffixLength([0x80, 0x80, 0x80, 0x80]), 0)
    }
}
