import Foundation
import KujiraFormats
import KujiraTensor

/// Everything Kujira knows about one architecture, declared in that architecture's file: its config fields and
/// defaults (the conforming type parses them), how it builds its blocks, its parameter layout (HF tensor names and
/// shapes), its cache streams, and its GGUF names, metadata and export. The loaders, `inspect`, `init`, `convert` and
/// the GGUF adapter consume architectures only through this protocol, so adding a `model_type` is one file plus one
/// line in `ModelRegistry.architectures` (docs/architectures.md).
public protocol ModelArchitecture: Sendable {
    /// The `model_type` values this file serves.
    static var modelTypes: [String] { get }
    /// llama.cpp's `general.architecture` names this file reads (and writes when it can export); empty if none.
    static var ggufArchitectures: [String] { get }
    /// GGUF tensor names ↔ the HF names the blocks load.
    static var ggufTensorNames: GGUFTensorNames { get }
    /// The config keys that only this architecture reads from GGUF metadata (the common ones — sizes, heads, RoPE —
    /// are filled by `GGUFModelAdapter`), including `model_type`.
    static func configValues(gguf: GGUFMetadata) throws -> [String: JSONValue]

    /// Parses and checks `config` (errors name the file and key).
    init(_ config: ModelConfig) throws
    /// The config it was parsed from.
    var config: ModelConfig { get }
    /// Every parameter by HF name and shape.
    var parameters: [ParameterLayout.Entry] { get }
    /// Parameters a token does not touch (experts it is not routed to, the MTP module).
    var inactiveParameters: Int { get }
    /// The cache streams of each layer.
    var cacheLayout: [[CacheStreamSpec]] { get }
    /// A runnable model over `weights`.
    func build(weights: any WeightStore, options: RunOptions) throws -> any LanguageModel
    /// The GGUF metadata and tensors llama.cpp's converter would write for this model.
    func ggufExport(source: SourceTensors) throws -> GGUFArchitectureExport
}

/// The GGUF metadata (llama.cpp's order) and planned tensors of one export.
public typealias GGUFArchitectureExport = (metadata: [(String, GGUFValue)], tensors: [PlannedTensor])

extension ModelArchitecture {
    public static var ggufArchitectures: [String] { [] }
    public static var ggufTensorNames: GGUFTensorNames { GGUFTensorNames() }

    public static func configValues(gguf: GGUFMetadata) throws -> [String: JSONValue] {
        throw GGUFError.invalidMetadata(path: gguf.path, key: "general.architecture", reason: "'\(quoted(gguf.architecture))' is not supported")
    }

    public func ggufExport(source: SourceTensors) throws -> GGUFArchitectureExport {
        throw ModelExportError.unsupportedArchitecture(path: config.path, modelType: (try? config.modelType) ?? "?",
                                                       supported: ModelRegistry.exportableModelTypes)
    }

    /// Whether `kujira convert --to gguf` can write this architecture.
    public static var exportsGGUF: Bool { !ggufArchitectures.isEmpty }
}

/// How a model runs: its caches' precision (`--kv-bits`) and whose arithmetic its kernels use (`--numerics`).
public struct RunOptions: Sendable, Equatable {
    public var cachePrecision: KVCachePrecision
    public var numerics: Numerics

    public init(cachePrecision: KVCachePrecision = .float32, numerics: Numerics = .kujira) {
        self.cachePrecision = cachePrecision
        self.numerics = numerics
    }

    /// Refuses `--numerics llama.cpp` for an architecture whose blocks it does not emulate.
    public func requireKujiraNumerics(_ config: ModelConfig) throws {
        guard numerics == .kujira else {
            throw NumericsError.unsupported(path: config.path, detail: "emulated for llama and qwen2 models only (\((try? config.modelType) ?? "this model") runs Kujira's arithmetic)")
        }
    }
}

/// Builds models by `model_type`.
public enum ModelRegistry {
    /// Every architecture Kujira runs: one line each.
    public static let architectures: [any ModelArchitecture.Type] = [
        DeepseekV3Configuration.self,
        DeepseekV32Configuration.self,
        DeepseekV4Configuration.self,
        LlamaConfiguration.self,
        Qwen3Configuration.self,
        Qwen3MoEConfiguration.self,
    ]

    /// Every `model_type` served, sorted.
    public static var modelTypes: [String] { architectures.flatMap { $0.modelTypes }.sorted() }

    /// The `model_type`s `kujira convert --to gguf` writes.
    public static var exportableModelTypes: [String] { architectures.filter { $0.exportsGGUF }.flatMap { $0.modelTypes }.sorted() }

