import Foundation
import KujiraFormats
import KujiraTensor

/// How an architecture's tensors are named in GGUF files: model-wide names, and per-layer suffixes
/// (`blk.<i>.<gguf>` ↔ `model.layers.<i>.<hf>`). Shared blocks declare their part next to their code
/// (`GGUFTensorNames.groupedQueryAttention`, `.latentAttention`, …) and an architecture adds up the parts it uses.
/// Routed experts stacked per projection (E, rows, cols) go by the HF name without `.weight`.
public struct GGUFTensorNames: Sendable {
    /// GGUF name → HF name of model-wide tensors.
    public var global: [String: String]
    /// GGUF suffix → HF suffix of per-layer tensors.
    public var layer: [String: String]

    public init(global: [String: String] = [:], layer: [String: String] = [:]) {
        self.global = global
        self.layer = layer
    }

    /// Both tables of `a` and `b`.
    public static func + (a: GGUFTensorNames, b: GGUFTensorNames) -> GGUFTensorNames {
        GGUFTensorNames(global: a.global.merging(b.global) { x, _ in x }, layer: a.layer.merging(b.layer) { x, _ in x })
    }

    /// The decoder scaffolding every llama.cpp architecture shares: embeddings, final norm, output, RoPE factors, the
    /// two per-layer norms.
    public static let decoder = GGUFTensorNames(
        global: ["token_embd.weight": DecoderStack.embeddingName, "output_norm.weight": DecoderStack.finalNormName,
                 "output.weight": DecoderStack.lmHeadName, "rope_freqs.weight": RotaryEmbedding.frequencyFactorsTensor],
        layer: ["attn_norm.weight": DecoderLayer.inputNormName, "ffn_norm.weight": DecoderLayer.postAttentionNormName])

    /// A dense SwiGLU MLP at `mlp.`.
    public static let denseMLP = GGUFTensorNames(layer: [
        "ffn_gate.weight": "mlp.\(GatedMLP.gateName)", "ffn_up.weight": "mlp.\(GatedMLP.upName)", "ffn_down.weight": "mlp.\(GatedMLP.downName)"])

    /// The GGUF name of an HF tensor name, or nil when GGUF has no such tensor.
    public func ggufName(ofHF name: String) -> String? {
        if let global = global.first(where: { $0.value == name })?.key { return global }
        let parts = name.split(separator: ".", maxSplits: 3)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let index = Int(parts[2]),
              let suffix = layer.first(where: { $0.value == parts[3] })?.key else { return nil }
        return "blk.\(index).\(suffix)"
    }

    /// HF name → GGUF name for every tensor of `file` these tables know (others stay unreachable).
    func hfNames(file: GGUFFileSet) -> [String: String] {
        var names: [String: String] = [:]
        for info in file.tensorInfos {
            if let hf = global[info.name] {
                names[hf] = info.name
            } else if info.name.hasPrefix("blk.") {
                let parts = info.name.split(separator: ".", maxSplits: 2)
                if parts.count == 3, let index = Int(parts[1]), let hf = layer[String(parts[2])] {
                    names["model.layers.\(index).\(hf)"] = info.name
                }
            }
        }
        return names
    }
}

/// A GGUF file's metadata as an architecture reads it: keys under its `general.architecture` prefix.
public struct GGUFMetadata {
    /// The file (or the shards of a split file; metadata comes from the first).
    public let file: GGUFFileSet
    /// llama.cpp's architecture name (`llama`, `qwen2`, `deepseek2`, …).
    public let architecture: String

    public var path: String { file.path }

    /// `<arch>.<key>` as an integer, clamped by `SizeLimits.clamped` (so the config built from it bounds it).
    public func int(_ key: String) -> Int? { file.int("\(architecture).\(key)").map(SizeLimits.clamped) }
    public func float(_ key: String) -> Float? { file.float("\(architecture).\(key)") }
    public func bool(_ key: String) -> Bool? { file.bool("\(architecture).\(key)") }

    /// `<arch>.<key>`, or an error naming the file and key.
    public func required(_ key: String) throws -> Int {
        guard let v = int(key) else { throw GGUFError.invalidMetadata(path: file.path, key: "\(architecture).\(key)", reason: "missing") }
        return v
    }

    /// Whether the file has a tensor whose name ends with `suffix`.
    public func hasTensor(endingWith suffix: String) -> Bool { file.tensorInfos.contains { $0.name.hasSuffix(suffix) } }

    /// A JSON number, or null.
    public static func number(_ v: Int?) -> JSONValue { v.map { .number(Double($0)) } ?? .null }
    public static func number(_ v: Float?) -> JSONValue { v.map { .number(Double($0)) } ?? .null }
}

