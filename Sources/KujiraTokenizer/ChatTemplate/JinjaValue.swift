import Foundation

/// A JSON-like value passed into a chat template (messages, tools, extra variables); objects keep key order.
public enum JinjaValue: Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    case object(JinjaObject)

    /// Parses JSON text, keeping the key order of every object (tool schemas are rendered in that order).
    public init(json data: Data) throws {
        self = try OrderedJSONParser.parse(data)
    }

    /// Parses JSON text, keeping the key order of every object.
    public init(jsonString: String) throws {
        self = try OrderedJSONParser.parse(Data(jsonString.utf8))
    }

    /// Converts `JSONSerialization` output (or hand-built `[String: Any]` / `[Any]` trees).
    ///
    /// `JSONSerialization` does not keep key order, so keys of `[String: Any]` dictionaries are sorted
    /// to make the result deterministic; use `init(json:)` when the order matters. Like the JSON parser, refuses
    /// nesting deeper than 512 levels.
    public init(any value: Any?) throws {
        try self.init(any: value, depth: 0)
    }

    private init(any value: Any?, depth: Int) throws {
        guard let value, !(value is NSNull) else { self = .none; return }
        if depth >= 512, value is [Any?] || value is [Any] || value is [String: Any?] || value is [String: Any] {
            throw ChatTemplateError.invalidInput("template input nested deeper than 512 levels")
        }
        switch value {
        case let v as JinjaValue: self = v
        case let v as String: self = .string(v)
        case let v as Bool where type(of: value) == Bool.self: self = .bool(v)
        case let v as NSNumber:
            // NSNumber hides booleans and integers behind one type: ask it what it holds.
            let objCType = String(cString: v.objCType)
            if objCType == "c" || objCType == "B" {
                self = .bool(v.boolValue)
            } else if objCType == "d" || objCType == "f" {
                self = .double(v.doubleValue)
            } else {
                self = .int(v.intValue)
            }
        case let v as Int: self = .int(v)
        case let v as Double: self = .double(v)
        case let v as [Any?]: self = .array(try v.map { try JinjaValue(any: $0, depth: depth + 1) })
        case let v as [Any]: self = .array(try v.map { try JinjaValue(any: $0, depth: depth + 1) })
        case let v as [String: Any?]:
            var object = JinjaObject()
            for key in v.keys.sorted() { object[key] = try JinjaValue(any: v[key] ?? nil, depth: depth + 1) }
            self = .object(object)
        case let v as [String: Any]:
            var object = JinjaObject()
            for key in v.keys.sorted() { object[key] = try JinjaValue(any: v[key], depth: depth + 1) }
            self = .object(object)
        default:
            throw ChatTemplateError.invalidInput("unsupported value of type \(type(of: value)) in template input")
        }
    }

    /// The value as JSON text, spaced like Python's `json.dumps` (what transformers' `tojson` filter produces).
    public func jsonString(indent: Int? = nil) -> String {
        var out = ""
        // Plain data never holds undefined values or functions, the only things the writer rejects.
        try? JSONWriter(indent: indent.map { String(repeating: " ", count: max(0, min($0, 10_000))) }).write(RuntimeValue(self), into: &out)
        return out
    }
}

/// An object whose keys keep their insertion order (JSON objects, Python dicts).
public struct JinjaObject: Sendable, Equatable {
    /// Keys in insertion order.
    public private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    public init() {}

    /// Builds an object from key/value pairs in order; a repeated key keeps its first position and last value.
    public init(_ pairs: [(String, JinjaValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    public var count: Int { keys.count }

    public subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// Key/value pairs in order.
    public var pairs: [(key: String, value: JinjaValue)] {
        keys.map { ($0, storage[$0] ?? .none) }
    }

    public static func == (lhs: JinjaObject, rhs: JinjaObject) -> Bool {
        lhs.storage == rhs.storage
    }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) { self = .object(JinjaObject(elements)) }
    public init(nilLiteral: ()) { self = .none }
}
