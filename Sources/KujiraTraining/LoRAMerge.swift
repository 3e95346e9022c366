import Foundation
import KujiraFormats
import KujiraModels
import KujiraTensor

/// `kujira merge`: a base model with a LoRA adapter folded in (W + scale·B·A), written as a plain Hugging Face
/// directory that any engine loads (and `kujira convert` turns into GGUF).
public enum LoRAMerge {
    /// Merges `adapter` (a PEFT directory) into the Hugging Face model at `base` and writes `out`: config.json,
    /// model.safetensors (in `dtype`: f32, bf16 or f16; streamed one tensor at a time) and the base's tokenizer files.
    /// FP8 weights are dequantized with their block scales (the scales are dropped, and so is `quantization_config`).
    public static func merge(base: String, adapter: String, out: String, dtype: DType) throws {
        guard [.f32, .bf16, .f16].contains(dtype) else { throw TrainingError.invalidInput("merge writes f32, bf16 or f16, not \(dtype.rawValue)") }
        let source = try SFTCheckpoint.tokenizerSource(base)
        let (config, weights) = try ModelRegistry.open(source)
        let lora = try PEFTAdapter(directory: adapter)
        // The adapted model must build: this checks every adapter lands on a linear weight of matching shape.
        let adapted = AdaptedWeightStore(base: weights, adapters: lora.adapters)
        _ = try ModelRegistry.build(config: config, weights: adapted)
        try adapted.checkAllApplied(adapterPath: adapter)
        let blockSize: [Int]? = {
            guard case let .object(q)? = config.values["quantization_config"], case let .array(b)? = q["weight_block_size"] else { return nil }
            return b.compactMap { if case let .integer(v) = $0 { return v } else { return nil } }
        }()
        let names = weights.tensorNames.filter { !$0.hasSuffix("_scale_inv") }
        var entries: [SafeTensorsStreamWriter.Entry] = []
        for name in names {
            let t = try weights.tensor(name)
            entries.append(.init(name: name, dtype: t.dtype.isFloatingPoint ? dtype : t.dtype, shape: t.shape))
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let writer = try SafeTensorsStreamWriter(path: (out as NSString).appendingPathComponent("model.safetensors"), entries: entries,
                                                 metadata: ["format": "pt"])
        while let entry = writer.nextEntry {
            let t = try weights.tensor(entry.name)
            guard t.dtype.isFloatingPoint else { try writer.append(Array(t.bytes)); continue }
            let values: [Float]
            if t.shape.count == 2 && (lora.adapters[entry.name] != nil || t.dtype == .f8e4m3) {
                values = try adapted.linear(entry.name, rows: t.shape[0], cols: t.shape[1], blockSize: blockSize).toFloatArray()
            } else {
                values = t.toFloatArray()
            }
            try writer.append(encode(values, as: dtype))
        }
        try writer.finish()
        var values = config.values
        values["torch_dtype"] = .string(dtype == .f32 ? "float32" : dtype == .bf16 ? "bfloat16" : "float16")
        values["quantization_config"] = nil
        try AtomicFile.write(JSONValue.object(values).serialized(), to: (out as NSString).appendingPathComponent("config.json"))
        for name in SFTCheckpoint.tokenizerFiles {
            if let data = FileManager.default.contents(atPath: (source as NSString).appendingPathComponent(name)) {
                try AtomicFile.write(data, to: (out as NSString).appendingPathComponent(name))
            }
        }
    }

    /// Little-endian bytes of `values` in `dtype` (f32, bf16 or f16).
    static func encode(_ values: [Float], as dtype: DType) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * (dtype == .f32 ? 4 : 2))
        for v in values {
            switch dtype {
            case .f32: withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            case .bf16: let b = FloatConversion.floatToBF16(v); bytes.append(UInt8(b & 0xFF)); bytes.append(UInt8(b >> 8))
            default: let b = FloatConversion.floatToF16(v); bytes.append(UInt8(b & 0xFF)); bytes.append(UInt8(b >> 8))
            }
        }
        return bytes
    }
}
