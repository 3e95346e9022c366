import KujiraFormats
import KujiraTensor

/// DeepSeek-V3.2 (`deepseek_v32`): DeepSeek-V3 plus DeepSeek Sparse Attention — in every layer a lightning indexer
/// (`self_attn.indexer.*`) scores the past tokens and each query attends only to the `index_topk` best. The indexer's
/// keys are a second per-token cache stream beside MLA's latent. Everything else (MLA, DeepSeekMoE, MTP) is V3's.
public struct DeepseekV32Configuration: ModelArchitecture {
    public static let modelTypes = ["deepseek_v32"]

    public let config: ModelConfig
    /// The DeepSeek-V3 part of the config.
    public let base: DeepseekV3Configuration
    public var indexHeads: Int, indexHeadDim: Int, indexTopK: Int

    public init(_ config: ModelConfig) throws {
        self.config = config
        base = try DeepseekV3Configuration(config)
        indexHeads = try config.int("index_n_heads", default: 64)
        indexHeadDim = try config.int("index_head_dim", default: 128)
        indexTopK = try config.int("index_topk", default: 2048)
        for (key, value) in [("index_n_heads", indexHeads), ("index_head_dim", indexHeadDim), ("index_topk", indexTopK)] where value <= 0 {
            throw ConfigError.invalidValue(path: config.path, key: key, detail: "must be positive, got \(value)")
        }
        guard base.qLoraRank != nil else {
            throw ConfigError.missingKey(path: config.path, key: "q_lora_rank")  // the indexer's queries come from the q-LoRA residual
        }
        guard base.qkRopeHeadDim <= indexHeadDim else {
            throw ConfigError.invalidValue(path: config.path, key: "index_head_dim",
                                           detail: "\(indexHeadDim) is smaller than qk_rope_head_dim \(base.qkRopeHeadDim)")
        }
        if config.has("mlp_layer_types") {
            let types = try config.stringList("mlp_layer_types")
            guard types.count == base.layers else {
                throw ConfigError.invalidValue(path: config.path, key: "mlp_layer_types", detail: "has \(types.count) entries for \(base.layers) layers")
            }
            for (i, type) in types.enumerated() where (type == "sparse") != base.isMoELayer(i) {
                throw ConfigError.invalidValue(path: config.path, key: "mlp_layer_types",
                                               detail: "layer \(i) is '\(type)' but first_k_dense_replace \(base.firstKDenseReplace) says otherwise")
            }
        }
    }

    private func indexerParameters(_ i: Int) -> [ParameterLayout.Entry] {
        LightningIndexer.parameters("model.layers.\(i).self_attn.indexer", hidden: base.hiddenSize, qLoraRank: base.qLoraRank!,
                                    heads: indexHeads, headDim: indexHeadDim)
    }

    public var parameters: [ParameterLayout.Entry] {
        var e = base.parameters
        for i in 0..<base.layers { e += indexerParameters(i) }
        if base.nextTokenPredictLayers > 0 { e += indexerParameters(base.layers) }
        return e
    }

    public var inactiveParameters: Int {
        base.inactiveParameters + (base.nextTokenPredictLayers > 0 ? indexerParameters(base.layers).reduce(0) { $0 + $1.count } : 0)
    }

    public var cacheLayout: [[CacheStreamSpec]] {
        Array(repeating: [MultiHeadLatentAttention.cacheStream(kvLoraRank: base.kvLoraRank, ropeDim: base.qkRopeHeadDim),
                          LightningIndexer.cacheStream(headDim: indexHeadDim)], count: base.layers)
    }

    public func build(weights: any WeightStore, options: RunOptions) throws -> any LanguageModel {
        try options.requireKujiraNumerics(config)
        let b = base
        // The indexer rotates with the main RoPE's frequencies, but on half-split pairs of its leading rope dims.
        let rope = RotaryEmbedding(config: b.rope, dim: b.qkRopeHeadDim, maxPositionEmbeddings: b.maxPositions, layout: .halfSplit)
        return try DeepseekV3Model(architecture: self, configuration: b, weights: weights, options: options) { i in
            let prefix = "model.layers.\(i).self_attn.indexer"
            // An MTP module saved without an indexer attends densely.
            if i >= b.layers && !weights.contains("\(prefix).\(LightningIndexer.Names.wk)") { return nil }
            return try LightningIndexer(weights: weights, prefix: prefix, hidden: b.hiddenSize, qLoraRank: b.qLoraRank!,
                                 heads: indexHeads, headDim: indexHeadDim, ropeDim: b.qkRopeHeadDim, topK: indexTopK, rope: rope, stream: 1,
                                 blockSize: b.weightBlockSize)
        }
    }
}
