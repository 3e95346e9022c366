/// How a `Split` pre-tokenizer treats the matched delimiters (HF `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

/// One pre-tokenization step of the HF pipeline; a tokenizer applies them in order to pieces of text.
enum PreTokenizerStep: Sendable {
    case split(SplitPattern, behavior: SplitBehavior, invert: Bool)
    /// ByteLevel: optional prefix space, optional GPT-2 split; the byte mapping itself is done by the BPE model.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// Digits: splits every digit apart (`individual`) or isolates runs of digits.
    case digits(individual: Bool)
    /// Whitespace-split (`WhitespaceSplit`): splits on White_Space and removes it.
    case whitespaceSplit
}

/// The ordered pre-tokenizer steps; turns a text into pieces (scalar ranges) for BPE.
struct PreTokenizer: Sendable {
    var steps: [PreTokenizerStep]

    /// Splits `text` into pieces; may rewrite `text` (prefix spaces).
    func pieces(of text: inout ScalarText, scratch: inout [Range<Int>]) -> [Range<Int>] {
        var pieces: [Range<Int>] = text.count > 0 ? [0..<text.count] : []
        var next: [Range<Int>] = []
        for step in steps {
            next.removeAll(keepingCapacity: true)
            next.reserveCapacity(pieces.count)
            switch step {
            case .split(let pattern, let behavior, let invert):
                for piece in pieces {
                    scratch.removeAll(keepingCapacity: true)
                    pattern.findMatches(in: text, range: piece, into: &scratch)
                    Self.applyBehavior(behavior, invert: invert, piece: piece, matches: scratch, into: &next)
                }
            case .byteLevel(let addPrefixSpace, let useRegex):
                if addPrefixSpace { Self.insertPrefixSpaces(&text, &pieces) }
                if useRegex {
                    let pattern = SplitPattern.known(.gpt2)
                    for piece in pieces {
                        scratch.removeAll(keepingCapacity: true)
                        pattern.findMatches(in: text, range: piece, into: &scratch)
                        Self.applyBehavior(.isolated, invert: false, piece: piece, matches: scratch, into: &next)
                    }
                } else {
                    next.append(contentsOf: pieces)
                }
            case .digits(let individual):
                for piece in pieces {
                    scratch.removeAll(keepingCapacity: true)
                    var i = piece.lowerBound
                    while i < piece.upperBound {
                        guard text.classes[i] & ScalarClass.number != 0 else { i += 1; continue }
                        var q = i + 1
                        if !individual {
                            while q < piece.upperBound && text.classes[q] & ScalarClass.number != 0 { q += 1 }
                        }
                        scratch.append(i..<q)
                        i = q
                    }
                    Self.applyBehavior(individual ? .isolated : .contiguous, invert: false, piece: piece,
                                       matches: scratch, into: &next)
                }
            case .whitespaceSplit:
                for piece in pieces {
                    var i = piece.lowerBound
                    while i < piece.upperBound {
                        if text.classes[i] & ScalarClass.whitespace != 0 { i += 1; continue }
                        var q = i + 1
                        while q < piece.upperBound && text.classes[q] & ScalarClass.whitespace == 0 { q += 1 }
                        next.append(i..<q)
                        i = q
                    }
                }
            }
            swap(&pieces, &next)
        }
        return pieces
    }

    /// HF's `split` with a delimiter behaviour: the piece is cut into alternating gaps and matches, then
    /// those are kept, dropped or merged; empty results vanish.
    static func applyBehavior(_ behavior: SplitBehavior, invert: Bool, piece: Range<Int>, matches: [Range<Int>],
                              into out: inout [Range<Int>]) {
        if matches.isEmpty && !invert {
            // Nothing matched: the piece stays whole (a gap).
            out.append(piece)
            return
        }
        if behavior == .isolated {
            // Hot path: gaps and matches alike become pieces.
            var cursor = piece.lowerBound
            for match in matches {
                if cursor < match.lowerBound { out.append(cursor..<match.lowerBound) }
                if !match.isEmpty { out.append(match) }
                cursor = match.upperBound
            }
            if cursor < piece.upperBound { out.append(cursor..<piece.upperBound) }
            return
        }
        // Walk the alternating segments without materializing them.
        var cursor = piece.lowerBound
        var segments: [(Range<Int>, Bool)] = []
        segments.reserveCapacity(matches.count * 2 + 1)
        for match in matches {
            if cursor < match.lowerBound { segments.append((cursor..<match.lowerBound, invert)) }
            segments.append((match, !invert))
            cursor = match.upperBound
        }
        if cursor < piece.upperBound { segments.append((cursor..<piece.upperBound, invert)) }

        switch behavior {
        case .isolated:
            for (range, _) in segments where !range.isEmpty { out.append(range) }
        case .removed:
            for (range, isMatch) in segments where !isMatch && !range.isEmpty { out.append(range) }
        case .mergedWithPrevious:
            var result: [Range<Int>] = []
            var previousMatch = false
            for (range, isMatch) in segments {
                if isMatch && !previousMatch, let last = result.last {
                    result[result.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    result.append(range)
                }
                previousMatch = isMatch
            }
            out.append(contentsOf: result.filter { !$0.isEmpty })
        case .mergedWithNext:
            var result: [Range<Int>] = []
            var previousMatch = false
            for (range, isMatch) in segments.reversed() {
                if isMatch && !previousMatch, let last = result.last {
                    result[result.count - 1] = range.lowerBound..<last.upperBound
                } else {
                    result.append(range)
                }
                previousMatch = isMatch
            }
            out.append(contentsOf: result.reversed().filter { !$0.isEmpty })
        case .contiguous:
            var result: [Range<Int>] = []
            var previousMatch = false
            for (index, (range, isMatch)) in segments.enumerated() {
                if index > 0 && isMatch == previousMatch, let last = result.last {
                    result[result.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    result.append(range)
                }
                previousMatch = isMatch
            }
            out.append(contentsOf: result.filter { !$0.isEmpty })
        }
    }

    /// ByteLevel add_prefix_space: every piece not starting with " " gets one (HF prepends per piece).
    static func insertPrefixSpaces(_ text: inout ScalarText, _ pieces: inout [Range<Int>]) {
        guard pieces.contains(where: { text.scalars[$0.lowerBound] != 0x20 }) else { return }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.bytes.count + pieces.count)
        var ranges: [(Int, Int)] = []  // byte ranges of new pieces
        var gapStart = 0
        for piece in pieces {
            let byteStart = Int(text.byteOffsets[piece.lowerBound]), byteEnd = Int(text.byteOffsets[piece.upperBound])
            bytes.append(contentsOf: text.bytes[gapStart..<byteStart])
            let start = bytes.count
            if text.scalars[piece.lowerBound] != 0x20 { bytes.append(0x20) }
            bytes.append(contentsOf: text.bytes[byteStart..<byteEnd])
            ranges.append((start, bytes.count))
            gapStart = byteEnd
        }
        bytes.append(contentsOf: text.bytes[gapStart...])
        let rebuilt = ScalarText(utf8: bytes)
        var scalarIndexOfByte = [Int](repeating: -1, count: bytes.count + 1)
        for (index, offset) in rebuilt.byteOffsets.enumerated() { scalarIndexOfByte[Int(offset)] = index }
        pieces = ranges.map { scalarIndexOfByte[$0.0]..<scalarIndexOfByte[$0.1] }
        text = rebuilt
    }
}
