import ArgumentParser
import Foundation
import KujiraTokenizer

/// `kujira template`: renders a chat template over a conversation and prints the prompt text.
struct TemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Render a chat template (Jinja) for a conversation, as transformers' apply_chat_template does.",
        discussion: #"Example: kujira template --template tokenizer_config.json --messages '[{"role":"user","content":"hi"}]' --add-generation-prompt"#
    )

    @Option(help: "A .jinja file, a tokenizer_config.json, or a model directory containing one.")
    var template: String

    @Option(help: "JSON file: an array of messages, or an object with \"messages\" (and optionally \"tools\").")
    var messages: String

    @Flag(help: "End with the opening of an assistant turn.")
    var addGenerationPrompt = false

    @Option(help: "JSON file with an array of tool schemas.")
    var tools: String?

    @Option(help: "bos_token (default: from tokenizer_config.json when given, else empty).")
    var bos: String?

    @Option(help: "eos_token (default: from tokenizer_config.json when given, else empty).")
    var eos: String?

    @Option(help: "Which named template of tokenizer_config.json to use (default: \"default\").")
    var templateName: String?

    @Option(name: .customLong("var"), help: "Extra template variable as name=JSON, e.g. enable_thinking=true.")
    var variables: [String] = []

    func validate() throws {
        for path in [template, messages] + (tools.map { [$0] } ?? []) where !FileManager.default.fileExists(atPath: path) {
            throw ValidationError("no such file or directory: \(path)")
        }
        for variable in variables where !variable.contains("=") {
            throw ValidationError("--var expects name=JSON, got '\(variable)'")
        }
    }

    func run() throws {
        let chatTemplate = try ChatTemplate.load(path: template, name: templateName)
        let (conversation, embeddedTools) = try readConversation(messages)
        var toolList = embeddedTools
        if let tools {
            guard case .array(let list) = try readJSON(tools) else {
                throw ValidationError("\(tools): expected a JSON array of tool schemas")
            }
            toolList = list
        }
        var extra: [String: JinjaValue] = [:]
        for variable in variables {
            let parts = variable.split(separator: "=", maxSplits: 1)
            let name = String(parts[0])
            let text = parts.count > 1 ? String(parts[1]) : ""
            // Unparseable values are taken as plain strings (`--var date_string=26 Jul 2024`).
            extra[name] = (try? JinjaValue(jsonString: text)) ?? .string(text)
        }
        let configTokens = try specialTokensFromConfig()
        let rendered = try chatTemplate.render(
            messages: conversation, addGenerationPrompt: addGenerationPrompt, tools: toolList,
            bosToken: bos ?? configTokens.bos ?? "", eosToken: eos ?? configTokens.eos ?? "", extra: extra)
        FileHandle.standardOutput.write(Data(rendered.utf8))
    }

    private func readJSON(_ path: String) throws -> JinjaValue {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            return try JinjaValue(json: data)
        } catch {
            throw ValidationError("\(path): \(error)")
        }
    }

    private func readConversation(_ path: String) throws -> ([JinjaValue], [JinjaValue]?) {
        switch try readJSON(path) {
        case .array(let list):
            return (list, nil)
        case .object(let object):
            guard case .array(let list)? = object["messages"] else {
                throw ValidationError("\(path): expected an array of messages or an object with \"messages\"")
            }
            if case .array(let tools)? = object["tools"] { return (list, tools) }
            return (list, nil)
        default:
            throw ValidationError("\(path): expected an array of messages or an object with \"messages\"")
        }
    }

    /// bos/eos of the tokenizer_config.json the template came from, if it came from one.
    private func specialTokensFromConfig() throws -> (bos: String?, eos: String?) {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: template, isDirectory: &isDirectory)
        let url = URL(fileURLWithPath: template)
        let config = isDirectory.boolValue ? url.appendingPathComponent("tokenizer_config.json") : url
        guard config.pathExtension == "json", let data = try? Data(contentsOf: config) else { return (nil, nil) }
        return try ChatTemplate.specialTokens(fromTokenizerConfig: data)
    }
}
