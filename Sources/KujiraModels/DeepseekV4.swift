import KujiraFormats
import KujiraTensor

/// DeepSeek-V4 (`deepseek_v4`): every layer is hyper-connected (`hc_mult` residual streams, Sinkhorn-projected mixing),
/// attends with shared-KV MQA over a sliding window plus compressed entries — heavily compressed (HCA, every
/// `compress_rates.heavily_compressed_attention` tokens, all entries) or compressed sparse (CSA, overlapping windows of
/// `compress_rates.compressed_sparse_attention` tokens, the lightning indexer's top-k) — with partial RoPE from two bases
/// (`main` for pure sliding-window layers, `compress` elsewhere), a grouped low-rank output projection and a per-head
/// sink; every feed-forward is a mixture of experts with √softplus scores, the first layers hash-routed by token id.
/// Config in transformers' form (`layer_types`, `rope_parameters.{main,compress}`) or deepseek-ai's (`compress_ratios`,
/// `num_hash_layers`, `rope_scaling` + `compress_rope_theta`).
public struct DeepseekV4Configuration: ModelArchitecture {
    public static let modelTypes = ["deepseek_v4"]

    /// The attention of one layer.
    public enum AttentionKind: String, Sendable { case sliding = "sliding_attention", compressedSparse = "compressed_sparse_attention",
                                                       heavilyCompressed = "heavily_compressed_attention" }

    public let config: ModelConfig
    public var hiddenSize: Int, layers: Int, heads: Int, headDim: Int, ropeDim: Int, qLoraRank: Int, vocabSize: Int, maxPositions: Int
    public var rmsNormEps: Double
    public var mainRope: RopeConfig, compressRope: RopeConfig
    public var attention: [AttentionKind], hashRouted: [Bool]
    public var sparseRate: Int, heavyRate: Int, window: Int
    public var outputGroups: Int, outputRank: Int
    public var indexHeads: Int, indexHeadDim: Int, indexTopK: Int
    public var streams: Int, sinkhornIterations: Int, hyperEps: Double
    public var moeIntermediateSize: Int, sharedExperts: Int, swigluLimit: Float?
    public var router: RouterSettings
    public var tiedEmbeddings: Bool
    /// FP8 block size from `quantization_config.weight_block_size`.
    public var weightBlockSize: [Int]?

