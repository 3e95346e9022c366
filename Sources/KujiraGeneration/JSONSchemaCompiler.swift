import Foundation
import KujiraTokenizer

/// A JSON schema compiled for constrained decoding (`response_format: {type: json_schema}`): what `JSONSchemaValidator`
/// walks byte by byte so every output it lets through parses and validates.
///
/// Supported: `type` (one or a list), `properties`, `required`, `additionalProperties` (false, true or a schema),
/// `items`, `minItems`, `maxItems`, `enum`, `const`, `anyOf`/`oneOf` whose branches start with different JSON kinds
/// (what pydantic writes for `Optional[X]`), `nullable`, and local `$ref`s into `$defs`/`definitions` (recursion
/// included). Annotations (`title`, `description`, `default`, `examples`, `format`, `$schema`, `$id`, `strict`) are
/// ignored. Anything else that constrains values (`pattern`, `minimum`, `minLength`, `allOf`, …) is refused with a
/// `JSONSchemaError` naming the keyword and where it is, rather than produce output that does not validate.
public final class JSONSchema: Sendable {
    /// The root's node.
    let root: SchemaNode
    /// `$ref` targets, by index (`SchemaNode.reference`).
    let definitions: [SchemaNode]

    /// Compiles a schema given as parsed JSON (`JSONSerialization` objects).
    public init(_ schema: Any) throws {
        var compiler = SchemaCompiler(document: schema)
        root = try compiler.compile(schema, path: "#")
        definitions = compiler.finishedDefinitions()
    }

    /// Compiles a schema parsed by the tokenizer's JSON reader (a request body's `response_format.json_schema.schema`).
    public convenience init(_ value: JinjaValue) throws {
        try self.init(json: value.jsonString())
    }

    /// Compiles a schema from its JSON text.
    public convenience init(json: String) throws {
        guard let data = json.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
            throw JSONSchemaError.invalid(path: "#", detail: "is not valid JSON")
        }
        try self.init(object)
    }

    /// The node a reference names.
    func resolve(_ node: SchemaNode) -> SchemaNode {
        if case .reference(let index) = node { return resolve(definitions[index]) }
        return node
    }
}

/// Why a schema cannot be used for constrained decoding.
public enum JSONSchemaError: Error, Equatable, CustomStringConvertible {
    case unsupported(path: String, keyword: String)
    case invalid(path: String, detail: String)

    public var description: String {
        switch self {
        case let .unsupported(path, keyword): "\(path): '\(keyword)' is not supported by constrained decoding"
        case let .invalid(path, detail): "\(path): \(detail)"
        }
    }
}

/// One compiled schema (`JSONSchemaValidator`'s grammar).
indirect enum SchemaNode: Sendable {
    /// Any JSON value.
    case any
    /// An object: the listed properties (JSON-escaped key bytes, without quotes) in any order, each at most once; the
    /// `required` ones (indices) before `}`; other keys only when `additional` is given, their values matching it.
    case object(properties: [Property], required: [Int], additional: SchemaNode?)
    case array(items: SchemaNode, minItems: Int, maxItems: Int?)
    case string
    case number(integer: Bool)
    case boolean
    case null
    /// One of these JSON texts exactly (`enum`, `const`), as bytes.
    case literals([[UInt8]])
    /// Alternatives that differ in their first byte's kind (object, array, string, number, literal).
    case union([SchemaNode])
    /// `JSONSchema.definitions[index]`.
    case reference(Int)

    struct Property: Sendable {
        let key: [UInt8]
        let schema: SchemaNode
    }
}

/// Turns parsed JSON into `SchemaNode`s, resolving local references once each.
struct SchemaCompiler {
    let document: Any
    private var definitionIndex: [String: Int] = [:]
    private var definitions: [SchemaNode?] = []

    init(document: Any) { self.document = document }

    static let annotations: Set<String> = ["title", "description", "default", "examples", "format", "$schema", "$id", "$comment",
                                           "strict", "deprecated", "readOnly", "writeOnly", "$defs", "definitions"]
    static let handled: Set<String> = ["type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
                                       "enum", "const", "anyOf", "oneOf", "nullable", "$ref"]

    mutating func finishedDefinitions() -> [SchemaNode] { definitions.map { $0 ?? .any } }

