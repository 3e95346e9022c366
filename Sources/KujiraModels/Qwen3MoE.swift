import KujiraFormats
import KujiraTensor

/// Qwen3-MoE (`qwen3_moe`): Qwen3's attention (q/k head norms) with a mixture of experts in place of the MLP — a
/// softmax router over all experts, top-k, weights renormalised when `norm_topk_prob`, no shared expert. Layers listed
/// in `mlp_only_layers` (or off the `decoder_sparse_step` grid) keep a dense MLP. GGUF: llama.cpp's `qwen3moe`.
public struct Qwen3MoEConfiguration: ModelArchitecture {
    public static let modelTypes = ["qwen3_moe"]
    public static let ggufArchitectures = ["qwen3moe"]
    public static let ggufTensorNames = GGUFTensorNames.decoder + .groupedQueryAttention + .attentionHeadNorms + .denseMLP + .mixtureOfExperts

    public let config: ModelConfig
    public let dims: DecoderDimensions
    /// Width of the dense MLP layers.
    public var intermediateSize: Int
    public var moeIntermediateSize: Int
    public var attentionBias: Bool
    public var router: RouterSettings
    public var sparseStep: Int
    public var denseLayers: Set<Int>

    public init(_ config: ModelConfig) throws {
        self.config = config
        dims = try DecoderDimensions(config, maxPositionsDefault: 40960)
        intermediateSize = try config.int("intermediate_size", default: 0)
        moeIntermediateSize = try config.int("moe_intermediate_size")
        attentionBias = try config.bool("attention_bias", default: false)
        let experts = try config.optionalInt("num_experts") ?? config.int("num_local_experts")
        let topK = try config.int("num_experts_per_tok")
        guard experts > 0, topK > 0, topK <= experts else {
            throw ConfigError.invalidValue(path: config.path, key: "num_experts_per_tok", detail: "must be in 1...\(experts)")
        }
        guard moeIntermediateSize > 0 else {
            throw ConfigError.invalidValue(path: config.path, key: "moe_intermediate_size", detail: "must be positive, got \(moeIntermediateSize)")
        }
        router = RouterSettings(scoring: .softmax, method: .greedy, experts: experts, topK: topK,
                                normalize: try config.bool("norm_topk_prob", default: false), normalizeSingle: true)
        sparseStep = try config.int("decoder_sparse_step", default: 1)
        guard sparseStep > 0 else { throw ConfigError.invalidValue(path: config.path, key: "decoder_sparse_step", detail: "must be positive") }
        denseLayers = Set(try config.intList("mlp_only_layers"))
        if (0..<dims.layers).contains(where: { !isMoELayer($0) }) && intermediateSize <= 0 {
            throw ConfigError.missingKey(path: config.path, key: "intermediate_size")
        }
    }

    /// Whether layer `i` routes to experts (transformers' rule).
    public func isMoELayer(_ i: Int) -> Bool { !denseLayers.contains(i) && (i + 1) % sparseStep == 0 }

    public var parameters: [ParameterLayout.Entry] {
        var e = DecoderStack.parameters(vocabSize: dims.vocabSize, hidden: dims.hiddenSize, tied: dims.tiedEmbeddings)
        for i in 0..<dims.layers {
            let p = "model.layers.\(i)"
            e += dims.attentionParameters(p, bias: attentionBias, headNorm: true)
            e += isMoELayer(i)
                ? MixtureOfExperts.parameters("\(p).mlp", hidden: dims.hiddenSize, intermediate: moeIntermediateSize, experts: router.experts,
                                              sharedIntermediate: nil, bias: false)
                : GatedMLP.parameters("\(p).mlp", hidden: dims.hiddenSize, intermediate: intermediateSize)
        }
        return e
    }

    public var inactiveParameters: Int {
        (0..<dims.layers).filter(isMoELayer).count * (router.experts - router.topK) * 3 * dims.hiddenSize * moeIntermediateSize
    }

