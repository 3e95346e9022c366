import Foundation
@_exported import struct KujiraGeneration.SamplingConfiguration
@_exported import struct KujiraGeneration.ToolCall
@_exported import enum KujiraGeneration.FinishReason

/// Where a model comes from.
public enum ModelSource: Sendable, Equatable {
    /// The small DeepSeek-V3 arithmetic reasoner compiled into Kujira (`Models/kujira-arith`), or the model
    /// `KUJIRA_MODEL` names when that variable is set.
    case embedded
    /// A model directory (config.json, safetensors, tokenizer files) or a `.gguf` file.
    case path(String)
    /// A Hugging Face repo id — `org/name`, or `org/name:Q4_K_M` for one quantization of a GGUF repo — read from the
    /// local Hub cache (huggingface_hub's layout, `HF_HUB_CACHE`), and downloaded into it first when it is not there.
    case hub(String)
}

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// `system`, `user`, `assistant` (or `tool`, for a tool's result).
    public var role: String
    /// The message's text.
    public var content: String

    /// A message with any role.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    /// Instructions for the model.
    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    /// The user's turn.
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
    /// An earlier answer of the model (a conversation continued).
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: "assistant", content: content) }
}

/// How much to generate and how to pick tokens, for one request.
public struct ChatOptions: Sendable, Equatable {
    /// Most new tokens; nil: until the model ends its turn or the context is full.
    public var maxTokens: Int?
    /// Temperature, top-k/p, min-p, penalties, seed, logit bias; the default is greedy decoding.
    public var sampling: SamplingConfiguration
    /// Text that ends generation (not part of the output).
    public var stop: [String]
    /// Tools the model may call, as the JSON array of OpenAI-style tool definitions the chat template renders.
    public var toolsJSON: String?
    /// A JSON schema (its text) the whole reply must match: generation is constrained token by token, so the reply
    /// parses and validates (structured outputs; the supported keywords are listed in docs/server.md).
    public var jsonSchema: String?
    /// Prompt-lookup speculative decoding with up to this many drafted tokens per forward pass (0: off). The reply is
    /// the same either way; it comes faster when it repeats its prompt (quotes, summaries, code edits).
    public var ngramDrafts: Int

    /// Options; the defaults are greedy decoding to the end of the turn.
    public init(maxTokens: Int? = nil, sampling: SamplingConfiguration = SamplingConfiguration(), stop: [String] = [],
                toolsJSON: String? = nil, jsonSchema: String? = nil, ngramDrafts: Int = 0) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
        self.toolsJSON = toolsJSON
        self.jsonSchema = jsonSchema
        self.ngramDrafts = ngramDrafts
    }
}

/// A piece of a streamed answer, in order; `.finished` comes last.
public enum ChatEvent: Sendable, Equatable {
    /// Thinking text (inside `<think>…</think>`, DeepSeek-R1 style).
    case reasoning(String)
    /// Answer text.
    case content(String)
    /// Function calls the model made (parsed from its tool-call tokens).
    case toolCalls([ToolCall])
    /// Generation ended: why, token counts and timings.
    case finished(ChatSummary)
}

/// How a request ended.
public struct ChatSummary: Sendable, Equatable {
    /// Why generation stopped: the model ended its turn or hit a stop string/token (`.stop`), `maxTokens` or the
    /// context length (`.length`), it called tools (`.toolCalls`), or the consumer cancelled (`.cancelled`).
    public var finishReason: FinishReason
    /// Tokens of the rendered prompt.
    public var promptTokens: Int
    /// Prompt tokens whose KV cache was reused from the previous request (a conversation continued).
    public var cachedPromptTokens: Int
    /// Tokens generated (reasoning included).
    public var completionTokens: Int
    /// Completion tokens inside the reasoning block.
    public var reasoningTokens: Int
    /// Seconds from the request to the first new token (prompt processing).
    public var promptSeconds: Double
    /// Seconds spent on the remaining tokens.
    public var generationSeconds: Double

    /// Decoding speed after the first token (0 when at most one token was generated).
    public var tokensPerSecond: Double {
        completionTokens > 1 && generationSeconds > 0 ? Double(completionTokens - 1) / generationSeconds : 0
    }
}
