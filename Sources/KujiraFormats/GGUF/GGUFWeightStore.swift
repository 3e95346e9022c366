import KujiraTensor

/// A `WeightStore` over one GGUF model — a single file or a gguf-split set; tensor names are the GGUF's own
/// ("blk.0.attn_q.weight").
public struct GGUFWeightStore: WeightStore {
    /// The parsed file, or the shards of a split model.
    public let files: GGUFFileSet

    public init(file: GGUFFile) {
        self.files = GGUFFileSet(file: file)
    }

    public init(files: GGUFFileSet) {
        self.files = files
    }

    /// Opens and parses `path`, with its sibling shards when it is part of a split GGUF.
    public init(path: String) throws {
        self.files = try GGUFFileSet(path: path)
    }

    public var source: String { files.path }

    public var tensorNames: [String] { files.tensorInfos.map(\.name).sorted() }

    public func contains(_ name: String) -> Bool { files.shard(of: name) != nil }

    /// A memory-mapped view with a row-major shape (ggml dims reversed). Throws for formats Kujira cannot compute with.
    public func tensor(_ name: String) throws -> TensorData {
        guard let shard = files.shard(of: name), let info = shard.tensorInfo(name) else {
            throw WeightStoreError.missingTensor(name: name, source: files.path)
        }
        guard let dtype = info.type.dtype else {
            throw WeightStoreError.unsupportedDType(name: name, file: shard.path, dtype: info.type.name)
        }
        return TensorData(dtype: dtype, shape: info.shape, bytes: shard.tensorBytes(info), owner: shard.mapped)
    }

    /// The shard file that holds `name`.
    public func file(of name: String) -> String? { files.shard(of: name)?.path }
}
