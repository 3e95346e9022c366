import Foundation
import KujiraFormats
import KujiraModels
import KujiraTensor
import KujiraTraining
import XCTest

/// One training step through the inference blocks' training passes (`DecoderTrainingModel`) on the tiny llama, qwen2
/// and qwen3 models against PyTorch's loss and every gradient (transformers 5.25, scripts/make-training-goldens.py):
/// plain next-token cross-entropy and SFT-masked cross-entropy (prompt-like spans ignored).
final class DecoderGradientGoldenTests: XCTestCase {
    func testLlamaMatchesPyTorch() throws { try check("llama-tiny") }
    func testQwen2MatchesPyTorch() throws { try check("qwen2-tiny") }
    func testQwen3MatchesPyTorch() throws { try check("qwen3-tiny") }

    private func check(_ name: String) throws {
        let goldenData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("training/\(name)/golden.json")))
        let golden = try XCTUnwrap(JSONSerialization.jsonObject(with: goldenData) as? [String: Any])
        let tokens = try XCTUnwrap(golden["tokens"] as? [Int])
        let shape = TrainingShape(batch: 1, length: tokens.count)
        let model = try DecoderTrainingModel(path: Fixtures.path("models/\(name)"))
        let masked = try XCTUnwrap(golden["masked_targets"] as? [Int]).map { $0 < 0 ? -1 : $0 }
        let cases: [(targets: [Int], loss: Double, file: String)] = [
            (DecoderTrainingModel.nextTokenTargets(tokens, shape: shape), try XCTUnwrap(golden["loss"] as? Double), "grads"),
            (masked, try XCTUnwrap(golden["masked_loss"] as? Double), "masked-grads"),
        ]
        for c in cases {
            model.parameters.zeroGradients()
            let result = try model.forwardBackward(tokens: tokens, targets: c.targets, shape: shape)
            XCTAssertEqual(result.loss, c.loss, accuracy: 1e-5, "\(name) \(c.file)")
            XCTAssertEqual(result.tokens, c.targets.filter { $0 >= 0 }.count)
            let grads = try SafeTensorsStore(files: [Fixtures.path("training/\(name)/\(c.file).safetensors")], source: c.file)
            XCTAssertEqual(Set(model.parameters.entries.map(\.name)), Set(grads.tensorNames), "\(name): gradient names differ from PyTorch's")
            for tensor in grads.tensorNames {
                let expected = try grads.tensor(tensor).toFloatArray(), actual = try model.parameters.gradient(tensor)
                XCTAssertEqual(actual.count, expected.count, tensor)
                let scale = expected.map { abs($0) }.max() ?? 0
                let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertGreaterThan(scale, 0, tensor)
                XCTAssertLessThanOrEqual(worst, 1e-4 * scale, "\(name) \(c.file) \(tensor): max |Δ| \(worst) vs max |g| \(scale)")
            }
        }
    }
}
