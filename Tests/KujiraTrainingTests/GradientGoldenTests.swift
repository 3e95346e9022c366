import Foundation
import KujiraFormats
import KujiraTraining
import XCTest

/// One training step on models/deepseek-v3-tiny against PyTorch's loss and gradients (HF transformers 5.24).
final class GradientGoldenTests: XCTestCase {
    func testLossAndEveryGradientMatchPyTorch() throws {
        let goldenData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("training/deepseek-v3-tiny/golden.json")))
        let golden = try XCTUnwrap(JSONSerialization.jsonObject(with: goldenData) as? [String: Any])
        let tokens = try XCTUnwrap(golden["tokens"] as? [Int])
        let expectedLoss = try XCTUnwrap(golden["loss"] as? Double)
        let model = try DeepseekTrainingModel(directory: Fixtures.path("models/deepseek-v3-tiny"))
        model.parameters.zeroGradients()
        let result = try model.forwardBackward(tokens: tokens, batch: 1, length: tokens.count)
        XCTAssertEqual(result.mainLoss, expectedLoss, accuracy: 1e-5)
        XCTAssertEqual(result.loss, expectedLoss, accuracy: 1e-5)

        let goldenGrads = try SafeTensorsStore(files: [Fixtures.path("training/deepseek-v3-tiny/grads.safetensors")], source: "grads")
        // Compare what `train-step --dump-grads` writes: the gradients round-tripped through the safetensors writer.
        let dumped = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-grads-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: dumped) }
        try SafeTensorsWriter.write(model.parameters.tensors(gradients: true), to: dumped)
        let written = try SafeTensorsStore(files: [dumped], source: dumped)
        XCTAssertEqual(written.tensorNames, goldenGrads.tensorNames)
        let grads = goldenGrads
        let trainable = model.parameters.entries.filter(\.trainable).map(\.name)
        XCTAssertEqual(Set(trainable), Set(grads.tensorNames), "gradient tensor names differ from PyTorch's")
        for name in grads.tensorNames {
            let expected = try grads.tensor(name).toFloatArray()
            let actual = try written.tensor(name).toFloatArray()
            XCTAssertEqual(actual, try model.parameters.gradient(name), name)
            GradientCheck.assertClose(actual, to: expected, name)
        }
        XCTAssertFalse(model.parameters.entries.contains { $0.name.hasSuffix("e_score_correction_bias") && $0.trainable })
    }
}
