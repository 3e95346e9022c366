import Foundation
import KujiraFormats

/// A parsed chat template (the Jinja subset real templates use) that renders a conversation into prompt text
/// exactly like transformers' `apply_chat_template(..., tokenize=False)`.
public struct ChatTemplate: Sendable {
    /// The template text as given.
    public let source: String
    /// The limits parsing and every render are held to (`ChatTemplateError.budgetExceeded` past them).
    public let budget: TemplateBudget
    private let nodes: [Node]

    /// Parses the template once; throws `ChatTemplateError.syntax` naming line and column.
    public init(source: String, budget: TemplateBudget = .default) throws {
        self.source = source
        self.budget = budget
        self.nodes = try JinjaParser.parse(source, budget: budget)
    }

    /// Renders a conversation.
    ///
    /// - Parameters:
    ///   - messages: `[{"role": ..., "content": ...}, ...]`, as JSON-like values (key order is kept).
    ///   - addGenerationPrompt: open an assistant turn at the end.
    ///   - tools: tool schemas, or nil (the template then sees `tools` as `none`, as with transformers).
    ///   - bosToken, eosToken: the `bos_token` / `eos_token` variables.
    ///   - extra: more variables (`enable_thinking`, `date_string`, ...); they override the ones above.
    public func render(
        messages: [JinjaValue], addGenerationPrompt: Bool = false, tools: [JinjaValue]? = nil,
        bosToken: String = "", eosToken: String = "", extra: [String: JinjaValue] = [:]
    ) throws -> String {
        var context: [String: JinjaValue] = [
            "messages": .array(messages),
            "tools": tools.map { .array($0) } ?? .none,
            "documents": .none,
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ]
        for (key, value) in extra { context[key] = value }
        return try render(context: context)
    }

    /// Renders a conversation given as `JSONSerialization`-style dictionaries (keys are sorted, since
    /// Swift dictionaries have no order; pass `JinjaValue`s when tool schema key order matters).
    public func render(
        messages: [[String: Any]], addGenerationPrompt: Bool = false, tools: [[String: Any]]? = nil,
        bosToken: String = "", eosToken: String = "", extra: [String: JinjaValue] = [:]
    ) throws -> String {
        try render(messages: try messages.map { try JinjaValue(any: $0) }, addGenerationPrompt: addGenerationPrompt,
                   tools: try tools?.map { try JinjaValue(any: $0) }, bosToken: bosToken, eosToken: eosToken,
                   extra: extra)
    }

    /// Renders with exactly the given top-level variables (values nested deeper than the budget's depth are refused).
    public func render(context: [String: JinjaValue]) throws -> String {
        let evaluator = JinjaEvaluator(
            context: try context.mapValues { try RuntimeValue(input: $0, maxDepth: budget.maxDepth) }, budget: budget)
        return try evaluator.render(nodes)
    }

    /// Loads a template from a `.jinja` file, a `tokenizer_config.json`, or a model directory
    /// (its `chat_template.jinja` if present, else the `chat_template` of its `tokenizer_config.json`).
    /// `name` selects one of several named templates (`"default"` when nil).
    public static func load(path: String, name: String? = nil, budget: TemplateBudget = .default) throws -> ChatTemplate {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ChatTemplateError.invalidInput("\(path): no such file or directory")
        }
        var file = URL(fileURLWithPath: path)
        if isDirectory.boolValue {
            let jinja = file.appendingPathComponent("chat_template.jinja")
            if name == nil, FileManager.default.fileExists(atPath: jinja.path) {
                file = jinja
            } else {
                file = file.appendingPathComponent("tokenizer_config.json")
            }
        }
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw ChatTemplateError.invalidInput("\(file.path): cannot read (\(error.localizedDescription))")
        }
        let text: String
        if file.pathExtension.lowercased() == "json" {
            do {
                text = try source(fromTokenizerConfig: data, name: name)
            } catch ChatTemplateError.invalidInput(let message) {
                throw ChatTemplateError.invalidInput("\(file.path): \(message)")
            }
        } else {
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw ChatTemplateError.invalidInput("\(file.path): not valid UTF-8")
            }
            text = decoded
        }
        do {
            return try ChatTemplate(source: text, budget: budget)
        } catch ChatTemplateError.syntax(let message, let line, let column) {
            throw ChatTemplateError.syntax("\(file.lastPathComponent): \(message)", line: line, column: column)
        }
    }

    /// `bos_token` / `eos_token` of a `tokenizer_config.json` (a string or an `AddedToken` object with `content`).
    public static func specialTokens(fromTokenizerConfig data: Data) throws -> (bos: String?, eos: String?) {
        guard case .object(let config) = try JinjaValue(json: data) else {
            throw ChatTemplateError.invalidInput("tokenizer config is not a JSON object")
        }
        func token(_ key: String) -> String? {
            switch config[key] {
            case .string(let s)?: return s
            case .object(let added)?: if case .string(let s)? = added["content"] { return s } else { return nil }
            default: return nil
            }
        }
        return (token("bos_token"), token("eos_token"))
    }

    /// The `chat_template` of a `tokenizer_config.json`: a string, or a list of `{"name", "template"}`
    /// from which `name` (default `"default"`) is picked.
    public static func source(fromTokenizerConfig data: Data, name: String? = nil) throws -> String {
        guard case .object(let config) = try JinjaValue(json: data) else {
            throw ChatTemplateError.invalidInput("tokenizer config is not a JSON object")
        }
        switch config["chat_template"] {
        case .string(let template)?:
            if let name, name != "default" {
                throw ChatTemplateError.invalidInput("field 'chat_template' has a single template, not '\(quoted(name, limit: 60))'")
            }
            return template
        case .array(let entries)?:
            var named: [(String, String)] = []
            for (index, entry) in entries.enumerated() {
                guard case .object(let object) = entry, case .string(let entryName)? = object["name"],
                      case .string(let template)? = object["template"]
                else {
                    throw ChatTemplateError.invalidInput("field 'chat_template[\(index)]' needs string 'name' and 'template'")
                }
                named.append((entryName, template))
            }
            let wanted = name ?? "default"
            guard let match = named.first(where: { $0.0 == wanted }) else {
                let available = named.prefix(20).map { quoted($0.0, limit: 60) }.joined(separator: ", ")
                    + (named.count > 20 ? ", …" : "")
                throw ChatTemplateError.invalidInput("no chat template named '\(quoted(wanted, limit: 60))' (available: \(available))")
            }
            return match.1
        case nil, .none?:
            throw ChatTemplateError.invalidInput("no 'chat_template' field")
        default:
            throw ChatTemplateError.invalidInput("field 'chat_template' must be a string or a list of {name, template}")
        }
    }
}
