/// A byte-at-a-time JSON checker that refuses the first byte after which no valid document remains
/// (`JSONPrefixValidator`, `JSONSchemaValidator`); generation masks tokens with `allows`.
public protocol JSONByteChecker: Sendable {
    /// Feeds one byte; false if the text can no longer become valid (the state is then unspecified).
    mutating func accept(_ b: UInt8) -> Bool
}

extension JSONByteChecker {
    /// Feeds several bytes; false (and unchanged state) if any byte is invalid.
    public mutating func accept<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        var copy = self
        for byte in bytes where !copy.accept(byte) { return false }
        self = copy
        return true
    }

    /// Whether `bytes` may follow the text fed so far (does not change the state).
    public func allows<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        var copy = self
        for byte in bytes where !copy.accept(byte) { return false }
        return true
    }
}

/// JSON's byte classes.
enum JSONBytes {
    static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }
    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    static func isHex(_ b: UInt8) -> Bool { isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66) }
}

/// An incremental JSON checker: feed bytes one at a time; it rejects the first byte after which the text can
/// no longer be the start of a JSON object. Used to mask tokens for `response_format: {type: json_object}`.
///
/// The top-level value must be an object (what OpenAI's JSON mode promises). Runs of whitespace are capped so a
/// constrained model cannot stall forever on blanks.
public struct JSONPrefixValidator: JSONByteChecker, Equatable {
    private enum Number: Sendable, Equatable { case minus, zero, integer, dot, fraction, exponent, exponentSign, exponentDigits }

    private enum State: Sendable, Equatable {
        case start
        case value
        case arrayValueOrEnd
        case objectKeyOrEnd
        case objectKey
        case colon
        case afterValue
        case string(isKey: Bool)
        case escape(isKey: Bool)
        case unicode(isKey: Bool, remaining: Int)
        case number(Number)
        case literal(bytes: [UInt8], index: Int)
        case done
    }

    private var state: State = .start
    /// Open containers, innermost last: `{` or `[`.
    private var stack: [UInt8] = []
    private var whitespaceRun = 0
    /// Longest run of whitespace accepted between tokens.
    public var maxWhitespaceRun = 24
    /// Deepest nesting accepted.
    public var maxDepth = 64

    public init() {}

    /// True once a complete top-level object has been read.
    public var isComplete: Bool { state == .done }


    /// Feeds one byte; returns false if the text is no longer a valid JSON prefix (state is then unspecified).
    public mutating func accept(_ b: UInt8) -> Bool {
        switch state {
        case .string(let isKey):
            if b == UInt8(ascii: "\"") { state = isKey ? .colon : .afterValue; return true }
            if b == UInt8(ascii: "\\") { state = .escape(isKey: isKey); return true }
            return b >= 0x20
        case .escape(let isKey):
            if b == UInt8(ascii: "u") { state = .unicode(isKey: isKey, remaining: 4); return true }
            guard "\"\\/bfnrt".utf8.contains(b) else { return false }
            state = .string(isKey: isKey)
            return true
        case .unicode(let isKey, let remaining):
            guard JSONBytes.isHex(b) else { return false }
            state = remaining == 1 ? .string(isKey: isKey) : .unicode(isKey: isKey, remaining: remaining - 1)
            return true
        case .number(let n):
            if let next = Self.advance(n, b) { state = .number(next); return true }
            // The number ends here; it must be complete, then the byte is read as what follows a value.
            guard n == .zero || n == .integer || n == .fraction || n == .exponentDigits else { return false }
            state = .afterValue
            return accept(b)
        case .literal(let bytes, let index):
            guard bytes[index] == b else { return false }
            state = index + 1 == bytes.count ? .afterValue : .literal(bytes: bytes, index: index + 1)
            return true
        default:
            break
        }
        if JSONBytes.isWhitespace(b) {
            whitespaceRun += 1
            return whitespaceRun <= maxWhitespaceRun
        }
        whitespaceRun = 0
        switch state {
        case .start:
            return open(b, container: UInt8(ascii: "{"))
        case .done:
            return false
        case .value:
            return beginValue(b)
        case .arrayValueOrEnd:
            if b == UInt8(ascii: "]") { return close(b) }
            return beginValue(b)
        case .objectKeyOrEnd:
            if b == UInt8(ascii: "}") { return close(b) }
            guard b == UInt8(ascii: "\"") else { return false }
            state = .string(isKey: true)
            return true
        case .objectKey:
            guard b == UInt8(ascii: "\"") else { return false }
            state = .string(isKey: true)
            return true
        case .colon:
            guard b == UInt8(ascii: ":") else { return false }
            state = .value
            return true
        case .afterValue:
            guard let top = stack.last else { return false }
            if b == UInt8(ascii: ",") { state = top == UInt8(ascii: "{") ? .objectKey : .value; return true }
            return close(b)
        default:
            return false
        }
    }

    private mutating func open(_ b: UInt8, container: UInt8) -> Bool {
        guard b == container || (state != .start && b == UInt8(ascii: "[")) else { return false }
        guard stack.count < maxDepth else { return false }
        stack.append(b)
        state = b == UInt8(ascii: "{") ? .objectKeyOrEnd : .arrayValueOrEnd
        return true
    }

    private mutating func close(_ b: UInt8) -> Bool {
        guard let top = stack.last else { return false }
        guard (top == UInt8(ascii: "{") && b == UInt8(ascii: "}")) || (top == UInt8(ascii: "[") && b == UInt8(ascii: "]")) else {
            return false
        }
        stack.removeLast()
        state = stack.isEmpty ? .done : .afterValue
        return true
    }

    private mutating func beginValue(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "{"), UInt8(ascii: "["): return open(b, container: b)
        case UInt8(ascii: "\""): state = .string(isKey: false); return true
        case UInt8(ascii: "-"): state = .number(.minus); return true
        case UInt8(ascii: "0"): state = .number(.zero); return true
        case UInt8(ascii: "1")...UInt8(ascii: "9"): state = .number(.integer); return true
        case UInt8(ascii: "t"): state = .literal(bytes: Array("true".utf8), index: 1); return true
        case UInt8(ascii: "f"): state = .literal(bytes: Array("false".utf8), index: 1); return true
        case UInt8(ascii: "n"): state = .literal(bytes: Array("null".utf8), index: 1); return true
        default: return false
        }
    }

    /// The number state after byte `b`, or nil if `b` cannot continue the number.
    private static func advance(_ n: Number, _ b: UInt8) -> Number? {
        let digit = JSONBytes.isDigit(b)
        switch n {
        case .minus: return b == UInt8(ascii: "0") ? .zero : (digit ? .integer : nil)
        case .zero: return b == UInt8(ascii: ".") ? .dot : (b == UInt8(ascii: "e") || b == UInt8(ascii: "E") ? .exponent : nil)
        case .integer:
            if digit { return .integer }
            return b == UInt8(ascii: ".") ? .dot : (b == UInt8(ascii: "e") || b == UInt8(ascii: "E") ? .exponent : nil)
        case .dot: return digit ? .fraction : nil
        case .fraction:
            if digit { return .fraction }
            return b == UInt8(ascii: "e") || b == UInt8(ascii: "E") ? .exponent : nil
        case .exponent:
            if digit { return .exponentDigits }
            return b == UInt8(ascii: "+") || b == UInt8(ascii: "-") ? .exponentSign : nil
        case .exponentSign, .exponentDigits: return digit ? .exponentDigits : nil
        }
    }
}
