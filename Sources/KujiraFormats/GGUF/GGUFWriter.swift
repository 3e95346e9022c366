import Foundation
import KujiraTensor

/// One tensor's directory entry for `GGUFWriter`: name, row-major shape (outermost first) and storage type.
public struct GGUFTensorDescriptor: Sendable, Equatable {
    public var name: String
    /// Row-major shape; the file stores it reversed (ggml `ne0` = the last, contiguous dimension).
    public var shape: [Int]
    public var type: GGMLType

    public init(name: String, shape: [Int], type: GGMLType) {
        self.name = name
        self.shape = shape
        self.type = type
    }

    /// Bytes of the tensor's data in `type` (the row length must be a multiple of the block size).
    public var byteCount: Int {
        let layout = type.blockLayout
        return shape.reduce(1, *) / layout.elements * layout.bytes
    }
}

/// Why a GGUF file could not be written; names the file and tensor.
public enum GGUFWriteError: Error, CustomStringConvertible, Equatable {
    case invalidTensor(path: String, tensor: String, reason: String)
    case wrongDataSize(path: String, tensor: String, expected: Int, written: Int)
    case incomplete(path: String, missing: String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidTensor(path, tensor, reason): return "\(path): cannot write tensor '\(tensor)': \(reason)"
        case let .wrongDataSize(path, tensor, expected, written):
            return "\(path): tensor '\(tensor)' needs \(expected) bytes of data, \(written) were given"
        case let .incomplete(path, missing): return "\(path): not finished: tensor '\(missing)' has no data yet"
        case let .io(path, reason): return "\(path): \(reason)"
        }
    }
}

/// Writes a GGUF v3 file: the header (metadata in the given order, tensor directory) first, then tensor data
/// streamed one tensor at a time, each aligned to `general.alignment` (32 unless the metadata says otherwise).
///
/// Everything goes to a hidden temporary file beside `path`; `finish()` flushes and renames it into place. A writer
/// dropped before `finish()` (an error while producing tensors) deletes the temporary file, leaving nothing behind.
public final class GGUFWriter: GGUFTensorSink {
    public let path: String
    public let tensors: [GGUFTensorDescriptor]
    public let alignment: Int
    private let temporaryPath: String
    private var handle: FileHandle?
    private var buffer: [UInt8] = []
    private var current = 0
    private var writtenOfCurrent = 0
    private var finished = false

    /// Creates the temporary file and writes the header. Metadata keys keep their order; arrays must be homogeneous
    /// (an empty array is written as an array of strings).
    public init(path: String, metadata: [(String, GGUFValue)], tensors: [GGUFTensorDescriptor]) throws {
        self.path = path
        self.tensors = tensors
        var alignment = 32
        if let value = metadata.first(where: { $0.0 == "general.alignment" })?.1 {
            guard let a = value.intValue, a > 0, a & (a - 1) == 0 else {
                throw GGUFError.invalidMetadata(path: path, key: "general.alignment", reason: "must be a positive power of two, got \(value)")
            }
            alignment = a
        }
        self.alignment = alignment
        var seenKeys = Set<String>()
        for (key, value) in metadata {
            guard seenKeys.insert(key).inserted else { throw GGUFError.duplicateKey(path: path, key: key) }
            guard Self.isHomogeneous(value) else {
                throw GGUFError.invalidMetadata(path: path, key: key, reason: "array elements must all have one type")
            }
        }
        var seenTensors = Set<String>()
        for t in tensors {
            guard seenTensors.insert(t.name).inserted else { throw GGUFError.duplicateTensor(path: path, tensor: t.name) }
            guard (1...4).contains(t.shape.count), t.shape.allSatisfy({ $0 > 0 }) else {
                throw GGUFWriteError.invalidTensor(path: path, tensor: t.name, reason: "shape \(t.shape) (ggml allows 1...4 positive dimensions)")
            }
            let block = t.type.blockLayout.elements
            guard t.shape.last! % block == 0 else {
                throw GGUFWriteError.invalidTensor(path: path, tensor: t.name,
                                                   reason: "row length \(t.shape.last!) is not a multiple of the \(t.type.name) block size \(block)")
            }
        }

        var header: [UInt8] = []
        header.append(contentsOf: [0x47, 0x47, 0x55, 0x46])  // "GGUF"
        Self.append(UInt32(3), to: &header)
        Self.append(UInt64(tensors.count), to: &header)
        Self.append(UInt64(metadata.count), to: &header)
        for (key, value) in metadata {
            Self.appendString(key, to: &header)
            Self.append(Self.typeCode(value), to: &header)
            Self.appendValue(value, to: &header)
        }
        var offset = 0
        for t in tensors {
            Self.appendString(t.name, to: &header)
            Self.append(UInt32(t.shape.count), to: &header)
            for d in t.shape.reversed() { Self.append(UInt64(d), to: &header) }
            Self.append(t.type.rawValue, to: &header)
            Self.append(UInt64(offset), to: &header)
            offset += Self.padded(t.byteCount, alignment)
        }
        header.append(contentsOf: [UInt8](repeating: 0, count: Self.padded(header.count, alignment) - header.count))

        let url = URL(fileURLWithPath: path)
        temporaryPath = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        guard FileManager.default.createFile(atPath: temporaryPath, contents: nil), let handle = FileHandle(forWritingAtPath: temporaryPath) else {
            throw GGUFWriteError.io(path: path, reason: "cannot create \(temporaryPath): \(String(cString: strerror(errno)))")
        }
        self.handle = handle
        buffer = header
        try flushIfLarge(force: true)
    }