    mutating func compile(_ schema: Any, path: String) throws -> SchemaNode {
        if let flag = schema as? Bool {
            guard flag else { throw JSONSchemaError.invalid(path: path, detail: "the schema 'false' allows no value") }
            return .any
        }
        guard let object = schema as? [String: Any] else { throw JSONSchemaError.invalid(path: path, detail: "a schema must be an object or a boolean") }
        for key in object.keys.sorted() where !Self.annotations.contains(key) && !Self.handled.contains(key) {
            throw JSONSchemaError.unsupported(path: path, keyword: key)
        }
        if let reference = object["$ref"] {
            guard object.keys.allSatisfy({ $0 == "$ref" || Self.annotations.contains($0) }) else {
                throw JSONSchemaError.unsupported(path: path, keyword: "$ref beside other keywords")
            }
            return try resolveReference(reference, path: path)
        }
        if let values = object["enum"] {
            guard let list = values as? [Any], !list.isEmpty else { throw JSONSchemaError.invalid(path: path + "/enum", detail: "must be a non-empty array") }
            return try .literals(list.map { try Self.serialize($0, path: path + "/enum") })
        }
        if let value = object["const"] { return .literals([try Self.serialize(value, path: path + "/const")]) }
        if let branches = object["anyOf"] ?? object["oneOf"] {
            let name = object["anyOf"] != nil ? "anyOf" : "oneOf"
            guard let list = branches as? [Any], !list.isEmpty else { throw JSONSchemaError.invalid(path: path + "/" + name, detail: "must be a non-empty array") }
            let nodes = try list.enumerated().map { try compile($0.element, path: "\(path)/\(name)/\($0.offset)") }
            return try union(nodes, path: path + "/" + name)
        }
        var kinds: [String]
        switch object["type"] {
        case nil: kinds = object["properties"] != nil ? ["object"] : object["items"] != nil ? ["array"] : []
        case let name as String: kinds = [name]
        case let names as [String]: kinds = names
        default: throw JSONSchemaError.invalid(path: path + "/type", detail: "must be a string or an array of strings")
        }
        if (object["nullable"] as? Bool) == true, !kinds.isEmpty, !kinds.contains("null") { kinds.append("null") }
        if kinds.isEmpty { return .any }
        let nodes = try kinds.map { kind -> SchemaNode in
            switch kind {
            case "object": return try compileObject(object, path: path)
            case "array": return try compileArray(object, path: path)
            case "string": return .string
            case "number": return .number(integer: false)
            case "integer": return .number(integer: true)
            case "boolean": return .boolean
            case "null": return .null
            default: throw JSONSchemaError.invalid(path: path + "/type", detail: "unknown type '\(kind)'")
            }
        }
        return nodes.count == 1 ? nodes[0] : try union(nodes, path: path + "/type")
    }

    private mutating func compileObject(_ object: [String: Any], path: String) throws -> SchemaNode {
        let declared = (object["properties"] as? [String: Any]) ?? [:]
        if object["properties"] != nil, object["properties"] as? [String: Any] == nil {
            throw JSONSchemaError.invalid(path: path + "/properties", detail: "must be an object")
        }
        // Keep the schema's order where JSONSerialization has one; sorted otherwise, so compilation is deterministic.
        let names = declared.keys.sorted()
        var properties: [SchemaNode.Property] = []
        for name in names {
            properties.append(.init(key: Array(Self.escapedKey(name).utf8), schema: try compile(declared[name]!, path: "\(path)/properties/\(name)")))
        }
        var required: [Int] = []
        if let list = object["required"] {
            guard let names = list as? [String] else { throw JSONSchemaError.invalid(path: path + "/required", detail: "must be an array of strings") }
            for name in names {
                guard let index = properties.firstIndex(where: { $0.key == Array(Self.escapedKey(name).utf8) }) else {
                    throw JSONSchemaError.invalid(path: path + "/required", detail: "'\(name)' is required but not in 'properties'")
                }
                if !required.contains(index) { required.append(index) }
            }
        }
        var additional: SchemaNode?
        switch object["additionalProperties"] {
        case nil: additional = properties.isEmpty ? .any : nil  // a bare {"type": "object"} is any object
        case let flag as Bool: additional = flag ? .any : nil
        case let schema?: additional = try compile(schema, path: path + "/additionalProperties")
        }
        return .object(properties: properties, required: required, additional: additional)
    }

