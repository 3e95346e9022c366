import Foundation
import KujiraFormats
import KujiraTensor
import Synchronization

/// The fields of PEFT's `adapter_config.json` Kujira reads and writes.
public struct LoRAConfig: Sendable, Equatable {
    public var rank: Int
    public var alpha: Double
    /// Module names (last name component, e.g. `q_proj`) the adapter targets.
    public var targetModules: [String]
    /// rsLoRA: scale alpha/√r instead of alpha/r.
    public var useRSLoRA: Bool = false
    /// The base model's path or id, as recorded (informational).
    public var baseModel: String?

    public init(rank: Int, alpha: Double, targetModules: [String], useRSLoRA: Bool = false, baseModel: String? = nil) {
        self.rank = rank; self.alpha = alpha; self.targetModules = targetModules; self.useRSLoRA = useRSLoRA; self.baseModel = baseModel
    }

    /// The factor on B·A.
    public var scale: Float { Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)) }

    /// Linear modules Kujira applies adapters to: attention and dense/shared-expert MLP projections (they run through
    /// `Linear.forward`, whose result includes the adapter). Other targets are refused by name rather than ignored.
    public static let supportedModules: Set<String> = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                                                       "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa"]

    /// adapter_config.json as PEFT writes it (a LoRA adapter for a causal LM).
    public func json() -> JSONValue {
        .object([
            "peft_type": .string("LORA"), "task_type": .string("CAUSAL_LM"), "r": .integer(rank), "lora_alpha": .number(alpha),
            "lora_dropout": .number(0), "bias": .string("none"), "fan_in_fan_out": .bool(false), "inference_mode": .bool(true),
            "target_modules": .array(targetModules.sorted().map { .string($0) }), "use_rslora": .bool(useRSLoRA), "use_dora": .bool(false),
            "base_model_name_or_path": baseModel.map { .string($0) } ?? .null, "init_lora_weights": .bool(true),
            "modules_to_save": .null, "layers_to_transform": .null, "revision": .null,
        ])
    }
}

/// An adapter that cannot be used, naming the file and what is wrong.
public struct LoRAError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let detail: String
    public init(path: String, detail: String) { self.path = path; self.detail = detail }
    public var description: String { "\(path): \(detail)" }
}

/// A PEFT LoRA adapter directory: `adapter_config.json` + `adapter_model.safetensors`, tensors named
/// `base_model.model.<module>.lora_A.weight` (rank, in) and `….lora_B.weight` (out, rank).
public struct PEFTAdapter: Sendable {
    public static let configFile = "adapter_config.json", weightsFile = "adapter_model.safetensors"
    public let path: String
    public let config: LoRAConfig
    /// Base-model weight name (`<module>.weight`) → the adapter on it.
    public let adapters: [String: LowRankAdapter]

    /// PEFT's tensor names for the adapter on weight `name` (`model.layers.0.self_attn.q_proj.weight`).
    public static func tensorNames(forWeight name: String) -> (a: String, b: String) {
        let module = name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : name
        return ("base_model.model.\(module).lora_A.weight", "base_model.model.\(module).lora_B.weight")
    }

