import Foundation
import KujiraModels
import KujiraTraining
import XCTest

/// The MTP module's training forward pass (`MultiTokenPrediction+Backward`) against transformers' `MtpModel` logits
/// (models/deepseek-v3-tiny-mtp).
final class MTPGoldenTests: XCTestCase {
    func testMainAndMTPLogitsMatchTransformers() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("models/deepseek-v3-tiny-mtp/golden.json")))
        let golden = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try XCTUnwrap(golden["cases"] as? [[String: Any]])
        let model = try DecoderTrainingModel(path: Fixtures.path("models/deepseek-v3-tiny-mtp"), trainMTP: true)
        XCTAssertNotNil(model.multiTokenPrediction)
        let vocab = model.vocabSize
        for c in cases {
            let tokens = try XCTUnwrap(c["tokens"] as? [Int])
            let expectedLast = try XCTUnwrap(c["main_logits_last"] as? [Double])
            let expectedMTP = try XCTUnwrap(c["mtp_logits"] as? [[Double]])
            let shape = TrainingShape(batch: 1, length: tokens.count)
            let result = try model.forwardBackward(tokens: tokens, targets: DecoderTrainingModel.nextTokenTargets(tokens, shape: shape), shape: shape,
                                                   settings: LossSettings(mtpWeight: 0.3, keepLogits: true))
            let logits = try XCTUnwrap(result.logits), mtp = try XCTUnwrap(result.mtpLogits)
            let last = logits[((tokens.count - 1) * vocab)...]
            for (a, e) in zip(last, expectedLast) { XCTAssertEqual(Double(a), e, accuracy: 1e-4) }
            XCTAssertEqual(expectedMTP.count, tokens.count - 1)
            XCTAssertEqual(mtp.count, (tokens.count - 1) * vocab)
            var worst = 0.0
            for (i, row) in expectedMTP.enumerated() {
                for (j, e) in row.enumerated() { worst = max(worst, abs(Double(mtp[i * vocab + j]) - e)) }
            }
            XCTAssertLessThan(worst, 1e-4, "MTP logits of the \(tokens.count)-token case")
        }
    }
}
