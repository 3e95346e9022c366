import Foundation
import KujiraFormats

/// Reads a Hugging Face `tokenizer.json` (byte-level BPE) and the `tokenizer_config.json` beside it.
enum TokenizerJSONLoader {
    static let maxVocabularySize = 4_000_000

    static func load(tokenizerJSON path: String) throws -> TokenizerDefinition {
        let root = try readJSONObject(path)
        let directory = (path as NSString).deletingLastPathComponent
        let configPath = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configPath) ? try readJSONObject(configPath) : [:]

        // Added tokens.
        var addedTokens: [AddedToken] = []
        for (index, item) in ((root["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let entry = item as? [String: Any], let id = entry["id"] as? Int, let content = entry["content"] as? String,
                  id >= 0, id < maxVocabularySize else {
                throw TokenizerError.missingField(path: path, field: "added_tokens[\(index)].id/content")
            }
            addedTokens.append(AddedToken(
                id: id, content: content, special: entry["special"] as? Bool ?? false,
                normalized: entry["normalized"] as? Bool ?? false, lstrip: entry["lstrip"] as? Bool ?? false,
                rstrip: entry["rstrip"] as? Bool ?? false, singleWord: entry["single_word"] as? Bool ?? false))
        }

        let normalizer = try Normalizer.parse(root["normalizer"], path: path)
        let preTokenizer = PreTokenizer(steps: try parsePreTokenizer(root["pre_tokenizer"], path: path))
        let byteLevelDecoder = try parseDecoderIsByteLevel(root["decoder"], path: path)
        let byteLevel = byteLevelDecoder || preTokenizer.steps.contains {
            if case .byteLevel = $0 { return true } else { return false }
        }

        // Model.
        guard let model = root["model"] as? [String: Any] else {
            throw TokenizerError.missingField(path: path, field: "model")
        }
        if let type = model["type"] as? String, type != "BPE" {
            throw TokenizerError.unsupported(path: path, feature: "model type '\(quoted(type, limit: 60))' (only BPE)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[key] as? String, !value.isEmpty {
                throw TokenizerError.unsupported(path: path, feature: "BPE \(key)")
            }
        }
        if model["byte_fallback"] as? Bool == true && !byteLevel {
            throw TokenizerError.unsupported(path: path, feature: "BPE byte_fallback (SentencePiece-style BPE)")
        }
        guard let vocabObject = model["vocab"] as? [String: Any] else {
            throw TokenizerError.missingField(path: path, field: "model.vocab")
        }
        var size = 0
        var entries: [(String, Int)] = []
        entries.reserveCapacity(vocabObject.count)
        for (token, value) in vocabObject {
            guard let id = value as? Int, id >= 0, id < maxVocabularySize else {
                throw TokenizerError.invalidFile(path: path, reason: "model.vocab[\"\(quoted(token, limit: 60))\"] is not a valid id")
            }
            entries.append((token, id))
            size = max(size, id + 1)
        }
        for token in addedTokens { size = max(size, token.id + 1) }
        var vocab = [String?](repeating: nil, count: size)
        for (token, id) in entries { vocab[id] = token }
        let merges = try parseMerges(model["merges"], path: path)
        let bpe = BPEModel(vocab: vocab, merges: merges, byteLevel: byteLevel,
                           ignoreMerges: model["ignore_merges"] as? Bool ?? false,
                           unknownToken: model["unk_token"] as? String)

        var idToToken = vocab
        for token in addedTokens { idToToken[token.id] = token.content }
        let tokenBytes: [[UInt8]] = idToToken.map { token in
            guard let token else { return [] }
            return byteLevelDecoder ? (ByteLevel.decode(token) ?? Array(token.utf8)) : Array(token.utf8)
        }

        // Post-processing and special tokens from tokenizer_config.json.
        var postProcessor = try PostProcessor.parse(root["post_processor"], path: path)
        // The post-processor's ids end up in every encoded prompt: they must be tokens of this vocabulary.
        for id in postProcessor.prefix + postProcessor.suffix where !(0..<size).contains(id) {
            throw TokenizerError.invalidFile(path: path, reason: "post_processor adds id \(id), outside the vocabulary (\(size) ids)")
        }
        func idOf(_ text: String?) -> Int? {
            guard let text else { return nil }
            if let added = addedTokens.first(where: { $0.content == text }) { return added.id }
            return vocabObject[text] as? Int
        }
        let bosToken = tokenText(config["bos_token"])
        let eosToken = tokenText(config["eos_token"])
        let bosId = idOf(bosToken)
        let eosId = idOf(eosToken)
        if config["add_bos_token"] as? Bool == true, let bosId, postProcessor.prefix.first != bosId {
            postProcessor.prefix.insert(bosId, at: 0)
        }
        if config["add_eos_token"] as? Bool == true, let eosId, postProcessor.suffix.last != eosId {
            postProcessor.suffix.append(eosId)
        }
        var eosIds = eosId.map { [$0] } ?? []
        let generationConfigPath = (directory as NSString).appendingPathComponent("generation_config.json")
        if let generation = try? readJSONObject(generationConfigPath) {
            let extra = (generation["eos_token_id"] as? [Int]) ?? ((generation["eos_token_id"] as? Int).map { [$0] } ?? [])
            for id in extra where !eosIds.contains(id) {
                // Not checked against this vocabulary (a model's may be larger), but ids are never negative or huge.
                guard id >= 0 && id < maxVocabularySize else {
                    throw TokenizerError.invalidFile(path: generationConfigPath, reason: "eos_token_id \(id) is not a valid token id")
                }
                eosIds.append(id)
            }
        }

        var chatTemplate: String?
        var named: [String: String] = [:]
        if let text = config["chat_template"] as? String {
            chatTemplate = text
        } else if let list = config["chat_template"] as? [Any] {
            for item in list {
                if let entry = item as? [String: Any], let name = entry["name"] as? String,
                   let template = entry["template"] as? String {
                    named[name] = template
                }
            }
            // Like transformers: a list without a "default" entry has no implicit template; pick one by name.
            chatTemplate = named["default"]
        }
        // transformers' precedence: a chat_template.jinja file beside the config wins over the config's field
        // (`ChatTemplate.load` follows the same rule).
        let jinjaPath = (directory as NSString).appendingPathComponent("chat_template.jinja")
        if let text = try? String(contentsOfFile: jinjaPath, encoding: .utf8) {
            chatTemplate = text
        }

        return TokenizerDefinition(
            normalizer: normalizer, preTokenizer: preTokenizer, model: bpe, addedTokens: addedTokens,
            idToToken: idToToken, tokenBytes: tokenBytes, postProcessor: postProcessor,
            bosTokenId: bosId, eosTokenIds: eosIds, bosToken: bosToken, eosToken: eosToken,
            chatTemplate: chatTemplate, namedChatTemplates: named)
    }

    static func readJSONObject(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError.fileNotFound(path: path)
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TokenizerError.invalidFile(path: path, reason: "not valid JSON (\(error.localizedDescription))")
        }
        guard let dictionary = object as? [String: Any] else {
            throw TokenizerError.invalidFile(path: path, reason: "top level is not a JSON object")
        }
        return dictionary
    }

