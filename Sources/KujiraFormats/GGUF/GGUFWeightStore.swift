import KujiraTensor

/// A `WeightStore` over one GGUF file; tensor names are the GGUF's own ("blk.0.attn_q.weight").
public struct GGUFWeightStore: WeightStore {
    /// The parsed file.
    public let file: GGUFFile

    public init(file: GGUFFile) {
        self.file = file
    }

    /// Opens and parses `path`.
    public init(path: String) throws {
        self.file = try GGUFFile(path: path)
    }

    public var source: String { file.path }

    public var tensorNames: [String] { file.tensorInfos.map(\.name).sorted() }

    public func contains(_ name: String) -> Bool { file.tensorInfo(name) != nil }

    /// A memory-mapped view with a row-major shape (ggml dims reversed). Throws for formats Kujira cannot compute with.
    public func tensor(_ name: String) throws -> TensorData {
        guard let info = file.tensorInfo(name) else { throw WeightStoreError.missingTensor(name: name, source: file.path) }
        guard let dtype = info.type.dtype else {
            throw WeightStoreError.unsupportedDType(name: name, file: file.path, dtype: info.type.name)
        }
        return TensorData(dtype: dtype, shape: info.shape, bytes: file.tensorBytes(info), owner: file.mapped)
    }

    public func file(of name: String) -> String? { contains(name) ? file.path : nil }
}
