/// An incremental checker for one JSON value that must match a `JSONSchema`: feed bytes one at a time; it rejects the
/// first byte after which no valid completion remains. Every state it reaches has a valid continuation (objects close
/// only when their required keys are in, take keys only while some are left, arrays respect minItems/maxItems), so
/// masking tokens with `allows` never leaves the model without a choice. Used for `response_format: {type: json_schema}`.
///
/// Keys of listed properties must be written exactly as JSON escapes them (any order, each once); extra keys (when the
/// schema allows them) are printable ASCII without escapes. Strings must be valid UTF-8. Runs of whitespace are capped so a constrained model cannot stall.
public struct JSONSchemaValidator: JSONByteChecker {
    /// Digits so far where they count: at most `maxDigits` before and after the point and 2 in the exponent, so every number
    /// is one a double holds (a parser that refuses 1e400 or 40-digit integers parses every output).
    private enum NumberState: Sendable, Equatable { case minus, zero, integer(Int), dot, fraction(Int), exponent, exponentSign, exponentDigits(Int) }
    private static let maxDigits = 16
    /// Inside a string: plain text, after a backslash, in a \u escape (hex digits left), or inside a UTF-8 sequence
    /// (continuation bytes left) — the bytes must be valid UTF-8, so the text a client gets is the text validated.
    private enum StringState: Sendable { case plain, escape, unicode(Int), continuation(Int) }
    private enum ObjectPhase: Sendable { case keyOrEnd, key, inKey, colon, afterValue }
    private enum ArrayPhase: Sendable { case valueOrEnd, value, afterValue }

    private struct ObjectFrame: Sendable {
        let properties: [SchemaNode.Property]
        let required: [Int]
        let additional: SchemaNode?
        var used: [Bool]
        var phase: ObjectPhase = .keyOrEnd
        var key: [UInt8] = []
        /// The schema of the value after the current key's colon.
        var valueSchema: SchemaNode = .any

        var hasRoomForKey: Bool { additional != nil || used.contains(false) }
        var requiredPresent: Bool { required.allSatisfy { used[$0] } }
    }

    private struct ArrayFrame: Sendable {
        let items: SchemaNode
        let minItems: Int
        let maxItems: Int?
        var count = 0
        var phase: ArrayPhase = .valueOrEnd
    }

    private enum Frame: Sendable {
        /// A value of this schema comes next (whitespace first allowed).
        case value(SchemaNode)
        case object(ObjectFrame)
        case array(ArrayFrame)
        case string(StringState)
        case number(integer: Bool, NumberState)
        /// The bytes read so far are `index` bytes into each of these texts.
        case literal(candidates: [[UInt8]], index: Int)
    }

    private let schema: JSONSchema
    /// Enclosing frames, outermost first; `top` is the current one (kept apart so a byte rarely copies the array).
    private var stack: [Frame] = []
    private var top: Frame?
    private var whitespaceRun = 0
    /// Longest run of whitespace accepted between tokens.
    public var maxWhitespaceRun = 24
    /// Deepest nesting accepted.
    public var maxDepth = 64

    public init(schema: JSONSchema) {
        self.schema = schema
        top = .value(schema.root)
    }

    /// True once the whole value has been read.
    public var isComplete: Bool { top == nil }


    /// Whitespace between tokens, up to `maxWhitespaceRun` in a row.
    private mutating func whitespace(_ b: UInt8) -> Bool {
        guard JSONBytes.isWhitespace(b) else { whitespaceRun = 0; return false }
        whitespaceRun += 1
        return true
    }

