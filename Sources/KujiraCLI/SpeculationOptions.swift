import ArgumentParser
import KujiraGeneration

/// `--speculative auto|mtp|ngram|off` and `--draft-tokens` for `run`, `chat` and `serve` (generation-level speculation:
/// the output does not change, only how many tokens each forward pass produces).
struct SpeculationOptions: ParsableArguments {
    @Option(help: "Speculative decoding: 'auto' (default) drafts with the model's MTP head (DeepSeek-V3 family) while that measures faster than plain steps; 'mtp' always drafts with it; 'ngram' drafts the tokens that followed the last few tokens earlier in the prompt or output (pays on summaries, quotes, code edits); 'off'. The output is unchanged.")
    var speculative: String = "auto"

    @Option(help: "Most tokens drafted per forward pass (1–64; default 8 for ngram, 1 for mtp and auto).")
    var draftTokens: Int?

    func validate() throws {
        do { _ = try speculation() } catch { throw ValidationError("\(error)") }
    }

    func speculation() throws -> Speculation { try Speculation(flag: speculative, draftTokens: draftTokens) }
}
