import Foundation

/// A compiled `Split` pattern: a hand-written scanner when the regex is one we know, a single-class
/// scanner for simple patterns like `\p{N}{1,3}` or `\s?[A-Za-z]+`, else ICU (`NSRegularExpression`).
enum SplitPattern: Sendable {
    case literal([UInt32])
    case known(KnownPattern)
    case simpleClass(SimpleClassPattern)
    /// `\s+$` (onig: `$` is end of text or before a newline).
    case trailingWhitespace
    case regex(ICURegexPattern)

    static func compile(regex: String) throws -> SplitPattern {
        if let known = KnownPattern(pattern: regex) { return .known(known) }
        if regex == #"\s+$"# { return .trailingWhitespace }
        if let simple = SimpleClassPattern(pattern: regex) { return .simpleClass(simple) }
        return .regex(try ICURegexPattern(pattern: regex))
    }

    static func literal(_ string: String) -> SplitPattern {
        .literal(string.unicodeScalars.map(\.value))
    }

    /// Appends the non-overlapping matches inside `range` (scalar indices of `text`) in order.
    func findMatches(in text: ScalarText, range: Range<Int>, into matches: inout [Range<Int>]) {
        guard !range.isEmpty else { return }
        text.scalars.withUnsafeBufferPointer { scalars in
            text.classes.withUnsafeBufferPointer { classes in
                switch self {
                case .known(let pattern):
                    pattern.findMatches(scalars: scalars, classes: classes, range: range, into: &matches)
                case .simpleClass(let pattern):
                    pattern.findMatches(scalars: scalars, classes: classes, range: range, into: &matches)
                case .literal(let needle):
                    Self.findLiteral(needle, scalars: scalars, range: range, into: &matches)
                case .trailingWhitespace:
                    Self.findTrailingWhitespace(scalars: scalars, classes: classes, range: range, into: &matches)
                case .regex(let regex):
                    regex.findMatches(scalars: scalars, range: range, into: &matches)
                }
            }
        }
    }

    private static func findLiteral(_ needle: [UInt32], scalars: UnsafeBufferPointer<UInt32>, range: Range<Int>,
                                    into matches: inout [Range<Int>]) {
        guard !needle.isEmpty else { return }
        var i = range.lowerBound
        while i + needle.count <= range.upperBound {
            var k = 0
            while k < needle.count && scalars[i + k] == needle[k] { k += 1 }
            if k == needle.count {
                matches.append(i..<(i + k))
                i += k
            } else {
                i += 1
            }
        }
    }

    private static func findTrailingWhitespace(scalars: UnsafeBufferPointer<UInt32>, classes: UnsafeBufferPointer<UInt8>,
                                               range: Range<Int>, into matches: inout [Range<Int>]) {
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            guard classes[i] & ScalarClass.whitespace != 0 else { i += 1; continue }
            var q = i
            while q < end && classes[q] & ScalarClass.whitespace != 0 { q += 1 }
            if q == end {
                matches.append(i..<q)
            } else {
                // `$` also holds before "\n": the greedy \s+ backs off to the last newline of the run.
                var k = q - 1
                while k > i && scalars[k] != 0x0A { k -= 1 }
                if k > i { matches.append(i..<k) ; i = k; continue }
            }
            i = q
        }
    }
}

/// One character class with a quantifier, optionally preceded by `\s?`: `[...]`, `[...]+`, `\p{N}{1,3}`,
/// `\s?[A-Za-z]+`.
struct SimpleClassPattern: Sendable {
    let characterClass: CharacterClass
    let minCount: Int
    let maxCount: Int
    let optionalLeadingSpace: Bool

