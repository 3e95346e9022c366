import KujiraFormats

/// Every parameter an architecture reads, by HF tensor name and shape — what `kujira init` creates and the
/// trainer optimises. Routed experts use deepseek-ai's one-tensor-per-expert names.
public enum ParameterLayout {
    /// How a freshly initialised parameter starts.
    public enum Initial: Sendable, Equatable {
        /// Normal(0, `initializer_range`) — linear weights and embeddings.
        case normal
        /// All ones — RMSNorm weights.
        case ones
        /// All zeros — biases, including `e_score_correction_bias`.
        case zeros
    }

    /// One parameter.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var initial: Initial
    }

    /// The parameters of the architecture named by `config.model_type`.
    public static func entries(for config: ModelConfig) throws -> [Entry] {
        switch try config.modelType {
        case "deepseek_v3", "deepseek_v2": return try deepseek(DeepseekV3Configuration(config))
        case "llama", "qwen2": return try llama(LlamaConfiguration(config), tied: config.bool("tie_word_embeddings", default: false))
        case let other:
            throw ConfigError.unsupportedModelType(path: config.path, modelType: other, supported: ModelRegistry.builders.keys.sorted())
        }
    }

    static func mlp(_ prefix: String, hidden: Int, intermediate: Int) -> [Entry] {
        [Entry(name: "\(prefix).gate_proj.weight", shape: [intermediate, hidden], initial: .normal),
         Entry(name: "\(prefix).up_proj.weight", shape: [intermediate, hidden], initial: .normal),
         Entry(name: "\(prefix).down_proj.weight", shape: [hidden, intermediate], initial: .normal)]
    }

    static func deepseekLayer(_ i: Int, _ c: DeepseekV3Configuration) -> [Entry] {
        let p = "model.layers.\(i)", h = c.hiddenSize, qHead = c.qkNopeHeadDim + c.qkRopeHeadDim
        var e = [Entry(name: "\(p).input_layernorm.weight", shape: [h], initial: .ones),
                 Entry(name: "\(p).post_attention_layernorm.weight", shape: [h], initial: .ones)]
        if let rank = c.qLoraRank {
            e += [Entry(name: "\(p).self_attn.q_a_proj.weight", shape: [rank, h], initial: .normal),
                  Entry(name: "\(p).self_attn.q_a_layernorm.weight", shape: [rank], initial: .ones),
                  Entry(name: "\(p).self_attn.q_b_proj.weight", shape: [c.heads * qHead, rank], initial: .normal)]
        } else {
            e.append(Entry(name: "\(p).self_attn.q_proj.weight", shape: [c.heads * qHead, h], initial: .normal))
        }
        e += [Entry(name: "\(p).self_attn.kv_a_proj_with_mqa.weight", shape: [c.kvLoraRank + c.qkRopeHeadDim, h], initial: .normal),
              Entry(name: "\(p).self_attn.kv_a_layernorm.weight", shape: [c.kvLoraRank], initial: .ones),
              Entry(name: "\(p).self_attn.kv_b_proj.weight", shape: [c.heads * (c.qkNopeHeadDim + c.vHeadDim), c.kvLoraRank], initial: .normal),
              Entry(name: "\(p).self_attn.o_proj.weight", shape: [h, c.heads * c.vHeadDim], initial: .normal)]
        if c.isMoELayer(i), let router = c.router {
            e.append(Entry(name: "\(p).mlp.gate.weight", shape: [router.experts, h], initial: .normal))
            if router.method == .noauxTC {
                e.append(Entry(name: "\(p).mlp.gate.e_score_correction_bias", shape: [router.experts], initial: .zeros))
            }
            for expert in 0..<router.experts { e += mlp("\(p).mlp.experts.\(expert)", hidden: h, intermediate: c.moeIntermediateSize) }
            if c.sharedExperts > 0 { e += mlp("\(p).mlp.shared_experts", hidden: h, intermediate: c.moeIntermediateSize * c.sharedExperts) }
        } else {
            e += mlp("\(p).mlp", hidden: h, intermediate: c.intermediateSize)
        }
        return e
    }

    static func deepseek(_ c: DeepseekV3Configuration) -> [Entry] {
        var e = [Entry(name: "model.embed_tokens.weight", shape: [c.vocabSize, c.hiddenSize], initial: .normal)]
        for i in 0..<c.layers { e += deepseekLayer(i, c) }
        e += [Entry(name: "model.norm.weight", shape: [c.hiddenSize], initial: .ones),
              Entry(name: "lm_head.weight", shape: [c.vocabSize, c.hiddenSize], initial: .normal)]
        if c.nextTokenPredictLayers > 0 {
            // The MTP module: layer num_hidden_layers, sharing embedding and head with the main model.
            let p = "model.layers.\(c.layers)", h = c.hiddenSize
            e += [Entry(name: "\(p).enorm.weight", shape: [h], initial: .ones),
                  Entry(name: "\(p).hnorm.weight", shape: [h], initial: .ones),
                  Entry(name: "\(p).eh_proj.weight", shape: [h, 2 * h], initial: .normal),
                  Entry(name: "\(p).shared_head.norm.weight", shape: [h], initial: .ones)]
            e += deepseekLayer(c.layers, c)
        }
        return e
    }

    static func llama(_ c: LlamaConfiguration, tied: Bool) -> [Entry] {
        let h = c.hiddenSize
        var e = [Entry(name: "model.embed_tokens.weight", shape: [c.vocabSize, h], initial: .normal)]
        for i in 0..<c.layers {
            let p = "model.layers.\(i)"
            e += [Entry(name: "\(p).input_layernorm.weight", shape: [h], initial: .ones),
                  Entry(name: "\(p).post_attention_layernorm.weight", shape: [h], initial: .ones),
                  Entry(name: "\(p).self_attn.q_proj.weight", shape: [c.heads * c.headDim, h], initial: .normal),
                  Entry(name: "\(p).self_attn.k_proj.weight", shape: [c.kvHeads * c.headDim, h], initial: .normal),
                  Entry(name: "\(p).self_attn.v_proj.weight", shape: [c.kvHeads * c.headDim, h], initial: .normal),
                  Entry(name: "\(p).self_attn.o_proj.weight", shape: [h, c.heads * c.headDim], initial: .normal)]
            if c.attentionBias {
                e += [Entry(name: "\(p).self_attn.q_proj.bias", shape: [c.heads * c.headDim], initial: .zeros),
                      Entry(name: "\(p).self_attn.k_proj.bias", shape: [c.kvHeads * c.headDim], initial: .zeros),
                      Entry(name: "\(p).self_attn.v_proj.bias", shape: [c.kvHeads * c.headDim], initial: .zeros)]
            }
            e += mlp("\(p).mlp", hidden: h, intermediate: c.intermediateSize)
        }
        e.append(Entry(name: "model.norm.weight", shape: [h], initial: .ones))
        if !tied { e.append(Entry(name: "lm_head.weight", shape: [c.vocabSize, h], initial: .normal)) }
        return e
    }
}

