import ArgumentParser
import Foundation
import KujiraGeneration
import KujiraModels

/// `kujira generate`: continue a token sequence (greedy at temperature 0) through the KV cache.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate new token ids after the given ones.",
        discussion: #"Example: kujira generate --model Models/kujira-arith --tokens 0,5,6 --max-tokens 16"#)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Comma-separated prompt token ids, e.g. 1,2,3.")
    var tokens: String

    @Option(help: "Maximum number of new tokens.")
    var maxTokens: Int = 32

    @OptionGroup var sampling: SamplingFlags

    @Flag(help: "Keep going past end-of-sequence tokens.")
    var ignoreEOS = false

    @Flag(help: "Print {\"tokens\": [...]} (the new tokens only).")
    var json = false

    @Flag(help: "With --json, also print \"logits\": the full row each new token was chosen from (greedy; for comparing engines).")
    var logits = false

    @Option(help: "Speculative decoding: 'mtp' drafts with the model's multi-token-prediction module (greedy only).")
    var speculative: String?

    @Option(help: "Tokens drafted per round with --speculative mtp.")
    var draftTokens: Int = 1

    func validate() throws {
        _ = try parseTokenList(tokens)
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be ≥ 0") }
        if let speculative {
            guard speculative == "mtp" else { throw ValidationError("--speculative: '\(speculative)' is not supported (use 'mtp')") }
            guard sampling.temperature == 0 else { throw ValidationError("--speculative mtp needs --temperature 0 (greedy)") }
            guard draftTokens >= 1 else { throw ValidationError("--draft-tokens must be ≥ 1") }
        }
        if logits {
            guard json, speculative == nil, sampling.temperature == 0 else { throw ValidationError("--logits needs --json and greedy decoding (--temperature 0)") }
        }
    }

    func run() throws {
        let prompt = try parseTokenList(tokens)
        let model = try modelOptions.load()
        let parameters = SamplingConfiguration(temperature: sampling.temperature, topK: sampling.topK, topP: sampling.topP, seed: sampling.seed)
        let stops: Set<Int>? = ignoreEOS ? [] : nil
        if speculative != nil {
            guard let deepseek = model as? DeepseekV3Model else { throw ValidationError("--speculative mtp needs a DeepSeek-V3 model") }
            let decoder = try SpeculativeDecoder(model: deepseek, draftTokens: draftTokens)
            let (output, stats) = try decoder.generate(prompt: prompt, maxTokens: maxTokens, stopTokens: stops) { token in
                if !json { FileHandle.standardOutput.write(Data("\(token)\n".utf8)) }
                return true
            }
            if json { print("{\"tokens\": [\(output.map(String.init).joined(separator: ", "))]}") }
            let line = String(format: "speculative mtp: %d rounds, %d drafted, %d accepted (%.1f%%), %.2f tokens per main forward\n",
                              stats.rounds, stats.drafted, stats.accepted, stats.acceptanceRate * 100, stats.tokensPerRound)
            FileHandle.standardError.write(Data(line.utf8))
            return
        }
        let generator = Generator(model: model)
        if logits {
            var rows: [[Float]] = []
            let output = try generator.generate(prompt: prompt, maxTokens: maxTokens, sampling: parameters, stopTokens: stops,
                                                onLogits: { rows.append(Array($0)) })
            var out = "{\"tokens\": [\(output.map(String.init).joined(separator: ", "))], \"logits\": ["
            for (i, r) in rows.enumerated() {
                if i > 0 { out += ", " }
                appendJSONArray(r[...], to: &out)
            }
            print(out + "]}")
            return
        }
        if json {
            let output = try generator.generate(prompt: prompt, maxTokens: maxTokens, sampling: parameters, stopTokens: stops)
            print("{\"tokens\": [\(output.map(String.init).joined(separator: ", "))]}")
        } else {
            _ = try generator.generate(prompt: prompt, maxTokens: maxTokens, sampling: parameters, stopTokens: stops) { token in
                FileHandle.standardOutput.write(Data("\(token)\n".utf8))
                return true
            }
        }
    }
}