    init?(pattern: String) {
        var scalars = Array(pattern.unicodeScalars)
        var leading = false
        if scalars.count > 3 && scalars[0] == "\\" && scalars[1] == "s" && scalars[2] == "?" {
            leading = true
            scalars.removeFirst(3)
        }
        var index = 0
        guard let characterClass = CharacterClass.parse(scalars, &index) else { return nil }
        var minCount = 1, maxCount = 1
        if index < scalars.count {
            let rest = String(String.UnicodeScalarView(scalars[index...]))
            if rest == "+" {
                maxCount = Int.max
            } else if rest.hasPrefix("{") && rest.hasSuffix("}") {
                let inner = rest.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false)
                guard inner.count == 1 || inner.count == 2, let low = Int(inner[0]), low >= 1 else { return nil }
                minCount = low
                if inner.count == 1 { maxCount = low } else if inner[1].isEmpty { maxCount = Int.max } else {
                    guard let high = Int(inner[1]), high >= low else { return nil }
                    maxCount = high
                }
            } else {
                return nil
            }
        }
        if leading && maxCount != Int.max { return nil }
        self.characterClass = characterClass
        self.minCount = minCount
        self.maxCount = maxCount
        self.optionalLeadingSpace = leading
    }

    func findMatches(scalars: UnsafeBufferPointer<UInt32>, classes: UnsafeBufferPointer<UInt8>,
                     range: Range<Int>, into matches: inout [Range<Int>]) {
        let end = range.upperBound
        @inline(__always) func inClass(_ i: Int) -> Bool {
            i < end && characterClass.contains(scalars[i], classFlags: classes[i])
        }
        var i = range.lowerBound
        while i < end {
            var start = i
            if optionalLeadingSpace && classes[i] & ScalarClass.whitespace != 0 && inClass(i + 1) {
                start = i + 1
            } else if !inClass(i) {
                i += 1
                continue
            }
            var q = start
            while q < end && q - start < maxCount && inClass(q) { q += 1 }
            if q - start >= minCount {
                matches.append(i..<q)
                i = q
            } else {
                i += 1
            }
        }
    }
}

/// A regex character class: property flags, scalar ranges (with a bitset for the BMP), maybe negated.
struct CharacterClass: Sendable {
    var negated = false
    var flags: UInt8 = 0
    var ranges: [ClosedRange<UInt32>] = []
    var bmpBits: [UInt64] = []

    @inline(__always)
    func contains(_ value: UInt32, classFlags: UInt8) -> Bool {
        var inside = classFlags & flags != 0
        if !inside {
            if value < 0x10000 {
                inside = bmpBits[Int(value >> 6)] & (1 << UInt64(value & 63)) != 0
            } else {
                inside = ranges.contains { $0.contains(value) }
            }
        }
        return inside != negated
    }

    /// Parses `[...]`, `\p{X}`, `\s`, or one literal scalar at `index`; nil for anything else.
    static func parse(_ s: [Unicode.Scalar], _ index: inout Int) -> CharacterClass? {
        var result = CharacterClass()
        guard index < s.count else { return nil }
        if s[index] == "[" {
            index += 1
            if index < s.count && s[index] == "^" { result.negated = true; index += 1 }
            var first = true
            while index < s.count && (s[index] != "]" || first) {
                first = false
                guard let item = parseItem(s, &index) else { return nil }
                switch item {
                case .flag(let flag): result.flags |= flag
                case .scalar(let low):
                    if index + 1 < s.count && s[index] == "-" && s[index + 1] != "]" {
                        index += 1
                        guard case .scalar(let high)? = parseItem(s, &index), high >= low else { return nil }
                        result.ranges.append(low...high)
                    } else {
                        result.ranges.append(low...low)
                    }
                }
            }
            guard index < s.count && s[index] == "]" else { return nil }
            index += 1
        } else {
            guard let item = parseItem(s, &index) else { return nil }
            switch item {
            case .flag(let flag): result.flags = flag
            case .scalar(let value): result.ranges = [value...value]
            }
        }
        result.buildBitset()
        return result
    }

    private enum Item { case flag(UInt8), scalar(UInt32) }

