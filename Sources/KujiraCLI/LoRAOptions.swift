import ArgumentParser
import KujiraModels
import KujiraTraining

/// `--lora-rank`, `--lora-alpha`, `--lora-targets`: the LoRA options of `sft` and `grpo --data`.
struct LoRAOptions: ParsableArguments {
    @Option(help: "LoRA rank: train low-rank adapters only, the base weights stay as loaded (BF16, FP8 or a quantized GGUF); 0: full fine-tuning.")
    var loraRank: Int = 0
    @Option(help: "LoRA alpha (the adapter is scaled by alpha / rank; default 2 × rank).") var loraAlpha: Double?
    @Option(help: "Comma-separated modules that get adapters.") var loraTargets: String = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"

    var targets: [String] { loraTargets.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }

    /// The run's LoRA settings, or nil for full fine-tuning.
    var settings: SFTLoRASettings? {
        loraRank > 0 ? SFTLoRASettings(rank: loraRank, alpha: loraAlpha ?? Double(2 * loraRank), targets: targets) : nil
    }

    func validate() throws {
        guard loraRank >= 0, loraRank <= 4096 else { throw ValidationError("--lora-rank must be in 0...4096") }
        if let loraAlpha { guard loraAlpha.isFinite, loraAlpha > 0 else { throw ValidationError("--lora-alpha must be positive") } }
        for target in targets where !LoRAConfig.supportedModules.contains(target) {
            throw ValidationError("--lora-targets: '\(target)' is not one of \(LoRAConfig.supportedModules.sorted().joined(separator: ", "))")
        }
    }
}
