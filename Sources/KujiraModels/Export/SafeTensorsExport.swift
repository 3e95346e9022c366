import Foundation
import KujiraFormats
import KujiraTensor

/// Hugging Face model directory → a new HF directory with every floating-point tensor in one dtype (FP8 weights
/// dequantised with their block scales, whose `*_scale_inv` tensors and `quantization_config` are dropped).
/// Tensors stream one at a time; the directory is built beside the destination and renamed into place.
public enum SafeTensorsExporter {
    /// Files copied unchanged when present.
    public static let copiedFiles = ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja",
                                     "special_tokens_map.json"]

    /// Writes `destination` from the model in `directory`. `dtype` is `.bf16`, `.f16` or `.f32`; `e_score_correction_bias`
    /// stays F32, as in DeepSeek-V3's own checkpoints. An existing non-empty `destination` is replaced only with `force`.
    public static func export(directory: String, to destination: String, dtype: DType, force: Bool = false,
                              progress: (Int, Int, String, Int) -> Void = { _, _, _, _ in }) throws {
        guard [.bf16, .f16, .f32].contains(dtype) else {
            throw ModelExportError.unsupportedSetting(path: directory, key: "dtype", detail: "\(dtype.rawValue) is not bf16, f16 or f32")
        }
        let fm = FileManager.default
        let source = URL(fileURLWithPath: directory).standardizedFileURL.path, target = URL(fileURLWithPath: destination).standardizedFileURL.path
        guard source != target else { throw ModelExportError.unsupportedSetting(path: destination, key: "--out", detail: "is the source directory") }
        if !force, let contents = try? fm.contentsOfDirectory(atPath: target), !contents.isEmpty {
            throw ModelExportError.unsupportedSetting(path: target, key: "--out", detail: "exists and is not empty (use --force to replace it)")
        }
        var configValues = try ModelConfig(path: directory).values
        let weights = try SafeTensorsStore(directory: directory)
        var blockSize: [Int]?
        if case let .object(q)? = configValues["quantization_config"], case let .array(b)? = q["weight_block_size"] {
            blockSize = b.compactMap { if case let .integer(i) = $0 { return i } else if case let .number(d) = $0 { return Int(d) } else { return nil } }
        }

        var entries: [SafeTensorsStreamWriter.Entry] = []
        var dequantised = false
        for name in weights.tensorNames {
            let t = try weights.tensor(name)
            if name.hasSuffix("_scale_inv"), let base = Optional(String(name.dropLast("_scale_inv".count))), weights.contains(base),
               try weights.tensor(base).dtype == .f8e4m3 { continue }
            guard t.dtype.isFloatingPoint else {
                throw WeightStoreError.unsupportedDType(name: name, file: weights.file(of: name) ?? directory, dtype: t.dtype.rawValue)
            }
            if t.dtype == .f8e4m3 { dequantised = true }
            entries.append(.init(name: name, dtype: name.hasSuffix("e_score_correction_bias") ? .f32 : dtype, shape: t.shape))
        }

        let parent = (target as NSString).deletingLastPathComponent
        try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let staging = (parent as NSString).appendingPathComponent(".\((target as NSString).lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: false)
        var moved = false
        defer { if !moved { try? fm.removeItem(atPath: staging) } }

        let writer = try SafeTensorsStreamWriter(path: (staging as NSString).appendingPathComponent("model.safetensors"), entries: entries,
                                                 metadata: ["format": "pt"])
        var written = 0
        for (index, entry) in writer.entries.enumerated() {
            let t = try weights.tensor(entry.name)
            let values: [Float]
            if t.dtype == .f8e4m3 {
                guard t.shape.count == 2 else {
                    throw ModelExportError.badTensor(path: directory, tensor: entry.name, detail: "FP8 tensors must be 2-D to carry block scales")
                }
                values = try weights.linear(entry.name, rows: t.shape[0], cols: t.shape[1], blockSize: blockSize).toFloatArray()
            } else {
                values = t.toFloatArray()
            }
            try writer.append(Quantize.array(values, rowLength: max(1, t.shape.last ?? 1), to: entry.dtype))
            written += entry.byteCount
            progress(index, writer.entries.count, entry.name, written)
        }
        try writer.finish()

        if dequantised { configValues["quantization_config"] = nil }
        configValues["torch_dtype"] = .string(dtype == .bf16 ? "bfloat16" : dtype == .f16 ? "float16" : "float32")
        try AtomicFile.write(JSONValue.object(configValues).serialized(), to: (staging as NSString).appendingPathComponent("config.json"))
        for name in copiedFiles {
            let from = (directory as NSString).appendingPathComponent(name)
            if fm.fileExists(atPath: from) { try fm.copyItem(atPath: from, toPath: (staging as NSString).appendingPathComponent(name)) }
        }
        if fm.fileExists(atPath: target) {
            let old = staging + ".old"
            try fm.moveItem(atPath: target, toPath: old)
            try fm.moveItem(atPath: staging, toPath: target)
            moved = true
            try? fm.removeItem(atPath: old)
        } else {
            try fm.moveItem(atPath: staging, toPath: target)
            moved = true
        }
    }
}