    private static func parseItem(_ s: [Unicode.Scalar], _ index: inout Int) -> Item? {
        let c = s[index]
        index += 1
        guard c == "\\" else {
            if c == "[" || c == "(" || c == ")" || c == "|" || c == "." || c == "?" || c == "*" || c == "+" { return nil }
            return .scalar(c.value)
        }
        guard index < s.count else { return nil }
        let e = s[index]
        index += 1
        switch e {
        case "r": return .scalar(0x0D)
        case "n": return .scalar(0x0A)
        case "t": return .scalar(0x09)
        case "s": return .flag(ScalarClass.whitespace)
        case "p":
            guard index < s.count, s[index] == "{",
                  let close = s[index...].firstIndex(of: "}") else { return nil }
            let name = String(String.UnicodeScalarView(s[(index + 1)..<close]))
            index = close + 1
            guard let flag = ScalarClass.flag(forProperty: name) else { return nil }
            return .flag(flag)
        default:
            // Escaped punctuation stands for itself; letters and digits are other escapes we do not handle.
            if e.properties.isAlphabetic || (e.value >= 0x30 && e.value <= 0x39) { return nil }
            return .scalar(e.value)
        }
    }

    private mutating func buildBitset() {
        var bits = [UInt64](repeating: 0, count: 1024)
        for range in ranges where range.lowerBound < 0x10000 {
            for value in range.lowerBound...min(range.upperBound, 0xFFFF) {
                bits[Int(value >> 6)] |= 1 << UInt64(value & 63)
            }
        }
        bmpBits = bits
    }
}

/// The general fallback: an onig-flavoured regex translated to ICU and run with `NSRegularExpression`
/// (immutable and documented thread-safe, hence `@unchecked Sendable`).
final class ICURegexPattern: @unchecked Sendable {
    let pattern: String
    private let regex: NSRegularExpression

    init(pattern: String) throws {
        self.pattern = pattern
        do {
            regex = try NSRegularExpression(pattern: Self.translate(pattern), options: [])
        } catch {
            throw TokenizerError.invalidPattern(pattern: pattern, reason: "\(error)")
        }
    }

    /// `\s`/`\S` become Unicode White_Space (as in onig and Rust, unlike ICU's narrower `\s`); `$` outside a
    /// class becomes onig's end-of-line (`(?=\n|\z)`).
    static func translate(_ pattern: String) -> String {
        var out = ""
        var depth = 0
        var iterator = pattern.unicodeScalars.makeIterator()
        while let c = iterator.next() {
            if c == "\\" {
                guard let e = iterator.next() else { out += "\\\\"; break }
                switch e {
                case "s": out += #"\p{White_Space}"#
                case "S": out += #"\P{White_Space}"#
                default: out.unicodeScalars.append(c); out.unicodeScalars.append(e)
                }
                continue
            }
            if c == "[" { depth += 1 } else if c == "]" && depth > 0 { depth -= 1 }
            if c == "$" && depth == 0 { out += #"(?=\n|\z)"#; continue }
            out.unicodeScalars.append(c)
        }
        return out
    }

    func findMatches(scalars: UnsafeBufferPointer<UInt32>, range: Range<Int>, into matches: inout [Range<Int>]) {
        var view = String.UnicodeScalarView()
        // utf16Index[k] = scalar index (relative) that starts at UTF-16 offset k.
        var scalarAtUTF16 = [Int]()
        for i in range {
            guard let scalar = Unicode.Scalar(scalars[i]) else { continue }
            view.append(scalar)
            scalarAtUTF16.append(i - range.lowerBound)
            if scalar.value >= 0x10000 { scalarAtUTF16.append(i - range.lowerBound) }
        }
        scalarAtUTF16.append(range.count)
        let string = String(view)
        let length = scalarAtUTF16.count - 1
        for result in regex.matches(in: string, options: [], range: NSRange(location: 0, length: length)) {
            let r = result.range
            guard r.location != NSNotFound, r.length > 0, r.location + r.length <= length else { continue }
            let start = scalarAtUTF16[r.location], end = scalarAtUTF16[r.location + r.length]
            matches.append((range.lowerBound + start)..<(range.lowerBound + end))
        }
    }
}