/// Presents a GGUF model as the Hugging Face config and tensor names the architectures read, so one model definition
/// serves both file formats. The architecture whose `ggufArchitectures` names the file's `general.architecture`
/// supplies its own config keys and tensor names.
public enum GGUFModelAdapter {
    /// The HF-style config and a weight store with HF tensor names over the GGUF file at `path` — with its sibling
    /// shards when `path` is any shard of a gguf-split set (`GGUFFileSet`).
    public static func open(path: String) throws -> (ModelConfig, any WeightStore) {
        let file = try GGUFFileSet(path: path)
        let store = GGUFWeightStore(files: file)
        guard let name = file.string("general.architecture") else {
            throw GGUFError.invalidMetadata(path: path, key: "general.architecture", reason: "missing")
        }
        guard let architecture = ModelRegistry.architecture(gguf: name) else {
            let known = ModelRegistry.architectures.flatMap { $0.ggufArchitectures }.sorted()
            throw GGUFError.invalidMetadata(path: path, key: "general.architecture",
                                            reason: "'\(quoted(name))' is not supported (supported: \(known.joined(separator: ", ")))")
        }
        let metadata = GGUFMetadata(file: file, architecture: name)
        var values = try commonValues(metadata)
        values.merge(try architecture.configValues(gguf: metadata)) { _, specific in specific }
        let config = ModelConfig(values: values.filter { $0.value != .null }, path: file.path)
        return (config, RenamedWeightStore(base: store, names: architecture.ggufTensorNames.hfNames(file: file)))
    }

    /// The keys every llama.cpp architecture writes the same way: sizes, heads, context, norm epsilon, vocabulary,
    /// special tokens, RoPE base and scaling.
    static func commonValues(_ g: GGUFMetadata) throws -> [String: JSONValue] {
        let file = g.file
        typealias M = GGUFMetadata
        let heads = try g.required("attention.head_count")
        var values: [String: JSONValue] = [
            "hidden_size": .number(Double(try g.required("embedding_length"))),
            "num_hidden_layers": .number(Double(try g.required("block_count"))),
            "num_attention_heads": .number(Double(heads)),
            "max_position_embeddings": M.number(g.int("context_length")),
            "rms_norm_eps": M.number(g.float("attention.layer_norm_rms_epsilon")),
            "vocab_size": M.number(g.int("vocab_size") ?? file.strings("tokenizer.ggml.tokens")?.count),
            "intermediate_size": M.number(g.int("feed_forward_length")),
            "bos_token_id": M.number(file.int("tokenizer.ggml.bos_token_id").map(SizeLimits.clamped)),
            "eos_token_id": M.number(file.int("tokenizer.ggml.eos_token_id").map(SizeLimits.clamped)),
            "tie_word_embeddings": .bool(!file.tensorInfos.contains { $0.name == "output.weight" }),
        ]
        var rope: [String: JSONValue] = ["rope_theta": .number(Double(g.float("rope.freq_base") ?? 10000))]
        let scalingType = file.string("\(g.architecture).rope.scaling.type") ?? "none"
        if scalingType == "yarn" || scalingType == "linear" {
            rope["rope_type"] = .string(scalingType)
            rope["factor"] = M.number(g.float("rope.scaling.factor"))
            rope["original_max_position_embeddings"] = M.number(g.int("rope.scaling.original_context_length"))
            rope["beta_fast"] = M.number(g.float("rope.scaling.yarn_beta_fast"))
            rope["beta_slow"] = M.number(g.float("rope.scaling.yarn_beta_slow"))
            // llama.cpp's yarn_log_multiplier is 0.1 · mscale_all_dim (the softmax-scale mscale); the cos/sin factor is 1.
            if let logMultiplier = g.float("rope.scaling.yarn_log_multiplier"), logMultiplier > 0 {
                rope["mscale"] = .number(Double(logMultiplier) / 0.1)
                rope["mscale_all_dim"] = .number(Double(logMultiplier) / 0.1)
            }
        } else if scalingType != "none" {
            throw GGUFError.invalidMetadata(path: file.path, key: "\(g.architecture).rope.scaling.type", reason: "'\(quoted(scalingType))' is not supported")
        }
        values["rope_parameters"] = .object(rope)
        return values
    }
}

/// A weight store that answers to other names (HF names over a GGUF file).
struct RenamedWeightStore: WeightStore {
    let base: GGUFWeightStore
    /// Exposed name → stored name.
    let names: [String: String]

    var source: String { base.source }
    var tensorNames: [String] { names.keys.sorted() }
    func contains(_ name: String) -> Bool { names[name] != nil }

    func tensor(_ name: String) throws -> TensorData {
        guard let stored = names[name] else { throw WeightStoreError.missingTensor(name: name, source: base.source) }
        return try base.tensor(stored)
    }

    func file(of name: String) -> String? { names[name].flatMap { base.file(of: $0) } }
}
