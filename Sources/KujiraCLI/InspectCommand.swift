import ArgumentParser
import Foundation
import KujiraFormats
import KujiraModels

/// `kujira inspect`: what a model is, how big, and what it costs per token.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print architecture, parameter counts, dtypes, mapped size and KV-cache bytes per token.",
        discussion: #"Example: kujira inspect --config Tests/Fixtures/configs/deepseek-v3-671b.json"#)

    @Option(help: "Model: a directory (config.json + *.safetensors), a .gguf file, or org/name[:QUANT] from `kujira pull`.",
            transform: resolveModelArgument)
    var model: String?

    @Option(help: "Only a config.json: counts and KV-cache size without weights (e.g. the real DeepSeek-V3 config).")
    var config: String?

    func validate() throws {
        guard (model == nil) != (config == nil) else { throw ValidationError("give exactly one of --model or --config") }
        if let model { try ModelOptions.check(model) }
    }

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let summary: ModelSummary
        var dtypes: [String: Int] = [:]
        var fileSize = 0, shards = 1
        if let config {
            summary = try ModelSummary(config: ModelConfig(path: config))
        } else {
            let path = model!
            let (modelConfig, weights) = try ModelRegistry.open(path)
            summary = try ModelRegistry.build(config: modelConfig, weights: weights).summary
            for name in weights.tensorNames { dtypes[try weights.tensor(name).dtype.rawValue, default: 0] += 1 }
            fileSize = try modelFileBytes(path)
            if path.hasSuffix(".gguf") { shards = try GGUFFileSet(path: path).shards.count }
        }
        let kvValues = summary.kvValuesPerTokenPerLayer
        let streams = summary.kvBytesPerTokenByStream(bits: 16).filter { $0.bytes > 0 }.map { "\($0.name) \(formatBytes($0.bytes))" }
            .joined(separator: ", ")
        var facts: [(String, String)] = [
            ("architecture", summary.architecture),
            ("layers", "\(summary.layers)"),
            ("parameters", "\(summary.totalParameters)"),
            ("active_parameters_per_token", "\(summary.activeParameters)"),
            ("dtypes", dtypes.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")),
            ("file_bytes", "\(fileSize)"),
            ("kv_values_per_token_per_layer", "\(kvValues)"),
            ("kv_bytes_per_token_16bit", "\(summary.kvBytesPerToken(bits: 16))"),
            ("kv_bytes_per_token_32bit", "\(summary.kvBytesPerToken(bits: 32))"),
            ("kv_bytes_per_token_8bit", "\(summary.kvBytesPerToken(bits: 8))"),
            ("kv_cache_group_size_8bit", "\(summary.kvCacheGroupSize)"),
            ("kv_streams_16bit", streams),
        ]
        let fixed = summary.kvFixedBytes(bits: 16)
        if fixed > 0 { facts.append(("kv_fixed_bytes_16bit", "\(fixed)")) }
        if shards > 1 { facts.insert(("gguf_shards", "\(shards)"), at: 6) }
        if json {
            var object: [String: Any] = [:]
            for (key, value) in facts { object[key] = Int(value) ?? value as Any }
            object["dtypes"] = dtypes
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for (key, value) in facts { print("\(key.padding(toLength: 30, withPad: " ", startingAt: 0)) \(value)") }
        }
    }
}

/// Bytes per token as printed by `inspect`: whole bytes, or two decimals for compressed streams' shares.
func formatBytes(_ bytes: Double) -> String {
    bytes.rounded() == bytes ? "\(Int(bytes))" : String(format: "%.2f", bytes)
}

/// Size on disk of a model's weight files (what gets memory-mapped): a .gguf file (every shard of a split one), or a
/// directory's *.safetensors.
func modelFileBytes(_ path: String) throws -> Int {
    let fm = FileManager.default
    var isDirectory: ObjCBool = false
    guard fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
        return try GGUFFileSet(path: path).fileBytes
    }
    return try fm.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".gguf") }.reduce(0) {
        $0 + ((try fm.attributesOfItem(atPath: (path as NSString).appendingPathComponent($1))[.size] as? Int) ?? 0)
    }
}
