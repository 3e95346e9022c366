import ArgumentParser
import Foundation
import KujiraFormats
import KujiraModels

/// `kujira init`: a randomly initialised model in Hugging Face layout from any supported config.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a randomly initialised model (config.json + model.safetensors) for a supported config.",
        discussion: #"Example: kujira init --config docs/configs/deepseek-v3-mini.json --out models/v3-mini --dtype bf16"#)

    @Option(help: "A config.json (deepseek_v3, deepseek_v2, qwen2 or llama).")
    var config: String

    @Option(help: "Output directory (created if missing).")
    var out: String

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Option(help: "Stored precision: f32, bf16, or fp8 (DeepSeek-V3's e4m3 weights with 128x128 block scales; deepseek configs).")
    var dtype: String = "f32"

    @Option(help: "A directory whose tokenizer files (tokenizer.json, tokenizer_config.json) are copied beside the model.")
    var tokenizer: String?

    func validate() throws {
        guard ModelInitializer.StorageType(rawValue: dtype) != nil else { throw ValidationError("--dtype must be f32, bf16 or fp8") }
    }

    func run() throws {
        let modelConfig = try ModelConfig(path: config)
        let storage = ModelInitializer.StorageType(rawValue: dtype)!
        try ModelInitializer.write(config: modelConfig, to: out, seed: seed, storage: storage) { done, total in
            if done == total || done % 64 == 0 {
                FileHandle.standardError.write(Data("\rinit: \(done)/\(total) tensors".utf8))
            }
        }
        FileHandle.standardError.write(Data("\n".utf8))
        if let tokenizer {
            let files = ["tokenizer.json", "tokenizer_config.json"].filter { FileManager.default.fileExists(atPath: (tokenizer as NSString).appendingPathComponent($0)) }
            guard files.contains("tokenizer.json") else { throw ValidationError("\(tokenizer) has no tokenizer.json") }
            for name in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: (tokenizer as NSString).appendingPathComponent(name)))
                try AtomicFile.write(data, to: (out as NSString).appendingPathComponent(name))
            }
        }
        let model = try ModelRegistry.load(directory: out)
        print("wrote \(out): \(model.summary.architecture), \(model.summary.totalParameters) parameters")
    }
}