    /// The architecture that serves `config.model_type`, with the config parsed.
    public static func architecture(for config: ModelConfig) throws -> any ModelArchitecture {
        let type = try config.modelType
        guard let architecture = architectures.first(where: { $0.modelTypes.contains(type) }) else {
            throw ConfigError.unsupportedModelType(path: config.path, modelType: type, supported: modelTypes)
        }
        let parsed = try architecture.init(config)
        try checkSizes(parsed)
        return parsed
    }

    /// Every parameter's element count and their total, overflow-checked and bounded (`SizeLimits`), before anything
    /// is allocated: a config whose integers are each in range can still multiply to an impossible model.
    static func checkSizes(_ architecture: any ModelArchitecture) throws {
        var total = 0
        for entry in architecture.parameters {
            let count = try SizeLimits.elements(entry.shape, field: "parameter \(entry.name)", source: architecture.config.path)
            total = try SizeLimits.sum(total, count, field: "parameter count", source: architecture.config.path)
        }
        guard total <= SizeLimits.maxModelParameters else {
            throw SizeError(source: architecture.config.path, field: "parameter count",
                            detail: "the config describes \(total) parameters (at most \(SizeLimits.maxModelParameters))")
        }
        for (layer, streams) in architecture.cacheLayout.enumerated() {
            for stream in streams {
                let field = "layer \(layer) cache stream \(stream.name)"
                guard stream.width > 0, stream.width <= SizeLimits.maxInteger else {
                    throw SizeError(source: architecture.config.path, field: field, detail: "width \(stream.width) is out of range")
                }
                // Rows allocated when the cache is made (windows, running state) or whose rate divides positions.
                switch stream.kind {
                case .perToken: break
                case let .compressed(rate) where rate > 0: break
                case let .window(rows) where rows > 0, let .state(rows) where rows > 0:
                    _ = try SizeLimits.elements([rows, stream.width], field: field, source: architecture.config.path, limit: SizeLimits.maxTensorElements >> 6)
                default: throw SizeError(source: architecture.config.path, field: field, detail: "\(stream.kind) is out of range")
                }
            }
        }
    }

    /// Every parameter the weights hold must have the element count the config implies, checked before any block is
    /// built: dimensions that only the config names (a RoPE width, a head count) cannot size an allocation that the
    /// weights contradict. (`checkSizes` has already bounded every `entry.count`.)
    static func checkShapes(_ architecture: any ModelArchitecture, weights: any WeightStore) throws {
        for entry in architecture.parameters where weights.contains(entry.name) {
            let stored = try weights.tensor(entry.name)
            guard stored.elementCount == entry.count else {
                throw WeightStoreError.shapeMismatch(name: entry.name, file: weights.file(of: entry.name) ?? weights.source,
                                                     expected: entry.shape, found: stored.shape)
            }
        }
    }

    /// The architecture that reads GGUF files of llama.cpp architecture `name`.
    public static func architecture(gguf name: String) -> (any ModelArchitecture.Type)? {
        architectures.first { $0.ggufArchitectures.contains(name) }
    }

    /// Loads a model: a Hugging Face directory (`config.json` + safetensors) or a `.gguf` file. `cachePrecision` is how
    /// the caches it makes store their rows; `numerics` whose arithmetic it runs.
    public static func load(directory path: String, cachePrecision: KVCachePrecision = .float32, numerics: Numerics = .kujira) throws -> any LanguageModel {
        let (config, weights) = try open(path)
        return try build(config: config, weights: weights, cachePrecision: cachePrecision, numerics: numerics)
    }

    /// The config and weights at `path` without building the model.
    /// A training run directory opens its newest complete checkpoint (`CheckpointDirectory.modelDirectory`).
    public static func open(_ path: String) throws -> (ModelConfig, any WeightStore) {
        let path = CheckpointDirectory.modelDirectory(path)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            return try GGUFModelAdapter.open(path: path)
        }
        return (try ModelConfig(path: path), try SafeTensorsStore(directory: path))
    }

    /// Builds the architecture named by the config's `model_type`.
    public static func build(config: ModelConfig, weights: any WeightStore, cachePrecision: KVCachePrecision = .float32,
                             numerics: Numerics = .kujira) throws -> any LanguageModel {
        let architecture = try architecture(for: config)
        try checkShapes(architecture, weights: weights)
        return try architecture.build(weights: weights, options: RunOptions(cachePrecision: cachePrecision, numerics: numerics))
    }
}

/// A model whose whole pass is one `DecoderStack`, as an architecture file built it; its caches follow the
/// architecture's `cacheLayout` and the run options.
public final class DecoderModel: DecoderStackModel {
    public let config: ModelConfig
    public let architecture: any ModelArchitecture
    public let stack: DecoderStack
    public let options: RunOptions
    public let vocabSize: Int
    public let maxPositions: Int