    deinit {
        if !finished {
            try? handle?.close()
            unlink(temporaryPath)
        }
    }

    /// The tensor whose data comes next, or nil when all data has been written.
    public var nextTensor: GGUFTensorDescriptor? { current < tensors.count ? tensors[current] : nil }

    /// Appends bytes of the current tensor's data; a tensor may be written in several pieces, in order.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard let t = nextTensor else {
            throw GGUFWriteError.wrongDataSize(path: path, tensor: "<none>", expected: 0, written: bytes.count)
        }
        guard writtenOfCurrent + bytes.count <= t.byteCount else {
            throw GGUFWriteError.wrongDataSize(path: path, tensor: t.name, expected: t.byteCount, written: writtenOfCurrent + bytes.count)
        }
        if bytes.count >= Self.flushSize {
            // Large pieces go straight to the file rather than through a second copy in the buffer.
            try flushIfLarge(force: true)
            do { try handle?.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: bytes.baseAddress!), count: bytes.count, deallocator: .none)) }
            catch { throw GGUFWriteError.io(path: path, reason: "write failed: \(error)") }
        } else {
            buffer.append(contentsOf: bytes)
        }
        writtenOfCurrent += bytes.count
        if writtenOfCurrent == t.byteCount {
            buffer.append(contentsOf: [UInt8](repeating: 0, count: Self.padded(t.byteCount, alignment) - t.byteCount))
            current += 1
            writtenOfCurrent = 0
        }
        try flushIfLarge(force: false)
    }

    /// Appends a whole tensor's (or a piece of its) data from an array.
    public func append<T>(_ values: [T]) throws {
        try values.withUnsafeBytes { try append($0) }
    }

    /// Flushes, syncs and renames the temporary file to `path`. Throws if some tensor has no data.
    public func finish() throws {
        try seal()
        try publish()
    }

    /// Flushes, syncs and closes the temporary file without renaming it (`publish()` does): a writer of several
    /// files seals them all before any appears under its final name. Throws if some tensor has no data.
    public func seal() throws {
        if let t = nextTensor { throw GGUFWriteError.incomplete(path: path, missing: t.name) }
        guard let handle else { return }
        try flushIfLarge(force: true)
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            throw GGUFWriteError.io(path: path, reason: "cannot flush \(temporaryPath): \(error)")
        }
        self.handle = nil
    }

    /// Renames the sealed temporary file to `path`; until then a dropped writer deletes it.
    public func publish() throws {
        guard !finished else { return }
        guard handle == nil, nextTensor == nil else { throw GGUFWriteError.io(path: path, reason: "publish() before seal()") }
        guard rename(temporaryPath, path) == 0 else {
            throw GGUFWriteError.io(path: path, reason: "cannot rename the temporary file into place: \(String(cString: strerror(errno)))")
        }
        finished = true
    }

    private func flushIfLarge(force: Bool) throws {
        guard force || buffer.count >= Self.flushSize, !buffer.isEmpty, let handle else { return }
        do {
            try handle.write(contentsOf: buffer)
        } catch {
            throw GGUFWriteError.io(path: path, reason: "write failed: \(error)")
        }
        buffer.removeAll(keepingCapacity: true)
    }

    // MARK: Encoding

    static let flushSize = 1 << 22

    static func padded(_ n: Int, _ alignment: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func appendString(_ s: String, to bytes: inout [UInt8]) {
        let utf8 = Array(s.utf8)
        append(UInt64(utf8.count), to: &bytes)
        bytes.append(contentsOf: utf8)
    }

    /// The GGUF value type number (gguf.h's `gguf_type`).
    static func typeCode(_ value: GGUFValue) -> UInt32 {
        switch value {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }

    static func isHomogeneous(_ value: GGUFValue) -> Bool {
        guard case let .array(elements) = value, let first = elements.first else { return true }
        let code = typeCode(first)
        return elements.allSatisfy { typeCode($0) == code && isHomogeneous($0) }
    }

    static func appendValue(_ value: GGUFValue, to bytes: inout [UInt8]) {
        switch value {
        case let .uint8(v): append(v, to: &bytes)
        case let .int8(v): append(v, to: &bytes)
        case let .uint16(v): append(v, to: &bytes)
        case let .int16(v): append(v, to: &bytes)
        case let .uint32(v): append(v, to: &bytes)
        case let .int32(v): append(v, to: &bytes)
        case let .float32(v): append(v.bitPattern, to: &bytes)
        case let .bool(v): bytes.append(v ? 1 : 0)
        case let .string(s): appendString(s, to: &bytes)
        case let .uint64(v): append(v, to: &bytes)
        case let .int64(v): append(v, to: &bytes)
        case let .float64(v): append(v.bitPattern, to: &bytes)
        case let .array(elements):
            append(elements.first.map(typeCode) ?? 8, to: &bytes)
            append(UInt64(elements.count), to: &bytes)
            for e in elements { appendValue(e, to: &bytes) }
        }
    }
}
