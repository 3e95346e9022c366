import KujiraFormats
import KujiraTokenizer

/// A JSON value to send, objects keeping their key order (responses read like OpenAI's).
public indirect enum ResponseJSON: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([ResponseJSON])
    case object([(String, ResponseJSON)])

    /// Compact JSON text.
    public var text: String {
        var out = ""
        write(into: &out)
        return out
    }

    public func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): ResponseJSON.writeString(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { out += "," }
                ResponseJSON.writeString(key, into: &out)
                out += ":"
                value.write(into: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ s: String, into out: inout String) {
        JSONString.write(s, into: &out, escapeLineSeparators: true)
    }

    /// Converts a parsed request value (key order kept).
    public init(_ value: JinjaValue) {
        switch value {
        case .none: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(items.map(ResponseJSON.init))
        case .object(let object): self = .object(object.pairs.map { ($0.key, ResponseJSON($0.value)) })
        }
    }
}
