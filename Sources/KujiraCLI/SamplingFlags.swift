import ArgumentParser

/// `--temperature`, `--top-k`, `--top-p`, `--seed`: the sampling flags `generate`, `run` and `chat` share.
struct SamplingFlags: ParsableArguments {
    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(help: "Keep only the k most likely tokens (0 = all).")
    var topK: Int = 0

    @Option(help: "Nucleus sampling: keep the smallest set with this total probability.")
    var topP: Float = 1

    @Option(help: "Random seed for sampling.")
    var seed: UInt64 = 0

    func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be ≥ 0") }
        guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }
}