    public init(_ config: ModelConfig) throws {
        self.config = config
        let path = config.path
        hiddenSize = try config.int("hidden_size")
        layers = try config.int("num_hidden_layers")
        heads = try config.int("num_attention_heads")
        headDim = try config.int("head_dim")
        qLoraRank = try config.int("q_lora_rank")
        vocabSize = try config.int("vocab_size")
        maxPositions = try config.int("max_position_embeddings", default: 1_048_576)
        rmsNormEps = try config.float("rms_norm_eps", default: 1e-6)
        for (key, value) in [("hidden_size", hiddenSize), ("num_hidden_layers", layers), ("num_attention_heads", heads), ("head_dim", headDim),
                             ("q_lora_rank", qLoraRank), ("vocab_size", vocabSize), ("max_position_embeddings", maxPositions)] where value <= 0 {
            throw ConfigError.invalidValue(path: path, key: key, detail: "must be positive, got \(value)")
        }
        guard try config.int("num_key_value_heads", default: 1) == 1 else {
            throw ConfigError.invalidValue(path: path, key: "num_key_value_heads", detail: "DeepSeek-V4 attention has one shared key/value head")
        }
        let dim = Double(headDim)
        let rotary = try config.optionalFloat("partial_rotary_factor") ?? config.optionalInt("qk_rope_head_dim").map { Double($0) / dim } ?? 0.125
        let rotaryDims = Int(Double(headDim) * rotary)
        guard rotaryDims > 0, rotaryDims % 2 == 0, rotaryDims <= headDim else {
            throw ConfigError.invalidValue(path: path, key: "partial_rotary_factor", detail: "gives \(rotaryDims) rotary dims of head_dim \(headDim)")
        }
        ropeDim = rotaryDims
        (mainRope, compressRope) = try Self.ropes(config)
        let rates = try config.object("compress_rates")
        sparseRate = try rates?.optionalInt("compressed_sparse_attention") ?? config.int("compress_rate_csa", default: 4)
        heavyRate = try rates?.optionalInt("heavily_compressed_attention") ?? config.int("compress_rate_hca", default: 128)
        window = try config.int("sliding_window", default: 128)
        for (key, value) in [("compress_rates", sparseRate), ("compress_rates", heavyRate), ("sliding_window", window)] where value <= 0 {
            throw ConfigError.invalidValue(path: path, key: key, detail: "must be positive, got \(value)")
        }
        attention = try Self.attentionKinds(config, layers: layers, sparseRate: sparseRate, heavyRate: heavyRate)
        hashRouted = try Self.hashLayers(config, layers: layers)
        outputGroups = try config.int("o_groups", default: 8)
        outputRank = try config.int("o_lora_rank", default: 1024)
        guard outputGroups > 0, outputRank > 0, (heads * headDim) % outputGroups == 0 else {
            throw ConfigError.invalidValue(path: path, key: "o_groups", detail: "\(outputGroups) must divide heads × head_dim \(heads * headDim)")
        }
        indexHeads = try config.int("index_n_heads", default: 64)
        indexHeadDim = try config.int("index_head_dim", default: 128)
        indexTopK = try config.int("index_topk", default: 512)
        guard indexHeads > 0, indexTopK > 0, indexHeadDim >= rotaryDims else {
            throw ConfigError.invalidValue(path: path, key: "index_head_dim", detail: "the indexer needs heads, top-k and at least \(rotaryDims) dims")
        }
        streams = try config.int("hc_mult", default: 4)
        sinkhornIterations = try config.int("hc_sinkhorn_iters", default: 20)
        hyperEps = try config.float("hc_eps", default: 1e-6)
        guard streams > 0 else { throw ConfigError.invalidValue(path: path, key: "hc_mult", detail: "must be positive") }
        moeIntermediateSize = try config.int("moe_intermediate_size")
        sharedExperts = try config.int("n_shared_experts", default: 1)
        swigluLimit = try config.optionalFloat("swiglu_limit").map { Float($0) }
        let experts = try config.int("n_routed_experts"), topK = try config.int("num_experts_per_tok")
        guard experts > 0, topK > 0, topK <= experts, moeIntermediateSize > 0 else {
            throw ConfigError.invalidValue(path: path, key: "num_experts_per_tok", detail: "must be in 1...\(experts)")
        }
        let scoringName = try config.string("scoring_func", default: "sqrtsoftplus")
        guard let scoring = RouterSettings.Scoring(rawValue: scoringName) else {
            throw ConfigError.invalidValue(path: path, key: "scoring_func", detail: "'\(quoted(scoringName))' is not sqrtsoftplus, sigmoid or softmax")
        }
        // V4 always renormalises the chosen experts' scores, then scales them.
        router = RouterSettings(scoring: scoring, method: .noauxTC, experts: experts, topK: topK, normalize: true,
                                scalingFactor: Float(try config.float("routed_scaling_factor", default: 1.5)), normalizeSingle: true)
        tiedEmbeddings = try config.bool("tie_word_embeddings", default: false)
        if let quantization = try config.object("quantization_config") {
            weightBlockSize = quantization.has("weight_block_size") ? try quantization.intList("weight_block_size") : nil
        }
    }

    /// `main` (plain, `rope_theta`) and `compress` (`compress_rope_theta`, with the YaRN settings, attention factor 1).
    static func ropes(_ config: ModelConfig) throws -> (RopeConfig, RopeConfig) {
        if let nested = try config.object("rope_parameters"), let main = try nested.object("main"), let compress = try nested.object("compress") {
            return (try ModelConfig(values: ["rope_parameters": .object(main.values)], path: main.path).rope(),
                    try ModelConfig(values: ["rope_parameters": .object(compress.values)], path: compress.path).rope())
        }
        let main = RopeConfig.plain(theta: try config.float("rope_theta", default: 10000))
        var scaling = try config.object("rope_scaling")?.values ?? config.object("rope_parameters")?.values ?? [:]
        scaling["rope_theta"] = .number(try config.float("compress_rope_theta", default: 160000))
        if case .string("yarn")? = scaling["rope_type"] ?? scaling["type"], scaling["attention_factor"] == nil { scaling["attention_factor"] = .number(1) }
        return (main, try ModelConfig(values: ["rope_parameters": .object(scaling)], path: config.path).rope())
    }

