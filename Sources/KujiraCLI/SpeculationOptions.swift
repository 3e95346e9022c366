import ArgumentParser
import KujiraGeneration

/// `--speculative ngram` and `--draft-tokens` for `run`, `chat` and `serve` (generation-level speculation: the output
/// does not change, only how many tokens each forward pass produces).
struct SpeculationOptions: ParsableArguments {
    @Option(help: "Speculative decoding: 'ngram' drafts the tokens that followed the last few tokens earlier in the prompt or output (pays on summaries, quotes, code edits); 'off' (default). The output is unchanged.")
    var speculative: String = "off"

    @Option(help: "Most tokens drafted per forward pass with --speculative ngram (1–64).")
    var draftTokens: Int = 8

    func validate() throws {
        do { _ = try speculation() } catch { throw ValidationError("\(error)") }
    }

    func speculation() throws -> Speculation { try Speculation(flag: speculative, draftTokens: draftTokens) }
}
