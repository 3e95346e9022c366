import KujiraTensor

/// Where a model reads its tensors from, by name (safetensors directory, GGUF file, or memory).
public protocol WeightStore: Sendable {
    /// Human-readable origin for error messages (a path).
    var source: String { get }
    /// All tensor names, sorted.
    var tensorNames: [String] { get }
    /// Whether a tensor of that name exists.
    func contains(_ name: String) -> Bool
    /// The tensor's bytes, memory-mapped; throws `WeightStoreError.missingTensor` naming the tensor and source.
    func tensor(_ name: String) throws -> TensorData
    /// The file that holds `name` (for error messages), if known.
    func file(of name: String) -> String?
    /// A LoRA adapter to apply on top of linear weight `name` (`AdaptedWeightStore`); nil for plain stores.
    func adapter(for name: String) -> LowRankAdapter?
}

extension WeightStore {
    public func adapter(for name: String) -> LowRankAdapter? { nil }
}

/// Errors raised while reading weights; each names the file and tensor.
public enum WeightStoreError: Error, CustomStringConvertible, Equatable {
    case missingTensor(name: String, source: String)
    case shapeMismatch(name: String, file: String, expected: [Int], found: [Int])
    case unsupportedDType(name: String, file: String, dtype: String)

    public var description: String {
        switch self {
        case let .missingTensor(name, source):
            return "missing tensor '\(quoted(name))' in \(source)"
        case let .shapeMismatch(name, file, expected, found):
            return "tensor '\(quoted(name))' in \(file) has shape \(found), but the config expects \(expected)"
        case let .unsupportedDType(name, file, dtype):
            return "tensor '\(quoted(name))' in \(file) has dtype \(dtype), which this operation does not support"
        }
    }
}

extension WeightStore {
    /// The tensor, checked against the shape the config implies.
    public func tensor(_ name: String, shape: [Int]) throws -> TensorData {
        let t = try tensor(name)
        guard t.shape == shape else {
            throw WeightStoreError.shapeMismatch(name: name, file: file(of: name) ?? source, expected: shape, found: t.shape)
        }
        return t
    }

    /// A tensor decoded to Float after a shape check (norms, biases, small vectors).
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        let t = try tensor(name, shape: shape)
        guard t.dtype.isFloatingPoint else {
            throw WeightStoreError.unsupportedDType(name: name, file: file(of: name) ?? source, dtype: t.dtype.rawValue)
        }
        return t.toFloatArray()
    }
}

extension WeightStore {
    /// A Linear weight `[rows, cols]`. FP8 weights get their `<name>_scale_inv` block scales, whose grid
    /// must be `[ceil(rows/bh), ceil(cols/bw)]` for `blockSize = [bh, bw]` (from
    /// `quantization_config.weight_block_size`).
    public func linear(_ name: String, rows: Int, cols: Int, blockSize: [Int]? = nil) throws -> LinearWeight {
        let data = try tensor(name, shape: [rows, cols])
        if let adapter = adapter(for: name), adapter.b.shape[0] != rows || adapter.a.shape[1] != cols {
            throw WeightStoreError.shapeMismatch(name: "LoRA adapter on \(name)", file: "the adapter", expected: [rows, cols],
                                                 found: [adapter.b.shape[0], adapter.a.shape[1]])
        }
        guard data.dtype.isFloatingPoint else {
            throw WeightStoreError.unsupportedDType(name: name, file: file(of: name) ?? source, dtype: data.dtype.rawValue)
        }
        guard data.dtype == .f8e4m3 else { return LinearWeight(data: data, adapter: adapter(for: name)) }
        let scaleName = name + "_scale_inv"
        guard contains(scaleName) else { throw WeightStoreError.missingTensor(name: scaleName, source: source) }
        let block = blockSize ?? [128, 128]
        guard block.count == 2, block[0] > 0, block[1] > 0 else {
            throw WeightStoreError.unsupportedDType(name: scaleName, file: source, dtype: "weight_block_size \(block)")
        }
        let grid = [(rows + block[0] - 1) / block[0], (cols + block[1] - 1) / block[1]]
        let scales = try floats(scaleName, shape: grid)
        return LinearWeight(data: data, blockScales: BlockScales(values: scales, gridCols: grid[1], blockRows: block[0], blockCols: block[1]),
                            adapter: adapter(for: name))
    }
}