extension ModelSummary {
    /// What a config implies without loading weights: parameter counts from the architecture's layout (the MTP
    /// module counts toward the total, not the active set), and the KV cache values per token per layer.
    public init(config: ModelConfig) throws {
        let entries = try ParameterLayout.entries(for: config)
        let total = entries.reduce(0) { $0 + $1.shape.reduce(1, *) }
        var inactive = 0
        var kvValues = 0
        var layers = 0
        var groupSize = 32
        switch try config.modelType {
        case "deepseek_v3", "deepseek_v2":
            let c = try DeepseekV3Configuration(config)
            layers = c.layers
            kvValues = c.kvLoraRank + c.qkRopeHeadDim
            groupSize = c.cacheGroupSize
            let perExpert = 3 * c.hiddenSize * c.moeIntermediateSize
            if let router = c.router {
                let moeLayers = (0..<c.layers).filter(c.isMoELayer).count
                inactive = moeLayers * (router.experts - router.topK) * perExpert
            }
            let mtpPrefix = "model.layers.\(c.layers)."
            inactive += entries.filter { $0.name.hasPrefix(mtpPrefix) }.reduce(0) { $0 + $1.shape.reduce(1, *) }
        default:
            let c = try LlamaConfiguration(config)
            layers = c.layers
            kvValues = 2 * c.kvHeads * c.headDim
            groupSize = KVCachePrecision.groupSize(segments: [c.headDim])
        }
        self.init(architecture: try config.modelType, totalParameters: total, activeParameters: total - inactive, kvValuesPerTokenPerLayer: kvValues, layers: layers,
                  kvCacheGroupSize: groupSize)
    }
}