    public init(architecture: any ModelArchitecture, stack: DecoderStack, options: RunOptions, maxPositions: Int) {
        config = architecture.config
        self.architecture = architecture
        self.stack = stack
        self.options = options
        vocabSize = stack.vocabSize
        self.maxPositions = maxPositions
    }

    public func makeCache() -> KVCache {
        KVCache(layout: architecture.cacheLayout, precision: options.cachePrecision, numerics: options.numerics)
    }

    public var summary: ModelSummary { ModelSummary(architecture: architecture, stack: stack) }
}

/// Facts about a model, printed by `kujira inspect`.
public struct ModelSummary: Sendable {
    public var architecture: String
    public var totalParameters: Int
    /// Parameters used per token (shared + routed top-k experts, not all experts, not the MTP module).
    public var activeParameters: Int
    public var layers: Int
    /// The cache streams of each layer.
    public var cacheLayout: [[CacheStreamSpec]]

    public init(architecture: String, totalParameters: Int, activeParameters: Int, layers: Int, cacheLayout: [[CacheStreamSpec]]) {
        self.architecture = architecture
        self.totalParameters = totalParameters
        self.activeParameters = activeParameters
        self.layers = layers
        self.cacheLayout = cacheLayout
    }

    /// What a config implies without loading weights: parameter counts from the architecture's layout (integer
    /// tables are not parameters), and its cache streams.
    public init(config: ModelConfig) throws {
        let architecture = try ModelRegistry.architecture(for: config)
        let total = architecture.parameters.filter { $0.dtype.isFloatingPoint }.reduce(0) { $0 + $1.count }
        self.init(architecture: try config.modelType, totalParameters: total, activeParameters: total - architecture.inactiveParameters,
                  layers: architecture.cacheLayout.count, cacheLayout: architecture.cacheLayout)
    }

    /// A loaded model's counts: its stack's weights, the architecture's cache streams.
    public init(architecture: any ModelArchitecture, stack: DecoderStack, extraParameters: Int = 0, extraInactive: Int = 0) {
        let total = stack.totalParameters + extraParameters
        self.init(architecture: (try? architecture.config.modelType) ?? "?", totalParameters: total,
                  activeParameters: total - stack.inactiveParameters - extraInactive, layers: stack.layers.count,
                  cacheLayout: architecture.cacheLayout)
    }

    /// Cache values stored per token over all layers (compressed streams count their share; windows and state do not grow).
    public var kvValuesPerToken: Double {
        cacheLayout.joined().reduce(0.0) { total, s in
            switch s.kind {
            case .perToken: return total + Double(s.width)
            case let .compressed(rate): return total + Double(s.width) / Double(rate)
            case .window, .state: return total
            }
        }
    }

    /// Per-token cache values of one layer when every layer stores the same (the figure papers quote: 576 for V3).
    public var kvValuesPerTokenPerLayer: Int { Int((kvValuesPerToken / Double(max(layers, 1))).rounded()) }

    /// Values per int8 scale of the first layer's first stream (32 for DeepSeek-V3).
    public var kvCacheGroupSize: Int { cacheLayout.first?.first?.groupSize ?? 32 }

    /// Cache bytes added per token over all layers at `bits` as `KVCache` stores them (4 or 2 bytes a value at 32/16
    /// bits, int8 codes plus per-group scales at 8), rounded up.
    public func kvBytesPerToken(bits: Int) -> Int {
        let precision = KVCachePrecision(bits: bits) ?? .float32
        return Int(cacheLayout.joined().reduce(0.0) { $0 + $1.bytesPerToken(precision) }.rounded(.up))
    }

    /// Cache bytes that do not grow with the context (sliding windows, compressor state) at `bits`.
    public func kvFixedBytes(bits: Int) -> Int {
        let precision = KVCachePrecision(bits: bits) ?? .float32
        return cacheLayout.joined().reduce(0) { $0 + $1.fixedBytes(precision) }
    }

    /// Per-token cache bytes of each stream name over all layers at `bits` (e.g. V3.2: latent and indexer keys).
    public func kvBytesPerTokenByStream(bits: Int) -> [(name: String, bytes: Double)] {
        let precision = KVCachePrecision(bits: bits) ?? .float32
        var order: [String] = [], bytes: [String: Double] = [:]
        for s in cacheLayout.joined() {
            if bytes[s.name] == nil { order.append(s.name) }
            bytes[s.name, default: 0] += s.bytesPerToken(precision)
        }
        return order.map { ($0, bytes[$0]!) }
    }
}
