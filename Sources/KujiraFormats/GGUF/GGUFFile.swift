import KujiraTensor

/// Where one tensor lives in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// Name as stored ("blk.0.attn_q.weight").
    public let name: String
    /// Dimensions in ggml order: `dims[0]` (ne0) is the innermost, contiguous one.
    public let dims: [Int]
    /// Storage type.
    public let type: GGMLType
    /// Byte offset relative to the start of the data section.
    public let offset: Int
    /// Bytes the tensor occupies.
    public let byteCount: Int

    /// Row-major shape, outermost first (`dims` reversed): a ggml `[in, out]` weight is `[out, in]` here.
    public var shape: [Int] { dims.reversed() }
    /// Number of elements.
    public var elementCount: Int { dims.reduce(1, *) }
}

/// A memory-mapped GGUF file (versions 2 and 3): metadata, tensor directory and tensor bytes.
///
/// Every offset and length read from the file is bounds-checked; a malformed file throws a
/// `GGUFError` naming the file and the place, never crashes.
public final class GGUFFile: Sendable {
    /// The file's path, for messages.
    public let path: String
    /// GGUF format version (2 or 3).
    public let version: UInt32
    /// All metadata key/value pairs.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor directory in file order.
    public let tensorInfos: [GGUFTensorInfo]
    /// Alignment of tensor data (`general.alignment`, default 32).
    public let alignment: Int
    /// Absolute byte offset where the data section starts.
    public let dataOffset: Int
    /// The mapped file (owner of every tensor view).
    public let mapped: MappedFile

    private let tensorIndex: [String: Int]

    /// Maps and parses `path`. Throws `MappedFileError` if it cannot be opened, `GGUFError` if malformed.
    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.path = path
        self.mapped = file
        var reader = GGUFByteReader(bytes: file.bytes, path: path)

        let magic = try reader.read(UInt32.self, what: "magic")
        guard magic == 0x4655_4747 else { throw GGUFError.badMagic(path: path, found: magic) }
        version = try reader.read(UInt32.self, what: "version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path: path, version: version) }
        let tensorCount = try reader.readCount(what: "tensor count")
        let kvCount = try reader.readCount(what: "metadata count")

        var metadata: [String: GGUFValue] = [:]
        metadata.reserveCapacity(kvCount)
        var keys: [String] = []
        for _ in 0..<kvCount {
            let key = try reader.readString(what: "metadata key")
            let typeOffset = reader.offset
            let type = try reader.read(UInt32.self, what: "type of metadata '\(key)'")
            let value = try reader.readValue(type: type, key: key, typeOffset: typeOffset, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else { throw GGUFError.duplicateKey(path: path, key: key) }
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard let a = value.intValue, a > 0, a & (a - 1) == 0 else {
                throw GGUFError.invalidMetadata(path: path, key: "general.alignment", reason: "must be a positive power of two, got \(value)")
            }
            alignment = a
        }
        self.alignment = alignment

        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(tensorCount)
        var index: [String: Int] = [:]
        for _ in 0..<tensorCount {
            let info = try reader.readTensorInfo(alignment: alignment)
            guard index.updateValue(infos.count, forKey: info.name) == nil else {
                throw GGUFError.duplicateTensor(path: path, tensor: info.name)
            }
            infos.append(info)
        }
        let fileSize = file.bytes.count
        let dataOffset = (reader.offset + alignment - 1) / alignment * alignment
        for info in infos {
            let start = dataOffset + info.offset
            let (end, overflow) = start.addingReportingOverflow(info.byteCount)
            guard !overflow, end <= fileSize else {
                throw GGUFError.tensorOutOfRange(path: path, tensor: info.name, start: start, end: overflow ? Int.max : end, fileSize: fileSize)
            }
        }
        self.dataOffset = dataOffset
        self.tensorInfos = infos
        self.tensorIndex = index
    }

    // MARK: Metadata accessors

    /// A string value, or nil when absent or not a string.
    public func string(_ key: String) -> String? { metadata[key]?.stringValue }
    /// An integer value of any integer type, or nil.
    public func int(_ key: String) -> Int? { metadata[key]?.intValue }
    /// A float value (float32/float64, or an integer converted), or nil.
    public func float(_ key: String) -> Float? { metadata[key]?.floatValue }
    /// A bool value, or nil.
    public func bool(_ key: String) -> Bool? { metadata[key]?.boolValue }

    /// An array of strings, or nil when absent or any element is not a string.
    public func strings(_ key: String) -> [String]? {
        guard let array = metadata[key]?.arrayValue else { return nil }
        var result: [String] = []
        result.reserveCapacity(array.count)
        for element in array {
            guard case let .string(s) = element else { return nil }
            result.append(s)
        }
        return result
    }

    /// An array of integers (any integer element type), or nil.
    public func ints(_ key: String) -> [Int]? {
        guard let array = metadata[key]?.arrayValue else { return nil }
        var result: [Int] = []
        result.reserveCapacity(array.count)
        for element in array {
            guard let v = element.intValue else { return nil }
            result.append(v)
        }
        return result
    }

    /// An array of floats (float or integer elements), or nil.
    public func floats(_ key: String) -> [Float]? {
        guard let array = metadata[key]?.arrayValue else { return nil }
        var result: [Float] = []
        result.reserveCapacity(array.count)
        for element in array {
            guard let v = element.floatValue else { return nil }
            result.append(v)
        }
        return result
    }

    // MARK: Tensors

    /// The directory entry of `name`, if present.
    public func tensorInfo(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensorInfos[$0] }
    }

