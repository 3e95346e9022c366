/// Substring search over Unicode scalars with Knuth–Morris–Pratt: linear in text plus pattern whatever they hold
/// (a naive scan is quadratic on inputs like `'aaaa…'.count('aa…ab')`, which a hostile template can build).
struct ScalarSearch {
    let needle: [Unicode.Scalar]
    /// failure[i]: length of the longest proper border of needle[0...i].
    private let failure: [Int]

    init(_ needle: [Unicode.Scalar]) {
        self.needle = needle
        var failure = [Int](repeating: 0, count: needle.count)
        var border = 0
        for i in needle.indices.dropFirst() {
            while border > 0 && needle[i] != needle[border] { border = failure[border - 1] }
            if needle[i] == needle[border] { border += 1 }
            failure[i] = border
        }
        self.failure = failure
    }

    init(_ needle: String) {
        self.init(Array(needle.unicodeScalars))
    }

    /// Start offsets of the matches in `text`, left to right: non-overlapping (as Python's `count`, `split` and
    /// `replace` take them); at most `limit` of them. An empty needle matches at every offset.
    func matches(in text: [Unicode.Scalar], limit: Int = .max) -> [Int] {
        var found: [Int] = []
        guard limit > 0 else { return found }
        scan(text, overlapping: false) { start in
            found.append(start)
            return found.count < limit
        }
        return found
    }

    /// How many non-overlapping matches `text` holds (Python's `count`; an empty needle: one per offset).
    func count(in text: [Unicode.Scalar]) -> Int {
        var count = 0
        scan(text, overlapping: false) { _ in count += 1; return true }
        return count
    }

    /// The first match's start offset, if any.
    func first(in text: [Unicode.Scalar]) -> Int? {
        var first: Int?
        scan(text, overlapping: false) { start in first = start; return false }
        return first
    }

    /// The last match's start offset, overlapping matches included (Python's `rfind`).
    func last(in text: [Unicode.Scalar]) -> Int? {
        var last: Int?
        scan(text, overlapping: true) { start in last = start; return true }
        return last
    }

    /// Calls `found` with each match's start offset, left to right, until it returns false.
    private func scan(_ text: [Unicode.Scalar], overlapping: Bool, _ found: (Int) -> Bool) {
        guard !needle.isEmpty else {
            for offset in 0...text.count where !found(offset) { return }
            return
        }
        var matched = 0
        for (index, scalar) in text.enumerated() {
            while matched > 0 && scalar != needle[matched] { matched = failure[matched - 1] }
            if scalar == needle[matched] { matched += 1 }
            if matched == needle.count {
                guard found(index + 1 - needle.count) else { return }
                matched = overlapping ? failure[matched - 1] : 0
            }
        }
    }
}

/// Python `str.replace(old, new, count)` (count < 0 or nil: all); throws once the result would pass `maxBytes`.
func pythonReplace(_ text: String, _ old: String, _ new: String, count: Int?, maxBytes: Int) throws -> String {
    let limit = (count ?? -1) < 0 ? Int.max : count ?? 0
    let scalars = Array(text.unicodeScalars)
    let positions = ScalarSearch(old).matches(in: scalars, limit: limit)
    let oldCount = old.unicodeScalars.count
    // Bytes of the result, worked out before building it.
    let (added, overflow) = positions.count.multipliedReportingOverflow(by: new.utf8.count)
    guard !overflow, added <= maxBytes, text.utf8.count - positions.count * old.utf8.count + added <= maxBytes else {
        throw budgetError(.valueSize, "str.replace would build a string of more than \(maxBytes) bytes")
    }
    var out = String.UnicodeScalarView()
    var start = 0
    for position in positions {
        out.append(contentsOf: scalars[start..<position])
        out.append(contentsOf: new.unicodeScalars)
        start = position + oldCount
    }
    if start < scalars.count { out.append(contentsOf: scalars[start...]) }
    return String(out)
}

/// Python `str.split` / `str.rsplit`; a nil separator splits on whitespace runs and drops empty pieces.
/// Throws once there would be more than `maxPieces` pieces.
func pythonSplit(_ text: String, separator: String?, maxSplit: Int, fromRight: Bool, maxPieces: Int) throws -> [String] {
    let scalars = Array(text.unicodeScalars)
    func string(_ slice: ArraySlice<Unicode.Scalar>) -> String { String(String.UnicodeScalarView(slice)) }
    func tooMany() -> ChatTemplateError {
        budgetError(.valueSize, "str.split would build a list of more than \(maxPieces) items")
    }
    let limit = maxSplit < 0 ? Int.max : maxSplit
    if let separator {
        let search = ScalarSearch(separator)
        let width = search.needle.count
        if fromRight {
            // Matches taken from the right: search the reversed text for the reversed separator.
            let reversedPositions = ScalarSearch(Array(search.needle.reversed()))
                .matches(in: Array(scalars.reversed()), limit: min(limit, maxPieces))
            guard reversedPositions.count < maxPieces else { throw tooMany() }
            var pieces: [String] = []
            var end = scalars.count
            for reversed in reversedPositions {
                let start = scalars.count - reversed - width
                pieces.append(string(scalars[start + width..<end]))
                end = start
            }
            pieces.append(string(scalars[0..<end]))
            return pieces.reversed()
        }
        let positions = search.matches(in: scalars, limit: min(limit, maxPieces))
        guard positions.count < maxPieces else { throw tooMany() }
        var pieces: [String] = []
        var start = 0
        for position in positions {
            pieces.append(string(scalars[start..<position]))
            start = position + width
        }
        pieces.append(string(scalars[start...]))
        return pieces
    }
    // Whitespace splitting (left to right; rsplit with a limit regroups the words at the end).
    var words: [ArraySlice<Unicode.Scalar>] = []
    var index = 0
    while index < scalars.count {
        while index < scalars.count, isPythonWhitespace(scalars[index]) { index += 1 }
        guard index < scalars.count else { break }
        guard words.count < maxPieces else { throw tooMany() }
        if maxSplit >= 0, words.count == maxSplit, !fromRight {
            var end = scalars.count
            while end > index, isPythonWhitespace(scalars[end - 1]) { end -= 1 }
            words.append(scalars[index..<end])
            break
        }
        let start = index
        while index < scalars.count, !isPythonWhitespace(scalars[index]) { index += 1 }
        words.append(scalars[start..<index])
    }
    if fromRight, maxSplit >= 0, words.count > maxSplit + 1 {
        let headCount = words.count - maxSplit
        let headEnd = words[headCount - 1].endIndex
        let headStart = words[0].startIndex
        return [string(scalars[headStart..<headEnd])] + words[headCount...].map(string)
    }
    return words.map(string)
}