    static func attentionKinds(_ config: ModelConfig, layers: Int, sparseRate: Int, heavyRate: Int) throws -> [AttentionKind] {
        var kinds: [AttentionKind]
        if config.has("layer_types") {
            kinds = try config.stringList("layer_types").map { name in
                guard let kind = AttentionKind(rawValue: name) else {
                    throw ConfigError.invalidValue(path: config.path, key: "layer_types", detail: "'\(quoted(name))' is not a DeepSeek-V4 attention type")
                }
                return kind
            }
        } else if config.has("compress_ratios") {
            kinds = try config.intList("compress_ratios").map { ratio in
                switch ratio {
                case 0: return .sliding
                case sparseRate: return .compressedSparse
                case heavyRate: return .heavilyCompressed
                default: throw ConfigError.invalidValue(path: config.path, key: "compress_ratios", detail: "\(ratio) is not 0, \(sparseRate) or \(heavyRate)")
                }
            }
        } else {
            kinds = Array(repeating: .heavilyCompressed, count: min(layers, 2))
                + (0..<max(layers - 2, 0)).map { $0 % 2 == 1 ? .compressedSparse : .heavilyCompressed }
        }
        guard kinds.count >= layers else {
            throw ConfigError.invalidValue(path: config.path, key: "layer_types", detail: "has \(kinds.count) entries for \(layers) layers")
        }
        return Array(kinds.prefix(layers))  // deepseek-ai's list also covers the MTP layer
    }

    static func hashLayers(_ config: ModelConfig, layers: Int) throws -> [Bool] {
        if config.has("mlp_layer_types") {
            let types = try config.stringList("mlp_layer_types")
            guard types.count >= layers, types.allSatisfy({ $0 == "hash_moe" || $0 == "moe" }) else {
                throw ConfigError.invalidValue(path: config.path, key: "mlp_layer_types", detail: "needs \(layers) entries of hash_moe or moe")
            }
            return types.prefix(layers).map { $0 == "hash_moe" }
        }
        let hashed = try config.int("num_hash_layers", default: 3)
        return (0..<layers).map { $0 < hashed }
    }

    // MARK: Layout

    private func attentionParameters(_ i: Int) -> [ParameterLayout.Entry] {
        let p = "model.layers.\(i).self_attn"
        var e = CompressedAttention.parameters(p, hidden: hiddenSize, heads: heads, headDim: headDim, qLoraRank: qLoraRank, groups: outputGroups,
                                               outputRank: outputRank)
        switch attention[i] {
        case .sliding: break
        case .heavilyCompressed:
            e += KVCompressor.parameters("\(p).\(CompressedAttention.Names.compressor)", hidden: hiddenSize, width: headDim, rate: heavyRate,
                                         overlapping: false)
        case .compressedSparse:
            e += KVCompressor.parameters("\(p).\(CompressedAttention.Names.compressor)", hidden: hiddenSize, width: headDim, rate: sparseRate,
                                         overlapping: true)
            e += CompressedIndexer.parameters("\(p).\(CompressedAttention.Names.indexer)", hidden: hiddenSize, qLoraRank: qLoraRank,
                                              heads: indexHeads, headDim: indexHeadDim, rate: sparseRate)
        }
        return e
    }

    public var parameters: [ParameterLayout.Entry] {
        var e = [ParameterLayout.Entry(DecoderStack.embeddingName, [vocabSize, hiddenSize])]
        for i in 0..<layers {
            let p = "model.layers.\(i)"
            e += HyperConnection.parameters("\(p).\(HyperConnectedLayer.Names.attention)", hidden: hiddenSize, streams: streams)
            e += HyperConnection.parameters("\(p).\(HyperConnectedLayer.Names.feedForward)", hidden: hiddenSize, streams: streams)
            e += DecoderLayer.normParameters(p, hidden: hiddenSize) + attentionParameters(i)
            e += MixtureOfExperts.parameters("\(p).mlp", hidden: hiddenSize, intermediate: moeIntermediateSize, experts: router.experts,
                                             sharedIntermediate: sharedExperts > 0 ? moeIntermediateSize : nil, bias: !hashRouted[i],
                                             hashVocab: hashRouted[i] ? vocabSize : nil, topK: router.topK)
        }
        e += DecoderStack.parameters(vocabSize: vocabSize, hidden: hiddenSize, tied: tiedEmbeddings).dropFirst()
        return e + HyperHead.parameters(hidden: hiddenSize, streams: streams)
    }

    public var inactiveParameters: Int { layers * (router.experts - router.topK) * 3 * hiddenSize * moeIntermediateSize }