    private mutating func compileArray(_ object: [String: Any], path: String) throws -> SchemaNode {
        let items = try object["items"].map { try compile($0, path: path + "/items") } ?? .any
        let minItems = try Self.count(object["minItems"], path: path + "/minItems") ?? 0
        let maxItems = try Self.count(object["maxItems"], path: path + "/maxItems")
        if let maxItems, maxItems < minItems { throw JSONSchemaError.invalid(path: path, detail: "maxItems \(maxItems) < minItems \(minItems)") }
        return .array(items: items, minItems: minItems, maxItems: maxItems)
    }

    private static func count(_ value: Any?, path: String) throws -> Int? {
        guard let value else { return nil }
        guard let number = value as? NSNumber, let n = Int(exactly: number.doubleValue), n >= 0, n <= 100_000 else {
            throw JSONSchemaError.invalid(path: path, detail: "must be an integer in 0...100000")
        }
        return n
    }

    /// The first byte's kind of each branch must differ, so the first byte picks the branch.
    private func union(_ nodes: [SchemaNode], path: String) throws -> SchemaNode {
        var seen: Set<UInt8> = []
        var flat: [SchemaNode] = []
        for node in nodes {
            let firsts = try firstBytes(node, path: path)
            guard seen.isDisjoint(with: firsts) else {
                throw JSONSchemaError.unsupported(path: path, keyword: "alternatives that start with the same kind of value")
            }
            seen.formUnion(firsts)
            flat.append(node)
        }
        return flat.count == 1 ? flat[0] : .union(flat)
    }

    /// The bytes a value of `node` can start with.
    private func firstBytes(_ node: SchemaNode, path: String) throws -> Set<UInt8> {
        switch node {
        case .any: return Set("{[\"-0123456789tfn".utf8)
        case .object: return [UInt8(ascii: "{")]
        case .array: return [UInt8(ascii: "[")]
        case .string: return [UInt8(ascii: "\"")]
        case .number: return Set("-0123456789".utf8)
        case .boolean: return Set("tf".utf8)
        case .null: return [UInt8(ascii: "n")]
        case .literals(let texts): return Set(texts.compactMap(\.first))
        case .union(let nodes): return try nodes.reduce(into: Set<UInt8>()) { $0.formUnion(try firstBytes($1, path: path)) }
        case .reference(let index):
            guard let target = definitions[index] else {
                throw JSONSchemaError.unsupported(path: path, keyword: "a recursive $ref as an alternative")
            }
            return try firstBytes(target, path: path)
        }
    }

    private mutating func resolveReference(_ reference: Any, path: String) throws -> SchemaNode {
        guard let text = reference as? String, text.hasPrefix("#/") else {
            throw JSONSchemaError.unsupported(path: path, keyword: "$ref outside this document")
        }
        if let index = definitionIndex[text] { return .reference(index) }
        var target: Any = document
        for part in text.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
            let name = part.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            guard let object = target as? [String: Any], let next = object[name] else {
                throw JSONSchemaError.invalid(path: path, detail: "$ref '\(text)' names nothing in the schema")
            }
            target = next
        }
        guard definitions.count < 256 else { throw JSONSchemaError.invalid(path: path, detail: "more than 256 $ref targets") }
        let index = definitions.count
        definitionIndex[text] = index
        definitions.append(nil)
        definitions[index] = try compile(target, path: text)
        return .reference(index)
    }

    /// A key as it appears between the quotes of JSON text.
    static func escapedKey(_ name: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [name], options: [.fragmentsAllowed, .withoutEscapingSlashes])) ?? Data()
        let text = String(decoding: data, as: UTF8.self)  // ["…"]
        return String(text.dropFirst(2).dropLast(2))
    }

    /// A value as compact JSON text.
    static func serialize(_ value: Any, path: String) throws -> [UInt8] {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes, .sortedKeys]) else {
            throw JSONSchemaError.invalid(path: path, detail: "holds a value that is not JSON")
        }
        return Array(data)
    }
}
