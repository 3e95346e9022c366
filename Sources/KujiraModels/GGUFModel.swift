import Foundation
import KujiraFormats
import KujiraTensor

/// Presents a GGUF model (llama.cpp's `llama`, `qwen2`, `deepseek2` layouts) as the Hugging Face config and tensor
/// names the architectures read, so one model definition serves both file formats.
public enum GGUFModelAdapter {
    /// The HF-style config and a weight store with HF tensor names over the GGUF file at `path`.
    public static func open(path: String) throws -> (ModelConfig, any WeightStore) {
        let file = try GGUFFile(path: path)
        let store = GGUFWeightStore(file: file)
        guard let architecture = file.string("general.architecture") else {
            throw GGUFError.invalidMetadata(path: path, key: "general.architecture", reason: "missing")
        }
        let config = try makeConfig(file: file, architecture: architecture)
        return (config, RenamedWeightStore(base: store, names: tensorNames(file: file)))
    }

    /// GGUF name → HF name of the model-wide tensors.
    public static let globalTensorNames = ["token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                                           "output.weight": "lm_head.weight", "rope_freqs.weight": RotaryEmbedding.frequencyFactorsTensor]
    /// GGUF name → HF name of the tensors of one layer (`blk.<i>.` ↔ `model.layers.<i>.`). Routed experts are stacked
    /// per projection (E, rows, cols) under the HF name without `.weight`.
    public static let layerTensorNames = [
        "attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
        "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
        "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
        "attn_q.bias": "self_attn.q_proj.bias", "attn_k.bias": "self_attn.k_proj.bias", "attn_v.bias": "self_attn.v_proj.bias",
        "attn_q_a.weight": "self_attn.q_a_proj.weight", "attn_q_a_norm.weight": "self_attn.q_a_layernorm.weight",
        "attn_q_b.weight": "self_attn.q_b_proj.weight", "attn_kv_a_mqa.weight": "self_attn.kv_a_proj_with_mqa.weight",
        "attn_kv_a_norm.weight": "self_attn.kv_a_layernorm.weight", "attn_kv_b.weight": "self_attn.kv_b_proj.weight",
        "attn_k_b.weight": "self_attn.k_b_proj.weight", "attn_v_b.weight": "self_attn.v_b_proj.weight",
        "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight",
        "ffn_gate_inp.weight": "mlp.gate.weight", "exp_probs_b.bias": "mlp.gate.e_score_correction_bias",
        "ffn_gate_exps.weight": "mlp.experts.gate_proj", "ffn_up_exps.weight": "mlp.experts.up_proj",
        "ffn_down_exps.weight": "mlp.experts.down_proj",
        "ffn_gate_shexp.weight": "mlp.shared_experts.gate_proj.weight", "ffn_up_shexp.weight": "mlp.shared_experts.up_proj.weight",
        "ffn_down_shexp.weight": "mlp.shared_experts.down_proj.weight",
    ]
    private static let layerTensorNamesFromHF = Dictionary(uniqueKeysWithValues: layerTensorNames.map { ($1, $0) })
    private static let globalTensorNamesFromHF = Dictionary(uniqueKeysWithValues: globalTensorNames.map { ($1, $0) })

    /// The GGUF name of an HF tensor name (the inverse of the tables above), or nil when GGUF has no such tensor.
    public static func ggufName(ofHF name: String) -> String? {
        if let global = globalTensorNamesFromHF[name] { return global }
        let parts = name.split(separator: ".", maxSplits: 3)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]),
              let suffix = layerTensorNamesFromHF[String(parts[3])] else { return nil }
        return "blk.\(layer).\(suffix)"
    }

    /// HF name → GGUF name for every tensor the adapter understands (others stay unreachable).
    static func tensorNames(file: GGUFFile) -> [String: String] {
        var names: [String: String] = [:]
        for info in file.tensorInfos {
            if let hf = globalTensorNames[info.name] {
                names[hf] = info.name
            } else if info.name.hasPrefix("blk.") {
                let parts = info.name.split(separator: ".", maxSplits: 2)
                if parts.count == 3, let layer = Int(parts[1]), let hf = layerTensorNames[String(parts[2])] {
                    names["model.layers.\(layer).\(hf)"] = info.name
                }
            }
        }
        return names
    }

    static func makeConfig(file: GGUFFile, architecture arch: String) throws -> ModelConfig {
        func required(_ key: String) throws -> Int {
            guard let v = file.int("\(arch).\(key)") else { throw GGUFError.invalidMetadata(path: file.path, key: "\(arch).\(key)", reason: "missing") }
            return v
        }
        func number(_ v: Int?) -> JSONValue { v.map { .number(Double($0)) } ?? .null }
        func number(_ v: Float?) -> JSONValue { v.map { .number(Double($0)) } ?? .null }
        let heads = try required("attention.head_count")
        var values: [String: JSONValue] = [
            "hidden_size": .number(Double(try required("embedding_length"))),
            "num_hidden_layers": .number(Double(try required("block_count"))),
            "num_attention_heads": .number(Double(heads)),
            "max_position_embeddings": number(file.int("\(arch).context_length")),
            "rms_norm_eps": number(file.float("\(arch).attention.layer_norm_rms_epsilon")),
            "vocab_size": number(file.int("\(arch).vocab_size") ?? file.strings("tokenizer.ggml.tokens")?.count),
            "intermediate_size": number(file.int("\(arch).feed_forward_length")),
            "bos_token_id": number(file.int("tokenizer.ggml.bos_token_id")),
            "eos_token_id": number(file.int("tokenizer.ggml.eos_token_id")),
            "tie_word_embeddings": .bool(!file.tensorInfos.contains { $0.name == "output.weight" }),
        ]
        var rope: [String: JSONValue] = ["rope_theta": .number(Double(file.float("\(arch).rope.freq_base") ?? 10000))]
        let scalingType = file.string("\(arch).rope.scaling.type") ?? "none"
        if scalingType == "yarn" || scalingType == "linear" {
            rope["rope_type"] = .string(scalingType)
            rope["factor"] = number(file.float("\(arch).rope.scaling.factor"))
            rope["original_max_position_embeddings"] = number(file.int("\(arch).rope.scaling.original_context_length"))
            rope["beta_fast"] = number(file.float("\(arch).rope.scaling.yarn_beta_fast"))
            rope["beta_slow"] = number(file.float("\(arch).rope.scaling.yarn_beta_slow"))
            // llama.cpp's yarn_log_multiplier is 0.1 · mscale_all_dim (the softmax-scale mscale); the cos/sin factor is 1.
            if let logMultiplier = file.float("\(arch).rope.scaling.yarn_log_multiplier"), logMultiplier > 0 {
                rope["mscale"] = .number(Double(logMultiplier) / 0.1)
                rope["mscale_all_dim"] = .number(Double(logMultiplier) / 0.1)
            }
        } else if scalingType != "none" {
            throw GGUFError.invalidMetadata(path: file.path, key: "\(arch).rope.scaling.type", reason: "'\(scalingType)' is not supported")
        }
        values["rope_parameters"] = .object(rope)
        switch arch {
        case "llama", "qwen2":
            values["model_type"] = .string(arch)
            values["num_key_value_heads"] = number(file.int("\(arch).attention.head_count_kv") ?? heads)
            values["head_dim"] = number(file.int("\(arch).attention.key_length"))
            // llama.cpp's converter permutes Llama's q/k rows so that rotating interleaved pairs is exact.
            values["rope_interleave"] = .bool(arch == "llama")
        case "deepseek2":
            try deepseekValues(file: file, required: required, into: &values)
        default:
            throw GGUFError.invalidMetadata(path: file.path, key: "general.architecture",
                                            reason: "'\(arch)' is not supported (supported: llama, qwen2, deepseek2)")
        }
        return ModelConfig(values: values.filter { $0.value != .null }, path: file.path)
    }

    private static func deepseekValues(file: GGUFFile, required: (String) throws -> Int, into values: inout [String: JSONValue]) throws {
        let arch = "deepseek2"
        let ropeDim = try required("rope.dimension_count")
        let keyLength = try file.int("\(arch).attention.key_length_mla") ?? required("attention.key_length")
        let valueLength = try file.int("\(arch).attention.value_length_mla") ?? required("attention.value_length")
        values["qk_rope_head_dim"] = .number(Double(ropeDim))
        values["qk_nope_head_dim"] = .number(Double(keyLength - ropeDim))
        values["v_head_dim"] = .number(Double(valueLength))
        values["kv_lora_rank"] = .number(Double(try required("attention.kv_lora_rank")))
        if let q = file.int("\(arch).attention.q_lora_rank"), q > 0 { values["q_lora_rank"] = .number(Double(q)) }
        values["first_k_dense_replace"] = .number(Double(file.int("\(arch).leading_dense_block_count") ?? 0))
        if let experts = file.int("\(arch).expert_count"), experts > 0 {
            let sigmoid = file.int("\(arch).expert_gating_func") == 2
            let hasBias = file.tensorInfos.contains { $0.name.hasSuffix("exp_probs_b.bias") }
            let groups = file.int("\(arch).expert_group_count") ?? 1
            values["model_type"] = .string("deepseek_v3")  // llama.cpp normalises, then scales, like V3
            values["n_routed_experts"] = .number(Double(experts))
            values["num_experts_per_tok"] = .number(Double(try required("expert_used_count")))
            values["moe_intermediate_size"] = .number(Double(try required("expert_feed_forward_length")))
            values["n_shared_experts"] = .number(Double(file.int("\(arch).expert_shared_count") ?? 0))
            values["n_group"] = .number(Double(groups))
            values["topk_group"] = .number(Double(file.int("\(arch).expert_group_used_count") ?? 1))
            values["scoring_func"] = .string(sigmoid ? "sigmoid" : "softmax")
            values["topk_method"] = .string(hasBias ? "noaux_tc" : groups > 1 ? "group_limited_greedy" : "greedy")
            values["norm_topk_prob"] = .bool(file.bool("\(arch).expert_weights_norm") ?? false)
            values["routed_scaling_factor"] = .number(Double(file.float("\(arch).expert_weights_scale") ?? 1))
        } else {
            values["model_type"] = .string("deepseek_v3")
        }
    }
}

/// A weight store that answers to other names (HF names over a GGUF file).
struct RenamedWeightStore: WeightStore {
    let base: GGUFWeightStore
    /// Exposed name → stored name.
    let names: [String: String]

    var source: String { base.source }
    var tensorNames: [String] { names.keys.sorted() }
    func contains(_ name: String) -> Bool { names[name] != nil }

    func tensor(_ name: String) throws -> TensorData {
        guard let stored = names[name] else { throw WeightStoreError.missingTensor(name: name, source: base.source) }
        return try base.tensor(stored)
    }

    func file(of name: String) -> String? { contains(name) ? base.source : nil }
}
