import KujiraFormats
/// One token of a template: literal text, tag delimiters, or an expression token inside a tag.
struct JinjaToken: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case text(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case eof
    }

    var kind: Kind
    var location: SourceLocation
}

/// Splits template source into tokens with Jinja's whitespace rules as transformers configures them:
/// `trim_blocks=True`, `lstrip_blocks=True`, `keep_trailing_newline=False`, and `-`/`+` tag modifiers.
struct JinjaLexer {
    private let source: [Unicode.Scalar]
    private var lineStarts: [Int] = [0]
    private var tokens: [JinjaToken] = []
    private var position = 0

    init(_ text: String) {
        // Jinja normalizes every line ending to "\n" and drops one trailing newline.
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\r" { scalars.append("\n"); previousWasCR = true; continue }
            if scalar == "\n", previousWasCR { previousWasCR = false; continue }
            previousWasCR = false
            scalars.append(scalar)
        }
        if scalars.last == "\n" { scalars.removeLast() }
        source = scalars
        for (index, scalar) in scalars.enumerated() where scalar == "\n" { lineStarts.append(index + 1) }
    }

    static func tokenize(_ text: String) throws -> [JinjaToken] {
        var lexer = JinjaLexer(text)
        try lexer.run()
        return lexer.tokens
    }

    private func location(_ index: Int) -> SourceLocation {
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= index { low = mid } else { high = mid - 1 }
        }
        return SourceLocation(line: low + 1, column: index - lineStarts[low] + 1)
    }

    private func syntaxError(_ message: String, at index: Int) -> ChatTemplateError {
        let where_ = location(index)
        return .syntax(message, line: where_.line, column: where_.column)
    }

    private func at(_ index: Int) -> Unicode.Scalar? {
        index >= 0 && index < source.count ? source[index] : nil
    }

    private func matches(_ literal: String, at index: Int) -> Bool {
        var i = index
        for scalar in literal.unicodeScalars {
            guard at(i) == scalar else { return false }
            i += 1
        }
        return true
    }

    private func string(_ range: Range<Int>) -> String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: source[range])
        return String(out)
    }

    private mutating func emitText(_ range: Range<Int>, at index: Int) {
        guard !range.isEmpty else { return }
        tokens.append(JinjaToken(kind: .text(string(range)), location: location(index)))
    }

    private mutating func run() throws {
        var lineStarting = true
        while position < source.count {
            guard let tagStart = nextTagStart(from: position) else {
                emitText(position..<source.count, at: position)
                break
            }
            let kind = source[tagStart + 1]
            let modifier = at(tagStart + 2).flatMap { $0 == "-" || $0 == "+" ? $0 : nil }
            var textEnd = tagStart
            if modifier == "-" {
                while textEnd > position, isPythonWhitespace(source[textEnd - 1]) { textEnd -= 1 }
            } else if modifier != "+", kind != "{" {
                // lstrip_blocks: drop spaces between the line start and a block or comment tag.
                var lineStart = tagStart
                while lineStart > position, source[lineStart - 1] != "\n" { lineStart -= 1 }
                let atLineStart = lineStart > position || (lineStart == position && lineStarting)
                if atLineStart, lineStart < tagStart,
                   source[lineStart..<tagStart].allSatisfy({ isPythonWhitespace($0) })
                {
                    textEnd = lineStart
                }
            }
            emitText(position..<textEnd, at: position)
            var cursor = tagStart + 2 + (modifier == nil ? 0 : 1)
            switch kind {
            case "#":
                var end = cursor
                while end < source.count, !matches("#}", at: end) { end += 1 }
                guard end < source.count else { throw syntaxError("unterminated comment", at: tagStart) }
                let stripsAfter = end > cursor && source[end - 1] == "-"
                cursor = end + 2
                cursor = skipAfterTag(from: cursor, strip: stripsAfter, trim: !stripsAfter)
            case "%":
                if let afterRaw = try lexRawBlock(tagStart: tagStart, contentStart: cursor) {
                    cursor = afterRaw
                } else {
                    cursor = try lexTag(begin: .blockBegin, end: "%}", tagStart: tagStart, from: cursor)
                }
            default:
                cursor = try lexTag(begin: .variableBegin, end: "}}", tagStart: tagStart, from: cursor)
            }
            lineStarting = cursor > 0 && source[cursor - 1] == "\n"
            position = cursor
        }
        tokens.append(JinjaToken(kind: .eof, location: location(source.count)))
    }

    private func nextTagStart(from index: Int) -> Int? {
        var i = index
        while i + 1 < source.count {
            if source[i] == "{", source[i + 1] == "{" || source[i + 1] == "%" || source[i + 1] == "#" { return i }
            i += 1
        }
        return nil
    }

    /// After a closing delimiter: `-` strips all following whitespace; trim_blocks drops one newline.
    private func skipAfterTag(from index: Int, strip: Bool, trim: Bool) -> Int {
        var i = index
        if strip {
            while i < source.count, isPythonWhitespace(source[i]) { i += 1 }
        } else if trim, at(i) == "\n" {
            i += 1
        }
        return i
    }

    /// `{% raw %}...{% endraw %}`: the content is emitted as text, untouched.
    private mutating func lexRawBlock(tagStart: Int, contentStart: Int) throws -> Int? {
        guard let afterOpen = matchKeywordTag("raw", from: contentStart) else { return nil }
        var bodyStart = skipAfterTag(from: afterOpen.end, strip: afterOpen.strips, trim: !afterOpen.strips)
        var i = bodyStart
        while i + 1 < source.count {
            if source[i] == "{", source[i + 1] == "%" {
                let modifier = at(i + 2).flatMap { $0 == "-" || $0 == "+" ? $0 : nil }
                if let close = matchKeywordTag("endraw", from: i + 2 + (modifier == nil ? 0 : 1)) {
                    var bodyEnd = i
                    if modifier == "-" {
                        while bodyEnd > bodyStart, isPythonWhitespace(source[bodyEnd - 1]) { bodyEnd -= 1 }
                    }
                    emitText(bodyStart..<bodyEnd, at: bodyStart)
                    bodyStart = bodyEnd
                    return skipAfterTag(from: close.end, strip: close.strips, trim: !close.strips)
                }
            }
            i += 1
        }
        throw syntaxError("unterminated raw block (missing {% endraw %})", at: tagStart)
    }

    /// Matches `<spaces>keyword<spaces>[-+]?%}`; returns the index after `%}` and whether `-` was used.
    private func matchKeywordTag(_ keyword: String, from index: Int) -> (end: Int, strips: Bool)? {
        var i = index
        while let scalar = at(i), isPythonWhitespace(scalar) { i += 1 }
        guard matches(keyword, at: i) else { return nil }
        i += keyword.unicodeScalars.count
        while let scalar = at(i), isPythonWhitespace(scalar) { i += 1 }
        var strips = false
        if at(i) == "-" { strips = true; i += 1 } else if at(i) == "+" { i += 1 }
        guard matches("%}", at: i) else { return nil }
        return (i + 2, strips)
    }

    /// Lexes the expression tokens of one `{{ }}` or `{% %}` tag; returns the index after it.
    private mutating func lexTag(begin: JinjaToken.Kind, end: String, tagStart: Int, from start: Int) throws -> Int {
        tokens.append(JinjaToken(kind: begin, location: location(tagStart)))
        var i = start
        var depth = 0
        while true {
            while let scalar = at(i), isPythonWhitespace(scalar) { i += 1 }
            guard i < source.count else {
                throw syntaxError("unterminated tag: expected '\(end)' before the end of the template", at: tagStart)
            }
            if depth == 0 {
                let isBlock = end == "%}"
                if matches("-" + end, at: i) {
                    tokens.append(JinjaToken(kind: isBlock ? .blockEnd : .variableEnd, location: location(i)))
                    return skipAfterTag(from: i + 3, strip: true, trim: false)
                }
                if isBlock, matches("+%}", at: i) {
                    tokens.append(JinjaToken(kind: .blockEnd, location: location(i)))
                    return i + 3
                }
                if matches(end, at: i) {
                    tokens.append(JinjaToken(kind: isBlock ? .blockEnd : .variableEnd, location: location(i)))
                    return skipAfterTag(from: i + 2, strip: false, trim: isBlock)
                }
            }
            let tokenStart = i
            let scalar = source[i]
            let kind: JinjaToken.Kind
            if scalar == "_" || scalar.properties.isAlphabetic {
                while let next = at(i), next == "_" || next.properties.isAlphabetic || isDigit(next) { i += 1 }
                kind = .name(string(tokenStart..<i))
            } else if isDigit(scalar) {
                (kind, i) = try lexNumber(from: i)
            } else if scalar == "'" || scalar == "\"" {
                (kind, i) = try lexString(from: i)
            } else if let op = ["//", "**", "==", "!=", "<=", ">="].first(where: { matches($0, at: i) }) {
                kind = .op(op)
                i += 2
            } else if "+-*/%~<>=()[]{},.:|".unicodeScalars.contains(scalar) {
                if "([{".unicodeScalars.contains(scalar) { depth += 1 }
                if ")]}".unicodeScalars.contains(scalar) { depth = max(0, depth - 1) }
                kind = .op(String(scalar))
                i += 1
            } else {
                throw syntaxError("unexpected character '\(quoted(String(scalar), limit: 60))' in tag", at: i)
            }
            tokens.append(JinjaToken(kind: kind, location: location(tokenStart)))
        }
    }

    private func lexNumber(from start: Int) throws -> (JinjaToken.Kind, Int) {
        var i = start
        var text = ""
        func digits() {
            while let scalar = at(i), isDigit(scalar) || (scalar == "_" && at(i + 1).map(isDigit) == true) {
                if scalar != "_" { text.unicodeScalars.append(scalar) }
                i += 1
            }
        }
        digits()
        var isFloat = false
        if at(i) == ".", let next = at(i + 1), isDigit(next) {
            isFloat = true
            text += "."
            i += 1
            digits()
        }
        if at(i) == "e" || at(i) == "E" {
            var j = i + 1
            if at(j) == "+" || at(j) == "-" { j += 1 }
            if let next = at(j), isDigit(next) {
                isFloat = true
                text += "e" + string(i + 1..<j)
                i = j
                digits()
            }
        }
        if isFloat {
            guard let value = Double(text) else { throw syntaxError("bad number '\(quoted(text, limit: 60))'", at: start) }
            return (.float(value), i)
        }
        guard let value = Int(text) else { throw syntaxError("integer '\(quoted(text, limit: 60))' is too large", at: start) }
        return (.integer(value), i)
    }

    private func lexString(from start: Int) throws -> (JinjaToken.Kind, Int) {
        let quote = source[start]
        var i = start + 1
        var out = String.UnicodeScalarView()
        while true {
            guard let scalar = at(i) else { throw syntaxError("unterminated string literal", at: start) }
            i += 1
            if scalar == quote { break }
            guard scalar == "\\" else { out.append(scalar); continue }
            guard let escape = at(i) else { throw syntaxError("unterminated string literal", at: start) }
            i += 1
            switch escape {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "a": out.append("\u{07}")
            case "0"..."7":
                // Python octal escape: up to three octal digits.
                var value = escape.value - 0x30
                var digits = 1
                while digits < 3, let next = at(i), next.value >= 0x30, next.value <= 0x37 {
                    value = value * 8 + (next.value - 0x30)
                    i += 1
                    digits += 1
                }
                out.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            case "\\", "'", "\"": out.append(escape)
            case "\n": break  // backslash-newline continues the line, as in Python
            case "x", "u", "U":
                let width = escape == "x" ? 2 : escape == "u" ? 4 : 8
                var value: UInt32 = 0
                for offset in 0..<width {
                    guard let digit = at(i + offset), digit.isASCII, let hex = hexDigitValue(UInt8(digit.value)) else {
                        throw syntaxError("bad \\\(escape) escape in string literal", at: i - 2)
                    }
                    value = value * 16 + hex
                }
                i += width
                guard let decoded = Unicode.Scalar(value) else {
                    throw syntaxError("invalid code point in string literal", at: i - width - 2)
                }
                out.append(decoded)
            default:
                // Python keeps unknown escapes verbatim.
                out.append("\\")
                out.append(escape)
            }
        }
        return (.string(String(out)), i)
    }
}

func isDigit(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value >= 0x30 && scalar.value <= 0x39
}

/// Python's `str.isspace` for one scalar (Unicode White_Space plus the ASCII separators 0x1C-0x1F).
func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
    scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
}
