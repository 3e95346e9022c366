import KujiraFormats
import Foundation

/// A small JSON parser that keeps object key order (`JSONSerialization` does not).
enum OrderedJSONParser {
    static func parse(_ data: Data) throws -> JinjaValue {
        var parser = Parser(bytes: [UInt8](data))
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == parser.bytes.count else {
            throw parser.error("unexpected text after the JSON value")
        }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var position = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
            // Skip a UTF-8 byte order mark.
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        }

        func error(_ message: String) -> ChatTemplateError {
            .invalidInput("JSON: \(message) at byte \(position)")
        }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        mutating func expect(_ literal: String) throws {
            let expected = Array(literal.utf8)
            guard position + expected.count <= bytes.count,
                  Array(bytes[position..<position + expected.count]) == expected
            else { throw error("expected '\(literal)'") }
            position += expected.count
        }

        mutating func parseValue(depth: Int) throws -> JinjaValue {
            guard depth < 512 else { throw error("nesting deeper than 512 levels") }
            guard position < bytes.count else { throw error("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .none
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw error("unexpected character")
            }
        }

        mutating func parseObject(depth: Int) throws -> JinjaValue {
            position += 1
            var object = JinjaObject()
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(object) }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw error("expected a string key")
                }
                let key = try parseString()
                skipWhitespace()
                try expect(":")
                skipWhitespace()
                object[key] = try parseValue(depth: depth + 1)
                skipWhitespace()
                guard position < bytes.count else { throw error("unterminated object") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(object) }
                throw error("expected ',' or '}'")
            }
        }

        mutating func parseArray(depth: Int) throws -> JinjaValue {
            position += 1
            var items: [JinjaValue] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard position < bytes.count else { throw error("unterminated array") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
                throw error("expected ',' or ']'")
            }
        }

        mutating func parseHex4() throws -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let digit = hexDigitValue(bytes[position]) else { throw error("bad \\u escape") }
                value = value * 16 + digit
                position += 1
            }
            return value
        }

        mutating func parseString() throws -> String {
            position += 1
            var buffer: [UInt8] = []
            while true {
                guard position < bytes.count else { throw error("unterminated string") }
                let byte = bytes[position]
                position += 1
                if byte == UInt8(ascii: "\"") { break }
                if byte != UInt8(ascii: "\\") { buffer.append(byte); continue }
                guard position < bytes.count else { throw error("unterminated escape") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(escape)
                case UInt8(ascii: "b"): buffer.append(0x08)
                case UInt8(ascii: "f"): buffer.append(0x0C)
                case UInt8(ascii: "n"): buffer.append(0x0A)
                case UInt8(ascii: "r"): buffer.append(0x0D)
                case UInt8(ascii: "t"): buffer.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try parseHex4()
                    if (0xD800..<0xDC00).contains(code), position + 1 < bytes.count,
                       bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                    {
                        let save = position
                        position += 2
                        let low = try parseHex4()
                        if (0xDC00..<0xE000).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            position = save
                        }
                    }
                    let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                    buffer.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: throw error("bad escape '\\\(quoted(String(Unicode.Scalar(escape)), limit: 60))'")
                }
            }
            return String(decoding: buffer, as: UTF8.self)
        }

        mutating func parseNumber() throws -> JinjaValue {
            let start = position
            var isInteger = true
            if bytes[position] == UInt8(ascii: "-") { position += 1 }
            while position < bytes.count {
                let byte = bytes[position]
                if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                    position += 1
                } else if [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"),
                           UInt8(ascii: "-")].contains(byte)
                {
                    isInteger = false
                    position += 1
                } else {
                    break
                }
            }
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            if isInteger, let value = Int(text) { return .int(value) }
            guard let value = Double(text) else { throw error("bad number '\(quoted(text, limit: 60))'") }
            return .double(value)
        }
    }
}

func hexDigitValue(_ byte: UInt8) -> UInt32? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
    default: return nil
    }
}

/// Writes values the way Python's `json.dumps` does (transformers' `tojson`: `ensure_ascii=False` by default).
struct JSONWriter {
    /// Indent string per level, or nil for single-line output.
    var indent: String?
    var itemSeparator: String
    var keySeparator: String
    var sortKeys = false
    var ensureASCII = false
    /// When set (the `tojson` filter), nesting and output size are held to the render's budget.
    var meter: BudgetMeter?

