/// A token matched in the text before pre-tokenization (HF `added_tokens`, GGUF control/user-defined tokens).
public struct AddedToken: Sendable, Equatable {
    public var id: Int
    public var content: String
    public var special: Bool
    public var normalized: Bool
    public var lstrip: Bool
    public var rstrip: Bool
    public var singleWord: Bool

    public init(id: Int, content: String, special: Bool, normalized: Bool = false, lstrip: Bool = false,
                rstrip: Bool = false, singleWord: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.normalized = normalized
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.singleWord = singleWord
    }
}

/// A piece of input: either an added token (its id) or plain text (a UTF-8 byte range) to pre-tokenize.
enum TextSegment: Equatable {
    case token(Int)
    case text(Range<Int>)
}

/// Leftmost-longest matching of a set of added tokens over UTF-8 bytes, with HF's lstrip/rstrip/single_word.
struct AddedTokenMatcher: Sendable {
    private let tokens: [AddedToken]
    private let contents: [[UInt8]]
    /// For each first byte, the candidate token indices, longest first.
    private let candidatesByFirstByte: [[Int]]

    init(tokens: [AddedToken]) {
        let usable = tokens.filter { !$0.content.isEmpty }
        let contents = usable.map { Array($0.content.utf8) }
        self.tokens = usable
        self.contents = contents
        var buckets = [[Int]](repeating: [], count: 256)
        for (index, bytes) in contents.enumerated() { buckets[Int(bytes[0])].append(index) }
        for b in 0..<256 {
            buckets[b].sort { contents[$0].count > contents[$1].count || (contents[$0].count == contents[$1].count && $0 < $1) }
        }
        candidatesByFirstByte = buckets
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// Splits `bytes[range]` into added tokens and the text between them.
    func split(_ bytes: [UInt8], range: Range<Int>) -> [TextSegment] {
        guard !tokens.isEmpty else { return range.isEmpty ? [] : [.text(range)] }
        var segments: [TextSegment] = []
        var startOffset = range.lowerBound
        var i = range.lowerBound
        bytes.withUnsafeBufferPointer { buffer in
            while i < range.upperBound {
                let candidates = candidatesByFirstByte[Int(buffer[i])]
                var matched = -1
                for index in candidates {
                    let content = contents[index]
                    if i + content.count <= range.upperBound,
                       content.withUnsafeBufferPointer({ memcmpEqual($0.baseAddress!, buffer.baseAddress! + i, content.count) }) {
                        matched = index
                        break
                    }
                }
                guard matched >= 0 else { i += 1; continue }
                let token = tokens[matched]
                var start = i
                var stop = i + contents[matched].count
                if token.singleWord {
                    let startOK = start == range.lowerBound || !isWordScalar(before: start, buffer, lowerBound: range.lowerBound)
                    let stopOK = stop == range.upperBound || !isWordScalar(at: stop, buffer, upperBound: range.upperBound)
                    if !startOK || !stopOK { i += 1; continue }
                }
                if token.lstrip {
                    start = max(startOffset, whitespaceStart(before: start, buffer, lowerBound: range.lowerBound))
                }
                if token.rstrip {
                    stop = whitespaceEnd(from: stop, buffer, upperBound: range.upperBound)
                }
                if startOffset < start { segments.append(.text(startOffset..<start)) }
                segments.append(.token(token.id))
                startOffset = stop
                i = stop
            }
        }
        if startOffset < range.upperBound { segments.append(.text(startOffset..<range.upperBound)) }
        return segments
    }

    private func decode(at i: Int, _ b: UnsafeBufferPointer<UInt8>, limit: Int) -> (UInt32, Int) {
        let lead = b[i]
        let length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
        var value = length == 1 ? UInt32(lead) : UInt32(lead) & (0x7F >> UInt32(length))
        var k = 1
        while k < length && i + k < limit {
            value = value << 6 | UInt32(b[i + k] & 0x3F)
            k += 1
        }
        return (value, length)
    }

    private func startOfScalar(before i: Int, _ b: UnsafeBufferPointer<UInt8>, lowerBound: Int) -> Int {
        var j = i - 1
        while j > lowerBound && b[j] & 0xC0 == 0x80 { j -= 1 }
        return j
    }

    private func isWordClass(_ value: UInt32) -> Bool {
        ScalarClass.of(value) & (ScalarClass.letter | ScalarClass.number) != 0 || value == 0x5F
    }

    private func isWordScalar(before i: Int, _ b: UnsafeBufferPointer<UInt8>, lowerBound: Int) -> Bool {
        let j = startOfScalar(before: i, b, lowerBound: lowerBound)
        return isWordClass(decode(at: j, b, limit: i).0)
    }

    private func isWordScalar(at i: Int, _ b: UnsafeBufferPointer<UInt8>, upperBound: Int) -> Bool {
        isWordClass(decode(at: i, b, limit: upperBound).0)
    }

    private func whitespaceStart(before i: Int, _ b: UnsafeBufferPointer<UInt8>, lowerBound: Int) -> Int {
        var start = i
        while start > lowerBound {
            let j = startOfScalar(before: start, b, lowerBound: lowerBound)
            guard ScalarClass.of(decode(at: j, b, limit: start).0) & ScalarClass.whitespace != 0 else { break }
            start = j
        }
        return start
    }

    private func whitespaceEnd(from i: Int, _ b: UnsafeBufferPointer<UInt8>, upperBound: Int) -> Int {
        var end = i
        while end < upperBound {
            let (value, length) = decode(at: end, b, limit: upperBound)
            guard ScalarClass.of(value) & ScalarClass.whitespace != 0 else { break }
            end += length
        }
        return min(end, upperBound)
    }
}
