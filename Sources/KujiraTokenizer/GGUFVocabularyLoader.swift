import KujiraFormats

/// Builds a tokenizer from a GGUF file's embedded vocabulary (`tokenizer.ggml.model` = gpt2), with the
/// pre-tokenizer named by `tokenizer.ggml.pre` expressed as the equivalent Hugging Face pipeline (llama.cpp's
/// regexes for each name come from the same tokenizer.json files).
enum GGUFVocabularyLoader {
    /// llama.cpp token types.
    enum TokenType: Int {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// The vocabulary of the GGUF at `path`; for a shard of a split GGUF, the first shard's (which holds the metadata).
    static func load(path: String) throws -> TokenizerDefinition {
        let files = try GGUFFileSet(path: path)
        return try load(files.shards[0])
    }

    static func load(_ file: GGUFFile) throws -> TokenizerDefinition {
        let path = file.path
        guard let model = file.string("tokenizer.ggml.model") else {
            throw TokenizerError.missingField(path: path, field: "tokenizer.ggml.model")
        }
        guard model == "gpt2" else {
            throw TokenizerError.unsupported(path: path, feature: "tokenizer.ggml.model '\(quoted(model, limit: 60))' (only gpt2-style BPE)")
        }
        guard let tokens = file.strings("tokenizer.ggml.tokens"), !tokens.isEmpty else {
            throw TokenizerError.missingField(path: path, field: "tokenizer.ggml.tokens")
        }
        let types = file.ints("tokenizer.ggml.token_type") ?? []
        if !types.isEmpty && types.count != tokens.count {
            throw TokenizerError.invalidFile(path: path, reason: "tokenizer.ggml.token_type has \(types.count) entries but tokenizer.ggml.tokens has \(tokens.count)")
        }
        guard let mergeStrings = file.strings("tokenizer.ggml.merges") else {
            throw TokenizerError.missingField(path: path, field: "tokenizer.ggml.merges")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeStrings.count)
        for (index, text) in mergeStrings.enumerated() {
            guard let (left, right) = splitMerge(text) else {
                throw TokenizerError.invalidFile(path: path, reason: "tokenizer.ggml.merges[\(index)] \"\(quoted(text, limit: 60))\" has no space")
            }
            merges.append((left, right))
        }

        let preName = file.string("tokenizer.ggml.pre") ?? "default"
        let (steps, ignoreMerges, normalizer) = try preTokenizer(named: preName, path: path)

        // Control and user-defined tokens are matched in the text like HF added tokens; the rest are BPE vocabulary.
        var addedTokens: [AddedToken] = []
        var vocab = [String?](repeating: nil, count: tokens.count)
        var tokenBytes = [[UInt8]](repeating: [], count: tokens.count)
        for (id, token) in tokens.enumerated() {
            let type = types.isEmpty ? TokenType.normal : TokenType(rawValue: types[id]) ?? .normal
            switch type {
            case .control, .userDefined:
                addedTokens.append(AddedToken(id: id, content: token, special: type == .control))
                tokenBytes[id] = Array(token.utf8)
                vocab[id] = token
            default:
                vocab[id] = token
                tokenBytes[id] = ByteLevel.decode(token) ?? Array(token.utf8)
            }
        }
        let bpe = BPEModel(vocab: vocab, merges: merges, byteLevel: true, ignoreMerges: ignoreMerges,
                           unknownToken: nil)

        func validId(_ key: String) throws -> Int? {
            guard let id = file.int(key) else { return nil }
            guard id >= 0 && id < tokens.count else {
                throw TokenizerError.invalidFile(path: path, reason: "\(key) = \(id) is outside the vocabulary (\(tokens.count) tokens)")
            }
            return id
        }
        let bosId = try validId("tokenizer.ggml.bos_token_id")
        let eosId = try validId("tokenizer.ggml.eos_token_id")
        var eosIds: [Int] = []
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let id = try validId(key), !eosIds.contains(id) { eosIds.append(id) }
        }
        var postProcessor = PostProcessor()
        // llama.cpp: the Llama 3 family adds BOS unless the file says otherwise; others only when it says so.
        let addBOS = file.bool("tokenizer.ggml.add_bos_token") ?? Self.addsBOSByDefault(preName)
        if addBOS, let bosId { postProcessor.prefix = [bosId] }
        if file.bool("tokenizer.ggml.add_eos_token") == true, let eosId { postProcessor.suffix = [eosId] }

        return TokenizerDefinition(
            normalizer: normalizer, preTokenizer: PreTokenizer(steps: steps), model: bpe, addedTokens: addedTokens,
            idToToken: vocab, tokenBytes: tokenBytes, postProcessor: postProcessor,
            bosTokenId: bosId, eosTokenIds: eosIds, bosToken: bosId.map { tokens[$0] },
            eosToken: eosId.map { tokens[$0] }, chatTemplate: file.string("tokenizer.chat_template"),
            namedChatTemplates: [:])
    }

    static func addsBOSByDefault(_ preName: String) -> Bool {
        ["llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"].contains(preName)
    }

    /// The pre-tokenizer pipeline, `ignore_merges`, and normalizer of a `tokenizer.ggml.pre` name.
    static func preTokenizer(named name: String, path: String) throws
        -> (steps: [PreTokenizerStep], ignoreMerges: Bool, normalizer: Normalizer?) {
        func splits(_ patterns: [String]) throws -> [PreTokenizerStep] {
            try patterns.map { .split(try SplitPattern.compile(regex: $0), behavior: .isolated, invert: false) }
                + [.byteLevel(addPrefixSpace: false, useRegex: false)]
        }
        switch name {
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral":
            return (try splits([KnownPattern.llama3Pattern]), true, nil)
        case "dbrx", "smaug-bpe":
            return (try splits([KnownPattern.llama3Pattern]), false, nil)
        case "deepseek-v3":
            return (try splits([#"\p{N}{1,3}"#, "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+", KnownPattern.deepseekV3Pattern]), false, nil)
        case "deepseek-llm":
            return (try splits([
                #"[\r\n]"#,
                "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+",
                "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+",
                #"\s+$"#,
                "[\u{4E00}-\u{9FA5}\u{0800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
                #"\p{N}+"#,
            ]), false, nil)
        case "deepseek-coder":
            return (try splits([#"[\r\n]"#, #"\s?\p{L}+"#, #"\s?\p{P}+"#, "[\u{4E00}-\u{9FA5}\u{0800}-\u{4E00}\u{AC00}-\u{D7FF}]+", #"\p{N}"#]), false, nil)
        case "qwen2", "deepseek-r1-qwen", "stablelm2", "megrez":
            // Qwen2's tokenizer.json also NFC-normalizes; llama.cpp skips that, HF (the goldens) does it.
            return (try splits([KnownPattern.qwen2Pattern]), false, .nfc)
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva":
            return ([.digits(individual: true), .byteLevel(addPrefixSpace: false, useRegex: true)], false, nil)
        case "gpt-2", "gpt2", "mpt", "olmo", "jais":
            return ([.byteLevel(addPrefixSpace: false, useRegex: true)], false, nil)
        case "default":
            return (try splits([#"[\p{P}\$\+<=>\^~\|]+"#, KnownPattern.gpt2Pattern, #"\p{N}+"#, "[0-9][0-9][0-9]"]), false, nil)
        default:
            throw TokenizerError.unsupported(path: path, feature: "tokenizer.ggml.pre '\(quoted(name, limit: 60))'")
        }
    }
}
