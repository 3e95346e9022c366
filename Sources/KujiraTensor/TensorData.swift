import Foundation

/// A read-only view of one tensor's bytes as stored in a file (memory-mapped) or in owned memory.
///
/// The view keeps its `owner` (a `MappedFile` or an owned buffer) alive, so it can be passed
/// between threads freely: the bytes never change after loading.
public struct TensorData: @unchecked Sendable {
    /// Element type of the stored bytes.
    public let dtype: DType
    /// Row-major shape, outermost first (a Linear weight is `[out, in]`).
    public let shape: [Int]
    /// The raw bytes; `count == elementCount / dtype.blockElements * dtype.blockBytes`.
    public let bytes: UnsafeRawBufferPointer
    /// Keeps the memory behind `bytes` alive.
    public let owner: AnyObject?

    public init(dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer, owner: AnyObject?) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
        self.owner = owner
    }

    /// Number of elements (product of the shape; 1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }

    /// Makes a tensor that owns a copy of `values` as F32.
    public static func owned(_ values: [Float], shape: [Int]) -> TensorData {
        precondition(values.count == shape.reduce(1, *), "values do not fill shape \(shape)")
        let storage = OwnedBytes(count: values.count * 4)
        values.withUnsafeBytes { storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return TensorData(dtype: .f32, shape: shape, bytes: UnsafeRawBufferPointer(start: storage.pointer, count: values.count * 4), owner: storage)
    }

    /// Decodes element `i` to Float (slow path for tests and odd tensors; block formats decode the whole block).
    public func float(at i: Int) -> Float {
        switch dtype {
        case .f32: return bytes.loadUnaligned(fromByteOffset: i * 4, as: Float.self)
        case .f16: return FloatConversion.f16ToFloat(bytes.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
        case .bf16: return FloatConversion.bf16ToFloat(bytes.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
        case .f8e4m3: return FloatConversion.f8e4m3Table[Int(bytes[i])]
        case .i32: return Float(bytes.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
        case .i64: return Float(bytes.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K,
             .iq4_nl, .iq4_xs, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m:
            return BlockDequantize.element(dtype, bytes, index: i)
        }
    }

    /// All elements decoded to Float, row-major.
    public func toFloatArray() -> [Float] {
        let n = elementCount
        if dtype == .f32 {
            return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
                _ = memcpy(buffer.baseAddress!, bytes.baseAddress!, n * 4)
                initialized = n
            }
        }
        if dtype.isQuantized {
            guard n > 0 else { return [] }
            return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
                BlockDequantize.row(dtype, bytes.baseAddress!, count: n, into: buffer.baseAddress!)
                initialized = n
            }
        }
        return (0..<n).map { float(at: $0) }
    }
}

/// A heap allocation that frees itself; the owner of tensors built in memory.
public final class OwnedBytes: @unchecked Sendable {
    /// Start of the allocation (64-byte aligned).
    public let pointer: UnsafeMutableRawPointer
    /// Size in bytes.
    public let count: Int

    public init(count: Int) {
        self.count = count
        self.pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
    }

    deinit { pointer.deallocate() }
}

/// A file mapped read-only into memory; pages are loaded lazily by the OS on first touch.
public final class MappedFile: @unchecked Sendable {
    /// The file's path, for error messages.
    public let path: String
    /// The whole file's bytes.
    public let bytes: UnsafeRawBufferPointer
    private let mappedBase: UnsafeMutableRawPointer?

    /// Maps `path` read-only. Throws `MappedFileError` naming the file if it cannot be opened or mapped.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw MappedFileError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw MappedFileError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        let size = Int(info.st_size)
        if size == 0 {
            mappedBase = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw MappedFileError.cannotMap(path: path, reason: String(cString: strerror(errno)))
        }
        mappedBase = base
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = mappedBase { munmap(base, bytes.count) }
    }
}

/// Why a file could not be memory-mapped.
public enum MappedFileError: Error, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case cannotMap(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "cannot open \(path): \(reason)"
        case let .cannotMap(path, reason): return "cannot memory-map \(path): \(reason)"
        }
    }
}

extension TensorData {
    /// Rows `rows` of matrix `index` of a stacked tensor `[count, R, C]` (or of a plain `[R, C]` with index 0),
    /// as a `[rows.count, C]` view sharing the same memory. Rows are contiguous, whatever the element format.
    public func matrixRows(index: Int, rows: Range<Int>) -> TensorData {
        let (count, r, c) = shape.count == 3 ? (shape[0], shape[1], shape[2]) : (1, shape[0], shape[1])
        precondition(index >= 0 && index < count && rows.lowerBound >= 0 && rows.upperBound <= r, "matrixRows out of range")
        let rowBytes = bytes.count / max(count * r, 1)
        let start = (index * r + rows.lowerBound) * rowBytes
        return TensorData(dtype: dtype, shape: [rows.count, c],
                          bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + rows.count * rowBytes)]), owner: owner)
    }
}
