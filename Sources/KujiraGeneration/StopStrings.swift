import Foundation
import KujiraFormats

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

/// How a model writes tool calls. DeepSeek-V3 (0324) and R1 (0528), as their chat templates write them:
/// `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>…<｜tool▁calls▁end｜>`;
/// DeepSeek-V3.1 drops the type and the fence: `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>` (both parse
/// either way; `nameBeforeSeparator` says which one a forced call is written in);
/// or the Hermes style of Qwen2.5/Qwen3: `<tool_call>\n{"name": NAME, "arguments": ARGS}\n</tool_call>`, one block per call.
public struct ToolCallFormat: Sendable, Equatable {
    /// Which of the two syntaxes.
    public enum Style: Sendable, Equatable { case deepSeek, hermes }
    public var style = Style.deepSeek
    public var callsBegin = "<｜tool▁calls▁begin｜>"
    public var callsEnd = "<｜tool▁calls▁end｜>"
    public var callBegin = "<｜tool▁call▁begin｜>"
    public var callEnd = "<｜tool▁call▁end｜>"
    public var separator = "<｜tool▁sep｜>"
    /// DeepSeek-V3.1's `NAME<｜tool▁sep｜>ARGS` (no `function` type, no code fence).
    public var nameBeforeSeparator = false

    public init() {}

    /// The DeepSeek syntax a chat template writes calls in: V3.1's when it puts the function name before the separator.
    public func matching(template source: String) -> ToolCallFormat {
        guard style == .deepSeek else { return self }
        var format = self
        let compact = source.replacingOccurrences(of: " ", with: "")
        format.nameBeforeSeparator = compact.contains("tool['function']['name']+'\(separator)'")
            || compact.contains("tool.function.name+'\(separator)'")
        return format
    }

    /// DeepSeek's format when the tokenizer has its tool-call tokens, else nil.
    public static func deepSeek(vocabularyHas contains: (String) -> Bool) -> ToolCallFormat? {
        let format = ToolCallFormat()
        let all = [format.callsBegin, format.callsEnd, format.callBegin, format.callEnd, format.separator]
        return all.allSatisfy(contains) ? format : nil
    }

    /// Qwen's Hermes-style format when the tokenizer has `<tool_call>` and `</tool_call>` tokens, else nil.
    public static func hermes(vocabularyHas contains: (String) -> Bool) -> ToolCallFormat? {
        var format = ToolCallFormat()
        format.style = .hermes
        format.callsBegin = "<tool_call>"; format.callBegin = "<tool_call>"; format.callEnd = "</tool_call>"
        format.callsEnd = ""; format.separator = ""
        return contains(format.callBegin) && contains(format.callEnd) ? format : nil
    }

    /// The format of a tokenizer's vocabulary: DeepSeek's tokens, else Qwen's Hermes tags, else none.
    public static func detect(vocabularyHas contains: (String) -> Bool) -> ToolCallFormat? {
        deepSeek(vocabularyHas: contains) ?? hermes(vocabularyHas: contains)
    }

    /// The text that forces a call (`tool_choice` required, or of the named function).
    public func forcedPrefix(function name: String?) -> String {
        switch style {
        case .deepSeek:
            if nameBeforeSeparator { return callsBegin + (name.map { callBegin + $0 + separator } ?? "") }
            return callsBegin + (name.map { callBegin + "function" + separator + $0 + "\n```json\n" } ?? "")
        case .hermes:
            var prefix = callsBegin + "\n"
            if let name {
                var quotedName = ""
                JSONString.write(name, into: &quotedName)
                prefix += "{\"name\": \(quotedName), \"arguments\": "
            }
            return prefix
        }
    }

    /// Parses the text after `callsBegin` into calls; calls that are cut off or malformed are skipped.
    public func parse(_ text: String) -> [ToolCall] {
        if style == .hermes { return parseHermes(callsBegin + text) }
        var calls: [ToolCall] = []
        var rest = Substring(text)
        if let end = rest.range(of: callsEnd) { rest = rest[..<end.lowerBound] }
        while let begin = rest.range(of: callBegin) {
            rest = rest[begin.upperBound...]
            guard let end = rest.range(of: callEnd) else { break }
            let body = rest[..<end.lowerBound]
            rest = rest[end.upperBound...]
            guard let sep = body.range(of: separator) else { continue }
            let beforeSep = body[..<sep.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
            if !beforeSep.isEmpty && beforeSep != "function" {
                // V3.1: NAME<｜tool▁sep｜>ARGS.
                let arguments = body[sep.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
                calls.append(ToolCall(name: beforeSep, arguments: arguments.isEmpty ? "{}" : arguments))
                continue
            }
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

extension ToolCallFormat {
    /// `<tool_call>{"name": …, "arguments": …}</tool_call>` blocks; the arguments' JSON text is kept as written when it
    /// is the object's last member (as Qwen writes it), else re-encoded. A string `arguments` is taken as the JSON text.
    func parseHermes(_ text: String) -> [ToolCall] {
        var calls: [ToolCall] = []
        var rest = Substring(text)
        while let begin = rest.range(of: callBegin) {
            rest = rest[begin.upperBound...]
            guard let end = rest.range(of: callEnd) else { break }
            let body = rest[..<end.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
            rest = rest[end.upperBound...]
            guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                  let name = object["name"] as? String, !name.isEmpty else { continue }
            var arguments = "{}"
            if let string = object["arguments"] as? String {
                arguments = string
            } else if let value = object["arguments"] {
                arguments = Self.rawLastMember("arguments", of: body)
                    ?? (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]))
                        .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            }
            calls.append(ToolCall(name: name, arguments: arguments))
        }
        return calls
    }

    /// The JSON text of `key`'s value when it is the last member of the object `body`, if it parses on its own.
    static func rawLastMember(_ key: String, of body: String) -> String? {
        guard body.hasSuffix("}"), let keyRange = body.range(of: "\"\(key)\"", options: .backwards) else { return nil }
        var after = body[keyRange.upperBound...].drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard after.first == ":" else { return nil }
        after = after.dropFirst()
        let raw = String(after.dropLast()).trimmingCharacters(in: .whitespacesAndNewlines)
        guard (try? JSONSerialization.jsonObject(with: Data(raw.utf8), options: .fragmentsAllowed)) != nil else { return nil }
        return raw
    }
}

func makeString(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
    var view = String.UnicodeScalarView()
    view.append(contentsOf: scalars)
    return String(view)
}
