import Foundation
import KujiraTensor

/// Writes safetensors files atomically (a temporary file in the same directory, then rename), so a crash
/// never leaves a half-written checkpoint under the final name.
public enum SafeTensorsWriter {
    /// One tensor to write: raw little-endian bytes of `dtype` in row-major `shape`.
    public struct Tensor: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var bytes: [UInt8]

        public init(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        /// An F32 tensor from floats.
        public static func float32(_ name: String, shape: [Int], values: [Float]) -> Tensor {
            Tensor(name: name, dtype: .f32, shape: shape, bytes: values.withUnsafeBytes { Array($0) })
        }
    }

    /// The file's bytes: header (names sorted, padded to 8 bytes) then data in the same order.
    public static func encode(_ tensors: [Tensor], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let sorted = tensors.sorted { $0.name < $1.name }
        for t in sorted {
            let expected = t.shape.reduce(1, *) * t.dtype.byteSize
            guard t.bytes.count == expected else {
                throw SafeTensorsError.badEntry(path: "<writing>", tensor: t.name, detail: "\(t.bytes.count) bytes given, \(t.dtype.rawValue) \(t.shape) needs \(expected)")
            }
            header[t.name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]] as [String: Any]
            offset += t.bytes.count
        }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var data = Data()
        data.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(headerBytes)
        for t in sorted { data.append(contentsOf: t.bytes) }
        return data
    }

    /// Encodes and writes to `path` atomically.
    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(try encode(tensors, metadata: metadata), to: path)
    }
}
