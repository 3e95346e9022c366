import Foundation
import Hummingbird
import KujiraGeneration
import KujiraTokenizer

/// How the model may call tools (`tool_choice`).
enum ToolChoice: Equatable {
    case none
    case auto
    case required
    case function(String)
}

/// A validated `POST /chat/completions` body.
struct ChatCompletionRequest {
    var model: String?
    /// Messages ready for the chat template (content flattened to strings).
    var messages: [JinjaValue]
    var tools: [JinjaValue]?
    var toolChoice: ToolChoice
    var sampling: SamplingConfiguration
    var maxTokens: Int?
    var stop: [String]
    var stream: Bool
    var includeUsage: Bool
    var logprobs: Bool
    var topLogprobs: Int
    var jsonObject: Bool
    /// `response_format: {type: json_schema, json_schema: {schema: …}}`, compiled.
    var jsonSchema: JSONSchema?
    /// `chat_template_kwargs`: extra variables for the chat template (Qwen3's `enable_thinking`, …), as vLLM and
    /// SGLang take them.
    var templateArguments: [String: JinjaValue]
    /// `n`: choices generated for the prompt (each its own sequence; seeds seed, seed + 1, …).
    var choices: Int
    static let maxChoices = 8

    static let roles: Set<String> = ["system", "user", "assistant", "tool", "developer"]

    init(_ fields: RequestFields) throws {
        model = try fields.string("model")
        messages = try Self.parseMessages(fields.value("messages"))
        let maxCompletion = try fields.int("max_completion_tokens", in: 1...Int(Int32.max))
        maxTokens = try fields.int("max_tokens", in: 1...Int(Int32.max)) ?? maxCompletion
        sampling = try fields.sampling()
        stop = try fields.stopStrings()
        choices = try fields.choiceCount(limit: Self.maxChoices)
        (stream, includeUsage) = try fields.streaming()
        logprobs = try fields.bool("logprobs") ?? false
        topLogprobs = try fields.int("top_logprobs", in: 0...20) ?? 0
        if topLogprobs > 0 && !logprobs {
            throw APIError.invalidParameter("top_logprobs", "needs 'logprobs': true")
        }
        jsonObject = false
        if let format = fields.value("response_format") {
            guard case .object(let object) = format, case .string(let type)? = object["type"] else {
                throw APIError.invalidParameter("response_format", "must be an object with a string 'type'")
            }
            switch type {
            case "text": break
            case "json_object": jsonObject = true
            case "json_schema":
                guard case .object(let spec)? = object["json_schema"], let schema = spec["schema"] else {
                    throw APIError.invalidParameter("response_format", "type 'json_schema' needs 'json_schema': {'name': …, 'schema': {…}}")
                }
                do {
                    jsonSchema = try JSONSchema(schema)
                } catch let error as JSONSchemaError {
                    throw APIError.invalidParameter("response_format", "json_schema.schema \(error)")
                }
            default:
                throw APIError.invalidParameter("response_format", "type '\(type)' is not supported (use 'text', 'json_object' or 'json_schema')")
            }
        }
        tools = try Self.parseTools(fields.value("tools"))
        toolChoice = try Self.parseToolChoice(fields.value("tool_choice"), tools: tools)
        templateArguments = try Self.parseTemplateArguments(fields.value("chat_template_kwargs"))
    }

    /// Variables the server itself gives the template; a request cannot replace them.
    static let reservedTemplateVariables: Set<String> = ["messages", "tools", "add_generation_prompt", "bos_token", "eos_token"]