    public var cacheLayout: [[CacheStreamSpec]] { dims.cacheLayout }

    public func build(weights: any WeightStore, options: RunOptions) throws -> any LanguageModel {
        try options.requireKujiraNumerics(config)
        let rope = try dims.rotaryEmbedding(weights: weights)
        let eps = Float(dims.rmsNormEps), hidden = dims.hiddenSize
        let blocks: [any DecoderBlock] = try (0..<dims.layers).map { i in
            let attention = try dims.attention(i, weights: weights, bias: attentionBias, headNorm: true, rope: rope)
            let mlp: any FeedForward = isMoELayer(i)
                ? try MixtureOfExperts.load(weights: weights, prefix: "model.layers.\(i).mlp", settings: router, hidden: hidden,
                                            intermediate: moeIntermediateSize, sharedIntermediate: nil, blockSize: nil)
                : try GatedMLP(weights: weights, prefix: "model.layers.\(i).mlp", hidden: hidden, intermediate: intermediateSize, blockSize: nil)
            return try DecoderLayer(weights: weights, prefix: "model.layers.\(i)", hidden: hidden, eps: eps, mixer: attention, feedForward: mlp)
        }
        let stack = try DecoderStack(config: config, weights: weights, layers: blocks, vocabSize: dims.vocabSize, hidden: hidden, eps: eps, blockSize: nil)
        return DecoderModel(architecture: self, stack: stack, options: options, maxPositions: dims.maxPositions)
    }

    /// llama.cpp's qwen3moe always renormalises the chosen experts' weights.
    public static func configValues(gguf g: GGUFMetadata) throws -> [String: JSONValue] {
        var values = DecoderDimensions.configValues(gguf: g, modelType: "qwen3_moe")
        values["num_experts"] = .number(Double(try g.required("expert_count")))
        values["num_experts_per_tok"] = .number(Double(try g.required("expert_used_count")))
        values["moe_intermediate_size"] = GGUFMetadata.number(g.int("expert_feed_forward_length")
            ?? g.int("feed_forward_length").map { $0 / max(g.int("expert_used_count") ?? 1, 1) })
        values["norm_topk_prob"] = .bool(true)
        return values
    }

    /// As convert_hf_to_gguf's Qwen3MoeModel writes `qwen3moe` (every layer routed: llama.cpp has no dense qwen3moe layers).
    public func ggufExport(source: SourceTensors) throws -> GGUFArchitectureExport {
        if let dense = (0..<dims.layers).first(where: { !isMoELayer($0) }) {
            throw ModelExportError.unsupportedSetting(path: config.path, key: "mlp_only_layers",
                                                      detail: "makes layer \(dense) dense; llama.cpp's qwen3moe routes every layer")
        }
        var m = dims.ggufMetadata(arch: "qwen3moe", config: config, feedForward: intermediateSize > 0 ? intermediateSize : nil)
        m += try ropeScaling(dims.rope, arch: "qwen3moe", path: config.path, allowLlama3: false)
        m += [("qwen3moe.expert_count", u32(router.experts)), ("qwen3moe.expert_used_count", u32(router.topK)),
              ("qwen3moe.expert_feed_forward_length", u32(moeIntermediateSize))]
        var tensors = try GGUFExportBlocks.modelWide(source: source, config: config, vocabSize: dims.vocabSize, hidden: dims.hiddenSize)
        for i in 0..<dims.layers {
            let experts = try GGUFExportBlocks.mixtureOfExperts("model.layers.\(i).mlp", layer: i, source: source, hidden: dims.hiddenSize,
                                                                intermediate: moeIntermediateSize, experts: router.experts, bias: false, sharedIntermediate: nil)
            tensors += try GGUFExportBlocks.groupedQueryLayer(
                i, source: source, hidden: dims.hiddenSize, heads: dims.heads, kvHeads: dims.kvHeads, headDim: dims.headDim, bias: attentionBias,
                headNorms: true, permuteHeads: false, feedForward: experts)
        }
        return (m, tensors)
    }
}
