import ArgumentParser
import KujiraGeneration

/// `--speculative auto|mtp|ngram|draft|off`, `--draft-tokens` and `--draft-model` for `run`, `chat` and `serve` (generation-level speculation:
/// the output does not change, only how many tokens each forward pass produces).
struct SpeculationOptions: ParsableArguments {
    @Option(help: "Speculative decoding: 'auto' (default) drafts with the model's MTP head (DeepSeek-V3 family) while that measures faster than plain steps; 'mtp' always drafts with it; 'draft' drafts with --draft-model; 'ngram' drafts the tokens that followed the last few tokens earlier in the prompt or output (pays on summaries, quotes, code edits); 'off'. The output is unchanged.")
    var speculative: String = "auto"

    @Option(help: "Most tokens drafted per forward pass (1–64; default 8 for ngram, 1 for mtp and auto).")
    var draftTokens: Int?

    @Option(help: "The drafting model of --speculative draft: a smaller model with the same tokenizer (directory, .gguf or a pulled org/name[:QUANT]).")
    var draftModel: String?

    func validate() throws {
        do { _ = try speculation() } catch { throw ValidationError("\(error)") }
        if speculative == "draft" {
            guard let draftModelPath else { throw ValidationError("--speculative draft needs --draft-model") }
            try ModelOptions.check(draftModelPath)
        } else if draftModel != nil {
            throw ValidationError("--draft-model is used only with --speculative draft")
        }
    }

    /// `--draft-model` resolved like `--model`.
    var draftModelPath: String? { draftModel.map { (try? resolveModelArgument($0)) ?? $0 } }

    func speculation() throws -> Speculation { try Speculation(flag: speculative, draftTokens: draftTokens) }
}
