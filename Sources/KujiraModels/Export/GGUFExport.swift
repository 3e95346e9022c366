import Foundation
import KujiraFormats
import KujiraTensor

/// One tensor of a GGUF export: its directory entry and a closure that reads and rearranges its values (row-major
/// floats in the entry's shape) only when the writer reaches it, so a model is never held in memory twice.
public struct GGUFExportTensor: Sendable {
    public let descriptor: GGUFTensorDescriptor
    public let values: @Sendable () throws -> [Float]
}

/// Why a model cannot be exported; names the model and the field or tensor.
public enum ModelExportError: Error, CustomStringConvertible, Equatable {
    case unsupportedArchitecture(path: String, modelType: String, supported: [String])
    case unsupportedSetting(path: String, key: String, detail: String)
    case badTensor(path: String, tensor: String, detail: String)

    public var description: String {
        switch self {
        case let .unsupportedArchitecture(path, modelType, supported):
            return "\(path): model_type '\(modelType)' cannot be converted to GGUF (supported: \(supported.joined(separator: ", ")))"
        case let .unsupportedSetting(path, key, detail): return "\(path): '\(key)' \(detail)"
        case let .badTensor(path, tensor, detail): return "\(path): tensor '\(tensor)': \(detail)"
        }
    }
}

/// A planned GGUF file: metadata in llama.cpp's order and tensors in write order.
public struct GGUFExportPlan: Sendable {
    /// llama.cpp architecture name (`llama`, `qwen2`, `deepseek2`).
    public var architecture: String
    public var metadata: [(String, GGUFValue)]
    public var tensors: [GGUFExportTensor]
    /// Source tensors left out (multi-token-prediction layers, which llama.cpp does not load).
    public var skippedTensors: [String]
}

/// Hugging Face model directory → GGUF in the layout llama.cpp's `convert_hf_to_gguf.py` writes (each architecture's
/// `ggufExport`): the inverse of `GGUFModelAdapter`, using the architecture's name table.
public enum GGUFExporter {
    /// The `model_type`s that can be written.
    public static var supportedModelTypes: [String] { ModelRegistry.exportableModelTypes }

    /// Plans the export of the model at `directory` (config.json + safetensors) to `type`.
    public static func plan(directory: String, type: GGUFExportType, name: String? = nil) throws -> GGUFExportPlan {
        let config = try ModelConfig(path: directory)
        let weights = try SafeTensorsStore(directory: directory)
        let modelType = try config.modelType
        let model = try ModelRegistry.architecture(for: config)
        guard Swift.type(of: model).exportsGGUF else {
            throw ModelExportError.unsupportedArchitecture(path: config.path, modelType: modelType, supported: supportedModelTypes)
        }
        let source = SourceTensors(weights: weights, directory: directory, names: Swift.type(of: model).ggufTensorNames)
        let displayName = name ?? URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
        var (metadata, tensors) = try model.ggufExport(source: source)
        let architecture = metadata.first { $0.0 == "general.architecture" }?.1.stringValue ?? modelType
        metadata.insert(("general.type", .string("model")), at: 1)
        metadata.insert(("general.name", .string(displayName)), at: 2)
        metadata.append(("general.file_type", .uint32(type.fileType)))
        metadata.append(("general.quantization_version", .uint32(2)))
        for (key, id) in [("bos_token_id", "tokenizer.ggml.bos_token_id"), ("eos_token_id", "tokenizer.ggml.eos_token_id")] {
            if let v = (try? config.intList(key))?.first, v >= 0 { metadata.append((id, .uint32(UInt32(v)))) }
        }
        let layers = try config.int("num_hidden_layers")
        let skipped = weights.tensorNames.filter { name in
            let parts = name.split(separator: ".")
            return parts.count > 3 && parts[0] == "model" && parts[1] == "layers" && (Int(parts[2]) ?? 0) >= layers
        }
        return GGUFExportPlan(
            architecture: architecture, metadata: metadata,
            tensors: tensors.map { name, shape, values in
                GGUFExportTensor(descriptor: GGUFTensorDescriptor(name: name, shape: shape, type: type.storageType(ggufName: name, shape: shape)),
                                 values: values)
            },
            skippedTensors: skipped)
    }