    /// The raw bytes of a tensor (bounds were checked at load).
    public func tensorBytes(_ info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let start = dataOffset + info.offset
        return UnsafeRawBufferPointer(rebasing: mapped.bytes[start..<(start + info.byteCount)])
    }
}

/// A bounds-checked little-endian cursor over a GGUF file's bytes.
struct GGUFByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    /// Fails unless `count` bytes are available at the cursor.
    @inline(__always)
    func need(_ count: Int, what: @autoclosure () -> String) throws {
        guard count >= 0, count <= bytes.count - offset else {
            throw GGUFError.truncated(path: path, what: what(), offset: offset, needed: count, fileSize: bytes.count)
        }
    }

    @inline(__always)
    mutating func read<T: FixedWidthInteger>(_: T.Type, what: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, what: what())
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += MemoryLayout<T>.size
        return value
    }

    /// A u64 count that must fit the remaining file (each counted item takes at least one byte).
    mutating func readCount(what: String) throws -> Int {
        let start = offset
        let raw = try read(UInt64.self, what: what)
        guard raw <= UInt64(bytes.count) else {
            throw GGUFError.truncated(path: path, what: "\(what) \(raw)", offset: start, needed: Int(clamping: raw), fileSize: bytes.count)
        }
        return Int(raw)
    }

    /// A GGUF string: u64 byte length, then UTF-8 bytes (invalid UTF-8 is repaired with U+FFFD).
    mutating func readString(what: @autoclosure () -> String) throws -> String {
        let lengthOffset = offset
        let length = try read(UInt64.self, what: what() + " length")
        guard length <= UInt64(bytes.count - offset) else {
            throw GGUFError.truncated(path: path, what: what(), offset: lengthOffset + 8, needed: Int(clamping: length), fileSize: bytes.count)
        }
        let n = Int(length)
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]), as: UTF8.self)
        offset += n
        return s
    }

    mutating func readValue(type: UInt32, key: String, typeOffset: Int, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try read(UInt8.self, what: "value of '\(key)'"))
        case 1: return .int8(try read(Int8.self, what: "value of '\(key)'"))
        case 2: return .uint16(try read(UInt16.self, what: "value of '\(key)'"))
        case 3: return .int16(try read(Int16.self, what: "value of '\(key)'"))
        case 4: return .uint32(try read(UInt32.self, what: "value of '\(key)'"))
        case 5: return .int32(try read(Int32.self, what: "value of '\(key)'"))
        case 6: return .float32(Float(bitPattern: try read(UInt32.self, what: "value of '\(key)'")))
        case 7:
            let byteOffset = offset
            let b = try read(UInt8.self, what: "value of '\(key)'")
            guard b <= 1 else {
                throw GGUFError.invalidMetadata(path: path, key: key, reason: "bool byte \(b) at byte \(byteOffset) is neither 0 nor 1")
            }
            return .bool(b == 1)
        case 8: return .string(try readString(what: "value of '\(key)'"))
        case 9:
            guard depth < 8 else {
                throw GGUFError.invalidMetadata(path: path, key: key, reason: "arrays nested deeper than 8 levels at byte \(typeOffset)")
            }
            let elementTypeOffset = offset
            let elementType = try read(UInt32.self, what: "array type of '\(key)'")
            let count = try readCount(what: "array length of '\(key)'")
            return .array(try readArray(elementType: elementType, count: count, key: key, typeOffset: elementTypeOffset, depth: depth))
        case 10: return .uint64(try read(UInt64.self, what: "value of '\(key)'"))
        case 11: return .int64(try read(Int64.self, what: "value of '\(key)'"))
        case 12: return .float64(Double(bitPattern: try read(UInt64.self, what: "value of '\(key)'")))
        default: throw GGUFError.unknownValueType(path: path, key: key, type: type, offset: typeOffset)
        }
    }

    /// Array elements; fixed-size element types are checked once for the whole array, then read without per-element checks.
    mutating func readArray(elementType: UInt32, count: Int, key: String, typeOffset: Int, depth: Int) throws -> [GGUFValue] {
        let fixedSizes: [UInt32: Int] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8]
        if let size = fixedSizes[elementType] {
            try need(count * size, what: "\(count) elements of array '\(key)'")
            let base = offset
            let raw = bytes
            func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: base + i * MemoryLayout<T>.size, as: T.self))
            }
            var result: [GGUFValue] = []
            result.reserveCapacity(count)
            switch elementType {
            case 0: for i in 0..<count { result.append(.uint8(load(UInt8.self, i))) }
            case 1: for i in 0..<count { result.append(.int8(load(Int8.self, i))) }
            case 2: for i in 0..<count { result.append(.uint16(load(UInt16.self, i))) }
            case 3: for i in 0..<count { result.append(.int16(load(Int16.self, i))) }
            case 4: for i in 0..<count { result.append(.uint32(load(UInt32.self, i))) }
            case 5: for i in 0..<count { result.append(.int32(load(Int32.self, i))) }
            case 6: for i in 0..<count { result.append(.float32(Float(bitPattern: load(UInt32.self, i)))) }
            case 7:
                for i in 0..<count {
                    let b = load(UInt8.self, i)
                    guard b <= 1 else {
                        throw GGUFError.invalidMetadata(path: path, key: key, reason: "bool byte \(b) at byte \(base + i) is neither 0 nor 1")
                    }
                    result.append(.bool(b == 1))
                }
            case 10: for i in 0..<count { result.append(.uint64(load(UInt64.self, i))) }
            case 11: for i in 0..<count { result.append(.int64(load(Int64.self, i))) }
            default: for i in 0..<count { result.append(.float64(Double(bitPattern: load(UInt64.self, i)))) }
            }
            offset += count * size
            return result
        }
        var result: [GGUFValue] = []
        result.reserveCapacity(count)
        for i in 0..<count {
            if elementType == 8 {
                result.append(.string(try readString(what: "element \(i) of array '\(key)'")))
            } else {
                result.append(try readValue(type: elementType, key: "\(key)[\(i)]", typeOffset: typeOffset, depth: depth + 1))
            }
        }
        return result
    }

    mutating func readTensorInfo(alignment: Int) throws -> GGUFTensorInfo {
        let name = try readString(what: "tensor name")
        let dimsCount = try read(UInt32.self, what: "dimension count of tensor '\(name)'")
        guard dimsCount >= 1, dimsCount <= 4 else {
            throw GGUFError.invalidTensor(path: path, tensor: name, reason: "\(dimsCount) dimensions (ggml allows 1...4)")
        }
        var dims: [Int] = []
        for d in 0..<Int(dimsCount) {
            let raw = try read(UInt64.self, what: "dimension \(d) of tensor '\(quoted(name))'")
            guard raw <= UInt64(SizeLimits.maxInteger) else {
                throw GGUFError.invalidTensor(path: path, tensor: name, reason: "dimension \(d) is \(raw)")
            }
            dims.append(Int(raw))
        }
        let elements: Int
        do { elements = try SizeLimits.elements(dims, field: "tensor '\(quoted(name))'", source: path) } catch let error as SizeError {
            throw GGUFError.invalidTensor(path: path, tensor: name, reason: error.detail)
        }
        let rawType = try read(UInt32.self, what: "type of tensor '\(name)'")
        guard let type = GGMLType(rawValue: rawType) else {
            throw GGUFError.unknownTensorType(path: path, tensor: name, type: rawType)
        }
        let offsetPosition = offset
        let rawOffset = try read(UInt64.self, what: "data offset of tensor '\(name)'")
        guard rawOffset <= UInt64(bytes.count) else {
            throw GGUFError.tensorOutOfRange(path: path, tensor: name, start: Int(clamping: rawOffset), end: Int(clamping: rawOffset), fileSize: bytes.count)
        }
        let tensorOffset = Int(rawOffset)
        guard tensorOffset % alignment == 0 else {
            throw GGUFError.invalidTensor(path: path, tensor: name, reason: "data offset \(tensorOffset) (read at byte \(offsetPosition)) is not a multiple of the alignment \(alignment)")
        }
        let layout = type.blockLayout
        guard dims[0] % layout.elements == 0 else {
            throw GGUFError.invalidTensor(path: path, tensor: name, reason: "row length \(dims[0]) is not a multiple of the \(type.name) block size \(layout.elements)")
        }
        let (byteCount, overflow) = (elements / layout.elements).multipliedReportingOverflow(by: layout.bytes)
        guard !overflow else { throw GGUFError.invalidTensor(path: path, tensor: name, reason: "byte size overflows") }
        return GGUFTensorInfo(name: name, dims: dims, type: type, offset: tensorOffset, byteCount: byteCount)
    }
}
