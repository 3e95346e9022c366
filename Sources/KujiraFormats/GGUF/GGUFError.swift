/// Why a GGUF file could not be read; every case names the file and the place in it.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case truncated(path: String, what: String, offset: Int, needed: Int, fileSize: Int)
    case badMagic(path: String, found: UInt32)
    case unsupportedVersion(path: String, version: UInt32)
    case unknownValueType(path: String, key: String, type: UInt32, offset: Int)
    case unknownTensorType(path: String, tensor: String, type: UInt32)
    case invalidTensor(path: String, tensor: String, reason: String)
    case tensorOutOfRange(path: String, tensor: String, start: Int, end: Int, fileSize: Int)
    case duplicateKey(path: String, key: String)
    case duplicateTensor(path: String, tensor: String)
    case invalidMetadata(path: String, key: String, reason: String)
    /// A shard of a gguf-split set is not there: `path` is the missing file, `referencedBy` the shard that named the set.
    case missingShard(path: String, shard: Int, count: Int, referencedBy: String)
    /// A tensor appears in two shards of a gguf-split set.
    case duplicateShardTensor(path: String, tensor: String, otherPath: String)

    public var description: String {
        switch self {
        case let .truncated(path, what, offset, needed, fileSize):
            return "\(path): truncated GGUF: reading \(what) at byte \(offset) needs \(needed) bytes, but the file has \(fileSize)"
        case let .badMagic(path, found):
            return "\(path): not a GGUF file (magic 0x\(String(found, radix: 16)), expected 0x46554747 'GGUF')"
        case let .unsupportedVersion(path, version):
            return "\(path): unsupported GGUF version \(version) (supported: 2, 3)"
        case let .unknownValueType(path, key, type, offset):
            return "\(path): metadata '\(quoted(key))' has unknown value type \(type) at byte \(offset)"
        case let .unknownTensorType(path, tensor, type):
            return "\(path): tensor '\(quoted(tensor))' has unknown ggml type \(type)"
        case let .invalidTensor(path, tensor, reason):
            return "\(path): tensor '\(quoted(tensor))': \(reason)"
        case let .tensorOutOfRange(path, tensor, start, end, fileSize):
            return "\(path): tensor '\(quoted(tensor))' spans bytes \(start)..<\(end), past the end of the file (\(fileSize) bytes)"
        case let .duplicateKey(path, key):
            return "\(path): metadata key '\(quoted(key))' appears twice"
        case let .duplicateTensor(path, tensor):
            return "\(path): tensor '\(quoted(tensor))' appears twice"
        case let .invalidMetadata(path, key, reason):
            return "\(path): metadata '\(quoted(key))': \(reason)"
        case let .missingShard(path, shard, count, referencedBy):
            return "\(path): missing shard \(shard + 1) of \(count) of a split GGUF (\(referencedBy) has split.count \(count))"
        case let .duplicateShardTensor(path, tensor, otherPath):
            return "\(path): tensor '\(quoted(tensor))' is also in \(otherPath) (each tensor of a split GGUF must be in exactly one shard)"
        }
    }
}
