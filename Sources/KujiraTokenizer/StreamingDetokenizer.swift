/// Turns ids into text as they arrive, emitting only complete UTF-8: a character split across tokens is held
/// back until its last byte comes; bytes that can never form a character become U+FFFD right away.
public struct StreamingDetokenizer {
    public let tokenizer: Tokenizer
    public let skipSpecialTokens: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one token and returns the text it completes (often "", e.g. mid-character).
    public mutating func append(_ id: Int) -> String {
        if skipSpecialTokens && tokenizer.isSpecial(id) { return "" }
        pending.append(contentsOf: tokenizer.bytes(of: id))
        let keep = Self.incompleteSuffixLength(pending)
        guard pending.count > keep else { return "" }
        let text = String(decoding: pending[..<(pending.count - keep)], as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// Adds several tokens; returns the completed text.
    public mutating func append(contentsOf ids: some Sequence<Int>) -> String {
        var text = ""
        for id in ids { text += append(id) }
        return text
    }

    /// Flushes what is held back at the end of the stream (an unfinished character becomes U+FFFD).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Length of the trailing bytes that are a valid but unfinished UTF-8 sequence (0...3).
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        var start = n - 1
        // Find the lead byte of the last sequence (at most 3 continuation bytes back).
        while start >= 0 && n - start <= 3 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
        guard start >= 0 && n - start <= 3 else { return 0 }
        let lead = bytes[start]
        let needed: Int
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF4: needed = 4
        default: return 0  // ASCII or an invalid lead byte: nothing to wait for
        }
        let have = n - start
        guard have < needed else { return 0 }
        // The second byte must be in the lead's allowed range, else the sequence is already invalid.
        if have >= 2 {
            let second = bytes[start + 1]
            let valid: Bool
            switch lead {
            case 0xE0: valid = (0xA0...0xBF).contains(second)
            case 0xED: valid = (0x80...0x9F).contains(second)
            case 0xF0: valid = (0x90...0xBF).contains(second)
            case 0xF4: valid = (0x80...0x8F).contains(second)
            default: valid = true
            }
            if !valid { return 0 }
        }
        return have
    }
}
