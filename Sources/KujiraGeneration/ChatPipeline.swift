import Foundation
import KujiraModels
import enum KujiraTensor.Numerics
import KujiraTokenizer

/// Errors of the text pipeline that a caller reports to its user.
public enum TextPipelineError: Error, CustomStringConvertible, Equatable {
    case contextTooLong(promptTokens: Int, contextLength: Int)
    case fimUnsupported(model: String)
    case template(String)

    public var description: String {
        switch self {
        case let .contextTooLong(promptTokens, contextLength):
            return "this model's maximum context length is \(contextLength) tokens, but the prompt has \(promptTokens) tokens (at least one more is needed to generate)"
        case .fimUnsupported(let model):
            return "model '\(model)' has no fill-in-the-middle tokens, so 'suffix' (FIM) is not supported"
        case .template(let message):
            return "chat template: \(message)"
        }
    }
}

/// Fill-in-the-middle tokens: the prompt is `prefixToken + prefix + suffixToken + suffix + middleToken`.
public struct FIMFormat: Sendable, Equatable {
    public var prefixToken: String
    public var suffixToken: String
    public var middleToken: String

    /// DeepSeek (`<｜fim▁begin｜>…<｜fim▁hole｜>…<｜fim▁end｜>`), StarCoder/SmolLM (`<fim_prefix>`…) or Qwen
    /// (`<|fim_prefix|>`…), whichever the vocabulary has.
    public static func detect(vocabularyHas contains: (String) -> Bool) -> FIMFormat? {
        let candidates = [
            FIMFormat(prefixToken: "<｜fim▁begin｜>", suffixToken: "<｜fim▁hole｜>", middleToken: "<｜fim▁end｜>"),
            FIMFormat(prefixToken: "<|fim_prefix|>", suffixToken: "<|fim_suffix|>", middleToken: "<|fim_middle|>"),
            FIMFormat(prefixToken: "<fim_prefix>", suffixToken: "<fim_suffix>", middleToken: "<fim_middle>"),
        ]
        return candidates.first { contains($0.prefixToken) && contains($0.suffixToken) && contains($0.middleToken) }
    }
}

/// Model + tokenizer + chat template: turns conversations and prompts into token ids and runs generation.
/// Shared by `kujira run` / `kujira chat` and the server, so both behave the same.
public final class TextPipeline: Sendable {
    public let model: any LanguageModel
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate
    /// The name the model is served under (its directory or file name).
    public let modelName: String
    /// Longest sequence (prompt + output) accepted: `--ctx`, at most the model's maximum.
    public let contextLength: Int
    /// EOS ids from the tokenizer and the model config.
    public let stopTokens: Set<Int>
    public let toolCallFormat: ToolCallFormat?
    public let fimFormat: FIMFormat?
    /// Speculative decoding for every sequence this pipeline makes (`options`); the output is the same either way.
    public let speculation: Speculation
    /// The drafting model of `Speculation.draft`.
    public let draftModel: (any LanguageModel)?

