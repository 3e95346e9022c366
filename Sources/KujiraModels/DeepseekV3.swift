import KujiraFormats
import KujiraTensor

/// Configuration of DeepSeek-V3/R1 and DeepSeek-V2 (`deepseek_v3`, `deepseek_v2`), as either config form writes it.
public struct DeepseekV3Configuration: Sendable {
    public var modelType: String
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var moeIntermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var vocabSize: Int
    public var maxPositions: Int
    public var rmsNormEps: Double
    // Multi-head latent attention
    public var qLoraRank: Int?
    public var kvLoraRank: Int
    public var qkNopeHeadDim: Int
    public var qkRopeHeadDim: Int
    public var vHeadDim: Int
    public var rope: RopeConfig
    // DeepSeekMoE
    public var routedExperts: Int?
    public var sharedExperts: Int
    public var expertsPerToken: Int
    public var firstKDenseReplace: Int
    public var moeLayerFrequency: Int
    public var router: RouterSettings?
    /// MTP modules stored after the main layers (`num_nextn_predict_layers`).
    public var nextTokenPredictLayers: Int
    /// FP8 block size from `quantization_config.weight_block_size`.
    public var weightBlockSize: [Int]?

    public init(_ config: ModelConfig) throws {
        modelType = try config.modelType
        let isV3 = modelType == "deepseek_v3"
        hiddenSize = try config.int("hidden_size")
        intermediateSize = try config.int("intermediate_size")
        layers = try config.int("num_hidden_layers")
        heads = try config.int("num_attention_heads")
        vocabSize = try config.int("vocab_size")
        maxPositions = try config.int("max_position_embeddings", default: 4096)
        rmsNormEps = try config.float("rms_norm_eps", default: 1e-6)
        qLoraRank = try config.optionalInt("q_lora_rank")
        kvLoraRank = try config.int("kv_lora_rank")
        qkNopeHeadDim = try config.int("qk_nope_head_dim")
        qkRopeHeadDim = try config.int("qk_rope_head_dim")
        vHeadDim = try config.int("v_head_dim")
        rope = try config.rope()
        routedExperts = try config.optionalInt("n_routed_experts")
        sharedExperts = try config.int("n_shared_experts", default: 0)
        expertsPerToken = try config.int("num_experts_per_tok", default: 0)
        moeIntermediateSize = try routedExperts == nil ? 0 : config.int("moe_intermediate_size")
        firstKDenseReplace = try config.int("first_k_dense_replace", default: 0)
        moeLayerFrequency = try config.int("moe_layer_freq", default: 1)
        nextTokenPredictLayers = try config.int("num_nextn_predict_layers", default: 0)
        if case let .object(quantization)? = config.values["quantization_config"] {
            let q = ModelConfig(values: quantization, path: "\(config.path) (quantization_config)")
            weightBlockSize = try q.has("weight_block_size") ? q.intList("weight_block_size") : nil
        }
        for (key, value) in [("hidden_size", hiddenSize), ("num_hidden_layers", layers), ("num_attention_heads", heads),
                             ("vocab_size", vocabSize), ("kv_lora_rank", kvLoraRank), ("qk_rope_head_dim", qkRopeHeadDim),
                             ("v_head_dim", vHeadDim), ("moe_layer_freq", moeLayerFrequency)] where value <= 0 {
            throw ConfigError.invalidValue(path: config.path, key: key, detail: "must be positive, got \(value)")
        }
        guard qkRopeHeadDim % 2 == 0 else { throw ConfigError.invalidValue(path: config.path, key: "qk_rope_head_dim", detail: "must be even") }
        if let experts = routedExperts {
            let groups = try config.int("n_group", default: 1), topKGroups = try config.int("topk_group", default: 1)
            guard experts > 0, expertsPerToken > 0, expertsPerToken <= experts else {
                throw ConfigError.invalidValue(path: config.path, key: "num_experts_per_tok", detail: "must be in 1...\(experts)")
            }
            guard groups > 0, experts % groups == 0, topKGroups > 0, topKGroups <= groups else {
                throw ConfigError.invalidValue(path: config.path, key: "n_group", detail: "n_group \(groups) must divide n_routed_experts \(experts) and be ≥ topk_group \(topKGroups)")
            }
            let scoringName = try config.string("scoring_func", default: isV3 ? "sigmoid" : "softmax")
            guard let scoring = RouterSettings.Scoring(rawValue: scoringName) else {
                throw ConfigError.invalidValue(path: config.path, key: "scoring_func", detail: "'\(scoringName)' is not sigmoid or softmax")
            }
            let methodName = try config.string("topk_method", default: isV3 ? "noaux_tc" : "greedy")
            guard let method = RouterSettings.Method(rawValue: methodName) else {
                throw ConfigError.invalidValue(path: config.path, key: "topk_method", detail: "'\(methodName)' is not noaux_tc, greedy or group_limited_greedy")
            }
            router = RouterSettings(scoring: scoring, method: method, experts: experts, topK: expertsPerToken, groups: groups,
                                    topKGroups: topKGroups, normalize: try config.bool("norm_topk_prob", default: false),
                                    scalingFactor: Float(try config.float("routed_scaling_factor", default: 1)),
                                    scaleOnlyWithoutNormalize: !isV3)
        }
    }

