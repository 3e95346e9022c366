import Foundation

/// A parsed JSON value (Sendable, unlike `JSONSerialization`'s output). Integers and floats stay apart, so a config
/// written back keeps `1.0` a float (transformers' strict config classes reject `"routed_scaling_factor": 1`).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Converts `JSONSerialization` output.
    public init(any value: Any) {
        switch value {
        case is NSNull: self = .null
        case let n as NSNumber:
            // Booleans arrive as NSNumber too; their Objective-C type code is "c". Floats are "d" or "f".
            switch String(cString: n.objCType) {
            case "c": self = .bool(n.boolValue)
            case "d", "f": self = .number(n.doubleValue)
            default: self = .integer(n.intValue)
            }
        case let s as String: self = .string(s)
        case let a as [Any]: self = .array(a.map { JSONValue(any: $0) })
        case let d as [String: Any]: self = .object(d.mapValues { JSONValue(any: $0) })
        default: self = .null
        }
    }
}

/// A model's `config.json`, with typed getters whose errors name the file and key.
///
/// Accepts both published forms: deepseek-ai's (`rope_theta` + `rope_scaling`) and transformers 5's
/// (`rope_parameters`). Unknown keys are ignored.
public struct ModelConfig: Sendable {
    /// Where the config came from (for errors).
    public let path: String
    /// The top-level object.
    public let values: [String: JSONValue]

    /// Reads and parses `path` (a `config.json`, or a directory containing one).
    public init(path: String) throws {
        var file = path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            file = (path as NSString).appendingPathComponent("config.json")
        }
        guard let data = FileManager.default.contents(atPath: file) else { throw ConfigError.unreadable(path: file) }
        try self.init(data: data, path: file)
    }

    /// Parses config JSON bytes; `path` is used in errors.
    public init(data: Data, path: String) throws {
        guard let json = try? JSONSerialization.jsonObject(with: data), case let .object(values) = JSONValue(any: json) else {
            throw ConfigError.invalidJSON(path: path)
        }
        self.path = path
        self.values = values
    }

    /// Builds a config from values in memory (tests, `kujira init`).
    public init(values: [String: JSONValue], path: String = "<memory>") {
        self.path = path
        self.values = values
    }

    /// `model_type`, required.
    public var modelType: String { get throws { try string("model_type") } }

    /// Whether `key` is present and not null.
    public func has(_ key: String) -> Bool {
        if let v = values[key], v != .null { return true }
        return false
    }

    public func int(_ key: String) throws -> Int {
        guard let value = try optionalInt(key) else { throw ConfigError.missingKey(path: path, key: key) }
        return value
    }

    public func int(_ key: String, default fallback: Int) throws -> Int { try optionalInt(key) ?? fallback }

    /// An integer key that may be absent or null.
    public func optionalInt(_ key: String) throws -> Int? {
        try Self.int(values[key], key: key, path: path)
    }

    public func float(_ key: String) throws -> Double {
        guard let value = try optionalFloat(key) else { throw ConfigError.missingKey(path: path, key: key) }
        return value
    }

    public func float(_ key: String, default fallback: Double) throws -> Double { try optionalFloat(key) ?? fallback }

    public func optionalFloat(_ key: String) throws -> Double? { try Self.float(values[key], key: key, path: path) }

    public func string(_ key: String) throws -> String {
        guard let value = try optionalString(key) else { throw ConfigError.missingKey(path: path, key: key) }
        return value
    }

    public func string(_ key: String, default fallback: String) throws -> String { try optionalString(key) ?? fallback }

    public func optionalString(_ key: String) throws -> String? {
        switch values[key] {
        case nil, .null?: return nil
        case let .string(s)?: return s
        default: throw ConfigError.wrongType(path: path, key: key, expected: "a string")
        }
    }

    public func bool(_ key: String, default fallback: Bool) throws -> Bool {
        switch values[key] {
        case nil, .null?: return fallback
        case let .bool(b)?: return b
        default: throw ConfigError.wrongType(path: path, key: key, expected: "true or false")
        }
    }

    /// An integer or a list of integers (e.g. `eos_token_id`), as a list.
    public func intList(_ key: String) throws -> [Int] {
        switch values[key] {
        case nil, .null?: return []
        case let .array(items)?: return try items.map { item in
            guard let v = try Self.int(item, key: key, path: path) else { throw ConfigError.wrongType(path: path, key: key, expected: "integers") }
            return v
        }
        default: return try optionalInt(key).map { [$0] } ?? []
        }
    }

    /// A list of strings (e.g. `layer_types`); empty when absent.
    public func stringList(_ key: String) throws -> [String] {
        switch values[key] {
        case nil, .null?: return []
        case let .array(items)?: return try items.map { item in
            guard case let .string(s) = item else { throw ConfigError.wrongType(path: path, key: key, expected: "a list of strings") }
            return s
        }
        default: throw ConfigError.wrongType(path: path, key: key, expected: "a list of strings")
        }
    }

    /// A nested object as a config of its own (errors name `key` inside this file), or nil when absent.
    public func object(_ key: String) throws -> ModelConfig? {
        switch values[key] {
        case nil, .null?: return nil
        case let .object(o)?: return ModelConfig(values: o, path: "\(path) (\(key))")
        default: throw ConfigError.wrongType(path: path, key: key, expected: "an object")
        }
    }

    static func int(_ value: JSONValue?, key: String, path: String) throws -> Int? {
        switch value {
        case nil, .null?: return nil
        case let .integer(i)?: return try SizeLimits.integer(i, field: "key '\(key)'", source: path, limit: SizeLimits.limit(ofConfigKey: key))
        case let .number(d)?:
            guard d.rounded() == d, abs(d) < 9e15 else { throw ConfigError.wrongType(path: path, key: key, expected: "an integer") }
            return try SizeLimits.integer(Int(d), field: "key '\(key)'", source: path, limit: SizeLimits.limit(ofConfigKey: key))
        default: throw ConfigError.wrongType(path: path, key: key, expected: "an integer")
        }
    }

    static func float(_ value: JSONValue?, key: String, path: String) throws -> Double? {
        switch value {
        case nil, .null?: return nil
        case let .integer(i)?: return Double(i)
        case let .number(d)?: return d
        default: throw ConfigError.wrongType(path: path, key: key, expected: "a number")
        }
    }
}

/// Errors reading `config.json`; each names the file and the key.
public enum ConfigError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String)
    case invalidJSON(path: String)
    case missingKey(path: String, key: String)
    case wrongType(path: String, key: String, expected: String)
    case invalidValue(path: String, key: String, detail: String)
    case unsupportedModelType(path: String, modelType: String, supported: [String])

    public var description: String {
        switch self {
        case let .unreadable(path): return "cannot read \(path)"
        case let .invalidJSON(path): return "\(path) is not a JSON object"
        case let .missingKey(path, key): return "\(path): missing required key '\(quoted(key))'"
        case let .wrongType(path, key, expected): return "\(path): key '\(quoted(key))' should be \(expected)"
        case let .invalidValue(path, key, detail): return "\(path): key '\(quoted(key))': \(detail)"
        case let .unsupportedModelType(path, modelType, supported):
            return "\(path): model_type '\(quoted(modelType))' is not supported (supported: \(supported.joined(separator: ", ")))"
        }
    }
}