    /// Feeds one byte; returns false if no valid completion remains (the state is then unspecified).
    public mutating func accept(_ b: UInt8) -> Bool {
        guard let frame = top else { return false }
        switch frame {
        case .value(let node):
            if JSONBytes.isWhitespace(b) { return whitespace(b) && whitespaceRun <= maxWhitespaceRun }
            whitespaceRun = 0
            return begin(schema.resolve(node), b)
        case .string(let state):
            switch state {
            case .plain:
                if b == UInt8(ascii: "\"") { return finishValue() }
                if b == UInt8(ascii: "\\") { top = .string(.escape); return true }
                switch b {
                case 0x20..<0x80: return true
                case 0xC2...0xDF: top = .string(.continuation(1))
                case 0xE0...0xEF: top = .string(.continuation(2))
                case 0xF0...0xF4: top = .string(.continuation(3))
                default: return false
                }
                return true
            case .continuation(let remaining):
                guard (0x80...0xBF).contains(b) else { return false }
                top = .string(remaining == 1 ? .plain : .continuation(remaining - 1))
                return true
            case .escape:
                if b == UInt8(ascii: "u") { top = .string(.unicode(4)); return true }
                guard "\"\\/bfnrt".utf8.contains(b) else { return false }
                top = .string(.plain)
                return true
            case .unicode(let remaining):
                guard JSONBytes.isHex(b) else { return false }
                top = .string(remaining == 1 ? .plain : .unicode(remaining - 1))
                return true
            }
        case .number(let integer, let state):
            if let next = Self.advance(state, b, integer: integer) { top = .number(integer: integer, next); return true }
            // The number ends here; it must be complete, then the byte belongs to what encloses it.
            switch state {
            case .zero, .integer, .fraction, .exponentDigits: break
            default: return false
            }
            return finishValue() && top != nil && accept(b)
        case .literal(let candidates, let index):
            let next = candidates.filter { $0.count > index && $0[index] == b }
            if !next.isEmpty {
                if next.count == 1 && next[0].count == index + 1 { return finishValue() }
                top = .literal(candidates: next, index: index + 1)
                return true
            }
            // A shorter literal (a number such as 1 beside 10) may end here.
            guard candidates.contains(where: { $0.count == index }) else { return false }
            return finishValue() && top != nil && accept(b)
        case .object(let object):
            return acceptInObject(object, b)
        case .array(let array):
            return acceptInArray(array, b)
        }
    }

    /// The first byte of a value of `node`.
    private mutating func begin(_ node: SchemaNode, _ b: UInt8) -> Bool {
        switch node {
        case .any:
            switch b {
            case UInt8(ascii: "{"): return begin(.object(properties: [], required: [], additional: .any), b)
            case UInt8(ascii: "["): return begin(.array(items: .any, minItems: 0, maxItems: nil), b)
            case UInt8(ascii: "\""): return begin(.string, b)
            case UInt8(ascii: "t"), UInt8(ascii: "f"): return begin(.boolean, b)
            case UInt8(ascii: "n"): return begin(.null, b)
            default: return begin(.number(integer: false), b)
            }
        case let .object(properties, required, additional):
            guard b == UInt8(ascii: "{"), stack.count < maxDepth else { return false }
            top = .object(ObjectFrame(properties: properties, required: required, additional: additional,
                                      used: Array(repeating: false, count: properties.count)))
            return true
        case let .array(items, minItems, maxItems):
            guard b == UInt8(ascii: "["), stack.count < maxDepth else { return false }
            top = .array(ArrayFrame(items: items, minItems: minItems, maxItems: maxItems))
            return true
        case .string:
            guard b == UInt8(ascii: "\"") else { return false }
            top = .string(.plain)
            return true
        case .number(let integer):
            guard let state = Self.advance(nil, b, integer: integer) else { return false }
            top = .number(integer: integer, state)
            return true
        case .boolean:
            top = .literal(candidates: [Array("true".utf8), Array("false".utf8)], index: 0)
            return accept(b)
        case .null:
            top = .literal(candidates: [Array("null".utf8)], index: 0)
            return accept(b)
        case .literals(let texts):
            top = .literal(candidates: texts, index: 0)
            return accept(b)
        case .union(let nodes):
            for node in nodes {
                var trial = self
                if trial.begin(schema.resolve(node), b) { self = trial; return true }
            }
            return false
        case .reference:
            return begin(schema.resolve(node), b)
        }
    }

    /// A value (the current frame) is complete: hand control back to what encloses it.
    private mutating func finishValue() -> Bool {
        guard var parent = stack.popLast() else { top = nil; return true }
        switch parent {
        case .object(var object):
            object.phase = .afterValue
            parent = .object(object)
        case .array(var array):
            array.count += 1
            array.phase = .afterValue
            parent = .array(array)
        default:
            return false
        }
        top = parent
        return true
    }

    /// Enters a child value: the current container goes on the stack.
    private mutating func push(_ container: Frame, child node: SchemaNode) {
        stack.append(container)
        top = .value(node)
    }