    /// Whether layer `i` uses DeepSeekMoE rather than a dense MLP.
    public func isMoELayer(_ i: Int) -> Bool {
        routedExperts != nil && i >= firstKDenseReplace && i % moeLayerFrequency == 0
    }

    /// Values per int8 cache scale: c_kv and k_pe are read separately, so a group never straddles them (32 for V3).
    public var cacheGroupSize: Int { KVCachePrecision.groupSize(segments: [kvLoraRank, qkRopeHeadDim]) }

    /// Softmax scale: (nope + rope)^-½, times mscale² when YaRN sets `mscale_all_dim` (V3 and V2 alike, as the goldens confirm).
    public var softmaxScale: Float {
        var scale = 1 / Double(qkNopeHeadDim + qkRopeHeadDim).squareRoot()
        if rope.type == "yarn", let mAll = rope.mscaleAllDim, mAll != 0 {
            let m = RotaryEmbedding.yarnMscale(rope.factor, mAll)
            scale *= m * m
        }
        return Float(scale)
    }
}

/// DeepSeek-V3/R1 and DeepSeek-V2: MLA attention, `first_k_dense_replace` dense layers, then DeepSeekMoE.
public final class DeepseekV3Model: DecoderStackModel {
    public let config: ModelConfig
    public let configuration: DeepseekV3Configuration
    public let stack: DecoderStack
    /// The multi-token-prediction module, when the checkpoint carries one (`num_nextn_predict_layers` ≥ 1).
    public let multiTokenPrediction: MultiTokenPrediction?
    /// How `makeCache` stores the latent rows (`--kv-bits`).
    public let cachePrecision: KVCachePrecision

    public init(config: ModelConfig, weights: any WeightStore, cachePrecision: KVCachePrecision = .float32, numerics: Numerics = .kujira) throws {
        guard numerics == .kujira else {
            throw NumericsError.unsupported(path: config.path, detail: "emulated for llama and qwen2 models only (MLA and MoE run Kujira's arithmetic)")
        }
        let c = try DeepseekV3Configuration(config)
        self.config = config
        self.cachePrecision = cachePrecision
        configuration = c
        let block = c.weightBlockSize
        let rope = RotaryEmbedding(config: c.rope, dim: c.qkRopeHeadDim, maxPositionEmbeddings: c.maxPositions, layout: .interleaved)
        var layers: [DecoderLayer] = []
        for i in 0..<c.layers {
            layers.append(try Self.loadLayer(i, weights: weights, configuration: c, rope: rope))
        }
        stack = try DecoderStack(config: config, weights: weights, layers: layers, vocabSize: c.vocabSize, hidden: c.hiddenSize,
                                 eps: Float(c.rmsNormEps), blockSize: block)
        let mtpIndex = c.layers
        if c.nextTokenPredictLayers > 0 && weights.contains("model.layers.\(mtpIndex).eh_proj.weight") {
            multiTokenPrediction = try MultiTokenPrediction(
                weights: weights, index: mtpIndex, block: try Self.loadLayer(mtpIndex, weights: weights, configuration: c, rope: rope),
                mainEmbedding: stack.embedding, mainHead: stack.lmHead, hidden: c.hiddenSize, eps: Float(c.rmsNormEps), blockSize: block,
                cachePrecision: cachePrecision, cacheGroupSize: c.cacheGroupSize)
        } else {
            multiTokenPrediction = nil
        }
    }

    /// Decoder layer `i`: MLA, then a dense MLP or DeepSeekMoE.
    static func loadLayer(_ i: Int, weights: any WeightStore, configuration c: DeepseekV3Configuration, rope: RotaryEmbedding) throws -> DecoderLayer {
        let block = c.weightBlockSize
        let prefix = "model.layers.\(i)"
        let attention = try MultiHeadLatentAttention(
            weights: weights, prefix: "\(prefix).self_attn", hidden: c.hiddenSize, heads: c.heads, qLoraRank: c.qLoraRank,
            kvLoraRank: c.kvLoraRank, nopeDim: c.qkNopeHeadDim, ropeDim: c.qkRopeHeadDim, valueDim: c.vHeadDim,
            rope: rope, softmaxScale: c.softmaxScale, blockSize: block)
        let feedForward: any FeedForward
        if c.isMoELayer(i), let settings = c.router {
            feedForward = try Self.loadMoE(weights: weights, prefix: "\(prefix).mlp", configuration: c, settings: settings)
        } else {
            feedForward = try GatedMLP(weights: weights, prefix: "\(prefix).mlp", hidden: c.hiddenSize, intermediate: c.intermediateSize, blockSize: block)
        }
        return DecoderLayer(inputNorm: try weights.floats("\(prefix).input_layernorm.weight", shape: [c.hiddenSize]),
                            mixer: attention,
                            postAttentionNorm: try weights.floats("\(prefix).post_attention_layernorm.weight", shape: [c.hiddenSize]),
                            feedForward: feedForward)
    }

