import ArgumentParser
import Foundation
import KujiraFormats
import KujiraTensor
import KujiraTraining

/// `kujira merge`: fold a LoRA adapter into its base model.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a LoRA adapter into its base model and write a Hugging Face directory (then `kujira convert` makes a GGUF).",
        discussion: "Example: kujira merge --model ~/models/Qwen2.5-0.5B-Instruct --lora runs/sft-lora --out ~/models/qwen-sft --dtype bf16")

    @Option(help: "The base model: a Hugging Face directory.") var model: String
    @Option(help: "The adapter: a PEFT directory or a `kujira sft --lora-rank` run directory.") var lora: String
    @Option(help: "Output directory.") var out: String
    @Option(help: "Weights dtype: bf16, f16 or f32.") var dtype: String = "bf16"

    func validate() throws {
        guard ["bf16", "f16", "f32"].contains(dtype) else { throw ValidationError("--dtype: use bf16, f16 or f32") }
    }

    func run() throws {
        let type: DType = dtype == "f32" ? .f32 : dtype == "f16" ? .f16 : .bf16
        try LoRAMerge.merge(base: model, adapter: CheckpointDirectory.modelDirectory(lora), out: out, dtype: type)
        print("merged \(lora) into \(model): \(out)")
    }
}
