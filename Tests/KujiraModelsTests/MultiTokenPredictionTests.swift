import Foundation
import XCTest
import KujiraModels

/// The MTP module (layer `num_hidden_layers`) reproduces transformers' MTP logits.
final class MultiTokenPredictionTests: XCTestCase {
    func testMTPLogitsMatchGolden() throws {
        let dir = FixturePaths.model("deepseek-v3-tiny-mtp")
        let model = try XCTUnwrap(try ModelRegistry.load(directory: dir) as? DeepseekV3Model)
        let mtp = try XCTUnwrap(model.multiTokenPrediction)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir).appendingPathComponent("golden.json"))) as! [String: Any]
        for (index, c) in (json["cases"] as! [[String: Any]]).enumerated() {
            let tokens = (c["tokens"] as! [NSNumber]).map(\.intValue)
            let expectedMain = (c["main_logits_last"] as! [NSNumber]).map(\.floatValue)
            let expected = (c["mtp_logits"] as! [[NSNumber]]).map { $0.map(\.floatValue) }
            let hidden = try model.hiddenStates(tokens, cache: model.makeCache())
            let mainLast = model.stack.logits(fromHidden: hidden, n: tokens.count, allLogits: false)
            XCTAssertLessThanOrEqual(zip(mainLast, expectedMain).map { abs($0 - $1) }.max()!, 1e-4)
            let n = tokens.count - 1
            let output = mtp.forward(mainHidden: Array(hidden[0..<(n * model.stack.hidden)]), nextTokens: Array(tokens[1...]), cache: mtp.makeCache())
            let logits = mtp.logits(fromOutput: output, n: n)
            XCTAssertEqual(expected.count, n)
            var maxError: Float = 0
            for (i, row) in expected.enumerated() {
                for (v, e) in row.enumerated() { maxError = max(maxError, abs(logits[i * model.vocabSize + v] - e)) }
            }
            XCTAssertLessThanOrEqual(maxError, 1e-4, "case \(index)")
        }
    }

    func testModelsWithoutMTPHaveNone() throws {
        let model = try XCTUnwrap(try ModelRegistry.load(directory: FixturePaths.model("deepseek-v3-tiny")) as? DeepseekV3Model)
        XCTAssertNil(model.multiTokenPrediction)
    }
}