    public var cacheLayout: [[CacheStreamSpec]] {
        (0..<layers).map { i in
            var layer = [CacheStreamSpec("window", width: headDim, kind: .window(size: window))]
            switch attention[i] {
            case .sliding: break
            case .heavilyCompressed:
                layer += KVCompressor.cacheStreams(name: "compressed", width: headDim, rate: heavyRate, overlapping: false)
            case .compressedSparse:
                layer += KVCompressor.cacheStreams(name: "compressed", width: headDim, rate: sparseRate, overlapping: true)
                layer += KVCompressor.cacheStreams(name: "indexer keys", width: indexHeadDim, rate: sparseRate, overlapping: true)
            }
            return layer
        }
    }

    // MARK: Build

    public func build(weights: any WeightStore, options: RunOptions) throws -> any LanguageModel {
        try options.requireKujiraNumerics(config)
        let main = RotaryEmbedding(config: mainRope, dim: ropeDim, maxPositionEmbeddings: maxPositions, layout: .interleaved)
        let compress = RotaryEmbedding(config: compressRope, dim: ropeDim, maxPositionEmbeddings: maxPositions, layout: .interleaved)
        let eps = Float(rmsNormEps), block = weightBlockSize
        let blocks: [any DecoderBlock] = try (0..<layers).map { i in
            let p = "model.layers.\(i)", a = "\(p).self_attn"
            var compressor: KVCompressor?, indexer: CompressedIndexer?
            switch attention[i] {
            case .sliding: break
            case .heavilyCompressed:
                compressor = try KVCompressor(weights: weights, prefix: "\(a).\(CompressedAttention.Names.compressor)", hidden: hiddenSize, width: headDim,
                                              rate: heavyRate, overlapping: false, eps: eps, rope: compress, streams: (1, 2, 0), blockSize: block)
            case .compressedSparse:
                compressor = try KVCompressor(weights: weights, prefix: "\(a).\(CompressedAttention.Names.compressor)", hidden: hiddenSize, width: headDim,
                                              rate: sparseRate, overlapping: true, eps: eps, rope: compress, streams: (1, 2, 3), blockSize: block)
                let keys = try KVCompressor(weights: weights, prefix: "\(a).\(CompressedAttention.Names.indexer)", hidden: hiddenSize, width: indexHeadDim,
                                            rate: sparseRate, overlapping: true, eps: eps, rope: compress, streams: (4, 5, 6), blockSize: block)
                indexer = try CompressedIndexer(weights: weights, prefix: "\(a).\(CompressedAttention.Names.indexer)", hidden: hiddenSize,
                                                qLoraRank: qLoraRank, heads: indexHeads, headDim: indexHeadDim, topK: indexTopK, compressor: keys,
                                                blockSize: block)
            }
            let mixer = try CompressedAttention(weights: weights, prefix: a, hidden: hiddenSize, heads: heads, headDim: headDim, qLoraRank: qLoraRank,
                                                groups: outputGroups, outputRank: outputRank, window: window, eps: eps,
                                                rope: attention[i] == .sliding ? main : compress, compressor: compressor, indexer: indexer, blockSize: block)
            let moe = try MixtureOfExperts.load(weights: weights, prefix: "\(p).mlp", settings: router, hidden: hiddenSize,
                                                intermediate: moeIntermediateSize, sharedIntermediate: sharedExperts > 0 ? moeIntermediateSize : nil,
                                                blockSize: block, limit: swigluLimit, hashVocab: hashRouted[i] ? vocabSize : nil)
            func connection(_ name: String) throws -> HyperConnection {
                try HyperConnection(weights: weights, prefix: "\(p).\(name)", hidden: hiddenSize, streams: streams, sinkhornIterations: sinkhornIterations,
                                    eps: Float(hyperEps), normEps: eps)
            }
            return HyperConnectedLayer(attentionConnection: try connection(HyperConnectedLayer.Names.attention),
                                       feedForwardConnection: try connection(HyperConnectedLayer.Names.feedForward),
                                       inputNorm: try weights.floats("\(p).\(DecoderLayer.inputNormName)", shape: [hiddenSize]),
                                       postAttentionNorm: try weights.floats("\(p).\(DecoderLayer.postAttentionNormName)", shape: [hiddenSize]),
                                       mixer: mixer, feedForward: moe, eps: eps)
        }
        let head = try HyperHead(weights: weights, hidden: hiddenSize, streams: streams, eps: Float(hyperEps), normEps: eps)
        let stack = try DecoderStack(config: config, weights: weights, layers: blocks, vocabSize: vocabSize, hidden: hiddenSize, eps: eps,
                                     blockSize: block, residual: head)
        return DecoderModel(architecture: self, stack: stack, options: options, maxPositions: maxPositions)
    }
}
