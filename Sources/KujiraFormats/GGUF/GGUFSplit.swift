import Foundation
import KujiraTensor

/// llama.cpp's split-GGUF conventions (`gguf-split`, gguf-py's `GGUFWriter(split_max_…)`): the KV keys every shard
/// carries and the shard file names `<prefix>-%05d-of-%05d.gguf` (1-based shard number, shard count).
public enum GGUFSplit {
    /// `split.no`: the shard's 0-based index (uint16).
    public static let numberKey = "split.no"
    /// `split.count`: how many shards the set has (uint16).
    public static let countKey = "split.count"
    /// `split.tensors.count`: tensors in the whole set (int32); llama.cpp reads it from the first shard.
    public static let tensorsCountKey = "split.tensors.count"
    /// The three keys, in the order the writers append them.
    public static let keys = [numberKey, countKey, tensorsCountKey]

    /// `llama_split_path`: the file of 0-based shard `index` of `count` ("model-00002-of-00003.gguf").
    public static func path(prefix: String, index: Int, count: Int) -> String {
        prefix + suffix(index: index, count: count)
    }

    /// `llama_split_prefix`: the prefix of `path` when it is named as shard `index` of `count`, else nil.
    public static func prefix(of path: String, index: Int, count: Int) -> String? {
        let postfix = suffix(index: index, count: count)
        guard path.utf8.count > postfix.utf8.count, path.hasSuffix(postfix) else { return nil }
        return String(path.dropLast(postfix.count))
    }

    /// The prefix `kujira convert --out` names a set with: the output path without a trailing `.gguf`.
    public static func outputPrefix(_ out: String) -> String {
        out.hasSuffix(".gguf") && out.count > 5 ? String(out.dropLast(5)) : out
    }

    static func suffix(index: Int, count: Int) -> String {
        "-" + zeroPadded(index + 1) + "-of-" + zeroPadded(count) + ".gguf"
    }

    static func zeroPadded(_ n: Int) -> String {
        let digits = String(n)
        return digits.count >= 5 ? digits : String(repeating: "0", count: 5 - digits.count) + digits
    }

    /// A split key of `file` as an Int, nil when absent; a value of another GGUF type than `type` is refused, as
    /// llama.cpp's typed `get_key` refuses it.
    static func integer(_ file: GGUFFile, _ key: String, type: String) throws -> Int? {
        guard let value = file.metadata[key] else { return nil }
        guard value.typeName == type, let v = value.intValue else {
            throw GGUFError.invalidMetadata(path: file.path, key: key, reason: "must be \(type) (as gguf-split writes it), got \(value.typeName)")
        }
        return v
    }
}

/// One GGUF model: a single file, or every shard of a gguf-split set presented as one file (metadata from the first
/// shard, each tensor from the shard that holds it).
public final class GGUFFileSet: Sendable {
    /// The shards in `split.no` order; one element for an unsplit file.
    public let shards: [GGUFFile]
    /// Every tensor's directory entry, shard by shard in file order (offsets are relative to the holding shard).
    public let tensorInfos: [GGUFTensorInfo]
    private let location: [String: Int]

    /// The first shard's path (the file itself when unsplit), for messages.
    public var path: String { shards[0].path }
    /// Whether the model is a set of more than one shard.
    public var isSplit: Bool { shards.count > 1 }
    /// The model's metadata: the first shard's key/value pairs.
    public var metadata: [String: GGUFValue] { shards[0].metadata }
    /// Bytes on disk of every shard together.
    public var fileBytes: Int { shards.reduce(0) { $0 + $1.mapped.bytes.count } }

