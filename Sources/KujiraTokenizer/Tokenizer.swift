import Foundation

/// Everything a loader (tokenizer.json or GGUF) produces; `Tokenizer` runs it.
struct TokenizerDefinition: Sendable {
    var normalizer: Normalizer?
    var preTokenizer: PreTokenizer
    var model: BPEModel
    var addedTokens: [AddedToken]
    /// Vocabulary strings as written in the source (byte-level encoded), added tokens' content included.
    var idToToken: [String?]
    /// What each id decodes to (byte-level decoded where the decoder says so).
    var tokenBytes: [[UInt8]]
    var postProcessor: PostProcessor
    var bosTokenId: Int?
    var eosTokenIds: [Int]
    var bosToken: String?
    var eosToken: String?
    var chatTemplate: String?
    var namedChatTemplates: [String: String]
}

/// A byte-level BPE tokenizer loaded from a Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) or from a
/// GGUF file's embedded vocabulary; immutable and safe to share across threads.
public final class Tokenizer: Sendable {
    let definition: TokenizerDefinition
    private let rawMatcher: AddedTokenMatcher
    private let normalizedMatcher: AddedTokenMatcher
    private let specialIds: Set<Int>
    private let tokenToIdMap: [String: Int]

    /// Id of the beginning-of-sequence token, if the tokenizer has one.
    public var bosTokenId: Int? { definition.bosTokenId }
    /// Ids that end generation (EOS first, then EOT/EOM where the source names them).
    public var eosTokenIds: [Int] { definition.eosTokenIds }
    /// Text of the BOS / EOS tokens (what chat templates call `bos_token` / `eos_token`).
    public var bosToken: String? { definition.bosToken }
    public var eosToken: String? { definition.eosToken }
    /// Number of ids (largest id + 1), added tokens included.
    public var vocabSize: Int { definition.idToToken.count }
    /// The chat template text carried by the source (the default one when it names several), if any.
    public var chatTemplate: String? { definition.chatTemplate }
    /// All named chat templates (tokenizer_config.json's list form), e.g. "default", "tool_use".
    public var namedChatTemplates: [String: String] { definition.namedChatTemplates }
    /// Special tokens that `addSpecialTokens` puts before / after the text.
    public var prefixTokenIds: [Int] { definition.postProcessor.prefix }
    public var suffixTokenIds: [Int] { definition.postProcessor.suffix }

    init(definition: TokenizerDefinition) {
        self.definition = definition
        rawMatcher = AddedTokenMatcher(tokens: definition.addedTokens.filter { !$0.normalized || definition.normalizer == nil })
        normalizedMatcher = AddedTokenMatcher(tokens: definition.addedTokens.filter { $0.normalized && definition.normalizer != nil })
        specialIds = Set(definition.addedTokens.filter(\.special).map(\.id))
        var map = [String: Int](minimumCapacity: definition.idToToken.count)
        for (id, token) in definition.idToToken.enumerated() {
            if let token, map[token] == nil { map[token] = id }
        }
        for token in definition.addedTokens { map[token.content] = token.id }
        tokenToIdMap = map
    }

