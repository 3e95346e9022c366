import Foundation

/// Finds stop strings (and other markers) in streamed text, holding back any suffix that could still become one,
/// so no part of a stop string is ever emitted.
public struct StopStringMatcher: Sendable {
    /// The strings searched for.
    public let markers: [String]
    private let markerScalars: [[Unicode.Scalar]]
    private var pending: [Unicode.Scalar] = []

    public init(_ markers: [String]) {
        self.markers = markers.filter { !$0.isEmpty }
        markerScalars = self.markers.map { Array($0.unicodeScalars) }
    }

    /// What feeding a chunk produced: text that is certain, and the marker found right after it (if any) with the
    /// text after that marker (not searched further).
    public struct Result: Sendable, Equatable {
        public var text: String
        public var marker: String?
        public var remainder: String
    }

    /// Adds a chunk; returns the text that can be emitted and the first marker, if one completed.
    public mutating func feed(_ chunk: String) -> Result {
        pending.append(contentsOf: chunk.unicodeScalars)
        if let (start, index) = earliestMarker() {
            let text = makeString(pending[..<start])
            let remainder = makeString(pending[(start + markerScalars[index].count)...])
            pending.removeAll()
            return Result(text: text, marker: markers[index], remainder: remainder)
        }
        let keep = heldBackLength()
        let text = makeString(pending[..<(pending.count - keep)])
        pending.removeFirst(pending.count - keep)
        return Result(text: text, marker: nil, remainder: "")
    }

    /// Releases the held-back text at the end of the stream.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return makeString(pending[...])
    }

    /// Start offset and marker index of the earliest complete marker in `pending` (the longest on ties).
    private func earliestMarker() -> (Int, Int)? {
        var best: (Int, Int)?
        for (index, marker) in markerScalars.enumerated() where marker.count <= pending.count {
            var start = 0
            while start + marker.count <= pending.count {
                if pending[start] == marker[0], pending[start..<(start + marker.count)].elementsEqual(marker) {
                    if best == nil || start < best!.0 || (start == best!.0 && marker.count > markerScalars[best!.1].count) {
                        best = (start, index)
                    }
                    break
                }
                start += 1
            }
        }
        return best
    }

    /// Length of the longest suffix of `pending` that is a proper prefix of some marker.
    private func heldBackLength() -> Int {
        var keep = 0
        for marker in markerScalars {
            var length = min(pending.count, marker.count - 1)
            while length > keep {
                if pending[(pending.count - length)...].elementsEqual(marker[..<length]) { keep = length; break }
                length -= 1
            }
        }
        return keep
    }
}

/// One function call the model asked for.
public struct ToolCall: Sendable, Equatable {
    public var name: String
    /// The arguments as JSON text, exactly as the model wrote them.
    public var arguments: String

    public init(name: String, arguments: String) {
        self.name = name
        self.arguments = arguments
    }
}

/// DeepSeek-V3's tool-call tokens (as its chat template writes them):
/// `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>…<｜tool▁calls▁end｜>`.
public struct ToolCallFormat: Sendable, Equatable {
    public var callsBegin = "<｜tool▁calls▁begin｜>"
    public var callsEnd = "<｜tool▁calls▁end｜>"
    public var callBegin = "<｜tool▁call▁begin｜>"
    public var callEnd = "<｜tool▁call▁end｜>"
    public var separator = "<｜tool▁sep｜>"

    public init() {}

    /// DeepSeek's format when the tokenizer has its tool-call tokens, else nil.
    public static func deepSeek(vocabularyHas contains: (String) -> Bool) -> ToolCallFormat? {
        let format = ToolCallFormat()
        let all = [format.callsBegin, format.callsEnd, format.callBegin, format.callEnd, format.separator]
        return all.allSatisfy(contains) ? format : nil
    }

    /// Parses the text after `callsBegin` into calls; calls that are cut off or malformed are skipped.
    public func parse(_ text: String) -> [ToolCall] {
        var calls: [ToolCall] = []
        var rest = Substring(text)
        if let end = rest.range(of: callsEnd) { rest = rest[..<end.lowerBound] }
        while let begin = rest.range(of: callBegin) {
            rest = rest[begin.upperBound...]
            guard let end = rest.range(of: callEnd) else { break }
            let body = rest[..<end.lowerBound]
            rest = rest[end.upperBound...]
            guard let sep = body.range(of: separator) else { continue }
            let afterSep = body[sep.upperBound...]
            let nameEnd = afterSep.firstIndex(of: "\n") ?? afterSep.endIndex
            let name = afterSep[..<nameEnd].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { continue }
            var arguments = afterSep[nameEnd...].trimmingCharacters(in: .whitespacesAndNewlines)
            if arguments.hasPrefix("```json") { arguments.removeFirst(7) } else if arguments.hasPrefix("```") { arguments.removeFirst(3) }
            if arguments.hasSuffix("```") { arguments.removeLast(3) }
            arguments = arguments.trimmingCharacters(in: .whitespacesAndNewlines)
            calls.append(ToolCall(name: name, arguments: arguments.isEmpty ? "{}" : arguments))
        }
        return calls
    }
}

func makeString(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
    var view = String.UnicodeScalarView()
    view.append(contentsOf: scalars)
    return String(view)
}
