import Foundation
import KujiraTraining
import XCTest

final class ArithmeticTaskTests: XCTestCase {
    func testAdditionScratchpadCarriesColumnByColumn() {
        let p = ArithmeticProblem(a: 978, b: 345, operation: .addition)
        XCTAssertEqual(p.scratchpad, "8+5+0=13\n7+4+1=12\n9+3+1=13")
        XCTAssertEqual(p.answer, "1323")
        XCTAssertEqual(p.reply, "<think>\n8+5+0=13\n7+4+1=12\n9+3+1=13\n</think>\n\n1323")
    }

    func testSubtractionScratchpadBorrows() {
        let p = ArithmeticProblem(a: 503, b: 78, operation: .subtraction)
        XCTAssertEqual(p.scratchpad, "13-8-0=5\n10-7-1=2\n5-0-1=4")
        XCTAssertEqual(p.answer, "425")
    }

    func testMultiplicationScratchpadListsPartialProducts() {
        let p = ArithmeticProblem(a: 678, b: 45, operation: .multiplication)
        XCTAssertEqual(p.scratchpad, "678*5=3390\n678*40=27120\n3390+27120=30510")
        XCTAssertEqual(p.answer, String(678 * 45))
    }

    /// Every scratchpad line is a true equation, for random problems of every operation and size.
    func testScratchpadLinesAreArithmeticallyTrue() {
        var rng = TrainingRandom(seed: 3)
        let task = ArithmeticTask(operations: ArithmeticOperation.allCases, digits: 1...5)
        for _ in 0..<300 {
            let p = task.sample(&rng)
            XCTAssertGreaterThanOrEqual(Int(p.answer) ?? -1, 0)
            for line in p.scratchpad.split(separator: "\n") {
                let sides = line.split(separator: "=")
                XCTAssertEqual(sides.count, 2, String(line))
                let rhs = Int(sides[1]) ?? -1
                let lhs: Int
                if sides[0].contains("*") {
                    let f = sides[0].split(separator: "*").compactMap { Int($0) }; lhs = f[0] * f[1]
                } else if sides[0].contains("-") {
                    let f = sides[0].split(separator: "-").compactMap { Int($0) }; lhs = f[0] - f[1] - f[2]
                } else {
                    lhs = sides[0].split(separator: "+").compactMap { Int($0) }.reduce(0, +)
                }
                XCTAssertEqual(lhs, rhs, "\(p.question): \(line)")
            }
        }
    }

    func testHeldOutSplitIsDisjointAndStable() {
        let task = ArithmeticTask(operations: [.addition], digits: 3...3)
        var rng = TrainingRandom(seed: 9)
        let training = Set((0..<2000).map { _ in task.sample(&rng).question })
        let heldOut = task.heldOutSet(count: 200)
        XCTAssertTrue(heldOut.allSatisfy(\.isHeldOut))
        XCTAssertTrue(training.isDisjoint(with: heldOut.map(\.question)))
        XCTAssertEqual(heldOut, task.heldOutSet(count: 200))
    }

    func testExactMatchChecker() {
        let p = ArithmeticProblem(a: 12, b: 34, operation: .addition)
        XCTAssertTrue(p.isCorrect("<think>\n2+4+0=6\n1+3+0=4\n</think>\n\n46<｜end▁of▁sentence｜>"))
        XCTAssertTrue(p.isCorrect("<think>\nwrong steps\n</think>\n\n46"))
        XCTAssertFalse(p.isCorrect("<think>\n</think>\n\n47"))
        XCTAssertFalse(p.isCorrect("46"), "an answer without a closed scratchpad does not count")
        XCTAssertFalse(p.isCorrect("<think>\n</think>\n\n460"))
    }

    func testTokenizerRoundTripAndFiles() throws {
        let tokenizer = CharacterTokenizer()
        let p = ArithmeticProblem(a: 905, b: 17, operation: .subtraction)
        let (ids, replyStart) = try tokenizer.example(p)
        XCTAssertEqual(ids.first, tokenizer.bosId)
        XCTAssertEqual(ids.last, tokenizer.eosId)
        XCTAssertEqual(tokenizer.decode(ids), CharacterTokenizer.beginOfSentence + CharacterTokenizer.user + "905-17" + CharacterTokenizer.assistant
                       + p.reply + CharacterTokenizer.endOfSentence)
        XCTAssertEqual(tokenizer.decode([ids[replyStart]]), "<think>")
        XCTAssertThrowsError(try tokenizer.encode("12b"))
        XCTAssertEqual(tokenizer.decode(try tokenizer.encode("What is 12+3?")), "What is 12+3?")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: try tokenizer.tokenizerJSON()) as? [String: Any])
        let model = try XCTUnwrap(json["model"] as? [String: Any])
        XCTAssertEqual(model["type"] as? String, "BPE")
        let vocab = try XCTUnwrap(model["vocab"] as? [String: Int])
        XCTAssertEqual(vocab["Ġ"], try tokenizer.encode(" ").first)
        XCTAssertEqual(vocab["Ċ"], try tokenizer.encode("\n").first)
        XCTAssertEqual((json["added_tokens"] as? [[String: Any]])?.count, CharacterTokenizer.specials.count)
        let added = try XCTUnwrap(json["added_tokens"] as? [[String: Any]])
        XCTAssertEqual(added.filter { ($0["special"] as? Bool) == false }.compactMap { $0["content"] as? String }, ["<think>", "</think>"],
                       "the think tags are not special (kept by decoders that skip special tokens)")
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: try tokenizer.tokenizerConfigJSON()) as? [String: Any])
        XCTAssertTrue((config["chat_template"] as? String)?.contains("<｜Assistant｜>") ?? false)
    }
}
