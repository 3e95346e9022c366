import Foundation
import KujiraTensor

/// One `.safetensors` file, memory-mapped, with its header parsed and every entry validated.
///
/// Layout: 8-byte little-endian header length N, N bytes of JSON
/// `{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`, then the data;
/// offsets are relative to the first byte after the header.
public final class SafeTensorsFile: Sendable {
    /// Path of the file, used in every error message.
    public let path: String
    /// Entries by tensor name.
    public let entries: [String: Entry]
    /// The free-form `__metadata__` strings.
    public let metadata: [String: String]
    private let mapped: MappedFile
    private let dataStart: Int

    /// One tensor's header entry.
    public struct Entry: Sendable {
        public let dtype: DType
        public let shape: [Int]
        /// Byte range relative to the data section.
        public let begin: Int
        public let end: Int
    }

    /// Opens and validates `path`. Throws `SafeTensorsError` naming the file (and tensor) on any defect.
    public init(path: String) throws {
        self.path = path
        let mapped = try MappedFile(path: path)
        self.mapped = mapped
        let bytes = mapped.bytes
        guard bytes.count >= 8 else { throw SafeTensorsError.truncated(path: path, detail: "file is \(bytes.count) bytes, shorter than the 8-byte header length") }
        let headerLength = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw SafeTensorsError.truncated(path: path, detail: "header length \(headerLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        let headerEnd = 8 + Int(headerLength)
        dataStart = headerEnd
        let headerData = Data(bytes[8..<headerEnd])
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw SafeTensorsError.badHeader(path: path, detail: "header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw SafeTensorsError.badHeader(path: path, detail: "header is not a JSON object") }
        let dataSize = bytes.count - headerEnd
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                if let dict = value as? [String: Any] {
                    for (k, v) in dict { metadata[k] = v as? String ?? "\(v)" }
                }
                continue
            }
            entries[name] = try Self.parseEntry(name: name, value: value, path: path, dataSize: dataSize)
        }
        self.entries = entries
        self.metadata = metadata
    }

    private static func parseEntry(name: String, value: Any, path: String, dataSize: Int) throws -> Entry {
        guard let dict = value as? [String: Any] else { throw SafeTensorsError.badEntry(path: path, tensor: name, detail: "entry is not an object") }
        guard let dtypeName = dict["dtype"] as? String else { throw SafeTensorsError.badEntry(path: path, tensor: name, detail: "missing dtype") }
        // Safetensors has no block-quantized types: GGML names ("Q4_0", ...) are GGUF-only DTypes.
        guard let dtype = DType(rawValue: dtypeName), !dtype.isQuantized else { throw SafeTensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName) }
        guard let shapeValues = dict["shape"] as? [Any] else { throw SafeTensorsError.badEntry(path: path, tensor: name, detail: "missing shape") }
        var shape: [Int] = []
        for dim in shapeValues {
            guard let n = dim as? NSNumber, n.int64Value >= 0, n.int64Value < (1 << 40), n.doubleValue == Double(n.int64Value) else {
                throw SafeTensorsError.badEntry(path: path, tensor: name, detail: "shape \(quoted("\(shapeValues)")) has a dimension that is not a non-negative integer")
            }
            shape.append(n.intValue)
        }
        guard let offsets = dict["data_offsets"] as? [Any], offsets.count == 2,
              let begin = (offsets[0] as? NSNumber)?.int64Value, let end = (offsets[1] as? NSNumber)?.int64Value else {
            throw SafeTensorsError.badEntry(path: path, tensor: name, detail: "data_offsets must be [begin, end]")
        }
        guard begin >= 0, end >= begin, end <= Int64(dataSize) else {
            throw SafeTensorsError.offsetsOutOfRange(path: path, tensor: name, begin: Int(begin), end: Int(end), dataSize: dataSize)
        }
        let expected: Int
        do {
            let elements = try SizeLimits.elements(shape, field: "tensor '\(quoted(name))'", source: path)
            expected = try SizeLimits.bytes(elements, times: dtype.byteSize, field: "tensor '\(quoted(name))'", source: path)
        } catch let error as SizeError {
            throw SafeTensorsError.badEntry(path: path, tensor: name, detail: error.detail)
        }
        guard Int(end - begin) == expected else {
            throw SafeTensorsError.badEntry(path: path, tensor: name, detail: "data_offsets span \(end - begin) bytes, but \(dtype.rawValue) \(shape) needs \(expected)")
        }
        return Entry(dtype: dtype, shape: shape, begin: Int(begin), end: Int(end))
    }

    /// Names of all tensors, sorted.
    public var tensorNames: [String] { entries.keys.sorted() }

    /// The tensor's bytes as a view into the mapping.
    public func tensor(_ name: String) throws -> TensorData {
        guard let entry = entries[name] else { throw WeightStoreError.missingTensor(name: name, source: path) }
        let base = mapped.bytes.baseAddress.map { UnsafeRawPointer($0).advanced(by: dataStart + entry.begin) }
        let view = UnsafeRawBufferPointer(start: entry.end > entry.begin ? base : nil, count: entry.end - entry.begin)
        return TensorData(dtype: entry.dtype, shape: entry.shape, bytes: view, owner: mapped)
    }

    /// Size of the mapped file in bytes.
    public var byteCount: Int { mapped.bytes.count }
}

/// Problems found in a safetensors file or index; each names the file and, where it applies, the tensor.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case truncated(path: String, detail: String)
    case badHeader(path: String, detail: String)
    case badEntry(path: String, tensor: String, detail: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case offsetsOutOfRange(path: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    case badIndex(path: String, detail: String)
    case noWeights(directory: String)

    public var description: String {
        switch self {
        case let .truncated(path, detail): return "\(path): truncated safetensors file: \(detail)"
        case let .badHeader(path, detail): return "\(path): bad safetensors header: \(detail)"
        case let .badEntry(path, tensor, detail): return "\(path): tensor '\(quoted(tensor))': \(detail)"
        case let .unknownDType(path, tensor, dtype): return "\(path): tensor '\(quoted(tensor))' has unknown dtype '\(quoted(dtype))' (supported: \(DType.allCases.filter { !$0.isQuantized }.map(\.rawValue).joined(separator: ", ")))"
        case let .offsetsOutOfRange(path, tensor, begin, end, dataSize):
            return "\(path): tensor '\(quoted(tensor))' has data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data section (file truncated or corrupt)"
        case let .badIndex(path, detail): return "\(path): bad safetensors index: \(detail)"
        case let .noWeights(directory): return "\(directory): no model.safetensors, model.safetensors.index.json or *.safetensors found"
        }
    }
}
