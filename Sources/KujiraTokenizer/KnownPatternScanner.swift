import Foundation

/// Hand-written scanners for the pre-tokenizer regexes that real byte-level BPE tokenizers use; they give
/// exactly the matches of the regex (leftmost, first alternative wins, greedy with backtracking) but run on
/// the precomputed scalar classes instead of a regex engine.
enum KnownPattern: Sendable, Equatable {
    /// GPT-2 / ByteLevel(use_regex): `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama 3 (maxDigits 3) and Qwen2 (maxDigits 1):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3(maxDigits: Int)
    /// DeepSeek-V3's third split: `[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case deepseekV3

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let deepseekV3Pattern = ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##

    /// Recognizes a pattern by its text (literal CR/LF characters in the JSON are treated like `\r`/`\n`).
    init?(pattern: String) {
        let canonical = pattern.replacingOccurrences(of: "\r", with: #"\r"#).replacingOccurrences(of: "\n", with: #"\n"#)
        switch canonical {
        case Self.gpt2Pattern, #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#:
            self = .gpt2
        case Self.llama3Pattern: self = .llama3(maxDigits: 3)
        case Self.qwen2Pattern: self = .llama3(maxDigits: 1)
        case Self.deepseekV3Pattern: self = .deepseekV3
        default: return nil
        }
    }

    /// Appends the matches inside `range` (scalar indices) to `matches`.
    func findMatches(scalars: UnsafeBufferPointer<UInt32>, classes: UnsafeBufferPointer<UInt8>,
                     range: Range<Int>, into matches: inout [Range<Int>]) {
        let scanner = Scanner(scalars: scalars, classes: classes, end: range.upperBound)
        var position = range.lowerBound
        while position < range.upperBound {
            let end: Int?
            switch self {
            case .gpt2: end = scanner.matchGPT2(at: position)
            case .llama3(let maxDigits): end = scanner.matchLlama3(at: position, maxDigits: maxDigits)
            case .deepseekV3: end = scanner.matchDeepseekV3(at: position)
            }
            if let end, end > position {
                matches.append(position..<end)
                position = end
            } else {
                position += 1
            }
        }
    }
}

/// The alternatives of the known patterns, each returning the end of its match at a position or nil.
private struct Scanner {
    let scalars: UnsafeBufferPointer<UInt32>
    let classes: UnsafeBufferPointer<UInt8>
    let end: Int

    private static let lpn: UInt8 = ScalarClass.letter | ScalarClass.number
    private static let lm: UInt8 = ScalarClass.letter | ScalarClass.mark
    private static let ps: UInt8 = ScalarClass.punctuation | ScalarClass.symbol

