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

    /// DeepSeek-V3 (MLA with q-LoRA and YaRN, DeepSeekMoE with group-limited sigmoid routing and a selection bias)
    /// through MLA's and MoE's training passes, against the golden the from-scratch trainer is checked with. transformers 5
    /// stacks routed experts (`experts.gate_up_proj` (E, 2I, H), `experts.down_proj` (E, H, I)); the blocks file them per expert.
    func testDeepseekV3MatchesPyTorch() throws {
        let goldenData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("training/deepseek-v3-tiny/golden.json")))
        let golden = try XCTUnwrap(JSONSerialization.jsonObject(with: goldenData) as? [String: Any])
        let tokens = try XCTUnwrap(golden["tokens"] as? [Int]), shape = TrainingShape(batch: 1, length: tokens.count)
        let model = try DecoderTrainingModel(path: Fixtures.path("models/deepseek-v3-tiny"))
        model.parameters.zeroGradients()
        let result = try model.forwardBackward(tokens: tokens, targets: DecoderTrainingModel.nextTokenTargets(tokens, shape: shape), shape: shape)
        XCTAssertEqual(result.loss, try XCTUnwrap(golden["loss"] as? Double), accuracy: 1e-5)
        let grads = try SafeTensorsStore(files: [Fixtures.path("training/deepseek-v3-tiny/grads.safetensors")], source: "grads")
        var compared = 0
        for tensor in grads.tensorNames {
            let expected = try grads.tensor(tensor).toFloatArray(), shapeOf = try grads.tensor(tensor).shape
            var actual: [Float]
            if tensor.hasSuffix("experts.gate_up_proj") || tensor.hasSuffix("experts.down_proj") {
                let prefix = String(tensor.prefix(upTo: tensor.range(of: "experts.")!.upperBound))
                actual = []
                for e in 0..<shapeOf[0] {
                    let names = tensor.hasSuffix("gate_up_proj") ? ["gate_proj", "up_proj"] : ["down_proj"]
                    for projection in names { actual += try model.parameters.gradient("\(prefix)\(e).\(projection).weight") }
                }
            } else {
                actual = try model.parameters.gradient(tensor)
            }
            GradientCheck.assertClose(actual, to: expected, "deepseek-v3-tiny \(tensor)")
            compared += 1
        }
        XCTAssertEqual(compared, 45)
        let bias = try model.parameters.entry("model.layers.1.mlp.gate.e_score_correction_bias")
        XCTAssertNil(model.parameters.gradientBuffer(bias.name), "the selection bias is moved by the balancing rule, not gradients")
    }

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
                GradientCheck.assertClose(actual, to: expected, "\(name) \(c.file) \(tensor)")
            }
        }
    }
}

extension DecoderGradientGoldenTests {
    /// Qwen3-MoE (softmax routing, normalised top-k, per-head q/k norms) has no PyTorch golden here: its router, one
    /// expert and the attention against central finite differences of the same model's loss.
    func testQwen3MoEMatchesFiniteDifferences() throws {
        let model = try DecoderTrainingModel(path: Fixtures.path("models/qwen3-moe-tiny"))
        let tokens = (0..<10).map { ($0 * 53 + 7) % 256 }, shape = TrainingShape(batch: 1, length: 10)
        let targets = DecoderTrainingModel.nextTokenTargets(tokens, shape: shape)
        model.parameters.zeroGradients()
        try model.forwardBackward(tokens: tokens, targets: targets, shape: shape)
        for name in ["model.layers.0.mlp.gate.weight", "model.layers.0.mlp.experts.1.down_proj.weight", "model.layers.1.self_attn.k_norm.weight"] {
            let analytic = try model.parameters.gradient(name), original = try model.parameters.array(name)
            defer { try? model.parameters.setValues(name, original); try? model.refresh() }
            try GradientCheck.assertMatches(analytic, x: original, epsilon: 3e-3, indices: GradientCheck.entries(of: analytic), maximumKinks: 0.15, name) { values in
                try model.parameters.setValues(name, values)
                try model.refresh()
                return try model.loss(tokens: tokens, targets: targets, shape: shape).loss
            }
        }
    }
}
