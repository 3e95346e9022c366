import ArgumentParser
import Foundation
import KujiraFormats
import KujiraGeneration
import KujiraModels
import KujiraTensor

/// `--model`: the model every inference command loads; without it, `$KUJIRA_MODEL` or the embedded default model.
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model"),
            help: "Model: a directory (config.json + *.safetensors), a .gguf file, or org/name[:QUANT] pulled with `kujira pull` (default: $KUJIRA_MODEL, else the embedded Models/kujira-arith).")
    var modelArgument: String?

    @Option(name: .customLong("lora"),
            help: "A LoRA adapter to apply unmerged: a PEFT directory (adapter_config.json + adapter_model.safetensors) or a `kujira sft --lora-rank` run directory (its newest checkpoint).")
    var loraArgument: String?

    /// The adapter directory `--lora` names (a run directory resolves to its newest checkpoint).
    var lora: String? { loraArgument.map { CheckpointDirectory.modelDirectory($0) } }

    @Option(name: .customLong("kv-bits"),
            help: "KV-cache storage: 32 (float; the default), 16 (half float, llama.cpp's default and the default with --numerics llama.cpp) or 8 (int8 codes with one scale per 32 values); MLA latent or K/V rows.")
    var kvBitsArgument: Int?

    @Option(name: .customLong("numerics"),
            help: "Arithmetic: kujira (default, fastest) or llama.cpp (bit-exact emulation of llama.cpp's CPU backend: same logits, same greedy tokens; llama/qwen2 GGUF with Q4_1/Q8_0 weights, f16 cache).")
    var numericsArgument: String = Numerics.kujira.rawValue

    /// The `--numerics` choice (checked in `validate`).
    var numerics: Numerics { Numerics(rawValue: numericsArgument) ?? .kujira }

    /// Cache bits: `--kv-bits`, else 16 with llama.cpp numerics and 32 otherwise.
    var kvBits: Int { kvBitsArgument ?? (numerics == .llamaCpp ? 16 : 32) }

    /// The cache storage `--kv-bits` names (checked in `validate`).
    var cachePrecision: KVCachePrecision { KVCachePrecision(bits: kvBits) ?? .float32 }

    /// The model path: `--model`, else `DefaultModel.directory()` (validated before `run()`, so this never falls
    /// through to a missing path in a command).
    var model: String {
        guard let path = (try? DefaultModel.resolve(modelArgument)) ?? modelArgument else { return "" }
        return (try? resolveModelArgument(path)) ?? path
    }

    func validate() throws {
        do { _ = try KVCachePrecision.parse(bits: kvBits) } catch { throw ValidationError("\(error)") }
        guard Numerics(rawValue: numericsArgument) != nil else {
            throw ValidationError("--numerics: '\(numericsArgument)' is not one of \(Numerics.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do { try Self.check(try resolveModelArgument(try DefaultModel.resolve(modelArgument))) } catch let error as DefaultModelError {
            throw ValidationError(error.description)
        }
        if let lora {
            guard FileManager.default.fileExists(atPath: (lora as NSString).appendingPathComponent("adapter_config.json")) else {
                throw ValidationError("--lora: \(lora) has no adapter_config.json (expected a PEFT adapter directory)")
            }
            guard numerics == .kujira else { throw ValidationError("--lora: --numerics llama.cpp does not apply LoRA adapters") }
        }
    }

    /// Rejects a path that is neither a model directory nor a .gguf file (`model` already through `resolveModelArgument`).
    static func check(_ model: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) else {
            throw ValidationError("--model: \(model) does not exist")
        }
        guard isDirectory.boolValue || model.hasSuffix(".gguf") else {
            throw ValidationError("--model: \(model) is neither a model directory (config.json + safetensors) nor a .gguf file")
        }
    }

    func load() throws -> any LanguageModel { try ModelRegistry.load(directory: model, lora: lora, cachePrecision: cachePrecision, numerics: numerics) }

}

/// Parses `--tokens 1,2,3` into ids, rejecting anything that is not a non-negative integer.
func parseTokenList(_ text: String, option: String = "--tokens") throws -> [Int] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    guard !parts.isEmpty, !(parts.count == 1 && parts[0].isEmpty) else { throw ValidationError("\(option): no tokens given") }
    return try parts.map { part in
        guard let id = Int(part), id >= 0 else { throw ValidationError("\(option): '\(part)' is not a token id (a non-negative integer)") }
        return id
    }
}

/// Writes a JSON array of floats with shortest round-trip formatting.
func appendJSONArray(_ values: ArraySlice<Float>, to out: inout String) {
    out.append("[")
    var first = true
    for v in values {
        if !first { out.append(",") }
        first = false
        out.append(v.isFinite ? "\(v)" : "null")
    }
    out.append("]")
}
