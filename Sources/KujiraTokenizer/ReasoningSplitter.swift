/// Splits streamed model output into reasoning (`<think>…</think>`) and answer text, chunk by chunk.
///
/// Feed detokenized text as it arrives; tags split across chunks are handled by holding back any
/// suffix that could still become a tag. The opening tag counts only before any non-whitespace answer
/// text (so an answer that mentions `<think>` is left alone), and reasoning happens at most once.
/// Templates that end the prompt with `<think>` (DeepSeek-R1) start in reasoning mode:
/// pass `startsInReasoning: true`, or use `ReasoningSplitter(continuingPrompt:)`.
/// The tags themselves are not emitted; concatenating all events' text gives the input minus the tags.
public struct ReasoningSplitter: Sendable {
    /// One piece of output, in order.
    public enum Event: Sendable, Equatable {
        case reasoning(String)
        case content(String)
    }

    private enum Phase: Sendable { case beforeReasoning, reasoning, answer }

    public let startTag: String
    public let endTag: String
    private var phase: Phase
    private var pending = ""
    private var sawAnswerText = false

    public init(startTag: String = "<think>", endTag: String = "</think>", startsInReasoning: Bool = false) {
        self.startTag = startTag
        self.endTag = endTag
        self.phase = startsInReasoning ? .reasoning : .beforeReasoning
    }

    /// Starts in reasoning mode when the rendered prompt left a `startTag` open at its end
    /// (e.g. DeepSeek-R1's `<｜Assistant｜><think>\n`).
    public init(continuingPrompt prompt: String, startTag: String = "<think>", endTag: String = "</think>") {
        let scalars = Array(prompt.unicodeScalars)
        let open = (lastIndex(of: startTag, in: scalars) ?? -1) > (lastIndex(of: endTag, in: scalars) ?? -1)
        self.init(startTag: startTag, endTag: endTag, startsInReasoning: open)
    }

    /// Whether the splitter is currently inside the reasoning block.
    public var isReasoning: Bool { phase == .reasoning }

    /// Consumes one chunk; returns the events that are certain so far.
    public mutating func feed(_ chunk: String) -> [Event] {
        pending += chunk
        var events: [Event] = []
        while true {
            switch phase {
            case .answer:
                emit(.content(pending), into: &events)
                pending = ""
                return events
            case .reasoning:
                let scalars = Array(pending.unicodeScalars)
                if let start = firstIndex(of: endTag, in: scalars) {
                    emit(.reasoning(makeString(scalars[..<start])), into: &events)
                    pending = makeString(scalars[(start + endTag.unicodeScalars.count)...])
                    phase = .answer
                    continue
                }
                let keep = partialTagSuffixLength(pending, endTag)
                emit(.reasoning(makeString(scalars.dropLast(keep)[...])), into: &events)
                pending = makeString(scalars.suffix(keep)[...])
                return events
            case .beforeReasoning:
                // Only leading whitespace may precede the opening tag.
                let scalars = Array(pending.unicodeScalars)
                let tag = Array(startTag.unicodeScalars)
                let leading = scalars.prefix { isPythonWhitespace($0) }.count
                let rest = scalars[leading...]
                if rest.starts(with: tag) {
                    emit(.content(makeString(scalars[..<leading])), into: &events)
                    pending = makeString(rest.dropFirst(tag.count))
                    phase = .reasoning
                    continue
                }
                if tag.starts(with: rest) {
                    // Still undecided: hold back everything after the whitespace, emit the whitespace.
                    emit(.content(makeString(scalars[..<leading])), into: &events)
                    pending = makeString(rest)
                    return events
                }
                phase = .answer
            }
        }
    }

    /// Flushes text held back as a possible tag prefix (call once the stream ends).
    public mutating func finish() -> [Event] {
        var events: [Event] = []
        emit(phase == .reasoning ? .reasoning(pending) : .content(pending), into: &events)
        pending = ""
        return events
    }

    private mutating func emit(_ event: Event, into events: inout [Event]) {
        switch event {
        case .reasoning(let text) where text.isEmpty, .content(let text) where text.isEmpty:
            return
        default:
            events.append(event)
        }
    }
}

private func makeString(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
    String(String.UnicodeScalarView(scalars))
}

/// Scalar offset of the first occurrence of `tag` in `scalars`.
private func firstIndex(of tag: String, in scalars: [Unicode.Scalar]) -> Int? {
    let needle = Array(tag.unicodeScalars)
    guard !needle.isEmpty, needle.count <= scalars.count else { return nil }
    for start in 0...(scalars.count - needle.count) where scalars[start..<start + needle.count].elementsEqual(needle) {
        return start
    }
    return nil
}

/// Scalar offset of the last occurrence of `tag` in `scalars`.
private func lastIndex(of tag: String, in scalars: [Unicode.Scalar]) -> Int? {
    let needle = Array(tag.unicodeScalars)
    guard !needle.isEmpty, needle.count <= scalars.count else { return nil }
    for start in stride(from: scalars.count - needle.count, through: 0, by: -1)
    where scalars[start..<start + needle.count].elementsEqual(needle) {
        return start
    }
    return nil
}

/// Length (in scalars) of the longest suffix of `text` that is a proper prefix of `tag`.
private func partialTagSuffixLength(_ text: String, _ tag: String) -> Int {
    let textScalars = Array(text.unicodeScalars)
    let tagScalars = Array(tag.unicodeScalars)
    var length = min(textScalars.count, tagScalars.count - 1)
    while length > 0 {
        if textScalars[(textScalars.count - length)...].elementsEqual(tagScalars[..<length]) { return length }
        length -= 1
    }
    return 0
}
