import KujiraFormats
import KujiraTensor

/// Llama-family decoders: `llama` (R1-Distill-Llama) and `qwen2` (R1-Distill-Qwen, which adds q/k/v biases). Both are
/// GQA + RoPE + SwiGLU with pre-RMSNorm. GGUF: llama.cpp's `llama` (q/k rows permuted for interleaved RoPE) and `qwen2`.
public struct LlamaConfiguration: ModelArchitecture {
    public static let modelTypes = ["llama", "qwen2"]
    public static let ggufArchitectures = ["llama", "qwen2"]
    public static let ggufTensorNames = GGUFTensorNames.decoder + .groupedQueryAttention + .denseMLP

    public let config: ModelConfig
    public let dims: DecoderDimensions
    public var intermediateSize: Int
    /// q/k/v projections carry biases (always for qwen2, `attention_bias` for llama).
    public var attentionBias: Bool
    /// Rotate pairs (2i, 2i+1) instead of (i, i+d/2): llama.cpp's converter permutes Llama's q/k rows for this.
    public var ropeInterleaved: Bool

    public var layers: Int { dims.layers }
    public var headDim: Int { dims.headDim }
    public var rope: RopeConfig { dims.rope }

    public init(_ config: ModelConfig) throws {
        self.config = config
        dims = try DecoderDimensions(config)
        intermediateSize = try config.int("intermediate_size")
        attentionBias = try config.modelType == "qwen2" ? true : config.bool("attention_bias", default: false)
        ropeInterleaved = try config.bool("rope_interleave", default: false)
    }

    public var parameters: [ParameterLayout.Entry] {
        var e = DecoderStack.parameters(vocabSize: dims.vocabSize, hidden: dims.hiddenSize, tied: dims.tiedEmbeddings)
        for i in 0..<layers {
            e += dims.attentionParameters("model.layers.\(i)", bias: attentionBias, headNorm: false)
            e += GatedMLP.parameters("model.layers.\(i).mlp", hidden: dims.hiddenSize, intermediate: intermediateSize)
        }
        return e
    }

    public var inactiveParameters: Int { 0 }

    public var cacheLayout: [[CacheStreamSpec]] { dims.cacheLayout }

    public func build(weights: any WeightStore, options: RunOptions) throws -> any LanguageModel {
        let rope = try dims.rotaryEmbedding(weights: weights, interleaved: ropeInterleaved)
        let eps = Float(dims.rmsNormEps), hidden = dims.hiddenSize
        let blocks: [any DecoderBlock] = try (0..<layers).map { i in
            let attention = try dims.attention(i, weights: weights, bias: attentionBias, headNorm: false, rope: rope)
            let mlp = try GatedMLP(weights: weights, prefix: "model.layers.\(i).mlp", hidden: hidden, intermediate: intermediateSize, blockSize: nil)
            return try DecoderLayer(weights: weights, prefix: "model.layers.\(i)", hidden: hidden, eps: eps, mixer: attention, feedForward: mlp)
        }
        let stack = try DecoderStack(config: config, weights: weights, layers: blocks, vocabSize: dims.vocabSize, hidden: hidden, eps: eps, blockSize: nil)
        if options.numerics == .llamaCpp { try checkLlamaCppNumerics(stack, options: options) }
        return DecoderModel(architecture: self, stack: stack, options: options, maxPositions: dims.maxPositions)
    }

    /// What `--numerics llama.cpp` covers (docs/inference.md): the f16 cache, Q4_1/Q8_0 weights, head sizes that are
    /// multiples of 16, default or linear RoPE. Anything else is refused by name rather than run approximately.
    private func checkLlamaCppNumerics(_ stack: DecoderStack, options: RunOptions) throws {
        let path = config.path
        guard options.cachePrecision == .float16 else {
            throw NumericsError.unsupported(path: path, detail: "needs the f16 KV cache (llama.cpp's default), got \(options.cachePrecision)")
        }
        guard headDim % 16 == 0 else {
            throw NumericsError.unsupported(path: path, detail: "head_dim \(headDim) is not a multiple of 16")
        }
        guard ["default", "linear"].contains(rope.type) else {
            throw NumericsError.unsupported(path: path, detail: "RoPE scaling '\(rope.type)' (only default and linear are emulated)")
        }
        var weights: [(String, LinearWeight)] = [("lm_head", stack.lmHead)]
        for (i, block) in stack.layers.enumerated() {
            guard let layer = block as? DecoderLayer, let attention = layer.mixer as? GroupedQueryAttention,
                  let mlp = layer.feedForward as? GatedMLP else { continue }
            weights += [("q_proj", attention.qProj), ("k_proj", attention.kProj), ("v_proj", attention.vProj), ("o_proj", attention.oProj),
                        ("gate_proj", mlp.gate), ("up_proj", mlp.up), ("down_proj", mlp.down)].map { ("layers.\(i).\($0.0)", $0.1) }
        }
        for (name, weight) in weights where !GGMLLinear.supported.contains(weight.data.dtype) || weight.cols % 32 != 0 {
            throw NumericsError.unsupported(path: path, detail: "tensor \(name) is \(weight.data.dtype); emulated: \(GGMLLinear.supported.map(\.rawValue).sorted().joined(separator: ", "))")
        }
    }

    // MARK: GGUF

    public static func configValues(gguf g: GGUFMetadata) throws -> [String: JSONValue] {
        var values = DecoderDimensions.configValues(gguf: g, modelType: g.architecture)
        // llama.cpp's converter permutes Llama's q/k rows so that rotating interleaved pairs is exact.
        values["rope_interleave"] = .bool(g.architecture == "llama")
        return values
    }

    /// As convert_hf_to_gguf's LlamaModel / Qwen2Model write them.
    public func ggufExport(source: SourceTensors) throws -> GGUFArchitectureExport {
        let arch = try config.modelType
        var m = dims.ggufMetadata(arch: arch, config: config, feedForward: intermediateSize)
        if arch == "llama" { m += [("\(arch).vocab_size", u32(dims.vocabSize)), ("\(arch).rope.dimension_count", u32(headDim))] }
        m += try ropeScaling(rope, arch: arch, path: config.path, allowLlama3: arch == "llama")

        var tensors = try GGUFExportBlocks.modelWide(source: source, config: config, vocabSize: dims.vocabSize, hidden: dims.hiddenSize)
        if rope.type == "llama3" {
            let factors = GGUFExportBlocks.llama3FrequencyFactors(rope, dim: headDim)
            tensors.append(("rope_freqs.weight", [factors.count], { factors }))
        }
        for i in 0..<layers {
            // llama.cpp's converter permutes Llama's q/k rows so interleaved-pair rotation is exact (the adapter reads
            // them back with rope_interleave); Qwen2 keeps HF's half-split order.
            tensors += try GGUFExportBlocks.groupedQueryLayer(
                i, source: source, hidden: dims.hiddenSize, heads: dims.heads, kvHeads: dims.kvHeads, headDim: headDim, bias: attentionBias,
                headNorms: false, permuteHeads: arch == "llama" && !ropeInterleaved,
                feedForward: try GGUFExportBlocks.denseMLP("model.layers.\(i).mlp", source: source, hidden: dims.hiddenSize, intermediate: intermediateSize))
        }
        return (m, tensors)
    }
}