    /// Reads an adapter directory; errors name the file and tensor.
    public init(directory: String) throws {
        path = directory
        let configPath = (directory as NSString).appendingPathComponent(Self.configFile)
        guard let data = FileManager.default.contents(atPath: configPath) else { throw LoRAError(path: configPath, detail: "missing (not a PEFT adapter directory)") }
        guard let parsed = try? JSONSerialization.jsonObject(with: data) else { throw LoRAError(path: configPath, detail: "not valid JSON") }
        guard case let .object(fields) = JSONValue(any: parsed) else { throw LoRAError(path: configPath, detail: "not a JSON object") }
        func int(_ key: String) -> Int? {
            switch fields[key] { case let .integer(v)?: return v; case let .number(v)? where v == v.rounded() && abs(v) < 1e9: return Int(v); default: return nil }
        }
        func double(_ key: String) -> Double? {
            switch fields[key] { case let .integer(v)?: return Double(v); case let .number(v)?: return v; default: return nil }
        }
        if case let .string(type)? = fields["peft_type"], type != "LORA" { throw LoRAError(path: configPath, detail: "peft_type '\(quoted(type))' is not LORA") }
        guard let rank = int("r"), rank > 0, rank <= 4096 else { throw LoRAError(path: configPath, detail: "\"r\" must be an integer in 1...4096") }
        let alpha = double("lora_alpha") ?? Double(rank)
        guard alpha.isFinite, abs(alpha) < 1e6 else { throw LoRAError(path: configPath, detail: "\"lora_alpha\" out of range") }
        if case .bool(true)? = fields["use_dora"] { throw LoRAError(path: configPath, detail: "DoRA adapters are not supported") }
        var targets: [String] = []
        switch fields["target_modules"] {
        case let .array(items)?: targets = items.compactMap { if case let .string(s) = $0 { return s } else { return nil } }
        case let .string(pattern)?: targets = [pattern]
        default: break
        }
        var baseModel: String?
        if case let .string(base)? = fields["base_model_name_or_path"] { baseModel = base }
        let useRS: Bool = { if case .bool(true)? = fields["use_rslora"] { return true } else { return false } }()
        config = LoRAConfig(rank: rank, alpha: alpha, targetModules: targets, useRSLoRA: useRS, baseModel: baseModel)
        let weightsPath = (directory as NSString).appendingPathComponent(Self.weightsFile)
        let store = try SafeTensorsStore(files: [weightsPath], source: weightsPath)
        var adapters: [String: LowRankAdapter] = [:]
        for name in store.tensorNames where name.hasSuffix(".lora_A.weight") {
            let module = String(name.dropFirst(name.hasPrefix("base_model.model.") ? "base_model.model.".count : 0).dropLast(".lora_A.weight".count))
            let bName = String(name.dropLast(".lora_A.weight".count)) + ".lora_B.weight"
            guard let last = module.split(separator: ".").last, LoRAConfig.supportedModules.contains(String(last)) else {
                throw LoRAError(path: weightsPath, detail: "adapter on '\(quoted(module))': Kujira applies LoRA to \(LoRAConfig.supportedModules.sorted().joined(separator: ", ")) only")
            }
            let a = try store.tensor(name), b = try store.tensor(bName)
            guard a.shape.count == 2, b.shape.count == 2, a.shape[0] == rank, b.shape[1] == rank else {
                throw LoRAError(path: weightsPath, detail: "'\(quoted(name))' \(a.shape) and its lora_B \(b.shape) do not have rank \(rank)")
            }
            func float32(_ t: TensorData) throws -> TensorData {
                guard t.dtype.isFloatingPoint, t.dtype != .f8e4m3 else { throw LoRAError(path: weightsPath, detail: "'\(quoted(name))' has dtype \(t.dtype.rawValue)") }
                return t.dtype == .f32 ? t : TensorData.owned(t.toFloatArray(), shape: t.shape)
            }
            adapters[module + ".weight"] = LowRankAdapter(a: try float32(a), b: try float32(b), scale: config.scale, aName: name, bName: bName)
        }
        guard !adapters.isEmpty else { throw LoRAError(path: weightsPath, detail: "no lora_A/lora_B tensors") }
        self.adapters = adapters
    }
}

/// A weight store whose linear weights carry LoRA adapters (by base weight name), applied unmerged. After the model is
/// built, `checkAllApplied` fails for any adapter the architecture never loaded as a linear weight, so an adapter is
/// never silently ignored.
public final class AdaptedWeightStore: WeightStore, @unchecked Sendable {
    public let base: any WeightStore
    public let adapters: [String: LowRankAdapter]
    private let applied = Mutex<Set<String>>([])

    public init(base: any WeightStore, adapters: [String: LowRankAdapter]) {
        self.base = base
        self.adapters = adapters
    }

    public var source: String { base.source }
    public var tensorNames: [String] { base.tensorNames }
    public func contains(_ name: String) -> Bool { base.contains(name) }
    public func tensor(_ name: String) throws -> TensorData { try base.tensor(name) }
    public func file(of name: String) -> String? { base.file(of: name) }

    public func adapter(for name: String) -> LowRankAdapter? {
        guard let adapter = adapters[name] else { return nil }
        applied.withLock { _ = $0.insert(name) }
        return adapter
    }

    /// Throws naming the first adapter whose weight the model did not load (or whose shape does not match it).
    public func checkAllApplied(adapterPath: String) throws {
        let used = applied.withLock { $0 }
        for name in adapters.keys.sorted() where !used.contains(name) {
            throw LoRAError(path: adapterPath, detail: "the model has no linear weight '\(quoted(name))' for this adapter (wrong base model?)")
        }
        for (name, adapter) in adapters {
            let shape = try base.tensor(name).shape
            guard shape == [adapter.b.shape[0], adapter.a.shape[1]] else {
                throw LoRAError(path: adapterPath, detail: "adapter on '\(quoted(name))' is \(adapter.b.shape[0])×\(adapter.a.shape[1]), the weight is \(shape)")
            }
        }
    }
}

extension ModelRegistry {
    /// `load(directory:)` with a PEFT LoRA adapter applied unmerged (`lora`: an adapter directory).
    public static func load(directory path: String, lora: String?, cachePrecision: KVCachePrecision = .float32,
                            numerics: Numerics = .kujira) throws -> any LanguageModel {
        guard let lora else { return try load(directory: path, cachePrecision: cachePrecision, numerics: numerics) }
        guard numerics == .kujira else { throw LoRAError(path: lora, detail: "--numerics llama.cpp does not apply LoRA adapters") }
        let (config, weights) = try open(path)
        let adapted = AdaptedWeightStore(base: weights, adapters: try PEFTAdapter(directory: lora).adapters)
        let model = try build(config: config, weights: adapted, cachePrecision: cachePrecision, numerics: numerics)
        try adapted.checkAllApplied(adapterPath: lora)
        return model
    }
}
