/// One metadata value of a GGUF file, in the file's own type (arrays may nest).
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), array([GGUFValue]), uint64(UInt64), int64(Int64), float64(Double)

    /// The value as an Int when it is any integer type that fits (bool and floats are not integers).
    public var intValue: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(v)
        default: return nil
        }
    }

    /// The value as a Float when it is a float or an integer.
    public var floatValue: Float? {
        switch self {
        case let .float32(v): return v
        case let .float64(v): return Float(v)
        default: return intValue.map { Float($0) }
        }
    }

    /// The string, when the value is one.
    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    /// The bool, when the value is one.
    public var boolValue: Bool? {
        if case let .bool(b) = self { return b }
        return nil
    }

    /// The elements, when the value is an array.
    public var arrayValue: [GGUFValue]? {
        if case let .array(a) = self { return a }
        return nil
    }

    /// The GGUF type name, for messages ("uint32", "array", ...).
    public var typeName: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .float32: return "float32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float64: return "float64"
        }
    }
}
