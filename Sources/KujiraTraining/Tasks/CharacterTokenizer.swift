import Foundation
import KujiraFormats

/// A character-level tokenizer for the synthetic tasks, written out as a real Hugging Face `tokenizer.json`
/// (BPE over a byte-level alphabet with no merges, so every character is one token) plus `tokenizer_config.json`
/// with a DeepSeek-R1-style chat template — loadable by transformers and Kujira's tokenizer unchanged.
public struct CharacterTokenizer: Sendable {
    public static let beginOfSentence = "<｜begin▁of▁sentence｜>"
    public static let endOfSentence = "<｜end▁of▁sentence｜>"
    public static let user = "<｜User｜>"
    public static let assistant = "<｜Assistant｜>"
    public static let pad = "<｜▁pad▁｜>"
    /// Special tokens in id order; `<think>` and `</think>` are single tokens too.
    public static let specials = [beginOfSentence, endOfSentence, user, assistant, "<think>", "</think>", pad]
    /// Characters in id order after the specials (the letters spell the "What is …?" question phrasing; new
    /// characters are only ever appended, so older checkpoints keep their ids).
    public static let characters: [Character] = Array("0123456789+-*= \nWhatisw?")

    public var bosId: Int { 0 }
    public var eosId: Int { 1 }
    public var padId: Int { 6 }
    /// Vocabulary size (ids in use); models may have more rows.
    public var count: Int { Self.specials.count + Self.characters.count }

    public init() {}

    /// Ids of `text`; special tokens are matched first. Throws on a character outside the alphabet.
    public func encode(_ text: String) throws -> [Int] {
        var ids: [Int] = []
        var rest = Substring(text)
        outer: while let first = rest.first {
            for (id, special) in Self.specials.enumerated() where rest.hasPrefix(special) {
                ids.append(id); rest = rest.dropFirst(special.count); continue outer
            }
            guard let index = Self.characters.firstIndex(of: first) else {
                throw TrainingError.invalidInput("character \(first.debugDescription) is not in the tokenizer's alphabet")
            }
            ids.append(Self.specials.count + index)
            rest = rest.dropFirst()
        }
        return ids
    }

    public func decode(_ ids: [Int]) -> String {
        ids.map { id in
            if id >= 0 && id < Self.specials.count { return Self.specials[id] }
            let c = id - Self.specials.count
            return c >= 0 && c < Self.characters.count ? String(Self.characters[c]) : ""
        }.joined()
    }

    /// GPT-2's byte-to-character map for printable ASCII and the two whitespace characters we use.
    static func byteLevel(_ c: Character) -> String {
        switch c {
        case " ": return "Ġ"
        case "\n": return "Ċ"
        default: return String(c)
        }
    }

    /// The `tokenizer.json` document.
    public func tokenizerJSON() throws -> Data {
        var vocab: [String: Int] = [:]
        for (i, c) in Self.characters.enumerated() { vocab[Self.byteLevel(c)] = Self.specials.count + i }
        let added: [[String: Any]] = Self.specials.enumerated().map { id, content in
            // `<think>`/`</think>` are added but not special, as in DeepSeek-R1's tokenizer: decoders that skip special
            // tokens keep them, so the reasoning/answer split still sees them.
            ["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false,
             "special": !content.contains("think>")]
        }
        let document: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added, "normalizer": NSNull(),
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            "post_processor": NSNull(),
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": [String]()],
        ]
        return try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted])
    }

    /// DeepSeek-R1's chat format: `{bos}<｜User｜>{q}<｜Assistant｜>{reply}{eos}`; the generation prompt opens `<think>`.
    public static let chatTemplate = "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
        + "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
        + "{% elif message['role'] == 'assistant' %}{{ '<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>' }}{% endif %}"
        + "{% endfor %}{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"

    /// The `tokenizer_config.json` document.
    public func tokenizerConfigJSON() throws -> Data {
        let document: [String: Any] = [
            "add_bos_token": false, "add_eos_token": false, "bos_token": Self.beginOfSentence, "eos_token": Self.endOfSentence,
            "pad_token": Self.pad, "clean_up_tokenization_spaces": false, "legacy": true, "model_max_length": 16384,
            "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": Self.chatTemplate,
        ]
        return try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted])
    }

    /// Writes both files into `directory`, atomically.
    public func write(to directory: String) throws {
        try AtomicFile.write(try tokenizerJSON(), to: (directory as NSString).appendingPathComponent("tokenizer.json"))
        try AtomicFile.write(try tokenizerConfigJSON(), to: (directory as NSString).appendingPathComponent("tokenizer_config.json"))
    }

    /// A training example in chat form: (ids, loss targets), targets −1 outside the assistant's reply.
    /// `question` overrides the bare problem text (e.g. a "What is …?" phrasing).
    public func example(_ problem: ArithmeticProblem, question: String? = nil) throws -> (ids: [Int], replyStart: Int) {
        try example(question: question ?? problem.question, reply: problem.reply)
    }

    /// A chat example from a question and a reply (end-of-sentence appended).
    public func example(question: String, reply: String) throws -> (ids: [Int], replyStart: Int) {
        let prompt = try encode(Self.beginOfSentence + Self.user + question + Self.assistant)
        return (prompt + (try encode(reply + Self.endOfSentence)), prompt.count)
    }
}
