import Foundation

/// A value during template evaluation: JSON-like data plus Jinja's undefined, namespaces and callables.
indirect enum RuntimeValue {
    /// Jinja's default `Undefined`; the payload names what was missing (for error messages).
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([RuntimeValue])
    case object(RuntimeObject)
    case namespace(Namespace)
    case callable(Callable)

    init(_ value: JinjaValue) {
        switch value {
        case .none: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(items.map(RuntimeValue.init))
        case .object(let object):
            var converted = RuntimeObject()
            for (key, value) in object.pairs { converted[key] = RuntimeValue(value) }
            self = .object(converted)
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// Python truthiness.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let items): return !items.isEmpty
        case .object(let object): return object.count > 0
        case .namespace, .callable: return true
        }
    }

    /// Python type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .object: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        }
    }

    /// Python `str(value)`, which is what `{{ value }}` prints; undefined prints as nothing.
    var pythonString: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return pythonRepr
        }
    }

    /// Python `repr(value)` (strings single-quoted, `True`, `None`, `[1, 2]`, `{'a': 1}`).
    var pythonRepr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pythonFloatRepr(d)
        case .string(let s): return pythonStringRepr(s)
        case .array(let items): return "[" + items.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .object(let object):
            return "{" + object.pairs.map { pythonStringRepr($0.key) + ": " + $0.value.pythonRepr }
                .joined(separator: ", ") + "}"
        case .namespace(let namespace):
            return "<Namespace " + namespace.attributes.pairs.map { $0.key + "=" + $0.value.pythonRepr }
                .joined(separator: ", ") + ">"
        case .callable(let callable): return "<function \(callable.name)>"
        }
    }

    /// Numeric view (bools count as 0/1 like in Python).
    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// Python `==`.
    func pythonEquals(_ other: RuntimeValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.int(let a), .int(let b)): return a == b
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.pythonEquals($1) }
        case (.object(let a), .object(let b)):
            return a.count == b.count && a.pairs.allSatisfy { pair in
                b[pair.key].map { pair.value.pythonEquals($0) } ?? false
            }
        case (.namespace(let a), .namespace(let b)): return a === b
        default:
            if let a = number, let b = other.number { return a == b }
            return false
        }
    }

    /// Python `<` for numbers, strings and lists; other pairs are a type error.
    func pythonLess(_ other: RuntimeValue) throws -> Bool {
        switch (self, other) {
        case (.int(let a), .int(let b)): return a < b
        case (.string(let a), .string(let b)):
            return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
        case (.array(let a), .array(let b)):
            for (x, y) in zip(a, b) where !x.pythonEquals(y) { return try x.pythonLess(y) }
            return a.count < b.count
        default:
            if let a = number, let b = other.number { return a < b }
            throw runtimeError("'<' not supported between instances of '\(typeName)' and '\(other.typeName)'")
        }
    }

    /// Converts back to plain data (namespaces become objects; undefined and callables are errors).
    func toJinjaValue() throws -> JinjaValue {
        switch self {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .array(let items): return .array(try items.map { try $0.toJinjaValue() })
        case .object(let object):
            return .object(JinjaObject(try object.pairs.map { ($0.key, try $0.value.toJinjaValue()) }))
        case .namespace(let namespace):
            return .object(JinjaObject(try namespace.attributes.pairs.map { ($0.key, try $0.value.toJinjaValue()) }))
        case .undefined(let name): throw runtimeError("'\(name)' is undefined")
        case .callable(let callable): throw runtimeError("function '\(callable.name)' is not data")
        }
    }
}

/// Python's `repr` of a string: single quotes unless the text holds a single quote and no double quote.
func pythonStringRepr(_ string: String) -> String {
    let quote: Unicode.Scalar = string.unicodeScalars.contains("'") && !string.unicodeScalars.contains("\"") ? "\"" : "'"
    var out = String(quote)
    for scalar in string.unicodeScalars {
        switch scalar {
        case quote: out += "\\" + String(quote)
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" : "") + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    out.unicodeScalars.append(quote)
    return out
}

/// A dict with insertion-ordered string keys (Python dicts keep insertion order).
struct RuntimeObject {
    private(set) var keys: [String] = []
    private var storage: [String: RuntimeValue] = [:]

    var count: Int { keys.count }

    subscript(key: String) -> RuntimeValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    var pairs: [(key: String, value: RuntimeValue)] {
        keys.map { ($0, storage[$0] ?? .none) }
    }
}

/// The mutable object made by `namespace(...)`; `{% set ns.x = ... %}` writes through it across scopes.
final class Namespace {
    var attributes = RuntimeObject()
}

/// Arguments of a call: positional then keyword, as written.
struct CallArguments {
    var positional: [RuntimeValue] = []
    var keyword: [(name: String, value: RuntimeValue)] = []

    /// The argument at `index`, or the keyword `name`, or nil.
    func value(_ index: Int, _ name: String) -> RuntimeValue? {
        if index < positional.count { return positional[index] }
        return keyword.last { $0.name == name }?.value
    }
}

/// A function value: builtins (`range`, `namespace`, string methods bound to a value) and macros.
struct Callable {
    let name: String
    let body: (CallArguments) throws -> RuntimeValue
}
