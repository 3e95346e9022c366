import Foundation
import KujiraFormats
import KujiraTensor

/// Writes a randomly initialised model in Hugging Face layout (`config.json` + `model.safetensors`).
public enum ModelInitializer {
    /// Stored precision of the written weights.
    public enum StorageType: String, Sendable, CaseIterable { case f32, bf16 }

    /// Creates `directory` with the config's architecture, weights ~ N(0, initializer_range), norms 1, biases 0.
    /// Deterministic for a seed. Files are written atomically.
    public static func write(config: ModelConfig, to directory: String, seed: UInt64, storage: StorageType = .f32,
                             progress: (Int, Int) -> Void = { _, _ in }) throws {
        let entries = try ParameterLayout.entries(for: config)
        let std = Float(try config.float("initializer_range", default: 0.02))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var random = SplitMix64(seed: seed)
        var tensors: [SafeTensorsWriter.Tensor] = []
        for (index, entry) in entries.enumerated() {
            let count = entry.shape.reduce(1, *)
            var values = [Float](repeating: 0, count: count)
            switch entry.initial {
            case .normal: for i in 0..<count { values[i] = random.nextNormal() * std }
            case .ones: values = [Float](repeating: 1, count: count)
            case .zeros: break
            }
            if storage == .bf16 {
                var bytes = [UInt8](repeating: 0, count: count * 2)
                for (i, v) in values.enumerated() {
                    let bits = FloatConversion.floatToBF16(v)
                    bytes[2 * i] = UInt8(bits & 0xFF)
                    bytes[2 * i + 1] = UInt8(bits >> 8)
                }
                tensors.append(SafeTensorsWriter.Tensor(name: entry.name, dtype: .bf16, shape: entry.shape, bytes: bytes))
            } else {
                tensors.append(.float32(entry.name, shape: entry.shape, values: values))
            }
            progress(index + 1, entries.count)
        }
        var configValues = config.values
        if storage == .bf16 { configValues["torch_dtype"] = .string("bfloat16") }
        let configData = JSONValue.object(configValues).serialized()
        try SafeTensorsWriter.write(tensors, metadata: ["format": "pt"], to: (directory as NSString).appendingPathComponent("model.safetensors"))
        try AtomicFile.write(configData, to: (directory as NSString).appendingPathComponent("config.json"))
    }
}
