import Foundation
import KujiraTensor

/// Writes a safetensors file tensor by tensor (header first, from the shapes alone), so a converter holds one tensor
/// in memory at a time. Same layout as `SafeTensorsWriter` (names sorted, header padded to 8 bytes); the file is
/// written to a hidden temporary sibling and renamed by `finish()`, and removed if the writer is dropped unfinished.
public final class SafeTensorsStreamWriter {
    /// One tensor's entry: name, dtype, row-major shape.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public init(name: String, dtype: DType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
        /// Bytes of the tensor's data.
        public var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
    }

    public let path: String
    /// Entries in the order their data must be appended (sorted by name).
    public let entries: [Entry]
    private let temporaryPath: String
    private var handle: FileHandle?
    private var next = 0
    private var finished = false

    public init(path: String, entries: [Entry], metadata: [String: String] = [:]) throws {
        self.path = path
        self.entries = entries.sorted { $0.name < $1.name }
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for e in self.entries {
            guard header[e.name] == nil else { throw SafeTensorsError.badEntry(path: path, tensor: e.name, detail: "appears twice") }
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.byteCount]] as [String: Any]
            offset += e.byteCount
        }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        let url = URL(fileURLWithPath: path)
        temporaryPath = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        guard FileManager.default.createFile(atPath: temporaryPath, contents: nil), let handle = FileHandle(forWritingAtPath: temporaryPath) else {
            throw SafeTensorsError.badEntry(path: path, tensor: "<file>", detail: "cannot create \(temporaryPath): \(String(cString: strerror(errno)))")
        }
        self.handle = handle
        var prefix = Data()
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { prefix.append(contentsOf: $0) }
        prefix.append(headerBytes)
        try handle.write(contentsOf: prefix)
    }

    deinit {
        if !finished {
            try? handle?.close()
            unlink(temporaryPath)
        }
    }

    /// The entry whose bytes come next, or nil when all are written.
    public var nextEntry: Entry? { next < entries.count ? entries[next] : nil }

    /// Writes the next entry's bytes (exactly its size).
    public func append(_ bytes: [UInt8]) throws {
        guard let e = nextEntry else { throw SafeTensorsError.badEntry(path: path, tensor: "<none>", detail: "every tensor is already written") }
        guard bytes.count == e.byteCount else {
            throw SafeTensorsError.badEntry(path: path, tensor: e.name, detail: "\(bytes.count) bytes given, \(e.dtype.rawValue) \(e.shape) needs \(e.byteCount)")
        }
        try handle?.write(contentsOf: bytes)
        next += 1
    }

    /// Syncs and renames the file into place; throws if a tensor has no data.
    public func finish() throws {
        if let e = nextEntry { throw SafeTensorsError.badEntry(path: path, tensor: e.name, detail: "has no data yet") }
        try handle?.synchronize()
        try handle?.close()
        handle = nil
        guard rename(temporaryPath, path) == 0 else {
            throw SafeTensorsError.badEntry(path: path, tensor: "<file>", detail: "cannot rename into place: \(String(cString: strerror(errno)))")
        }
        finished = true
    }
}
