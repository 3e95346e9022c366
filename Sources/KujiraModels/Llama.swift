import KujiraFormats
import KujiraTensor

/// Configuration of Llama-family decoders: `llama` (R1-Distill-Llama) and `qwen2` (R1-Distill-Qwen, which adds
/// q/k/v biases). Both are GQA + RoPE + SwiGLU with pre-RMSNorm.
public struct LlamaConfiguration: Sendable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var maxPositions: Int
    public var rmsNormEps: Double
    /// q/k/v projections carry biases (always for qwen2, `attention_bias` for llama).
    public var attentionBias: Bool
    public var rope: RopeConfig
    /// Rotate pairs (2i, 2i+1) instead of (i, i+d/2): llama.cpp's converter permutes Llama's q/k rows for this.
    public var ropeInterleaved: Bool

    public init(_ config: ModelConfig) throws {
        hiddenSize = try config.int("hidden_size")
        intermediateSize = try config.int("intermediate_size")
        layers = try config.int("num_hidden_layers")
        heads = try config.int("num_attention_heads")
        kvHeads = try config.int("num_key_value_heads", default: heads)
        headDim = try config.optionalInt("head_dim") ?? (heads > 0 ? hiddenSize / heads : 0)
        vocabSize = try config.int("vocab_size")
        maxPositions = try config.int("max_position_embeddings", default: 4096)
        rmsNormEps = try config.float("rms_norm_eps", default: 1e-6)
        attentionBias = try config.modelType == "qwen2" ? true : config.bool("attention_bias", default: false)
        rope = try config.rope()
        ropeInterleaved = try config.bool("rope_interleave", default: false)
        for (key, value) in [("hidden_size", hiddenSize), ("num_hidden_layers", layers), ("num_attention_heads", heads),
                             ("num_key_value_heads", kvHeads), ("head_dim", headDim), ("vocab_size", vocabSize)] where value <= 0 {
            throw ConfigError.invalidValue(path: config.path, key: key, detail: "must be positive, got \(value)")
        }
        guard heads % kvHeads == 0 else {
            throw ConfigError.invalidValue(path: config.path, key: "num_key_value_heads", detail: "\(kvHeads) does not divide num_attention_heads \(heads)")
        }
        guard headDim % 2 == 0 else { throw ConfigError.invalidValue(path: config.path, key: "head_dim", detail: "must be even for RoPE") }
    }
}

/// Llama / Qwen2 causal LM.
public final class LlamaModel: DecoderStackModel {
    public let config: ModelConfig
    public let configuration: LlamaConfiguration
    public let stack: DecoderStack
    /// How `makeCache` stores K and V (`--kv-bits`).
    public let cachePrecision: KVCachePrecision
    /// Kujira's kernels, or llama.cpp's arithmetic bit for bit (`--numerics llama.cpp`).
    public let numerics: Numerics

    public init(config: ModelConfig, weights: any WeightStore, cachePrecision: KVCachePrecision = .float32, numerics: Numerics = .kujira) throws {
        let c = try LlamaConfiguration(config)
        self.numerics = numerics
        self.config = config
        self.cachePrecision = cachePrecision
        configuration = c
        let factors = weights.contains(RotaryEmbedding.frequencyFactorsTensor)
            ? try weights.floats(RotaryEmbedding.frequencyFactorsTensor, shape: [c.headDim / 2]) : nil
        let rope = RotaryEmbedding(config: c.rope, dim: c.headDim, maxPositionEmbeddings: c.maxPositions,
                                   layout: c.ropeInterleaved ? .interleaved : .halfSplit, frequencyFactors: factors)
        var layers: [DecoderLayer] = []
        for i in 0..<c.layers {
            let prefix = "model.layers.\(i)"
            let attention = try GroupedQueryAttention(weights: weights, prefix: "\(prefix).self_attn", hidden: c.hiddenSize, heads: c.heads,
                                                      kvHeads: c.kvHeads, headDim: c.headDim, bias: c.attentionBias, rope: rope, blockSize: nil,
                                                      numerics: numerics)
            let mlp = try GatedMLP(weights: weights, prefix: "\(prefix).mlp", hidden: c.hiddenSize, intermediate: c.intermediateSize, blockSize: nil,
                                   numerics: numerics)
            layers.append(DecoderLayer(inputNorm: try weights.floats("\(prefix).input_layernorm.weight", shape: [c.hiddenSize]),
                                       mixer: attention,
                                       postAttentionNorm: try weights.floats("\(prefix).post_attention_layernorm.weight", shape: [c.hiddenSize]),
                                       feedForward: mlp, numerics: numerics))
        }
        stack = try DecoderStack(config: config, weights: weights, layers: layers, vocabSize: c.vocabSize, hidden: c.hiddenSize,
                                 eps: Float(c.rmsNormEps), blockSize: nil, numerics: numerics)
        if numerics == .llamaCpp { try checkLlamaCppNumerics() }
    }

    /// What `--numerics llama.cpp` covers (docs/inference.md): the f16 cache, Q4_1/Q8_0 weights, head sizes that are
    /// multiples of 16, default or linear RoPE. Anything else is refused by name rather than run approximately.
    private func checkLlamaCppNumerics() throws {
        let path = config.path
        guard cachePrecision == .float16 else {
            throw NumericsError.unsupported(path: path, detail: "needs the f16 KV cache (llama.cpp's default), got \(cachePrecision)")
        }
        guard configuration.headDim % 16 == 0 else {
            throw NumericsError.unsupported(path: path, detail: "head_dim \(configuration.headDim) is not a multiple of 16")
        }
        guard ["default", "linear"].contains(configuration.rope.type) else {
            throw NumericsError.unsupported(path: path, detail: "RoPE scaling '\(configuration.rope.type)' (only default and linear are emulated)")
        }
        var weights: [(String, LinearWeight)] = [("lm_head", stack.lmHead)]
        for (i, layer) in stack.layers.enumerated() {
            guard let attention = layer.mixer as? GroupedQueryAttention, let mlp = layer.feedForward as? GatedMLP else { continue }
            weights += [("q_proj", attention.qProj), ("k_proj", attention.kProj), ("v_proj", attention.vProj), ("o_proj", attention.oProj),
                        ("gate_proj", mlp.gate), ("up_proj", mlp.up), ("down_proj", mlp.down)].map { ("layers.\(i).\($0.0)", $0.1) }
        }
        for (name, weight) in weights where !GGMLLinear.supported.contains(weight.data.dtype) || weight.cols % 32 != 0 {
            throw NumericsError.unsupported(path: path, detail: "tensor \(name) is \(weight.data.dtype); emulated: \(GGMLLinear.supported.map(\.rawValue).sorted().joined(separator: ", "))")
        }
    }

    public var vocabSize: Int { configuration.vocabSize }
    public var maxPositions: Int { configuration.maxPositions }

    public func makeCache() -> KVCache {
        KVCache(layerCount: configuration.layers, rowWidth: stack.layers.first?.mixer.cacheRowWidth ?? 0,
                precision: cachePrecision, groupSize: KVCachePrecision.groupSize(segments: [configuration.headDim]))
    }

    public var summary: ModelSummary {
        let total = stack.totalParameters
        return ModelSummary(architecture: (try? config.modelType) ?? "llama", totalParameters: total, activeParameters: total, kvValuesPerTokenPerLayer: stack.layers.first?.mixer.cacheRowWidth ?? 0,
                            layers: configuration.layers, kvCacheGroupSize: KVCachePrecision.groupSize(segments: [configuration.headDim]))
    }
}