    /// Token texts that end a turn in common chat formats.
    public static let endOfGenerationTokens = ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<|EOT|>",
                                               "<｜end▁of▁sentence｜>", "<end_of_turn>", "</s>"]

    /// A plain ChatML template for models that ship none.
    public static let fallbackTemplate = """
        {% for message in messages %}<|im_start|>{{ message['role'] }}
        {{ message['content'] }}<|im_end|>
        {% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
        {% endif %}
        """

    public init(model: any LanguageModel, tokenizer: Tokenizer, chatTemplate: ChatTemplate, modelName: String,
                contextLength: Int? = nil, speculation: Speculation = .defaultAuto, draftModel: (any LanguageModel)? = nil) {
        self.speculation = speculation
        self.draftModel = draftModel
        self.model = model
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.modelName = modelName
        self.contextLength = max(1, min(contextLength ?? model.maxPositions, model.maxPositions))
        var stops = Set(tokenizer.eosTokenIds).union(model.eosTokenIds)
        // End-of-turn tokens known by name end generation too, as in llama.cpp (its "EOG" tokens).
        for name in Self.endOfGenerationTokens { if let id = tokenizer.tokenToId(name) { stops.insert(id) } }
        stopTokens = stops.filter { $0 >= 0 && $0 < model.vocabSize }
        let has: (String) -> Bool = { tokenizer.tokenToId($0) != nil }
        toolCallFormat = ToolCallFormat.detect(vocabularyHas: has)?.matching(template: chatTemplate.source)
        fimFormat = FIMFormat.detect(vocabularyHas: has)
    }

    /// Loads model, tokenizer and chat template from a model directory or a `.gguf` file.
    /// `lora`: a PEFT adapter directory applied unmerged; `draftModel`: the drafting model of `Speculation.draft`, whose
    /// tokenizer must encode text as the model's does.
    public static func load(path: String, lora: String? = nil, contextLength: Int? = nil, cachePrecision: KVCachePrecision = .float32,
                            numerics: Numerics = .kujira, speculation: Speculation = .defaultAuto, draftModel draftPath: String? = nil) throws -> TextPipeline {
        let model = try ModelRegistry.load(directory: path, lora: lora, cachePrecision: cachePrecision, numerics: numerics)
        if case .mtp = speculation, ((model as? any DecoderStackModel)?.multiTokenPrediction) == nil {
            throw GenerationError.invalidParameter(name: "speculative", detail: "mtp: \(path) has no MTP module (num_nextn_predict_layers = 0)")
        }
        let tokenizer = try Tokenizer.load(path: path)
        var draftModel: (any LanguageModel)?
        if case .draft = speculation {
            guard let draftPath else {
                throw GenerationError.invalidParameter(name: "speculative", detail: "draft needs a draft model (--draft-model)")
            }
            draftModel = try loadDraftModel(draftPath, tokenizer: tokenizer, cachePrecision: cachePrecision)
        }
        let source = tokenizer.chatTemplate ?? fallbackTemplate
        let template: ChatTemplate
        do {
            template = try ChatTemplate(source: source)
        } catch {
            throw TextPipelineError.template("\(path): \(error)")
        }
        let name = URL(fileURLWithPath: path).standardizedFileURL.lastPathComponent
        return TextPipeline(model: model, tokenizer: tokenizer, chatTemplate: template, modelName: name,
                            contextLength: contextLength, speculation: speculation, draftModel: draftModel)
    }

    /// Text every tokenizer splits into many tokens: the draft model's tokenizer must give the same ids.
    static let tokenizerProbe = "Kujira drafts: 12+34=46, \"quoted\" text, CamelCase_words and ünïcödé — 東京, 🐋.\n\tdef f(x): return x**2"

    /// The draft model at `path`, after checking that its tokenizer encodes `tokenizerProbe` and the model's special tokens
    /// as `tokenizer` does.
    static func loadDraftModel(_ path: String, tokenizer: Tokenizer, cachePrecision: KVCachePrecision) throws -> any LanguageModel {
        let draftTokenizer = try Tokenizer.load(path: path)
        let probes = [tokenizerProbe] + [tokenizer.bosToken, tokenizer.eosToken].compactMap { $0 }
        for probe in probes where draftTokenizer.encode(probe) != tokenizer.encode(probe) {
            throw GenerationError.invalidParameter(name: "draft model", detail: "\(path): its tokenizer encodes text differently from the model's (a draft model must share the tokenizer)")
        }
        return try ModelRegistry.load(directory: path, cachePrecision: cachePrecision)
    }

    /// Ids of text plus the tokenizer's BOS prefix unless the text already starts with it (llama.cpp's rule).
    public func encodeWithPrefix(_ text: String) -> [Int] { tokenizer.encodeWithPrefix(text) }

    /// Renders a conversation with the chat template (generation prompt open) and tokenizes it.
    /// `forcedOutput` is appended after the generation prompt as the start of the answer.
    public func chatPrompt(messages: [JinjaValue], tools: [JinjaValue]? = nil, extra: [String: JinjaValue] = [:],
                           forcedOutput: String = "") throws -> PreparedPrompt {
        let text: String
        do {
            text = try chatTemplate.render(messages: messages, addGenerationPrompt: true, tools: tools,
                                           bosToken: tokenizer.bosToken ?? "", eosToken: tokenizer.eosToken ?? "",
                                           extra: extra)
        } catch {
            throw TextPipelineError.template("\(error)")
        }
        let reasoning = ReasoningSplitter(continuingPrompt: text).isReasoning
        return PreparedPrompt(tokens: encodeWithPrefix(text + forcedOutput), text: text, startsInReasoning: reasoning,
                              forcedOutput: forcedOutput)
    }

    /// A raw completion prompt (no template).
    public func completionPrompt(_ text: String) -> PreparedPrompt {
        PreparedPrompt(tokens: encodeWithPrefix(text), text: text)
    }

    /// A fill-in-the-middle prompt; throws when the vocabulary has no FIM tokens.
    public func fimPrompt(prefix: String, suffix: String) throws -> PreparedPrompt {
        guard let f = fimFormat else { throw TextPipelineError.fimUnsupported(model: modelName) }
        let text = f.prefixToken + prefix + f.suffixToken + suffix + f.middleToken
        return PreparedPrompt(tokens: encodeWithPrefix(text), text: text)
    }

    /// Options with this model's stop tokens and tool-call format filled in.
    public func options(maxTokens: Int? = nil, sampling: SamplingConfiguration = SamplingConfiguration()) -> GenerationOptions {
        var options = GenerationOptions(maxTokens: maxTokens ?? contextLength, sampling: sampling, stopTokens: stopTokens,
                                        toolCallFormat: toolCallFormat)
        options.speculation = speculation
        options.draftModel = draftModel
        return options
    }

    /// A sequence ready to be stepped (by a scheduler or `run`).
    public func makeSequence(prompt: PreparedPrompt, options: GenerationOptions) throws -> TextSequence {
        try TextSequence(prompt: prompt, options: options, tokenizer: tokenizer, contextLength: contextLength)
    }

    /// Result of a finished `run`.
    public struct Result: Sendable {
        public var finishReason: FinishReason
        public var usage: GenerationUsage
        public var tokens: [Int]
    }

    /// Generates to the end on the calling thread, reusing `slot`'s cached prefix; `onEvent` sees events as they
    /// come; `isCancelled` is checked between tokens.
    public func run(prompt: PreparedPrompt, options: GenerationOptions, slot: SequenceSlot,
                    isCancelled: () -> Bool = { false }, onEvent: (GenerationEvent) -> Void) throws -> Result {
        let sequence = try makeSequence(prompt: prompt, options: options)
        sequence.attach(to: slot)
        while !sequence.isFinished {
            if isCancelled() {
                for event in sequence.finish(.cancelled) { onEvent(event) }
                break
            }
            for event in try sequence.step(model: model, slot: slot) { onEvent(event) }
        }
        return Result(finishReason: sequence.finishReason ?? .stop, usage: sequence.usage, tokens: sequence.generated)
    }
}