    /// One file as it is (its split keys, if any, are not followed).
    public init(file: GGUFFile) {
        shards = [file]
        tensorInfos = file.tensorInfos
        location = Dictionary(file.tensorInfos.map { ($0.name, 0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Opens `path`; when its `split.count` is above 1, opens every sibling shard named by llama.cpp's pattern
    /// (`path` may be any of them) and checks that they form one set: each `split.no` 0..<count present once with
    /// the same `split.count`, no tensor in two shards, and `split.tensors.count` of the first shard equal to the
    /// tensors found. Errors name the missing or inconsistent shard file and the key.
    public convenience init(path: String) throws {
        let given = try GGUFFile(path: path)
        guard let count = try GGUFSplit.integer(given, GGUFSplit.countKey, type: "uint16"), count > 1 else {
            if let number = try GGUFSplit.integer(given, GGUFSplit.numberKey, type: "uint16"), number != 0 {
                throw GGUFError.invalidMetadata(path: path, key: GGUFSplit.numberKey,
                                                reason: "is \(number), but split.count is \(given.int(GGUFSplit.countKey) ?? 1): a set of one shard has only split.no 0")
            }
            self.init(file: given)
            return
        }
        guard let index = try GGUFSplit.integer(given, GGUFSplit.numberKey, type: "uint16") else {
            throw GGUFError.invalidMetadata(path: path, key: GGUFSplit.numberKey, reason: "missing (split.count is \(count))")
        }
        guard index < count else {
            throw GGUFError.invalidMetadata(path: path, key: GGUFSplit.numberKey, reason: "is \(index), but split.count is \(count)")
        }
        guard let prefix = GGUFSplit.prefix(of: path, index: index, count: count) else {
            throw GGUFError.invalidMetadata(
                path: path, key: GGUFSplit.numberKey,
                reason: "shard \(index + 1) of \(count), but the file is not named <prefix>\(GGUFSplit.suffix(index: index, count: count)) as gguf-split names it, so its sibling shards cannot be found")
        }
        var shards: [GGUFFile] = []
        shards.reserveCapacity(count)
        for i in 0..<count {
            let shardPath = GGUFSplit.path(prefix: prefix, index: i, count: count)
            let file: GGUFFile
            if i == index {
                file = given
            } else {
                guard access(shardPath, F_OK) == 0 else {
                    throw GGUFError.missingShard(path: shardPath, shard: i, count: count, referencedBy: path)
                }
                file = try GGUFFile(path: shardPath)
            }
            guard let number = try GGUFSplit.integer(file, GGUFSplit.numberKey, type: "uint16") else {
                throw GGUFError.invalidMetadata(path: shardPath, key: GGUFSplit.numberKey, reason: "missing in shard \(i + 1) of \(count)")
            }
            guard number == i else {
                throw GGUFError.invalidMetadata(path: shardPath, key: GGUFSplit.numberKey,
                                                reason: "is \(number), but the file name makes it shard \(i + 1) of \(count) (split.no \(i))")
            }
            let shardCount = try GGUFSplit.integer(file, GGUFSplit.countKey, type: "uint16")
            guard shardCount == count else {
                throw GGUFError.invalidMetadata(path: shardPath, key: GGUFSplit.countKey,
                                                reason: "is \(shardCount.map(String.init) ?? "missing"), but \(path) has \(count)")
            }
            shards.append(file)
        }
        try self.init(shards: shards)
    }

    /// The shards of one set, in order; refuses a tensor in two shards and a tensor total other than the first
    /// shard's `split.tensors.count`.
    init(shards: [GGUFFile]) throws {
        var location: [String: Int] = [:]
        var infos: [GGUFTensorInfo] = []
        for (i, shard) in shards.enumerated() {
            for info in shard.tensorInfos {
                if let other = location.updateValue(i, forKey: info.name) {
                    throw GGUFError.duplicateShardTensor(path: shard.path, tensor: info.name, otherPath: shards[other].path)
                }
                infos.append(info)
            }
        }
        let first = shards[0]
        guard let total = try GGUFSplit.integer(first, GGUFSplit.tensorsCountKey, type: "int32") else {
            throw GGUFError.invalidMetadata(path: first.path, key: GGUFSplit.tensorsCountKey, reason: "missing in the first shard of a split GGUF")
        }
        guard total == infos.count else {
            throw GGUFError.invalidMetadata(path: first.path, key: GGUFSplit.tensorsCountKey,
                                            reason: "is \(total), but the \(shards.count) shards hold \(infos.count) tensors")
        }
        self.shards = shards
        self.tensorInfos = infos
        self.location = location
    }

    // MARK: Metadata (the first shard's)

    /// A string value, or nil.
    public func string(_ key: String) -> String? { shards[0].string(key) }
    /// An integer value of any integer type, or nil.
    public func int(_ key: String) -> Int? { shards[0].int(key) }
    /// A float value, or nil.
    public func float(_ key: String) -> Float? { shards[0].float(key) }
    /// A bool value, or nil.
    public func bool(_ key: String) -> Bool? { shards[0].bool(key) }
    /// An array of strings, or nil.
    public func strings(_ key: String) -> [String]? { shards[0].strings(key) }
    /// An array of integers, or nil.
    public func ints(_ key: String) -> [Int]? { shards[0].ints(key) }
    /// An array of floats, or nil.
    public func floats(_ key: String) -> [Float]? { shards[0].floats(key) }

    // MARK: Tensors

    /// The shard that holds `name`, if any.
    public func shard(of name: String) -> GGUFFile? { location[name].map { shards[$0] } }

    /// The directory entry of `name`, if present in any shard.
    public func tensorInfo(_ name: String) -> GGUFTensorInfo? { shard(of: name)?.tensorInfo(name) }
}