    /// Loads a tokenizer from a model directory (tokenizer.json + tokenizer_config.json), a tokenizer.json file,
    /// or a .gguf file.
    public static func load(path: String) throws -> Tokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError.fileNotFound(path: path)
        }
        if isDirectory.boolValue {
            let json = (path as NSString).appendingPathComponent("tokenizer.json")
            if FileManager.default.fileExists(atPath: json) {
                return Tokenizer(definition: try TokenizerJSONLoader.load(tokenizerJSON: json))
            }
            let ggufs = (try? FileManager.default.contentsOfDirectory(atPath: path))?.filter { $0.hasSuffix(".gguf") }.sorted() ?? []
            if let first = ggufs.first {
                return Tokenizer(definition: try GGUFVocabularyLoader.load(path: (path as NSString).appendingPathComponent(first)))
            }
            throw TokenizerError.fileNotFound(path: json)
        }
        if path.hasSuffix(".gguf") || Self.hasGGUFMagic(path) {
            return Tokenizer(definition: try GGUFVocabularyLoader.load(path: path))
        }
        return Tokenizer(definition: try TokenizerJSONLoader.load(tokenizerJSON: path))
    }

    private static func hasGGUFMagic(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data("GGUF".utf8)
    }

    /// The vocabulary string of an id (byte-level encoded as in the source), or nil when out of range.
    public func idToToken(_ id: Int) -> String? {
        guard id >= 0 && id < definition.idToToken.count else { return nil }
        return definition.idToToken[id]
    }

    /// The id of a vocabulary string or added token, or nil.
    public func tokenToId(_ token: String) -> Int? { tokenToIdMap[token] }

    /// True for special added tokens (HF `special: true`, GGUF control tokens).
    public func isSpecial(_ id: Int) -> Bool { specialIds.contains(id) }

    /// The raw bytes an id decodes to (empty for unknown ids); may be part of a UTF-8 character.
    public func bytes(of id: Int) -> [UInt8] {
        guard id >= 0 && id < definition.tokenBytes.count else { return [] }
        return definition.tokenBytes[id]
    }

    /// Encodes text to ids; added tokens in the text are always recognized, `addSpecialTokens` adds the
    /// post-processor's tokens (BOS etc.).
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count / 3 + 4)
        var state = EncodeState()
        let raw = Array(text.utf8)
        for segment in rawMatcher.split(raw, range: 0..<raw.count) {
            switch segment {
            case .token(let id):
                out.append(Int32(id))
            case .text(let range):
                guard let normalizer = definition.normalizer else {
                    encodePlain(Array(raw[range]), into: &out, state: &state)
                    continue
                }
                let normalized = Array(normalizer.apply(String(decoding: raw[range], as: UTF8.self)).utf8)
                for part in normalizedMatcher.split(normalized, range: 0..<normalized.count) {
                    switch part {
                    case .token(let id): out.append(Int32(id))
                    case .text(let r): encodePlain(Array(normalized[r]), into: &out, state: &state)
                    }
                }
            }
        }
        var ids = out.map { Int($0) }
        if addSpecialTokens {
            ids = definition.postProcessor.prefix + ids + definition.postProcessor.suffix
        }
        return ids
    }

    /// Pre-tokenizes and BPE-encodes text that holds no added tokens.
    private func encodePlain(_ utf8: [UInt8], into out: inout [Int32], state: inout EncodeState) {
        guard !utf8.isEmpty else { return }
        var text = ScalarText(utf8: utf8)
        let pieces = definition.preTokenizer.pieces(of: &text, scratch: &state.matches)
        let model = definition.model
        text.bytes.withUnsafeBufferPointer { bytes in
            for piece in pieces {
                let start = Int(text.byteOffsets[piece.lowerBound]), end = Int(text.byteOffsets[piece.upperBound])
                let word = UnsafeBufferPointer(rebasing: bytes[start..<end])
                guard word.count > 0 else { continue }
                let hash = WordCache.hash(word)
                if state.cache.lookup(word, hash: hash, into: &out) { continue }
                let before = out.count
                model.encodeWord(word, into: &out, workspace: &state.workspace)
                state.cache.insert(word, hash: hash, ids: out[before...])
            }
        }
    }

    /// Decodes ids to text; invalid UTF-8 becomes U+FFFD, ids outside the vocabulary are ignored.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids {
            guard id >= 0 && id < definition.tokenBytes.count else { continue }
            if skipSpecialTokens && specialIds.contains(id) { continue }
            bytes.append(contentsOf: definition.tokenBytes[id])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Per-call scratch state of `encode` (the word cache lives only for one call: no shared mutable state).
struct EncodeState {
    var cache = WordCache()
    var workspace = BPEWorkspace()
    var matches: [Range<Int>] = []
}

extension Tokenizer {
    /// Ids of `text` plus the tokenizer's BOS prefix unless the text already starts with it (llama.cpp's rule; what a
    /// rendered chat prompt is tokenized with, for generation and for fine-tuning alike).
    public func encodeWithPrefix(_ text: String) -> [Int] {
        var ids = encode(text)
        let prefix = prefixTokenIds
        if !prefix.isEmpty && !ids.starts(with: prefix) { ids = prefix + ids }
        return ids
    }
}
