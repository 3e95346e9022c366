import Foundation

/// JSON string literals as Python's `json.dumps` writes them (`\b`, `\f`, `\uXXXX` for other controls, surrogate
/// pairs when `ensureASCII`), optionally also escaping U+2028/U+2029 for JavaScript consumers of a wire format.
public enum JSONString {
    public static func write(_ string: String, into out: inout String, ensureASCII: Bool = false, escapeLineSeparators: Bool = false) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                let escapeSeparator = escapeLineSeparators && (scalar.value == 0x2028 || scalar.value == 0x2029)
                if scalar.value < 0x20 || escapeSeparator || (ensureASCII && scalar.value > 0x7E) {
                    if scalar.value > 0xFFFF {
                        let v = scalar.value - 0x10000
                        out += unicodeEscape(0xD800 + (v >> 10)) + unicodeEscape(0xDC00 + (v & 0x3FF))
                    } else {
                        out += unicodeEscape(scalar.value)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func unicodeEscape(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}

extension JSONValue {
    /// JSON text: keys sorted, two-space indentation when `pretty`; integers stay integers and floats keep a
    /// decimal point or exponent (`1.0`, `1e-06`), unlike `JSONSerialization`, which writes `1.0` as `1`.
    public func serialized(pretty: Bool = true) -> Data {
        var out = ""
        write(into: &out, pretty: pretty, level: 0)
        if pretty { out += "\n" }
        return Data(out.utf8)
    }

    private func write(into out: inout String, pretty: Bool, level: Int) {
        func newline(_ level: Int) { if pretty { out += "\n" + String(repeating: "  ", count: level) } }
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .integer(i): out += String(i)
        case let .number(d): out += d.isFinite ? "\(d)" : "null"
        case let .string(s): JSONString.write(s, into: &out)
        case let .array(items):
            guard !items.isEmpty else { out += "[]"; return }
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                newline(level + 1)
                item.write(into: &out, pretty: pretty, level: level + 1)
            }
            newline(level)
            out += "]"
        case let .object(object):
            guard !object.isEmpty else { out += "{}"; return }
            out += "{"
            for (index, key) in object.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                newline(level + 1)
                JSONString.write(key, into: &out)
                out += pretty ? ": " : ":"
                object[key]!.write(into: &out, pretty: pretty, level: level + 1)
            }
            newline(level)
            out += "}"
        }
    }
}
