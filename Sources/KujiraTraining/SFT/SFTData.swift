import Foundation
import KujiraFormats
import KujiraTokenizer

/// One tokenized supervised example: its ids and, per id, whether the loss covers it (the assistant's reply).
public struct SFTExample: Sendable, Equatable {
    public var tokens: [Int]
    /// trained[i]: token i is part of a reply, so the position before it is trained to predict it.
    public var trained: [Bool]
    /// 1-based line of the JSONL file it came from.
    public var line: Int

    public init(tokens: [Int], trained: [Bool], line: Int) {
        precondition(tokens.count == trained.count, "one mask entry per token")
        self.tokens = tokens; self.trained = trained; self.line = line
    }
}

/// A training-data file that cannot be used, naming the file and line.
public struct SFTDataError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    public let detail: String

    public var description: String { line.map { "\(file):\($0): \(detail)" } ?? "\(file): \(detail)" }
}

/// Turns chat JSONL lines into token ids and loss masks with a model's own tokenizer and chat template.
///
/// Accepted lines: `{"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": "..."}, ...]}` (OpenAI chat
/// format; the loss covers every assistant reply) and `{"prompt": "...", "completion": "..."}` (raw text without the
/// template; the loss covers the completion and an end-of-sequence token).
///
/// A reply's tokens are found by rendering the conversation up to it twice — with the generation prompt open, and with
/// the reply — and taking what the second adds after their common token prefix, so templates whose generation prompt
/// differs from a rendered turn (R1's `<think>`) still mark exactly the reply. An earlier reply the template rewrites
/// when later turns follow (R1 drops its reasoning) gets no loss; the last reply always does.
public struct SFTFormatter: Sendable {
    public let tokenizer: Tokenizer
    public let template: ChatTemplate
    /// Roles a message may have.
    public static let roles: Set<String> = ["system", "user", "assistant", "tool", "developer"]

    public init(tokenizer: Tokenizer, template: ChatTemplate) {
        self.tokenizer = tokenizer
        self.template = template
    }

    /// The tokenizer and chat template of the model at `path` (a directory or a `.gguf` file).
    public init(modelPath path: String) throws {
        let tokenizer = try Tokenizer.load(path: path)
        guard let source = tokenizer.chatTemplate else {
            throw SFTDataError(file: path, line: nil, detail: "the model has no chat template (tokenizer_config.json chat_template)")
        }
        self.init(tokenizer: tokenizer, template: try ChatTemplate(source: source))
    }

    func render(_ messages: [JinjaValue], generationPrompt: Bool) throws -> [Int] {
        tokenizer.encodeWithPrefix(try template.render(messages: messages, addGenerationPrompt: generationPrompt,
                                             bosToken: tokenizer.bosToken ?? "", eosToken: tokenizer.eosToken ?? ""))
    }

    /// The example on one line of a JSONL file (`line` is 1-based, for errors).
    public func example(line text: Substring, number line: Int, file: String) throws -> SFTExample {
        func fail(_ detail: String) -> SFTDataError { SFTDataError(file: file, line: line, detail: detail) }
        guard !text.allSatisfy(\.isWhitespace) else { throw fail("empty line (one JSON object per line expected)") }
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw fail("not a JSON object")
            }
            object = parsed
        } catch let error as SFTDataError { throw error } catch {
            throw fail("not valid JSON")
        }
        if let messages = object["messages"] {
            return try chatExample(messages, fail: fail, line: line)
        }
        if object["prompt"] != nil || object["completion"] != nil {
            guard let prompt = object["prompt"] as? String, let completion = object["completion"] as? String else {
                throw fail("\"prompt\" and \"completion\" must both be strings")
            }
            guard !completion.isEmpty else { throw fail("empty completion") }
            let head = tokenizer.encodeWithPrefix(prompt)
            var reply = tokenizer.encode(completion)
            if let eos = tokenizer.eosTokenIds.first { reply.append(eos) }
            return SFTExample(tokens: head + reply, trained: Array(repeating: false, count: head.count) + Array(repeating: true, count: reply.count),
                              line: line)
        }
        throw fail("expected a \"messages\" array or \"prompt\" and \"completion\" strings")
    }

    private func chatExample(_ raw: Any, fail: (String) -> SFTDataError, line: Int) throws -> SFTExample {
        guard let list = raw as? [Any], !list.isEmpty else { throw fail("\"messages\" must be a non-empty array") }
        var messages: [JinjaValue] = []
        var replies: [Int] = []
        for (i, item) in list.enumerated() {
            guard let message = item as? [String: Any] else { throw fail("message \(i + 1) is not an object") }
            guard let role = message["role"] as? String else { throw fail("message \(i + 1) has no \"role\" string") }
            guard Self.roles.contains(role) else {
                throw fail("message \(i + 1) has unknown role '\(quoted(role))' (expected one of \(Self.roles.sorted().joined(separator: ", ")))")
            }
            guard let content = message["content"] as? String else { throw fail("message \(i + 1) has no \"content\" string") }
            if role == "assistant" {
                guard !content.isEmpty else { throw fail("message \(i + 1): empty assistant reply") }
                replies.append(i)
            }
            messages.append(.object(JinjaObject([("role", .string(role)), ("content", .string(content))])))
        }
        guard !replies.isEmpty else { throw fail("no assistant message to train on") }
        let full: [Int]
        do { full = try render(messages, generationPrompt: false) } catch { throw fail("the chat template failed: \(error)") }
        var trained = [Bool](repeating: false, count: full.count)
        for i in replies {
            let before = try render(Array(messages[..<i]), generationPrompt: true)
            let upTo = i == messages.count - 1 ? full : try render(Array(messages[...i]), generationPrompt: false)
            guard full.starts(with: upTo) else { continue }  // the template rewrites this turn once later turns follow
            var common = 0
            while common < min(before.count, upTo.count) && before[common] == upTo[common] { common += 1 }
            for t in common..<upTo.count { trained[t] = true }
        }
        guard trained.contains(true) else { throw fail("the chat template renders no reply tokens") }
        return SFTExample(tokens: full, trained: trained, line: line)
    }

    /// Every example of a JSONL file, each at most `maxLength` tokens. Errors name the file and line.
    public func load(file: String, maxLength: Int) throws -> [SFTExample] {
        guard let data = FileManager.default.contents(atPath: file) else { throw SFTDataError(file: file, line: nil, detail: "cannot read the file") }
        guard let text = String(data: data, encoding: .utf8) else { throw SFTDataError(file: file, line: nil, detail: "not UTF-8 text") }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        while let last = lines.last, last.allSatisfy(\.isWhitespace) { lines.removeLast() }
        guard !lines.isEmpty else { throw SFTDataError(file: file, line: nil, detail: "no examples") }
        return try lines.enumerated().map { i, line in
            let example = try self.example(line: line, number: i + 1, file: file)
            guard example.tokens.count <= maxLength else {
                throw SFTDataError(file: file, line: i + 1, detail: "\(example.tokens.count) tokens, longer than the context of \(maxLength) (--seq)")
            }
            return example
        }
    }
}
