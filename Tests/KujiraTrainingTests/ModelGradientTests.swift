import KujiraFormats
import KujiraModels
import KujiraTraining
import XCTest

/// The whole DeepSeek-V3 model's backward through the inference blocks' training passes (direct q_proj and q-LoRA,
/// group-limited routing, the sequence-wise balance loss, the MTP module at shifted RoPE positions) against finite
/// differences of the total loss.
final class ModelGradientTests: XCTestCase {
    static func tinyConfig(qLoraRank: Int?, mtp: Bool) -> ModelConfig {
        var values: [String: JSONValue] = [
            "model_type": .string("deepseek_v3"), "vocab_size": .number(19), "hidden_size": .number(16), "intermediate_size": .number(24),
            "moe_intermediate_size": .number(8), "num_hidden_layers": .number(2), "first_k_dense_replace": .number(1),
            "num_attention_heads": .number(2), "kv_lora_rank": .number(8), "qk_nope_head_dim": .number(4), "qk_rope_head_dim": .number(4),
            "v_head_dim": .number(4), "n_routed_experts": .number(4), "n_shared_experts": .number(1), "num_experts_per_tok": .number(2),
            "n_group": .number(2), "topk_group": .number(1), "norm_topk_prob": .bool(true), "routed_scaling_factor": .number(2.5),
            "rms_norm_eps": .number(1e-6), "rope_theta": .number(10000), "max_position_embeddings": .number(64),
            "num_nextn_predict_layers": .number(mtp ? 1 : 0),
            "rope_scaling": .object(["type": .string("yarn"), "factor": .number(2), "original_max_position_embeddings": .number(4),
                                     "mscale": .number(1), "mscale_all_dim": .number(1), "beta_fast": .number(32), "beta_slow": .number(1)]),
        ]
        if let qLoraRank { values["q_lora_rank"] = .number(Double(qLoraRank)) }
        return ModelConfig(values: values)
    }

    func check(qLoraRank: Int?, mtp: Bool, balanceAlpha: Float) throws {
        let model = try DecoderTrainingModel(config: Self.tinyConfig(qLoraRank: qLoraRank, mtp: mtp), trainMTP: true)
        // The loss jumps where a routing decision flips (top-k, and the balance loss's counts); this seed's draw has no
        // decision within ±ε of a tie, so every entry's central difference is meaningful (kinks allowed: none).
        var rng = TrainingRandom(seed: 2)
        model.parameters.initialize(std: 0.3, rng: &rng)
        // Non-zero norms and selection bias so their gradients and the bias-for-selection path are exercised.
        for e in model.parameters.entries where e.kind != .matrix {
            try model.parameters.setValues(e.name, (0..<e.count).map { _ in Float(rng.uniform() * 0.6) + (e.kind == .norm ? 0.7 : -0.3) })
        }
        try model.refresh()
        XCTAssertEqual(model.multiTokenPrediction != nil, mtp)
        let shape = TrainingShape(batch: 2, length: 7)
        let tokens = (0..<shape.rows).map { _ in rng.below(19) }
        let targets = DecoderTrainingModel.nextTokenTargets(tokens, shape: shape)
        let settings = LossSettings(mtpWeight: 0.5, balanceAlpha: balanceAlpha)
        model.parameters.zeroGradients()
        let result = try model.forwardBackward(tokens: tokens, targets: targets, shape: shape, settings: settings)
        XCTAssertEqual(result.mtpLoss != nil, mtp)
        XCTAssertEqual(result.balanceLoss > 0, balanceAlpha > 0)
        XCTAssertEqual(result.expertLoads.count, mtp ? 2 : 1, "one load per MoE layer, the MTP block's last")
        for load in result.expertLoads { XCTAssertEqual(load.reduce(0, +), 2 * (mtp && load == result.expertLoads.last! ? shape.batch * 6 : shape.rows)) }
        let store = model.parameters
        // Snapshot first: every finite-difference pass accumulates into the store's gradients again.
        let gradients = try Dictionary(uniqueKeysWithValues: store.entries.map { ($0.name, try store.gradient($0.name)) })
        // An expert no token was routed to gets exactly zero gradient (MoE layers are 1 and, with MTP, 2: loads in that order).
        func unrouted(_ name: String) -> Bool {
            let parts = name.split(separator: ".")
            guard let at = parts.firstIndex(of: "experts"), let layer = Int(parts[2]), let expert = Int(parts[at + 1]) else { return false }
            return result.expertLoads[layer - 1][expert] == 0
        }
        for entry in store.entries where entry.trainable {
            let analytic = try XCTUnwrap(gradients[entry.name], entry.name)
            if unrouted(entry.name) {
                XCTAssertTrue(analytic.allSatisfy { $0 == 0 }, "\(entry.name): an expert without tokens has a gradient")
                continue
            }
            let original = try store.array(entry.name)
            let indices = GradientCheck.entries(of: analytic)
            try GradientCheck.assertMatches(analytic, x: original, epsilon: 2e-3, indices: indices, entry.name) { values in
                try store.setValues(entry.name, values)
                try model.refresh()
                defer { try? store.setValues(entry.name, original); try? model.refresh() }
                return try model.forwardBackward(tokens: tokens, targets: targets, shape: shape, settings: settings).loss
            }
        }
    }

    func testDirectQueryProjectionWithMTPAndBalanceLoss() throws { try check(qLoraRank: nil, mtp: true, balanceAlpha: 0.1) }

    func testLowRankQueryWithoutMTP() throws { try check(qLoraRank: 8, mtp: false, balanceAlpha: 0) }
}
