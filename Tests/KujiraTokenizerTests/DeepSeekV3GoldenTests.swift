import Foundation
import XCTest
@testable import KujiraTokenizer

/// DeepSeek-V3's tokenizer.json against ids and decodings made by HF `tokenizers`.
final class DeepSeekV3GoldenTests: XCTestCase {
    struct Case {
        let text: String
        let ids: [Int]
        let idsWithSpecial: [Int]
        let decoded: String
    }

    func loadCases() throws -> [Case] {
        let golden = try TokenizerFixtures.json("tokenizers/deepseek-v3/golden.json")
        let cases = try XCTUnwrap(golden["cases"] as? [[String: Any]])
        return try cases.map {
            Case(text: try XCTUnwrap($0["text"] as? String), ids: try XCTUnwrap($0["ids"] as? [Int]),
                 idsWithSpecial: try XCTUnwrap($0["ids_with_special"] as? [Int]),
                 decoded: try XCTUnwrap($0["decoded"] as? String))
        }
    }

    func testEveryGoldenCase() throws {
        let tokenizer = try TokenizerFixtures.deepseekV3.get()
        let cases = try loadCases()
        XCTAssertEqual(cases.count, 52)
        for c in cases {
            XCTAssertEqual(tokenizer.encode(c.text, addSpecialTokens: false), c.ids, "ids of \(c.text.debugDescription)")
            XCTAssertEqual(tokenizer.encode(c.text, addSpecialTokens: true), c.idsWithSpecial,
                           "ids_with_special of \(c.text.debugDescription)")
            XCTAssertEqual(tokenizer.decode(c.ids, skipSpecialTokens: false), c.decoded,
                           "decoded of \(c.text.debugDescription)")
        }
    }

    func testRoundTripOfEveryText() throws {
        let tokenizer = try TokenizerFixtures.deepseekV3.get()
        for c in try loadCases() {
            XCTAssertEqual(tokenizer.decode(tokenizer.encode(c.text)), c.text)
        }
    }

    func testConcurrentEncodesAgree() throws {
        let tokenizer = try TokenizerFixtures.deepseekV3.get()
        let cases = try loadCases()
        let agreed = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: cases.count) { index in
            if tokenizer.encode(cases[index].text) == cases[index].ids { agreed.increment() }
        }
        XCTAssertEqual(agreed.value, cases.count)
    }

    func testMetadata() throws {
        let tokenizer = try TokenizerFixtures.deepseekV3.get()
        XCTAssertEqual(tokenizer.bosTokenId, 0)
        XCTAssertEqual(tokenizer.eosTokenIds, [1])
        XCTAssertEqual(tokenizer.vocabSize, 128_815)
        XCTAssertEqual(tokenizer.tokenToId("<think>"), 128_798)
        XCTAssertEqual(tokenizer.idToToken(128_798), "<think>")
        XCTAssertEqual(tokenizer.idToToken(-1), nil)
        XCTAssertTrue(tokenizer.isSpecial(1))
        XCTAssertFalse(tokenizer.isSpecial(128_798))
        XCTAssertTrue(try XCTUnwrap(tokenizer.chatTemplate).contains("<｜Assistant｜>"))
    }

    func testSkipSpecialTokensDropsEOSButKeepsThink() throws {
        let tokenizer = try TokenizerFixtures.deepseekV3.get()
        let ids = tokenizer.encode("<think>a</think><｜end▁of▁sentence｜>")
        XCTAssertEqual(ids.last, 1)
        XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: true), "<think>a</think>")
        XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: false), "<think>a</think><｜end▁of▁sentence｜>")
    }
}

/// A counter shared by concurrent test workers.
final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