    @inline(__always) func has(_ i: Int, _ flags: UInt8) -> Bool { i < end && classes[i] & flags != 0 }
    @inline(__always) func isSpace(_ i: Int) -> Bool { i < end && scalars[i] == 0x20 }
    @inline(__always) func isCRLF(_ i: Int) -> Bool { i < end && (scalars[i] == 0x0D || scalars[i] == 0x0A) }
    /// `[^\s\p{L}\p{N}]`
    @inline(__always) func isOtherNonSpace(_ i: Int) -> Bool {
        i < end && classes[i] & (ScalarClass.whitespace | Self.lpn) == 0
    }
    @inline(__always) func run(from start: Int, _ flags: UInt8) -> Int {
        var i = start
        while i < end && classes[i] & flags != 0 { i += 1 }
        return i
    }
    @inline(__always) func runOtherNonSpace(from start: Int) -> Int {
        var i = start
        while isOtherNonSpace(i) { i += 1 }
        return i
    }
    @inline(__always) func runCRLF(from start: Int) -> Int {
        var i = start
        while isCRLF(i) { i += 1 }
        return i
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally case-insensitive (ASCII).
    @inline(__always) func contraction(at p: Int, caseInsensitive: Bool) -> Int? {
        guard p + 1 < end, scalars[p] == 0x27 else { return nil }
        func lower(_ v: UInt32) -> UInt32 { caseInsensitive && v >= 0x41 && v <= 0x5A ? v + 0x20 : v }
        let c1 = lower(scalars[p + 1])
        switch c1 {
        case 0x73, 0x74, 0x6D, 0x64: return p + 2  // s t m d
        case 0x72, 0x76:  // re ve
            if p + 2 < end && lower(scalars[p + 2]) == 0x65 { return p + 3 }
        case 0x6C:  // ll
            if p + 2 < end && lower(scalars[p + 2]) == 0x6C { return p + 3 }
        default: break
        }
        return nil
    }

    /// `\s*[\r\n]+|\s+(?!\S)|\s+` — the three whitespace alternatives shared by all known patterns.
    @inline(__always) func whitespaceTail(at p: Int, withNewlineRule: Bool) -> Int? {
        guard has(p, ScalarClass.whitespace) else { return nil }
        let q = run(from: p, ScalarClass.whitespace)
        if withNewlineRule {
            // \s*[\r\n]+ : greedy \s* backs off to the last CR/LF of the whitespace run.
            var k = q - 1
            while k >= p {
                if scalars[k] == 0x0D || scalars[k] == 0x0A { return k + 1 }
                k -= 1
            }
        }
        // \s+(?!\S): the whole run at the end of the text, else the run minus its last scalar.
        if q == end { return q }
        if q - 1 > p { return q - 1 }
        return q  // \s+
    }

    func matchGPT2(at p: Int) -> Int? {
        if let e = contraction(at: p, caseInsensitive: false) { return e }
        let start = isSpace(p) ? p + 1 : p
        if has(start, ScalarClass.letter) { return run(from: start, ScalarClass.letter) }
        if has(start, ScalarClass.number) { return run(from: start, ScalarClass.number) }
        if isOtherNonSpace(start) { return runOtherNonSpace(from: start) }
        return whitespaceTail(at: p, withNewlineRule: false)
    }

    func matchLlama3(at p: Int, maxDigits: Int) -> Int? {
        if let e = contraction(at: p, caseInsensitive: true) { return e }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if p < end {
            let c = classes[p]
            if c & Self.lpn == 0 && !isCRLF(p) && has(p + 1, ScalarClass.letter) {
                return run(from: p + 1, ScalarClass.letter)
            }
            if c & ScalarClass.letter != 0 { return run(from: p, ScalarClass.letter) }
            // \p{N}{1,maxDigits}
            if c & ScalarClass.number != 0 {
                var i = p + 1
                while i < end && i - p < maxDigits && classes[i] & ScalarClass.number != 0 { i += 1 }
                return i
            }
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        let start = isSpace(p) ? p + 1 : p
        if isOtherNonSpace(start) { return runCRLF(from: runOtherNonSpace(from: start)) }
        return whitespaceTail(at: p, withNewlineRule: true)
    }

    func matchDeepseekV3(at p: Int) -> Int? {
        guard p < end else { return nil }
        let v = scalars[p]
        // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+  (all 32 ASCII punctuation characters)
        if v < 0x80 && isASCIIPunctuation(v) && p + 1 < end && isASCIILetter(scalars[p + 1]) {
            var i = p + 2
            while i < end && isASCIILetter(scalars[i]) { i += 1 }
            return i
        }
        // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
        let c = classes[p]
        if c & (ScalarClass.letter | Self.ps) == 0 && !isCRLF(p) && has(p + 1, Self.lm) {
            return run(from: p + 1, Self.lm)
        }
        if c & Self.lm != 0 { return run(from: p, Self.lm) }
        //  ?[\p{P}\p{S}]+[\r\n]*
        let start = v == 0x20 ? p + 1 : p
        if has(start, Self.ps) { return runCRLF(from: run(from: start, Self.ps)) }
        return whitespaceTail(at: p, withNewlineRule: true)
    }

    @inline(__always) func isASCIILetter(_ v: UInt32) -> Bool { (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A }
    @inline(__always) func isASCIIPunctuation(_ v: UInt32) -> Bool {
        (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60) || (v >= 0x7B && v <= 0x7E)
    }
}