    static func loadMoE(weights: any WeightStore, prefix: String, configuration c: DeepseekV3Configuration,
                        settings: RouterSettings) throws -> MixtureOfExperts {
        let gate = try weights.linear("\(prefix).gate.weight", rows: settings.experts, cols: c.hiddenSize)
        let bias = settings.method == .noauxTC ? try weights.floats("\(prefix).gate.e_score_correction_bias", shape: [settings.experts]) : nil
        let experts = try loadExperts(weights: weights, prefix: "\(prefix).experts", count: settings.experts, hidden: c.hiddenSize,
                                      intermediate: c.moeIntermediateSize, blockSize: c.weightBlockSize)
        let shared = c.sharedExperts > 0
            ? try GatedMLP(weights: weights, prefix: "\(prefix).shared_experts", hidden: c.hiddenSize,
                           intermediate: c.moeIntermediateSize * c.sharedExperts, blockSize: c.weightBlockSize)
            : nil
        return MixtureOfExperts(router: Router(settings: settings, weight: gate, scoreCorrectionBias: bias), experts: experts, sharedExperts: shared)
    }

    /// Routed experts, stored one tensor per expert (`experts.<e>.gate_proj.weight`, as deepseek-ai ships), stacked as
    /// transformers 5 saves them (`experts.gate_up_proj` (E, 2·I, H) with gate rows first, `experts.down_proj` (E, H, I)),
    /// or stacked per projection (GGUF).
    static func loadExperts(weights: any WeightStore, prefix: String, count: Int, hidden: Int, intermediate: Int,
                            blockSize: [Int]?) throws -> [GatedMLP] {
        if weights.contains("\(prefix).gate_up_proj") {
            let gateUp = try weights.tensor("\(prefix).gate_up_proj", shape: [count, 2 * intermediate, hidden])
            let down = try weights.tensor("\(prefix).down_proj", shape: [count, hidden, intermediate])
            for (name, t) in [("gate_up_proj", gateUp), ("down_proj", down)] where !t.dtype.isFloatingPoint || t.dtype == .f8e4m3 {
                throw WeightStoreError.unsupportedDType(name: "\(prefix).\(name)", file: weights.file(of: "\(prefix).\(name)") ?? weights.source,
                                                        dtype: t.dtype.rawValue)
            }
            return (0..<count).map { e in
                GatedMLP(gate: LinearWeight(data: gateUp.matrixRows(index: e, rows: 0..<intermediate)),
                         up: LinearWeight(data: gateUp.matrixRows(index: e, rows: intermediate..<(2 * intermediate))),
                         down: LinearWeight(data: down.matrixRows(index: e, rows: 0..<hidden)))
            }
        }
        if weights.contains("\(prefix).gate_proj") {
            // Stacked per projection, as llama.cpp's ffn_{gate,up,down}_exps: (E, I, H), (E, I, H), (E, H, I).
            let gate = try weights.tensor("\(prefix).gate_proj", shape: [count, intermediate, hidden])
            let up = try weights.tensor("\(prefix).up_proj", shape: [count, intermediate, hidden])
            let down = try weights.tensor("\(prefix).down_proj", shape: [count, hidden, intermediate])
            return (0..<count).map { e in
                GatedMLP(gate: LinearWeight(data: gate.matrixRows(index: e, rows: 0..<intermediate)),
                         up: LinearWeight(data: up.matrixRows(index: e, rows: 0..<intermediate)),
                         down: LinearWeight(data: down.matrixRows(index: e, rows: 0..<hidden)))
            }
        }
        return try (0..<count).map { e in
            try GatedMLP(weights: weights, prefix: "\(prefix).\(e)", hidden: hidden, intermediate: intermediate, blockSize: blockSize)
        }
    }

    public var vocabSize: Int { configuration.vocabSize }
    public var maxPositions: Int { configuration.maxPositions }

    public func makeCache() -> KVCache {
        KVCache(layerCount: configuration.layers, rowWidth: configuration.kvLoraRank + configuration.qkRopeHeadDim,
                precision: cachePrecision, groupSize: configuration.cacheGroupSize)
    }

    /// Final hidden states (after the final norm), (n, hidden) — what the MTP module and speculation consume.
    public func hiddenStates(_ tokens: [Int], cache: KVCache) throws -> [Float] {
        try validate(tokens, cache: cache)
        return stack.hiddenStates(tokens, cache: cache)
    }

    public var summary: ModelSummary {
        let total = stack.totalParameters
        let inactive = stack.layers.reduce(0) { $0 + $1.feedForward.totalParameters - $1.feedForward.activeParameters }
        return ModelSummary(architecture: configuration.modelType, totalParameters: total, activeParameters: total - inactive, kvValuesPerTokenPerLayer: configuration.kvLoraRank + configuration.qkRopeHeadDim,
                            layers: configuration.layers, kvCacheGroupSize: configuration.cacheGroupSize)
    }
}