    /// A placeholder vocabulary for a model directory without a tokenizer, as convert_hf_to_gguf pads missing ids:
    /// `[PAD<i>]` tokens of type UNUSED (5), no merges, so llama.cpp still loads the file.
    public static func placeholderVocabulary(size: Int) -> [(String, GGUFValue)] {
        [("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("default")),
         ("tokenizer.ggml.tokens", .array((0..<size).map { .string("[PAD\($0)]") })),
         ("tokenizer.ggml.token_type", .array([GGUFValue](repeating: .int32(5), count: size))),
         ("tokenizer.ggml.merges", .array([]))]
    }

    /// Writes `plan` to `path` (temporary file + rename), tokenizer metadata after the model's; with `split`, as a
    /// gguf-split set `<path without .gguf>-0000i-of-0000N.gguf` (`GGUFSplitWriter`). `progress` sees each tensor
    /// after it is written: (index, count, entry, bytes written so far). An existing file is replaced only with
    /// `overwrite`. Returns the files written.
    @discardableResult
    public static func write(_ plan: GGUFExportPlan, tokenizerMetadata: [(String, GGUFValue)], to path: String, overwrite: Bool = false,
                             split: GGUFSplitLimits? = nil,
                             progress: (Int, Int, GGUFTensorDescriptor, Int) -> Void = { _, _, _, _ in }) throws -> [String] {
        let tokenizerKeys = Set(tokenizerMetadata.map(\.0))
        let metadata = plan.metadata.filter { !tokenizerKeys.contains($0.0) } + tokenizerMetadata
        let descriptors = plan.tensors.map(\.descriptor)
        let writer: any GGUFTensorSink
        let paths: [String]
        if let split {
            let splitWriter = try GGUFSplitWriter(prefix: GGUFSplit.outputPrefix(path), metadata: metadata, tensors: descriptors, limits: split)
            writer = splitWriter
            paths = splitWriter.paths
        } else {
            writer = try GGUFWriter(path: path, metadata: metadata, tensors: descriptors)
            paths = [path]
        }
        if !overwrite, let existing = paths.first(where: { FileManager.default.fileExists(atPath: $0) }) {
            throw ModelExportError.unsupportedSetting(path: existing, key: "--out", detail: "exists (use --force to replace it)")
        }
        var written = 0
        for (index, tensor) in plan.tensors.enumerated() {
            let d = tensor.descriptor
            let values = try tensor.values()
            guard values.count == d.shape.reduce(1, *) else {
                throw ModelExportError.badTensor(path: path, tensor: d.name, detail: "\(values.count) values for shape \(d.shape)")
            }
            guard let dtype = d.type.dtype, Quantize.canQuantize(count: d.shape.last!, to: dtype) else {
                throw ModelExportError.badTensor(path: path, tensor: d.name, detail: "rows of \(d.shape.last!) cannot be stored as \(d.type.name)")
            }
            try writer.append(Quantize.array(values, rowLength: d.shape.last!, to: dtype))
            written += d.byteCount
            progress(index, plan.tensors.count, d, written)
        }
        try writer.finish()
        return paths
    }
}

/// Reads source tensors as floats: FP8 weights with their block scales, stacked experts split or joined.
public struct SourceTensors: Sendable {
    let weights: SafeTensorsStore
    let directory: String
    /// The architecture's GGUF names.
    let names: GGUFTensorNames
    var blockSize: [Int]? = nil

    func has(_ name: String) -> Bool { weights.contains(name) }

    func shape(_ name: String) throws -> [Int] { try weights.tensor(name).shape }

    /// Row-major floats of `name`, checked against `shape`.
    func floats(_ name: String, shape: [Int]) throws -> [Float] {
        let t = try weights.tensor(name, shape: shape)
        guard t.dtype.isFloatingPoint else {
            throw WeightStoreError.unsupportedDType(name: name, file: weights.file(of: name) ?? directory, dtype: t.dtype.rawValue)
        }
        if t.dtype == .f8e4m3 {
            guard shape.count == 2 else {
                throw ModelExportError.badTensor(path: directory, tensor: name, detail: "FP8 tensors must be 2-D to carry block scales")
            }
            return try weights.linear(name, rows: shape[0], cols: shape[1], blockSize: blockSize).toFloatArray()
        }
        return t.toFloatArray()
    }

    /// The GGUF name of an HF tensor, from the architecture's table.
    func ggufName(_ hf: String) throws -> String {
        guard let name = names.ggufName(ofHF: hf) else {
            throw ModelExportError.badTensor(path: directory, tensor: hf, detail: "has no GGUF name")
        }
        return name
    }

    /// A tensor copied as is: (GGUF name, shape, reader).
    func plain(_ hf: String, shape: [Int]) throws -> (String, [Int], @Sendable () throws -> [Float]) {
        (try ggufName(hf), shape, { try self.floats(hf, shape: shape) })
    }
}
