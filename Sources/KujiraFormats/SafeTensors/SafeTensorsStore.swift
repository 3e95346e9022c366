import Foundation
import KujiraTensor

/// A model's weights from one safetensors file or a sharded set (`model.safetensors.index.json`).
public final class SafeTensorsStore: WeightStore {
    public let source: String
    private let files: [SafeTensorsFile]
    private let fileOfTensor: [String: Int]

    /// Opens the weights of a model directory: the index if present, else `model.safetensors`,
    /// else every `*.safetensors` in the directory.
    public convenience init(directory: String) throws {
        let fm = FileManager.default
        let index = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
        let single = (directory as NSString).appendingPathComponent("model.safetensors")
        if fm.fileExists(atPath: index) {
            try self.init(indexPath: index)
        } else if fm.fileExists(atPath: single) {
            try self.init(files: [single], source: single)
        } else {
            let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !names.isEmpty else { throw SafeTensorsError.noWeights(directory: directory) }
            try self.init(files: names.map { (directory as NSString).appendingPathComponent($0) }, source: directory)
        }
    }

    /// Opens a sharded checkpoint through its index (`{"weight_map": {tensor: file}}`).
    public convenience init(indexPath: String) throws {
        guard let data = FileManager.default.contents(atPath: indexPath) else {
            throw SafeTensorsError.badIndex(path: indexPath, detail: "cannot read the file")
        }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let weightMap = json["weight_map"] as? [String: Any] else {
            throw SafeTensorsError.badIndex(path: indexPath, detail: "expected a JSON object with a \"weight_map\" object")
        }
        let directory = (indexPath as NSString).deletingLastPathComponent
        var shardNames = Set<String>()
        for (tensor, file) in weightMap {
            guard let name = file as? String, !name.contains("/"), !name.isEmpty else {
                throw SafeTensorsError.badIndex(path: indexPath, detail: "tensor '\(tensor)' maps to an invalid file name")
            }
            shardNames.insert(name)
        }
        let paths = shardNames.sorted().map { (directory as NSString).appendingPathComponent($0) }
        try self.init(files: paths, source: indexPath)
        for (tensor, file) in weightMap {
            let shard = (directory as NSString).appendingPathComponent(file as! String)
            guard let owner = fileOfTensor[tensor], files[owner].path == shard else {
                throw SafeTensorsError.badIndex(path: indexPath, detail: "tensor '\(tensor)' is listed in \(file as! String) but not stored there")
            }
        }
    }

    /// Opens the given files as one store; a tensor name may appear in only one file.
    public init(files paths: [String], source: String) throws {
        self.source = source
        var files: [SafeTensorsFile] = []
        var fileOfTensor: [String: Int] = [:]
        for path in paths {
            let file = try SafeTensorsFile(path: path)
            for name in file.entries.keys {
                if let other = fileOfTensor[name] {
                    throw SafeTensorsError.badEntry(path: path, tensor: name, detail: "also stored in \(files[other].path)")
                }
                fileOfTensor[name] = files.count
            }
            files.append(file)
        }
        self.files = files
        self.fileOfTensor = fileOfTensor
    }

    public var tensorNames: [String] { fileOfTensor.keys.sorted() }

    public func contains(_ name: String) -> Bool { fileOfTensor[name] != nil }

    public func tensor(_ name: String) throws -> TensorData {
        guard let index = fileOfTensor[name] else { throw WeightStoreError.missingTensor(name: name, source: source) }
        return try files[index].tensor(name)
    }

    public func file(of name: String) -> String? { fileOfTensor[name].map { files[$0].path } }

    /// Total bytes memory-mapped across all shards.
    public var mappedByteCount: Int { files.reduce(0) { $0 + $1.byteCount } }
}
