import Foundation
import KujiraFormats
import KujiraTensor

/// Copies a checkpoint's inference files (config, weights, tokenizer, generation config) into a clean model
/// directory, optionally with the weights in BF16 — how the embedded default model is produced from a run.
public enum ModelExport {
    /// Files copied unchanged when present.
    static let copiedFiles = ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]

    /// Writes `destination` from the checkpoint in `source`. With `bfloat16`, every F32 matrix/vector becomes BF16
    /// (round to nearest even) except `e_score_correction_bias`, which stays F32 as in DeepSeek-V3's checkpoints.
    public static func export(from source: String, to destination: String, bfloat16: Bool) throws {
        let source = CheckpointDirectory.modelDirectory(source)  // a run directory exports its newest checkpoint
        func src(_ name: String) -> String { (source as NSString).appendingPathComponent(name) }
        func dst(_ name: String) -> String { (destination as NSString).appendingPathComponent(name) }
        let weightsPath = src("model.safetensors")
        guard FileManager.default.fileExists(atPath: weightsPath), FileManager.default.fileExists(atPath: src("config.json")) else {
            throw TrainingError.invalidInput("\(source): not a model directory (config.json and model.safetensors are required)")
        }
        try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
        let store = try SafeTensorsStore(files: [weightsPath], source: weightsPath)
        var tensors: [SafeTensorsWriter.Tensor] = []
        for name in store.tensorNames {
            let t = try store.tensor(name)
            let values = t.toFloatArray()
            if bfloat16 && !name.hasSuffix("e_score_correction_bias") {
                var bytes = [UInt8](); bytes.reserveCapacity(values.count * 2)
                for v in values { let b = FloatConversion.floatToBF16(v); bytes.append(UInt8(b & 0xFF)); bytes.append(UInt8(b >> 8)) }
                tensors.append(SafeTensorsWriter.Tensor(name: name, dtype: .bf16, shape: t.shape, bytes: bytes))
            } else {
                tensors.append(.float32(name, shape: t.shape, values: values))
            }
        }
        try SafeTensorsWriter.write(tensors, metadata: ["format": "pt"], to: dst("model.safetensors"))
        guard var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: src("config.json")))) as? [String: Any] else {
            throw TrainingError.invalidInput("\(src("config.json")): not a JSON object")
        }
        config["torch_dtype"] = bfloat16 ? "bfloat16" : "float32"
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted]), to: dst("config.json"))
        for name in copiedFiles where FileManager.default.fileExists(atPath: src(name)) {
            try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: src(name))), to: dst(name))
        }
    }
}
