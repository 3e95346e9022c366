import ArgumentParser
import Foundation
import KujiraModels

/// `kujira logits`: the model's output logits for every input position, as JSON.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Print {\"logits\": [[vocab floats] per input position]} for the given token ids.",
        discussion: #"Example: kujira logits --model Models/kujira-arith --tokens 0,5,6"#)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Comma-separated input token ids, e.g. 1,2,3.")
    var tokens: String

    func validate() throws { _ = try parseTokenList(tokens) }

    func run() throws {
        let ids = try parseTokenList(tokens)
        let model = try modelOptions.load()
        let logits = try model.forward(ids, cache: model.makeCache(), allLogits: true)
        var out = "{\"logits\": ["
        for t in 0..<ids.count {
            if t > 0 { out.append(", ") }
            appendJSONArray(logits[(t * model.vocabSize)..<((t + 1) * model.vocabSize)], to: &out)
        }
        out.append("]}\n")
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
