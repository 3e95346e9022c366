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

    /// A literal of the template source.
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

    /// Converts data passed in to render (messages, tools, variables), refusing nesting deeper than `maxDepth`.
    init(input value: JinjaValue, maxDepth: Int, level: Int = 0) throws {
        switch value {
        case .array, .object:
            guard level < maxDepth else {
                throw budgetError(.depth, "input data (messages, tools or variables) nested more than \(maxDepth) deep")
            }
        default:
            break
        }
        switch value {
        case .array(let items):
            self = .array(try items.map { try RuntimeValue(input: $0, maxDepth: maxDepth, level: level + 1) })
        case .object(let object):
            var converted = RuntimeObject()
            for (key, value) in object.pairs {
                converted[key] = try RuntimeValue(input: value, maxDepth: maxDepth, level: level + 1)
            }
            self = .object(converted)
        default:
            self = RuntimeValue(value)
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

    /// Numeric view (bools count as 0/1 like in Python).
    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// A value that holds other values (list, dict, namespace, or a method bound to one).
    var isContainer: Bool {
        switch self {
        case .array, .object, .namespace: return true
        case .callable(let callable): return callable.receiver != nil
        default: return false
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
    /// The value a bound method captured (`d.items` holds `d`), so nesting checks can see through it.
    var receiver: RuntimeValue? = nil
    let body: (CallArguments) throws -> RuntimeValue
}
