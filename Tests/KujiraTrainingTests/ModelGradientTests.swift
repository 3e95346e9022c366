import KujiraFormats
import KujiraTraining
import XCTest

/// The whole model's backward (direct q_proj, group-limited routing, balance loss, MTP) against finite differences.
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
        let model = try DeepseekTrainingModel(config: Self.tinyConfig(qLoraRank: qLoraRank, mtp: mtp))
        var rng = TrainingRandom(seed: 42)
        model.parameters.initialize(std: 0.3, rng: &rng)
        // Non-zero norms and selection bias so their gradients and the bias-for-selection path are exercised.
        for e in model.parameters.entries where e.kind != .matrix {
            try model.parameters.setValues(e.name, (0..<e.count).map { _ in Float(rng.uniform() * 0.6) + (e.kind == .norm ? 0.7 : -0.3) })
        }
        let batch = 2, length = 7
        let tokens = (0..<(batch * length)).map { _ in rng.below(19) }
        let settings = LossSettings(mtpWeight: 0.5, balanceAlpha: balanceAlpha)
        model.parameters.zeroGradients()
        _ = try model.forwardBackward(tokens: tokens, batch: batch, length: length, settings: settings)
        let store = model.parameters
        // Snapshot first: every finite-difference pass accumulates into the store's gradients again.
        let gradients = try Dictionary(uniqueKeysWithValues: store.entries.map { ($0.name, try store.gradient($0.name)) })
        for entry in store.entries where entry.trainable {
            let analytic = try XCTUnwrap(gradients[entry.name], entry.name)
            let original = try store.array(entry.name)
            let indices = GradientCheck.entries(of: analytic)
            try GradientCheck.assertMatches(analytic, x: original, epsilon: 2e-3, indices: indices, entry.name) { values in
                try store.setValues(entry.name, values)
                store.refreshTransposes()
                defer { try? store.setValues(entry.name, original); store.refreshTransposes() }
                return try model.forwardBackward(tokens: tokens, batch: batch, length: length, settings: settings).loss
            }
        }
    }

    func testDirectQueryProjectionWithMTPAndBalanceLoss() throws { try check(qLoraRank: nil, mtp: true, balanceAlpha: 0.1) }

    func testLowRankQueryWithoutMTP() throws { try check(qLoraRank: 8, mtp: false, balanceAlpha: 0) }
}
