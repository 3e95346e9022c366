import ArgumentParser
import KujiraTraining

/// `kujira export`: a training checkpoint → a clean inference model directory (optionally BF16).
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Copy a checkpoint's inference files (config, weights, tokenizer) to a new directory, optionally as BF16.",
        discussion: #"Example: kujira export --model runs/add3 --out models/add3 --dtype bf16"#)

    @Option(help: "Checkpoint directory (from kujira train).") var model: String
    @Option(help: "Output directory.") var out: String
    @Option(help: "Weight dtype: f32 or bf16.") var dtype: String = "bf16"

    func validate() throws {
        guard dtype == "f32" || dtype == "bf16" else { throw ValidationError("--dtype: use f32 or bf16, got '\(dtype)'") }
    }

    func run() throws {
        try ModelExport.export(from: model, to: out, bfloat16: dtype == "bf16")
        print("wrote \(out)")
    }
}
