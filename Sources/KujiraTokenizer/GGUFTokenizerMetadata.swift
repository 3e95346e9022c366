import Foundation
import KujiraFormats

/// A Hugging Face byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json) as the `tokenizer.*` GGUF
/// metadata llama.cpp's convert_hf_to_gguf writes: the inverse of `GGUFVocabularyLoader`.
///
/// `tokenizer.ggml.pre` is found by matching the pre-tokenizer pipeline against the ones whose names llama.cpp knows
/// (convert_hf_to_gguf hashes sample encodings instead; the pipelines behind the names are the same):
/// `deepseek-v3`, `qwen2`, `llama-bpe`, `smollm`, `gpt-2`. Any other pipeline is refused by name rather than guessed.
public enum GGUFTokenizerMetadata {
    /// llama.cpp token types.
    static let normal: Int32 = 1, control: Int32 = 3, userDefined: Int32 = 4, unused: Int32 = 5

    /// The metadata for the tokenizer in `directory`, with the vocabulary padded to `vocabSize` by `[PAD<i>]` tokens
    /// (type UNUSED) as convert_hf_to_gguf pads it; nil when the directory has no tokenizer.json.
    public static func make(directory: String, vocabSize: Int) throws -> [(String, GGUFValue)]? {
        let path = (directory as NSString).appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let definition = try TokenizerJSONLoader.load(tokenizerJSON: path)
        let root = try TokenizerJSONLoader.readJSONObject(path)
        let model = root["model"] as? [String: Any] ?? [:]
        let pre = try preTokenizerName(root: root, definition: definition, path: path)
        guard definition.idToToken.count <= vocabSize else {
            throw TokenizerError.invalidFile(path: path, reason: "the tokenizer has \(definition.idToToken.count) ids but the model's vocab_size is \(vocabSize)")
        }
        let added = Dictionary(definition.addedTokens.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var tokens: [GGUFValue] = [], types: [GGUFValue] = []
        tokens.reserveCapacity(vocabSize)
        types.reserveCapacity(vocabSize)
        for id in 0..<vocabSize {
            let text = id < definition.idToToken.count ? definition.idToToken[id] : nil
            if let token = added[id] {
                tokens.append(.string(token.content))
                types.append(.int32(token.special ? control : userDefined))
            } else if let text {
                tokens.append(.string(text))
                types.append(.int32(normal))
            } else {
                tokens.append(.string("[PAD\(id)]"))
                types.append(.int32(unused))
            }
        }
        let merges = try TokenizerJSONLoader.parseMerges(model["merges"], path: path).map { GGUFValue.string("\($0.0) \($0.1)") }
        var metadata: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(tokens)), ("tokenizer.ggml.token_type", .array(types)),
            ("tokenizer.ggml.merges", .array(merges)),
        ]
        func tokenID(_ id: Int, _ key: String) throws -> GGUFValue {
            guard let value = UInt32(exactly: id) else {
                throw TokenizerError.invalidFile(path: path, reason: "\(key) \(id) does not fit GGUF's uint32")
            }
            return .uint32(value)
        }
        if let bos = definition.bosTokenId { metadata.append(("tokenizer.ggml.bos_token_id", try tokenID(bos, "bos_token_id"))) }
        if let eos = definition.eosTokenIds.first { metadata.append(("tokenizer.ggml.eos_token_id", try tokenID(eos, "eos_token_id"))) }
        let configPath = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        if let config = try? TokenizerJSONLoader.readJSONObject(configPath) {
            let padText = (config["pad_token"] as? String) ?? ((config["pad_token"] as? [String: Any])?["content"] as? String)
            if let padText, let pad = definition.addedTokens.first(where: { $0.content == padText })?.id {
                metadata.append(("tokenizer.ggml.padding_token_id", try tokenID(pad, "pad_token_id")))
            }
        }
        let addsBOS = definition.bosTokenId.map { definition.postProcessor.prefix.first == $0 } ?? false
        let addsEOS = definition.eosTokenIds.first.map { definition.postProcessor.suffix.last == $0 } ?? false
        metadata += [("tokenizer.ggml.add_bos_token", .bool(addsBOS)), ("tokenizer.ggml.add_eos_token", .bool(addsEOS))]
        if let template = definition.chatTemplate { metadata.append(("tokenizer.chat_template", .string(template))) }
        return metadata
    }

    /// The `tokenizer.ggml.pre` name whose pipeline (as `GGUFVocabularyLoader` builds it) normalises and splits probe
    /// texts into exactly the same pieces as the tokenizer's own pipeline — the test convert_hf_to_gguf makes with its
    /// hash of sample encodings, but independent of the vocabulary's size.
    static func preTokenizerName(root: [String: Any], definition: TokenizerDefinition, path: String) throws -> String {
        let ignoreMerges = (root["model"] as? [String: Any])?["ignore_merges"] as? Bool ?? false
        func pieces(_ normalizer: Normalizer?, _ preTokenizer: PreTokenizer) -> [[String]] {
            probes.map { probe in
                var text = ScalarText(normalizer?.apply(probe) ?? probe)
                var scratch: [Range<Int>] = []
                return preTokenizer.pieces(of: &text, scratch: &scratch).map { range in
                    String(decoding: text.scalars[range].compactMap { Unicode.Scalar($0) }.map { String($0) }.joined().utf8, as: UTF8.self)
                }
            }
        }
        let expected = pieces(definition.normalizer, definition.preTokenizer)
        for name in ["deepseek-v3", "qwen2", "llama-bpe", "smollm", "gpt-2"] {
            let candidate = try GGUFVocabularyLoader.preTokenizer(named: name, path: path)
            if candidate.ignoreMerges == ignoreMerges && pieces(candidate.normalizer, PreTokenizer(steps: candidate.steps)) == expected { return name }
        }
        throw TokenizerError.unsupported(path: path, feature: "its pre-tokenizer for GGUF (it splits text like none of deepseek-v3, qwen2, llama-bpe, smollm, gpt-2)")
    }

    /// convert_hf_to_gguf's `chktxt`, split in lines, plus numbers and CJK runs.
    static let probes = [
        "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u{200D}🌫️ (multiple emojis concatenated) ✅ 🦙🦙 ",
        "3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= ",
        "нещо на Български ```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
        "12+345=357\n日本語のテキストと中文字符 Ｃａｆｅ\u{301} café",
    ]
}