    /// A special token in tokenizer_config.json: a string or an AddedToken object with `content`.
    private static func tokenText(_ value: Any?) -> String? {
        if let text = value as? String { return text }
        return (value as? [String: Any])?["content"] as? String
    }

    static func parsePreTokenizer(_ json: Any?, path: String) throws -> [PreTokenizerStep] {
        guard let object = json as? [String: Any] else { return [] }
        guard let type = object["type"] as? String else {
            throw TokenizerError.missingField(path: path, field: "pre_tokenizer.type")
        }
        switch type {
        case "Sequence":
            guard let list = object["pretokenizers"] as? [Any] else {
                throw TokenizerError.missingField(path: path, field: "pre_tokenizer.pretokenizers")
            }
            return try list.flatMap { try parsePreTokenizer($0, path: path) }
        case "Split":
            guard let pattern = object["pattern"] as? [String: Any] else {
                throw TokenizerError.missingField(path: path, field: "pre_tokenizer.pattern")
            }
            let compiled: SplitPattern
            if let regex = pattern["Regex"] as? String {
                compiled = try SplitPattern.compile(regex: regex)
            } else if let string = pattern["String"] as? String {
                compiled = SplitPattern.literal(string)
            } else {
                throw TokenizerError.missingField(path: path, field: "pre_tokenizer.pattern.Regex/String")
            }
            let behaviorName = object["behavior"] as? String ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw TokenizerError.unsupported(path: path, feature: "Split behavior '\(quoted(behaviorName, limit: 60))'")
            }
            return [.split(compiled, behavior: behavior, invert: object["invert"] as? Bool ?? false)]
        case "ByteLevel":
            return [.byteLevel(addPrefixSpace: object["add_prefix_space"] as? Bool ?? true,
                               useRegex: object["use_regex"] as? Bool ?? true)]
        case "Digits":
            return [.digits(individual: object["individual_digits"] as? Bool ?? false)]
        case "WhitespaceSplit":
            return [.whitespaceSplit]
        default:
            throw TokenizerError.unsupported(path: path, feature: "pre_tokenizer type '\(quoted(type, limit: 60))'")
        }
    }

    /// True for a ByteLevel decoder (alone or inside a Sequence); nil decoder means raw UTF-8 concatenation.
    static func parseDecoderIsByteLevel(_ json: Any?, path: String) throws -> Bool {
        guard let object = json as? [String: Any] else { return false }
        switch object["type"] as? String {
        case "ByteLevel": return true
        case "Sequence":
            let list = object["decoders"] as? [Any] ?? []
            return try list.contains { try parseDecoderIsByteLevel($0, path: path) }
        case let type:
            throw TokenizerError.unsupported(path: path, feature: "decoder type '\(quoted(type ?? "?", limit: 60))'")
        }
    }

    /// Merges as "a b" strings or ["a", "b"] pairs.
    static func parseMerges(_ json: Any?, path: String) throws -> [(String, String)] {
        guard let list = json as? [Any] else {
            throw TokenizerError.missingField(path: path, field: "model.merges")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(list.count)
        for (index, item) in list.enumerated() {
            if let text = item as? String {
                guard let (left, right) = splitMerge(text) else {
                    throw TokenizerError.invalidFile(path: path, reason: "model.merges[\(index)] \"\(quoted(text, limit: 60))\" has no space")
                }
                merges.append((left, right))
            } else if let pair = item as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                merges.append((a, b))
            } else {
                throw TokenizerError.invalidFile(path: path, reason: "model.merges[\(index)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        return merges
    }
}
