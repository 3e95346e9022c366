import KujiraFormats
import KujiraTensor

/// DeepSeek-V3/R1 and DeepSeek-V2 (`deepseek_v3`, `deepseek_v2`): MLA attention, `first_k_dense_replace` dense layers,
/// then DeepSeekMoE; an optional MTP module after the main layers. Config in either published form; GGUF: llama.cpp's
/// `deepseek2`.
public struct DeepseekV3Configuration: ModelArchitecture {
    public static let modelTypes = ["deepseek_v3", "deepseek_v2"]
    public static let ggufArchitectures = ["deepseek2"]
    public static let ggufTensorNames = GGUFTensorNames.decoder + .latentAttention + .denseMLP + .mixtureOfExperts

    public let config: ModelConfig
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

    public var tiedEmbeddings: Bool

    public init(_ config: ModelConfig) throws {
        self.config = config
        modelType = try config.modelType
        let isV3 = modelType != "deepseek_v2"  // V3 and its descendants route with sigmoid scores and noaux_tc
        tiedEmbeddings = try config.bool("tie_word_embeddings", default: false)
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
                throw ConfigError.invalidValue(path: config.path, key: "scoring_func", detail: "'\(quoted(scoringName))' is not sigmoid or softmax")
            }
            let methodName = try config.string("topk_method", default: isV3 ? "noaux_tc" : "greedy")
            guard let method = RouterSettings.Method(rawValue: methodName) else {
                throw ConfigError.invalidValue(path: config.path, key: "topk_method", detail: "'\(quoted(methodName))' is not noaux_tc, greedy or group_limited_greedy")
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

extension DeepseekV3Configuration {
    /// Decoder layer `i`'s parameters: MLA, then a dense MLP or DeepSeekMoE.
    func layerParameters(_ i: Int) -> [ParameterLayout.Entry] {
        let p = "model.layers.\(i)"
        var e = DecoderLayer.normParameters(p, hidden: hiddenSize)
        e += MultiHeadLatentAttention.parameters("\(p).self_attn", hidden: hiddenSize, heads: heads, qLoraRank: qLoraRank, kvLoraRank: kvLoraRank,
                                                 nopeDim: qkNopeHeadDim, ropeDim: qkRopeHeadDim, valueDim: vHeadDim)
        if isMoELayer(i), let router {
            e += MixtureOfExperts.parameters("\(p).mlp", hidden: hiddenSize, intermediate: moeIntermediateSize, experts: router.experts,
                                             sharedIntermediate: sharedExperts > 0 ? moeIntermediateSize * sharedExperts : nil,
                                             bias: router.method == .noauxTC)
        } else {
            e += GatedMLP.parameters("\(p).mlp", hidden: hiddenSize, intermediate: intermediateSize)
        }
        return e
    }

    /// The MTP module's own parameters (layer `num_hidden_layers`; it shares embedding and head with the main model).
    var nextTokenPredictionParameters: [ParameterLayout.Entry] {
        guard nextTokenPredictLayers > 0 else { return [] }
        return MultiTokenPrediction.parameters("model.layers.\(layers)", hidden: hiddenSize) + layerParameters(layers)
    }

    public var parameters: [ParameterLayout.Entry] {
        var e = [ParameterLayout.Entry(DecoderStack.embeddingName, [vocabSize, hiddenSize])]
        for i in 0..<layers { e += layerParameters(i) }
        e += DecoderStack.parameters(vocabSize: vocabSize, hidden: hiddenSize, tied: tiedEmbeddings).dropFirst()
        return e + nextTokenPredictionParameters
    }

    /// Unrouted experts of every MoE layer, and the MTP module.
    public var inactiveParameters: Int {
        var inactive = nextTokenPredictionParameters.reduce(0) { $0 + $1.count }
        if let router {
            let moeLayers = (0..<layers).filter(isMoELayer).count
            inactive += moeLayers * (router.experts - router.topK) * 3 * hiddenSize * moeIntermediateSize
        }
        return inactive
    }

    public var cacheLayout: [[CacheStreamSpec]] {
        Array(repeating: [MultiHeadLatentAttention.cacheStream(kvLoraRank: kvLoraRank, ropeDim: qkRopeHeadDim)], count: layers)
    }

    public func build(weights: any WeightStore, options: RunOptions) throws -> any LanguageModel {
        try options.requireKujiraNumerics(config)
        return try DeepseekV3Model(architecture: self, configuration: self, weights: weights, options: options)
    }

    /// The RoPE of the latent's rope part (interleaved pairs, YaRN as configured).
    var latentRope: RotaryEmbedding {
        RotaryEmbedding(config: rope, dim: qkRopeHeadDim, maxPositionEmbeddings: maxPositions, layout: .interleaved)
    }

    /// Decoder layer `i`: MLA (with `indexer`, DeepSeek-V3.2's sparse attention), then a dense MLP or DeepSeekMoE.
    func loadLayer(_ i: Int, weights: any WeightStore, rope: RotaryEmbedding, indexer: LightningIndexer? = nil) throws -> DecoderLayer {
        let prefix = "model.layers.\(i)"
        let attention = try MultiHeadLatentAttention(
            weights: weights, prefix: "\(prefix).self_attn", hidden: hiddenSize, heads: heads, qLoraRank: qLoraRank,
            kvLoraRank: kvLoraRank, nopeDim: qkNopeHeadDim, ropeDim: qkRopeHeadDim, valueDim: vHeadDim,
            rope: rope, softmaxScale: softmaxScale, blockSize: weightBlockSize, indexer: indexer)
        let feedForward: any FeedForward
        if isMoELayer(i), let router {
            feedForward = try MixtureOfExperts.load(weights: weights, prefix: "\(prefix).mlp", settings: router, hidden: hiddenSize,
                                                    intermediate: moeIntermediateSize,
                                                    sharedIntermediate: sharedExperts > 0 ? moeIntermediateSize * sharedExperts : nil,
                                                    blockSize: weightBlockSize)
        } else {
            feedForward = try GatedMLP(weights: weights, prefix: "\(prefix).mlp", hidden: hiddenSize, intermediate: intermediateSize,
                                       blockSize: weightBlockSize)
        }
        return try DecoderLayer(weights: weights, prefix: prefix, hidden: hiddenSize, eps: Float(rmsNormEps), mixer: attention, feedForward: feedForward)
    }
}

/// A DeepSeek-V3/R1 or V2 model, with its multi-token-prediction module when the checkpoint has one.
public final class DeepseekV3Model: DecoderStackModel {
    public let config: ModelConfig
    public let configuration: DeepseekV3Configuration
    public let stack: DecoderStack
    /// The multi-token-prediction module, when the checkpoint carries one (`num_nextn_predict_layers` ≥ 1).
    public let multiTokenPrediction: MultiTokenPrediction?
    public let options: RunOptions
    /// How `makeCache` stores the latent rows (`--kv-bits`).
    public var cachePrecision: KVCachePrecision { options.cachePrecision }

    /// The architecture that built it (V3/V2, or V3.2 with its indexer), for the cache layout and summary.
    public let architecture: any ModelArchitecture

    /// Builds the model at `weights` (convenience for the trainer and tests: float cache, Kujira numerics).
    public convenience init(config: ModelConfig, weights: any WeightStore, cachePrecision: KVCachePrecision = .float32) throws {
        let c = try DeepseekV3Configuration(config)
        try self.init(architecture: c, configuration: c, weights: weights, options: RunOptions(cachePrecision: cachePrecision))
    }

    /// `indexer(i)` gives layer i's lightning indexer (DeepSeek-V3.2), or nil for dense MLA.
    init(architecture: any ModelArchitecture, configuration c: DeepseekV3Configuration, weights: any WeightStore, options: RunOptions,
         indexer: ((Int) throws -> LightningIndexer?)? = nil) throws {
        config = c.config
        configuration = c
        self.architecture = architecture
        self.options = options
        let rope = c.latentRope
        let layers = try (0..<c.layers).map { try c.loadLayer($0, weights: weights, rope: rope, indexer: indexer?($0)) }
        stack = try DecoderStack(config: config, weights: weights, layers: layers, vocabSize: c.vocabSize, hidden: c.hiddenSize,
                                 eps: Float(c.rmsNormEps), blockSize: c.weightBlockSize)
        let mtpIndex = c.layers
        if c.nextTokenPredictLayers > 0 && weights.contains("model.layers.\(mtpIndex).\(MultiTokenPrediction.Names.ehProj)") {
            multiTokenPrediction = try MultiTokenPrediction(
                weights: weights, index: mtpIndex, block: try c.loadLayer(mtpIndex, weights: weights, rope: rope, indexer: indexer?(mtpIndex)),
                mainEmbedding: stack.embedding, mainHead: stack.lmHead, hidden: c.hiddenSize, eps: Float(c.rmsNormEps), blockSize: c.weightBlockSize,
                cacheStreams: architecture.cacheLayout[0], cachePrecision: options.cachePrecision)
        } else {
            multiTokenPrediction = nil
        }
    }

    public var vocabSize: Int { configuration.vocabSize }
    public var maxPositions: Int { configuration.maxPositions }

    public func makeCache() -> KVCache {
        KVCache(layout: architecture.cacheLayout, precision: options.cachePrecision, numerics: options.numerics)
    }

    /// Final hidden states (after the final norm), (n, hidden) — what the MTP module and speculation consume.
    public func hiddenStates(_ tokens: [Int], cache: KVCache) throws -> [Float] {
        try validate(tokens, cache: cache)
        return stack.hiddenStates(tokens, cache: cache)
    }

    public var summary: ModelSummary {
        ModelSummary(architecture: architecture, stack: stack, extraParameters: multiTokenPrediction?.parameterCount ?? 0,
                     extraInactive: multiTokenPrediction?.parameterCount ?? 0)
    }
}

// MARK: GGUF

extension DeepseekV3Configuration {
    public static func configValues(gguf g: GGUFMetadata) throws -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        let ropeDim = try g.required("rope.dimension_count")
        let keyLength = try g.int("attention.key_length_mla") ?? g.required("attention.key_length")
        let valueLength = try g.int("attention.value_length_mla") ?? g.required("attention.value_length")
        values["qk_rope_head_dim"] = .number(Double(ropeDim))
        values["qk_nope_head_dim"] = .number(Double(keyLength - ropeDim))
        values["v_head_dim"] = .number(Double(valueLength))
        values["kv_lora_rank"] = .number(Double(try g.required("attention.kv_lora_rank")))
        if let q = g.int("attention.q_lora_rank"), q > 0 { values["q_lora_rank"] = .number(Double(q)) }
        values["first_k_dense_replace"] = .number(Double(g.int("leading_dense_block_count") ?? 0))
        values["model_type"] = .string("deepseek_v3")  // llama.cpp normalises, then scales, like V3
        if let experts = g.int("expert_count"), experts > 0 {
            let sigmoid = g.int("expert_gating_func") == 2
            let hasBias = g.hasTensor(endingWith: "exp_probs_b.bias")
            let groups = g.int("expert_group_count") ?? 1
            values["n_routed_experts"] = .number(Double(experts))
            values["num_experts_per_tok"] = .number(Double(try g.required("expert_used_count")))
            values["moe_intermediate_size"] = .number(Double(try g.required("expert_feed_forward_length")))
            values["n_shared_experts"] = .number(Double(g.int("expert_shared_count") ?? 0))
            values["n_group"] = .number(Double(groups))
            values["topk_group"] = .number(Double(g.int("expert_group_used_count") ?? 1))
            values["scoring_func"] = .string(sigmoid ? "sigmoid" : "softmax")
            values["topk_method"] = .string(hasBias ? "noaux_tc" : groups > 1 ? "group_limited_greedy" : "greedy")
            values["norm_topk_prob"] = .bool(g.bool("expert_weights_norm") ?? false)
            values["routed_scaling_factor"] = .number(Double(g.float("expert_weights_scale") ?? 1))
        }
        return values
    }

    /// As convert_hf_to_gguf's DeepseekV2Model writes `deepseek2`: MLA with `attn_kv_b` split into `attn_k_b`
    /// (transposed per head) and `attn_v_b`, routed experts stacked per projection.
    public func ggufExport(source base: SourceTensors) throws -> GGUFArchitectureExport {
        let c = self
        var source = base
        source.blockSize = c.weightBlockSize
        guard c.moeLayerFrequency == 1 else {
            throw ModelExportError.unsupportedSetting(path: config.path, key: "moe_layer_freq", detail: "is \(c.moeLayerFrequency); llama.cpp's deepseek2 supports only 1")
        }
        let a = "deepseek2"
        var m: [(String, GGUFValue)] = [
            ("general.architecture", .string(a)), ("\(a).block_count", u32(c.layers)), ("\(a).context_length", u32(c.maxPositions)),
            ("\(a).embedding_length", u32(c.hiddenSize)), ("\(a).feed_forward_length", u32(c.intermediateSize)),
            ("\(a).attention.head_count", u32(c.heads)), ("\(a).attention.head_count_kv", u32(1)),
        ]
        m += try ropeScaling(c.rope, arch: a, path: config.path, allowLlama3: false)
        m += [("\(a).rope.freq_base", f32(c.rope.theta)), ("\(a).attention.layer_norm_rms_epsilon", f32(c.rmsNormEps))]
        if let router = c.router {
            m += [("\(a).expert_count", u32(router.experts)), ("\(a).expert_used_count", u32(router.topK))]
            // Group-limited routing that keeps every group is plain top-k; llama.cpp asserts used < count, so leave it out.
            if router.method != .greedy && router.topKGroups < router.groups {
                m += [("\(a).expert_group_count", u32(router.groups)), ("\(a).expert_group_used_count", u32(router.topKGroups))]
            }
            m.append(("\(a).expert_gating_func", u32(router.scoring == .sigmoid ? 2 : 1)))
        }
        // The absorbed-MLA layout: one KV "head" of the latent (kv_lora_rank + rope) keys and kv_lora_rank values.
        m += [("\(a).attention.key_length", u32(c.kvLoraRank + c.qkRopeHeadDim)), ("\(a).attention.value_length", u32(c.kvLoraRank)),
              ("\(a).leading_dense_block_count", u32(c.routedExperts == nil ? c.layers : c.firstKDenseReplace)),
              ("\(a).vocab_size", u32(c.vocabSize))]
        // Without q-LoRA (V2-Lite) convert_hf_to_gguf writes 0; llama.cpp then reads attn_q.
        m.append(("\(a).attention.q_lora_rank", u32(c.qLoraRank ?? 0)))
        m += [("\(a).attention.kv_lora_rank", u32(c.kvLoraRank)),
              ("\(a).attention.key_length_mla", u32(c.qkNopeHeadDim + c.qkRopeHeadDim)), ("\(a).attention.value_length_mla", u32(c.vHeadDim))]
        if let router = c.router {
            m += [("\(a).expert_feed_forward_length", u32(c.moeIntermediateSize)), ("\(a).expert_shared_count", u32(c.sharedExperts)),
                  ("\(a).expert_weights_scale", .float32(router.scalingFactor)), ("\(a).expert_weights_norm", .bool(router.normalize))]
        }
        m.append(("\(a).rope.dimension_count", u32(c.qkRopeHeadDim)))
        if c.rope.type == "yarn", let mscaleAllDim = c.rope.mscaleAllDim {
            m.append(("\(a).rope.scaling.yarn_log_multiplier", f32(0.1 * mscaleAllDim)))
        }

        let h = c.hiddenSize
        var tensors = try GGUFExportBlocks.modelWide(source: source, config: config, vocabSize: c.vocabSize, hidden: h)
        for i in 0..<c.layers {
            let p = "model.layers.\(i)"
            tensors.append(try source.plain("\(p).\(DecoderLayer.inputNormName)", shape: [h]))
            tensors += try GGUFExportBlocks.latentAttention(
                "\(p).self_attn", layer: i, source: source, hidden: h, heads: c.heads, qLoraRank: c.qLoraRank, kvLoraRank: c.kvLoraRank,
                nopeDim: c.qkNopeHeadDim, ropeDim: c.qkRopeHeadDim, valueDim: c.vHeadDim)
            tensors.append(try source.plain("\(p).\(DecoderLayer.postAttentionNormName)", shape: [h]))
            if c.isMoELayer(i), let router = c.router {
                tensors += try GGUFExportBlocks.mixtureOfExperts(
                    "\(p).mlp", layer: i, source: source, hidden: h, intermediate: c.moeIntermediateSize, experts: router.experts,
                    bias: router.method == .noauxTC, sharedIntermediate: c.sharedExperts > 0 ? c.moeIntermediateSize * c.sharedExperts : nil)
            } else {
                tensors += try GGUFExportBlocks.denseMLP("\(p).mlp", source: source, hidden: h, intermediate: c.intermediateSize)
            }
        }
        return (m, tensors)
    }
}
