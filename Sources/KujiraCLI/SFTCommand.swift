import ArgumentParser
import Foundation
import KujiraFormats
import KujiraModels
import KujiraTensor
import KujiraTraining

/// `kujira sft`: supervised fine-tuning of a downloaded model on the user's chat data.
struct SFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Fine-tune a model (llama, qwen2, qwen3, qwen3_moe, deepseek_v2/v3) on chat JSONL: loss on the assistant's replies only.",
        discussion: """
            Data: one JSON object per line, {"messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}]} \
            (tokenized with the model's chat template) or {"prompt": ..., "completion": ...} (raw text). Examples are \
            packed into --seq tokens; checkpoints (step-N/ directories, plain Hugging Face models) go to --out.
            Example: kujira sft --model ~/models/Qwen2.5-0.5B-Instruct --data train.jsonl --eval-data eval.jsonl --steps 200 --out runs/sft
            """)

    @Option(help: "The model to fine-tune: a Hugging Face directory. Not needed with --resume.") var model: String?
    @Option(help: "Training data (JSONL).") var data: String?
    @Option(help: "Evaluation data (JSONL); its loss is printed every --eval-every steps.") var evalData: String?
    @Option(help: "Output run directory (checkpoints, report).") var out: String
    @Flag(help: "Continue the run saved in --out from its newest complete checkpoint.") var resume = false
    @Option(help: "Optimizer steps (default: one epoch).") var steps: Int?
    @Option(help: "Epochs, when --steps is not given.") var epochs: Int = 1
    @Option(help: "Packed sequences per forward pass.") var batch: Int = 4
    @Option(help: "Forward passes per optimizer step (gradient accumulation).") var accumulation: Int = 1
    @Option(help: "Tokens per packed sequence.") var seq: Int = 512
    @Option(help: "Random seed (data order).") var seed: UInt64 = 1
    @Option(help: "Peak learning rate.") var lr: Float = 2e-5
    @Option(help: "Final learning rate of the cosine schedule.") var minLr: Float = 0
    @Option(help: "Warmup steps.") var warmup: Int = 10
    @Option(help: "AdamW weight decay (matrices only).") var weightDecay: Float = 0
    @Option(help: "Global gradient-norm clip (0: off).") var clip: Float = 1.0
    @Option(help: "Evaluate every N steps (0: at the end only).") var evalEvery: Int = 50
    @Option(help: "Save a checkpoint every N steps (and at the end).") var checkpointEvery: Int = 50
    @Option(help: "Checkpoints to keep.") var keep: Int = 3
    @OptionGroup var lora: LoRAOptions

    func validate() throws {
        guard resume || (model != nil && data != nil) else { throw ValidationError("--model and --data are required unless --resume") }
        guard batch > 0, accumulation > 0, seq >= 8, epochs > 0, (steps ?? 1) > 0 else {
            throw ValidationError("--batch, --accumulation, --epochs and --steps must be positive, --seq at least 8")
        }
        guard lr > 0, minLr >= 0, warmup >= 0, weightDecay >= 0, clip >= 0, evalEvery >= 0, checkpointEvery > 0, keep > 0 else {
            throw ValidationError("--lr must be positive; --min-lr, --warmup, --weight-decay, --clip, --eval-every non-negative; --checkpoint-every and --keep positive")
        }
    }

    func run() throws {
        let trainer: SFTTrainer
        if resume {
            trainer = try SFTCheckpoint.resume(from: out)
            Self.say("resumed \(out) at step \(trainer.step) of \(trainer.settings.steps)")
        } else {
            guard let model, let data else { throw ValidationError("--model and --data are required") }
            var s = SFTSettings()
            func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
            s.model = absolute(model); s.data = absolute(data); s.evalData = evalData.map(absolute)
            s.lora = lora.settings
            s.batch = batch; s.accumulation = accumulation; s.length = seq; s.seed = seed
            s.evalEvery = evalEvery; s.checkpointEvery = checkpointEvery; s.keep = keep
            if s.lora == nil { _ = try SFTCheckpoint.tokenizerSource(model) }
            let loaded = try SFTData.load(settings: s, formatterPath: CheckpointDirectory.modelDirectory(s.model))
            s.steps = steps ?? max(1, epochs * loaded.schedule.sequences.count / (batch * accumulation))
            s.optimizer.learningRate = lr; s.optimizer.minLearningRate = minLr; s.optimizer.warmupSteps = warmup
            s.optimizer.totalSteps = s.steps; s.optimizer.weightDecay = weightDecay; s.optimizer.clipNorm = clip
            let network = try s.makeModel()
            trainer = try SFTTrainer(model: network, settings: s, schedule: loaded.schedule, evalSequences: loaded.eval)
            let parameters = network.parameters.entries.filter { network.parameters.isTrained($0) }.reduce(0) { $0 + $1.count }
            Self.say("fine-tuning \(parameters) parameters\(s.lora.map { " (LoRA rank \($0.rank), alpha \($0.alpha) on \(network.adapters.count) weights)" } ?? ""): \(loaded.schedule.sequences.count) packed sequences of \(seq) tokens "
                  + "(\(loaded.schedule.targetTokens) reply tokens), \(s.steps) steps of \(batch) × \(accumulation), threads \(Parallel.threads)")
        }
        try Self.runLoop(trainer, out: out)
    }

    /// Steps `trainer` to its last step with a progress line, evaluation, checkpoints and the report.
    static func runLoop(_ trainer: SFTTrainer, out: String) throws {
        let s = trainer.settings, started = Date(), firstStep = trainer.step
        let interactive = isatty(STDOUT_FILENO) != 0
        while trainer.step < s.steps {
            let record = try trainer.trainStep()
            let done = trainer.step
            var evalLoss: Double?
            if done == s.steps || (s.evalEvery > 0 && done % s.evalEvery == 0) { evalLoss = try trainer.evaluate() }
            let elapsed = Date().timeIntervalSince(started)
            let eta = elapsed / Double(done - firstStep) * Double(s.steps - done)
            var line = String(format: "step %d/%d loss %.4f lr %.2e |g| %.3f %.0f tok/s ETA %@", done, s.steps, record.loss, record.learningRate,
                              record.gradientNorm, record.tokensPerSecond, TrainCommand.duration(eta))
            if let evalLoss { line += String(format: " eval loss %.4f", evalLoss) }
            let final = done == s.steps || evalLoss != nil || done % s.checkpointEvery == 0
            if interactive && !final {
                FileHandle.standardOutput.write(Data(("\r" + progressBar(done, s.steps) + " " + line + "\u{1B}[K").utf8))
            } else {
                FileHandle.standardOutput.write(Data(((interactive ? "\r" : "") + line + (interactive ? "\u{1B}[K" : "") + "\n").utf8))
            }
            if done % s.checkpointEvery == 0 || done == s.steps {
                try SFTCheckpoint.save(trainer, to: out)
                try FineTuningReport.write(trainer.history, title: "Kujira fine-tuning report", to: out)
            }
        }
        if let lora = s.lora {
            say("checkpoints and report in \(out); the newest checkpoint is a PEFT adapter (rank \(lora.rank)): kujira chat --model \(s.model) --lora \(out)")
        } else {
            say("checkpoints and report in \(out); the newest checkpoint is a model directory: kujira chat --model \(out)")
        }
    }

    /// One line on stdout, unbuffered like the progress lines.
    static func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

    static func progressBar(_ done: Int, _ total: Int, width: Int = 24) -> String {
        let filled = total > 0 ? width * done / total : width
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }
}
