import KujiraFormats
import KujiraTensor

/// Qwen3 (`qwen3`), the architecture of DeepSeek-R1-0528-Qwen3-8B: Llama-style GQA + SwiGLU with an explicit
/// `head_dim`, no biases, and RMSNorm on every query and key head (`q_norm`, `k_norm`) before RoPE — the one hook it
/// needs from `GroupedQueryAttention`. GGUF: llama.cpp's `qwen3` (no q/k row permutation).
public struct Qwen3Configuration: ModelArchitecture {
    public static let modelTypes = ["qwen3"]
    public static let ggufArchitectures = ["qwen3"]
    public static let ggufTensorNames = GGUFTensorNames.decoder + .groupedQueryAttention + .attentionHeadNorms + .denseMLP

    public let config: ModelConfig
    public let dims: DecoderDimensions
    public var intermediateSize: Int
    /// q/k/v projections carry biases (`attention_bias`, false in every published Qwen3).
    public var attentionBias: Bool

    public init(_ config: ModelConfig) throws {
        self.config = config
        dims = try DecoderDimensions(config, maxPositionsDefault: 40960)
        intermediateSize = try config.int("intermediate_size")
        attentionBias = try config.bool("attention_bias", default: false)
    }

    public var parameters: [ParameterLayout.Entry] {
        var e = DecoderStack.parameters(vocabSize: dims.vocabSize, hidden: dims.hiddenSize, tied: dims.tiedEmbeddings)
        for i in 0..<dims.layers {
            e += dims.attentionParameters("model.layers.\(i)", bias: attentionBias, headNorm: true)
            e += GatedMLP.parameters("model.layers.\(i).mlp", hidden: dims.hiddenSize, intermediate: intermediateSize)
        }
        return e
    }

    public var inactiveParameters: Int { 0 }
    public var cacheLayout: [[CacheStreamSpec]] { dims.cacheLayout }

    public func build(weights: any WeightStore, options: RunOptions) throws -> any LanguageModel {
        try options.requireKujiraNumerics(config)
        let rope = try dims.rotaryEmbedding(weights: weights)
        let eps = Float(dims.rmsNormEps), hidden = dims.hiddenSize
        let blocks: [any DecoderBlock] = try (0..<dims.layers).map { i in
            let attention = try dims.attention(i, weights: weights, bias: attentionBias, headNorm: true, rope: rope)
            let mlp = try GatedMLP(weights: weights, prefix: "model.layers.\(i).mlp", hidden: hidden, intermediate: intermediateSize, blockSize: nil)
            return try DecoderLayer(weights: weights, prefix: "model.layers.\(i)", hidden: hidden, eps: eps, mixer: attention, feedForward: mlp)
        }
        let stack = try DecoderStack(config: config, weights: weights, layers: blocks, vocabSize: dims.vocabSize, hidden: hidden, eps: eps, blockSize: nil)
        return DecoderModel(architecture: self, stack: stack, options: options, maxPositions: dims.maxPositions)
    }

    public static func configValues(gguf g: GGUFMetadata) throws -> [String: JSONValue] {
        DecoderDimensions.configValues(gguf: g, modelType: "qwen3")
    }

    /// As convert_hf_to_gguf's Qwen3Model writes `qwen3`.
    public func ggufExport(source: SourceTensors) throws -> GGUFArchitectureExport {
        var m = dims.ggufMetadata(arch: "qwen3", config: config, feedForward: intermediateSize)
        m += try ropeScaling(dims.rope, arch: "qwen3", path: config.path, allowLlama3: false)
        var tensors = try GGUFExportBlocks.modelWide(source: source, config: config, vocabSize: dims.vocabSize, hidden: dims.hiddenSize)
        for i in 0..<dims.layers {
            tensors += try GGUFExportBlocks.groupedQueryLayer(
                i, source: source, hidden: dims.hiddenSize, heads: dims.heads, kvHeads: dims.kvHeads, headDim: dims.headDim, bias: attentionBias,
                headNorms: true, permuteHeads: false,
                feedForward: try GGUFExportBlocks.denseMLP("model.layers.\(i).mlp", source: source, hidden: dims.hiddenSize, intermediate: intermediateSize))
        }
        return (m, tensors)
    }
}
