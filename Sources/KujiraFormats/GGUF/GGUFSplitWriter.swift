import Foundation
import KujiraTensor

/// Where GGUF tensor data is streamed, tensor after tensor in directory order: one file (`GGUFWriter`) or a
/// gguf-split set (`GGUFSplitWriter`).
public protocol GGUFTensorSink: AnyObject {
    /// The tensor whose data comes next, or nil when all data has been written.
    var nextTensor: GGUFTensorDescriptor? { get }
    /// Appends bytes of the current tensor's data (a tensor may come in several pieces, in order).
    func append(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes the output appear under its final name(s); nothing appears before.
    func finish() throws
}

extension GGUFTensorSink {
    /// Appends a whole tensor's (or a piece of its) data from an array.
    public func append<T>(_ values: [T]) throws {
        try values.withUnsafeBytes { try append($0) }
    }
}

/// When a gguf-split writer starts a new shard: before a tensor that would take the shard's tensor data past
/// `maxBytes` (each tensor counted padded to 32 bytes, metadata not counted, as `gguf-split --split-max-size`), or
/// once the shard has `maxTensors` tensors (`--split-max-tensors`). A shard always gets at least one tensor, so a
/// tensor larger than `maxBytes` is a shard of its own.
public struct GGUFSplitLimits: Sendable, Equatable {
    /// Most tensor-data bytes per shard (`--split-max-size`), or no size limit.
    public var maxBytes: Int?
    /// Most tensors per shard (`--split-max-tensors`), or no count limit.
    public var maxTensors: Int?

    public init(maxBytes: Int? = nil, maxTensors: Int? = nil) {
        self.maxBytes = maxBytes
        self.maxTensors = maxTensors
    }

    /// A size as `--split-max-size` takes it: plain bytes, or a whole number with K, M or G (powers of 1000, as
    /// gguf-split's M and G). Nil for anything else, zero, or a value that overflows.
    public static func parseSize(_ text: String) -> Int? {
        var digits = Substring(text)
        var unit = 1
        if let last = digits.last, let scale = ["K": 1_000, "M": 1_000_000, "G": 1_000_000_000, "T": 1_000_000_000_000][last.uppercased()] {
            unit = scale
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits), n > 0 else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: unit)
        return overflow ? nil : bytes
    }

    /// The tensor index range of each shard, in order (one empty range for no tensors).
    public func shards(of tensors: [GGUFTensorDescriptor], alignment: Int = 32) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0, bytes = 0
        for (i, t) in tensors.enumerated() {
            let size = GGUFWriter.padded(t.byteCount, alignment)
            let count = i - start
            let full = count > 0 && ((maxTensors.map { count >= $0 } ?? false) || (maxBytes.map { bytes > $0 - size } ?? false))
            if full {
                ranges.append(start..<i)
                start = i
                bytes = 0
            }
            bytes += size
        }
        ranges.append(start..<tensors.count)
        return ranges
    }
}

/// Writes a GGUF model as a gguf-split set: files `<prefix>-00001-of-0000N.gguf` …, tensors in order, a new shard
/// when `GGUFSplitLimits` says so; the first shard carries all metadata, every shard `split.no` (uint16),
/// `split.count` (uint16) and `split.tensors.count` (int32) — the layout llama.cpp's `gguf-split --split` writes.
///
/// Every shard is written to a hidden temporary file and synced; only when all are complete does `finish()` rename
/// them into place, the first shard last (after removing an old first shard of the same name), so an interrupted
/// run never leaves a set whose first shard names shards that are not all there.
public final class GGUFSplitWriter: GGUFTensorSink {
    /// The shard files, in order.
    public let paths: [String]
    /// Each shard's tensor index range.
    public let shards: [Range<Int>]
    /// Every tensor of the set, in write order.
    public let tensors: [GGUFTensorDescriptor]
    private let metadata: [(String, GGUFValue)]
    private var writers: [GGUFWriter] = []
    private var done = false

    /// Plans the shards and starts the first one. Split keys already in `metadata` are replaced.
    public init(prefix: String, metadata: [(String, GGUFValue)], tensors: [GGUFTensorDescriptor], limits: GGUFSplitLimits) throws {
        let shards = limits.shards(of: tensors)
        let firstPath = GGUFSplit.path(prefix: prefix, index: 0, count: shards.count)
        guard shards.count <= Int(UInt16.max) else {
            throw GGUFError.invalidMetadata(path: firstPath, key: GGUFSplit.countKey, reason: "\(shards.count) shards do not fit uint16; raise the split limits")
        }
        guard tensors.count <= Int(Int32.max) else {
            throw GGUFError.invalidMetadata(path: firstPath, key: GGUFSplit.tensorsCountKey, reason: "\(tensors.count) tensors do not fit int32")
        }
        var seen = Set<String>()
        for t in tensors where !seen.insert(t.name).inserted { throw GGUFError.duplicateTensor(path: firstPath, tensor: t.name) }
        self.shards = shards
        self.tensors = tensors
        self.paths = shards.indices.map { GGUFSplit.path(prefix: prefix, index: $0, count: shards.count) }
        self.metadata = metadata.filter { !GGUFSplit.keys.contains($0.0) }
        try startShard(0)
    }

    public var nextTensor: GGUFTensorDescriptor? { writers.last?.nextTensor }

    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard let writer = writers.last, writer.nextTensor != nil else {
            throw GGUFWriteError.wrongDataSize(path: paths[writers.count - 1], tensor: "<none>", expected: 0, written: bytes.count)
        }
        try writer.append(bytes)
        if writer.nextTensor == nil && writers.count < shards.count { try startShard(writers.count) }
    }

    /// Seals every shard, then renames them into place: shards 2…N first, the first shard last.
    public func finish() throws {
        guard !done else { return }
        if let t = nextTensor { throw GGUFWriteError.incomplete(path: paths[writers.count - 1], missing: t.name) }
        for writer in writers { try writer.seal() }
        // An old first shard under the same name would complete a half-renamed set: it goes first.
        if unlink(paths[0]) != 0 && errno != ENOENT {
            throw GGUFWriteError.io(path: paths[0], reason: "cannot remove the old file: \(String(cString: strerror(errno)))")
        }
        var published: [Int] = []
        for index in Array(writers.indices.dropFirst()) + [0] {
            do {
                try writers[index].publish()
                published.append(index)
            } catch {
                for p in published { unlink(paths[p]) }
                throw error
            }
        }
        done = true
        let directory = (paths[0] as NSString).deletingLastPathComponent
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    private func startShard(_ index: Int) throws {
        let splitKeys: [(String, GGUFValue)] = [
            (GGUFSplit.numberKey, .uint16(UInt16(index))), (GGUFSplit.countKey, .uint16(UInt16(shards.count))),
            (GGUFSplit.tensorsCountKey, .int32(Int32(tensors.count))),
        ]
        let writer = try GGUFWriter(path: paths[index], metadata: (index == 0 ? metadata : []) + splitKeys,
                                    tensors: Array(tensors[shards[index]]))
        writers.append(writer)
        // An empty shard (only for a model without tensors) is complete at once.
        if writer.nextTensor == nil && writers.count < shards.count { try startShard(writers.count) }
    }
}