    /// A byte inside an object; sets `top` to the object's new state, its child, or (when it closes) its parent.
    private mutating func acceptInObject(_ frame: ObjectFrame, _ b: UInt8) -> Bool {
        var object = frame
        switch object.phase {
        case .keyOrEnd, .key:
            if JSONBytes.isWhitespace(b) { return whitespace(b) && whitespaceRun <= maxWhitespaceRun }
            whitespaceRun = 0
            if b == UInt8(ascii: "}") && object.phase == .keyOrEnd {
                return object.requiredPresent && finishValue()
            }
            guard b == UInt8(ascii: "\""), object.hasRoomForKey else { return false }
            object.phase = .inKey
            object.key = []
        case .inKey:
            if b == UInt8(ascii: "\"") {
                if let index = object.properties.indices.first(where: { object.properties[$0].key == object.key }) {
                    guard !object.used[index] else { return false }
                    object.used[index] = true
                    object.valueSchema = object.properties[index].schema
                } else {
                    guard let additional = object.additional else { return false }
                    object.valueSchema = additional
                }
                object.phase = .colon
            } else {
                guard b >= 0x20, b < 0x7F, b != UInt8(ascii: "\\") else { return false }
                object.key.append(b)
                if object.additional == nil {
                    let key = object.key
                    guard object.properties.indices.contains(where: { !object.used[$0] && object.properties[$0].key.starts(with: key) }) else { return false }
                }
            }
        case .colon:
            if JSONBytes.isWhitespace(b) { return whitespace(b) && whitespaceRun <= maxWhitespaceRun }
            whitespaceRun = 0
            guard b == UInt8(ascii: ":") else { return false }
            push(.object(object), child: object.valueSchema)
            return true
        case .afterValue:
            if JSONBytes.isWhitespace(b) { return whitespace(b) && whitespaceRun <= maxWhitespaceRun }
            whitespaceRun = 0
            if b == UInt8(ascii: "}") { return object.requiredPresent && finishValue() }
            guard b == UInt8(ascii: ","), object.hasRoomForKey else { return false }
            object.phase = .key
        }
        top = .object(object)
        return true
    }

    /// A byte inside an array; sets `top` like `acceptInObject`.
    private mutating func acceptInArray(_ frame: ArrayFrame, _ b: UInt8) -> Bool {
        var array = frame
        if JSONBytes.isWhitespace(b) { return whitespace(b) && whitespaceRun <= maxWhitespaceRun }
        whitespaceRun = 0
        switch array.phase {
        case .valueOrEnd, .value:
            if b == UInt8(ascii: "]") && array.phase == .valueOrEnd { return array.minItems == 0 && finishValue() }
            if let maxItems = array.maxItems, array.count >= maxItems { return false }
            push(.array(array), child: array.items)
            return accept(b)
        case .afterValue:
            if b == UInt8(ascii: "]") { return array.count >= array.minItems && finishValue() }
            guard b == UInt8(ascii: ","), array.maxItems.map({ array.count < $0 }) ?? true else { return false }
            array.phase = .value
        }
        top = .array(array)
        return true
    }

    /// The number state after `b` (nil: `b` cannot continue the number); `state` nil is before the first byte.
    private static func advance(_ state: NumberState?, _ b: UInt8, integer: Bool) -> NumberState? {
        let digit = JSONBytes.isDigit(b), exponentMark = b == UInt8(ascii: "e") || b == UInt8(ascii: "E")
        switch state {
        case nil: return b == UInt8(ascii: "-") ? .minus : b == UInt8(ascii: "0") ? .zero : digit ? .integer(1) : nil
        case .minus?: return b == UInt8(ascii: "0") ? .zero : digit ? .integer(1) : nil
        case .zero?:
            if integer { return nil }
            return b == UInt8(ascii: ".") ? .dot : exponentMark ? .exponent : nil
        case .integer(let n)?:
            if digit { return n < maxDigits ? .integer(n + 1) : nil }
            if integer { return nil }
            return b == UInt8(ascii: ".") ? .dot : exponentMark ? .exponent : nil
        case .dot?: return digit ? .fraction(1) : nil
        case .fraction(let n)?:
            if digit { return n < maxDigits ? .fraction(n + 1) : nil }
            return exponentMark ? .exponent : nil
        case .exponent?: return (b == UInt8(ascii: "+") || b == UInt8(ascii: "-")) ? .exponentSign : digit ? .exponentDigits(1) : nil
        case .exponentSign?: return digit ? .exponentDigits(1) : nil
        case .exponentDigits(let n)?: return digit && n < 2 ? .exponentDigits(n + 1) : nil
        }
    }
}
