import KujiraFormats
import KujiraTensor

/// The config fields every GQA decoder reads the same way (Llama, Qwen2 and the architectures built like them): sizes, heads, context,
/// norm epsilon, RoPE and tied embeddings, with their defaults and checks. Architecture files parse these once here
/// and add their own keys.
public struct DecoderDimensions: Sendable {
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var maxPositions: Int
    public var rmsNormEps: Double
    public var rope: RopeConfig
    public var tiedEmbeddings: Bool

    public init(_ config: ModelConfig, maxPositionsDefault: Int = 4096) throws {
        hiddenSize = try config.int("hidden_size")
        layers = try config.int("num_hidden_layers")
        heads = try config.int("num_attention_heads")
        kvHeads = try config.int("num_key_value_heads", default: heads)
        headDim = try config.optionalInt("head_dim") ?? (heads > 0 ? hiddenSize / heads : 0)
        vocabSize = try config.int("vocab_size")
        maxPositions = try config.int("max_position_embeddings", default: maxPositionsDefault)
        rmsNormEps = try config.float("rms_norm_eps", default: 1e-6)
        rope = try config.rope()
        tiedEmbeddings = try config.bool("tie_word_embeddings", default: false)
        for (key, value) in [("hidden_size", hiddenSize), ("num_hidden_layers", layers), ("num_attention_heads", heads),
                             ("num_key_value_heads", kvHeads), ("head_dim", headDim), ("vocab_size", vocabSize),
                             ("max_position_embeddings", maxPositions)] where value <= 0 {
            throw ConfigError.invalidValue(path: config.path, key: key, detail: "must be positive, got \(value)")
        }
        guard heads % kvHeads == 0 else {
            throw ConfigError.invalidValue(path: config.path, key: "num_key_value_heads", detail: "\(kvHeads) does not divide num_attention_heads \(heads)")
        }
        guard headDim % 2 == 0 else { throw ConfigError.invalidValue(path: config.path, key: "head_dim", detail: "must be even for RoPE") }
        if try config.bool("use_sliding_window", default: false) {
            throw ConfigError.invalidValue(path: config.path, key: "use_sliding_window", detail: "sliding-window attention is not supported for this architecture")
        }
    }

    /// The cache stream of every layer (`[K | V]` per token).
    public var cacheLayout: [[CacheStreamSpec]] {
        Array(repeating: [GroupedQueryAttention.cacheStream(kvHeads: kvHeads, headDim: headDim)], count: layers)
    }

    /// Layer `prefix`'s attention and norm parameters (`headNorm`: per-head q/k norms).
    public func attentionParameters(_ prefix: String, bias: Bool, headNorm: Bool) -> [ParameterLayout.Entry] {
        DecoderLayer.normParameters(prefix, hidden: hiddenSize)
            + GroupedQueryAttention.parameters("\(prefix).self_attn", hidden: hiddenSize, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                               bias: bias, headNorm: headNorm)
    }

    /// The RoPE of every layer (half-split pairs unless `interleaved`), with GGUF's per-pair factors when present.
    public func rotaryEmbedding(weights: any WeightStore, interleaved: Bool = false) throws -> RotaryEmbedding {
        let factors = weights.contains(RotaryEmbedding.frequencyFactorsTensor)
            ? try weights.floats(RotaryEmbedding.frequencyFactorsTensor, shape: [headDim / 2]) : nil
        return RotaryEmbedding(config: rope, dim: headDim, maxPositionEmbeddings: maxPositions, layout: interleaved ? .interleaved : .halfSplit,
                               frequencyFactors: factors)
    }

    /// Layer `i`'s GQA block.
    public func attention(_ i: Int, weights: any WeightStore, bias: Bool, headNorm: Bool, rope: RotaryEmbedding) throws -> GroupedQueryAttention {
        try GroupedQueryAttention(weights: weights, prefix: "model.layers.\(i).self_attn", hidden: hiddenSize, heads: heads, kvHeads: kvHeads,
                                  headDim: headDim, bias: bias, headNorm: headNorm, normEps: Float(rmsNormEps), rope: rope, blockSize: nil)
    }

    /// The GGUF keys convert_hf_to_gguf's TextModel writes for these fields under `arch` (key/value length only when
    /// the config names `head_dim` or it differs from hidden / heads).
    public func ggufMetadata(arch: String, config: ModelConfig, feedForward: Int?) -> [(String, GGUFValue)] {
        var m: [(String, GGUFValue)] = [
            ("general.architecture", .string(arch)), ("\(arch).block_count", u32(layers)), ("\(arch).context_length", u32(maxPositions)),
            ("\(arch).embedding_length", u32(hiddenSize)),
        ]
        if let feedForward { m.append(("\(arch).feed_forward_length", u32(feedForward))) }
        m += [("\(arch).attention.head_count", u32(heads)), ("\(arch).attention.head_count_kv", u32(kvHeads)),
              ("\(arch).rope.freq_base", f32(rope.theta)), ("\(arch).attention.layer_norm_rms_epsilon", f32(rmsNormEps))]
        if config.has("head_dim") || headDim * heads != hiddenSize {
            m += [("\(arch).attention.key_length", u32(headDim)), ("\(arch).attention.value_length", u32(headDim))]
        }
        return m
    }

    /// The config keys of a GQA GGUF file beyond the common ones.
    public static func configValues(gguf g: GGUFMetadata, modelType: String) -> [String: JSONValue] {
        ["model_type": .string(modelType),
         "num_key_value_heads": GGUFMetadata.number(g.int("attention.head_count_kv") ?? g.int("attention.head_count")),
         "head_dim": GGUFMetadata.number(g.int("attention.key_length"))]
    }
}