    init(indent: String?, itemSeparator: String? = nil, keySeparator: String? = nil) {
        self.indent = indent
        // Python: separators default to (', ', ': '), or (',', ': ') when an indent is given.
        self.itemSeparator = itemSeparator ?? (indent == nil ? ", " : ",")
        self.keySeparator = keySeparator ?? ": "
    }

    func write(_ value: RuntimeValue, into out: inout String, level: Int = 0) throws {
        if let meter {
            try meter.checkString(bytes: out.utf8.count)
            if value.isContainer { try meter.checkValueDepth(level + 1) }
        }
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else {
                out += pythonFloatRepr(d)
            }
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += itemSeparator }
                try newline(into: &out, level: level + 1)
                try write(item, into: &out, level: level + 1)
            }
            try newline(into: &out, level: level)
            out += "]"
        case .object(let object):
            try writeObject(object.pairs, into: &out, level: level)
        case .namespace(let namespace):
            try writeObject(namespace.attributes.pairs, into: &out, level: level)
        case .undefined(let name):
            throw ChatTemplateError.runtime("tojson: '\(quoted(name, limit: 60))' is undefined", line: 0, column: 0)
        case .callable(let callable):
            throw ChatTemplateError.runtime("tojson: object of type '\(quoted(callable.name, limit: 60))' is not JSON serializable",
                                            line: 0, column: 0)
        }
    }

    private func writeObject(_ pairs: [(key: String, value: RuntimeValue)], into out: inout String,
                             level: Int) throws
    {
        if pairs.isEmpty { out += "{}"; return }
        let ordered = sortKeys ? pairs.sorted { $0.key < $1.key } : pairs
        out += "{"
        for (index, pair) in ordered.enumerated() {
            if index > 0 { out += itemSeparator }
            try newline(into: &out, level: level + 1)
            writeString(pair.key, into: &out)
            out += keySeparator
            try write(pair.value, into: &out, level: level + 1)
        }
        try newline(into: &out, level: level)
        out += "}"
    }

    private func newline(into out: inout String, level: Int) throws {
        guard let indent else { return }
        out += "\n"
        for _ in 0..<level {
            out += indent
            try meter?.checkString(bytes: out.utf8.count)
        }
    }

    private func writeString(_ string: String, into out: inout String) {
        JSONString.write(string, into: &out, ensureASCII: ensureASCII)
    }
}

/// Formats a finite or non-finite double exactly like Python's `repr(float)`.
func pythonFloatRepr(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description is the shortest round-tripping digit string, as is Python's repr;
    // only the layout differs, so take the digits and re-lay them out by Python's rules.
    var text = value.magnitude.description
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(text[text.index(after: e)...]) ?? 0
        text = String(text[..<e])
    }
    var digits = ""
    var pointPosition = text.count
    for (offset, character) in text.enumerated() {
        if character == "." { pointPosition = offset } else { digits.append(character) }
    }
    // value = 0.DIGITS × 10^decimalPoint once leading zeros are gone.
    var decimalPoint = pointPosition + exponent
    while digits.first == "0" { digits.removeFirst(); decimalPoint -= 1 }
    while digits.count > 1, digits.last == "0" { digits.removeLast() }
    let sign = value < 0 ? "-" : ""
    if decimalPoint > 16 || decimalPoint <= -4 {
        let mantissa = digits.count == 1 ? digits : String(digits.prefix(1)) + "." + digits.dropFirst()
        let e = decimalPoint - 1
        let magnitude = String(abs(e))
        return sign + mantissa + "e" + (e < 0 ? "-" : "+") + (magnitude.count < 2 ? "0" : "") + magnitude
    }
    if decimalPoint <= 0 {
        return sign + "0." + String(repeating: "0", count: -decimalPoint) + digits
    }
    if decimalPoint >= digits.count {
        return sign + digits + String(repeating: "0", count: decimalPoint - digits.count) + ".0"
    }
    return sign + String(digits.prefix(decimalPoint)) + "." + String(digits.dropFirst(decimalPoint))
}