    private static func parseTemplateArguments(_ value: JinjaValue?) throws -> [String: JinjaValue] {
        guard let value else { return [:] }
        guard case .object(let object) = value else { throw APIError.invalidParameter("chat_template_kwargs", "must be an object") }
        guard object.count <= 32 else { throw APIError.invalidParameter("chat_template_kwargs", "at most 32 variables, got \(object.count)") }
        var arguments: [String: JinjaValue] = [:]
        for key in object.keys {
            let isIdentifier = !key.isEmpty && key.count <= 64 && key.utf8.allSatisfy { $0 == UInt8(ascii: "_") || ($0 >= 0x30 && $0 <= 0x39)
                || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) } && !(key.utf8.first! >= 0x30 && key.utf8.first! <= 0x39)
            guard isIdentifier else { throw APIError.invalidParameter("chat_template_kwargs", "keys must be template identifiers") }
            guard !reservedTemplateVariables.contains(key) else {
                throw APIError.invalidParameter("chat_template_kwargs.\(key)", "is set by the server from the request")
            }
            arguments[key] = object[key]
        }
        return arguments
    }

    private static func parseMessages(_ value: JinjaValue?) throws -> [JinjaValue] {
        guard let value else { throw APIError.invalidParameter("messages", "is required") }
        guard case .array(let items) = value, !items.isEmpty else {
            throw APIError.invalidParameter("messages", "must be a non-empty array of messages")
        }
        return try items.enumerated().map { index, item in
            let name = "messages[\(index)]"
            guard case .object(var message) = item else { throw APIError.invalidParameter(name, "must be an object") }
            guard case .string(var role)? = message["role"], roles.contains(role) else {
                throw APIError.invalidParameter("\(name).role", "must be one of system, user, assistant, tool")
            }
            if role == "developer" { role = "system" }
            message["role"] = .string(role)
            switch message["content"] {
            case nil, .none?:
                guard role == "assistant" else { throw APIError.invalidParameter("\(name).content", "is required") }
                message["content"] = JinjaValue.none
            case .string?: break
            case .array(let parts)?:
                var text = ""
                for (p, part) in parts.enumerated() {
                    guard case .object(let object) = part, case .string(let type)? = object["type"], type == "text",
                          case .string(let piece)? = object["text"] else {
                        throw APIError.invalidParameter("\(name).content[\(p)]", "only {\"type\": \"text\", \"text\": ...} parts are supported")
                    }
                    text += piece
                }
                message["content"] = .string(text)
            default:
                throw APIError.invalidParameter("\(name).content", "must be a string or an array of text parts")
            }
            if let calls = message["tool_calls"] {
                guard case .array(let list) = calls else { throw APIError.invalidParameter("\(name).tool_calls", "must be an array") }
                for (c, call) in list.enumerated() {
                    guard case .object(let object) = call, case .object(let function)? = object["function"],
                          case .string? = function["name"], case .string? = function["arguments"] else {
                        throw APIError.invalidParameter("\(name).tool_calls[\(c)]", "needs function.name and function.arguments strings")
                    }
                }
            }
            return .object(message)
        }
    }

    private static func parseTools(_ value: JinjaValue?) throws -> [JinjaValue]? {
        guard let value else { return nil }
        guard case .array(let items) = value else { throw APIError.invalidParameter("tools", "must be an array") }
        guard items.count <= 128 else { throw APIError.invalidParameter("tools", "at most 128 tools, got \(items.count)") }
        for (index, tool) in items.enumerated() {
            guard case .object(let object) = tool, case .string("function")? = object["type"],
                  case .object(let function)? = object["function"], case .string(let name)? = function["name"], !name.isEmpty
            else {
                throw APIError.invalidParameter("tools[\(index)]", "must be {\"type\": \"function\", \"function\": {\"name\": ...}}")
            }
        }
        return items.isEmpty ? nil : items
    }

    private static func parseToolChoice(_ value: JinjaValue?, tools: [JinjaValue]?) throws -> ToolChoice {
        guard let value else { return tools == nil ? .none : .auto }
        switch value {
        case .string("none"): return .none
        case .string("auto"): return .auto
        case .string("required"):
            guard tools != nil else { throw APIError.invalidParameter("tool_choice", "'required' needs 'tools'") }
            return .required
        case .object(let object):
            guard case .object(let function)? = object["function"], case .string(let name)? = function["name"] else {
                throw APIError.invalidParameter("tool_choice", "must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}")
            }
            let names = (tools ?? []).compactMap { tool -> String? in
                guard case .object(let t) = tool, case .object(let f)? = t["function"], case .string(let n)? = f["name"] else { return nil }
                return n
            }
            guard names.contains(name) else { throw APIError.invalidParameter("tool_choice", "no tool named '\(name)' in 'tools'") }
            return .function(name)
        default:
            throw APIError.invalidParameter("tool_choice", "must be none, auto, required or a function object")
        }
    }
}

/// A validated `POST /completions` (or `/beta/completions` FIM) body.
struct CompletionRequest {
    var model: String?
    var prompt: String?
    var promptTokens: [Int]?
    var suffix: String?
    var sampling: SamplingConfiguration
    var maxTokens: Int
    var stop: [String]
    var stream: Bool
    var includeUsage: Bool
    /// Legacy `logprobs`: number of alternatives (nil = off).
    var logprobs: Int?
    var echo: Bool

    init(_ fields: RequestFields) throws {
        model = try fields.string("model")
        guard let promptValue = fields.value("prompt") else { throw APIError.invalidParameter("prompt", "is required") }
        switch promptValue {
        case .string(let s): prompt = s
        case .array(let items) where items.count == 1:
            if case .string(let s) = items[0] { prompt = s } else if case .array(let ids) = items[0] { promptTokens = try Self.ids(ids) }
            else if case .int(let id) = items[0] { promptTokens = [id] }
            else { throw APIError.invalidParameter("prompt", "must be a string, an array of token ids, or one of those in an array") }
        case .array(let items) where !items.isEmpty: promptTokens = try Self.ids(items)
        default: throw APIError.invalidParameter("prompt", "must be a non-empty string or array of token ids")
        }
        suffix = try fields.string("suffix")
        maxTokens = try fields.int("max_tokens", in: 1...Int(Int32.max)) ?? 16
        sampling = try fields.sampling()
        stop = try fields.stopStrings()
        try fields.checkSingleChoice()
        (stream, includeUsage) = try fields.streaming()
        logprobs = try fields.int("logprobs", in: 0...20)
        echo = try fields.bool("echo") ?? false
    }

    private static func ids(_ items: [JinjaValue]) throws -> [Int] {
        try items.map { item in
            guard case .int(let id) = item, id >= 0 else {
                throw APIError.invalidParameter("prompt", "token arrays must hold non-negative integers")
            }
            return id
        }
    }
}
