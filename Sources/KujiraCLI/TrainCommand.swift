import ArgumentParser
import Foundation
import KujiraFormats
import KujiraTensor
import KujiraTraining

/// `kujira train`: train a DeepSeek-V3 model from scratch on a synthetic task, with checkpoints and a report.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a deepseek_v3 model from scratch (AdamW, aux-loss-free balancing, MTP) on a synthetic task.",
        discussion: #"Example: kujira train --config docs/configs/arithmetic-1m.json --steps 1000 --batch 32 --seq 64 --out runs/add3"#)

    @Option(help: "Model config.json (deepseek_v3). Not needed with --resume.")
    var config: String?

    @Option(help: "Task: arithmetic.")
    var task: String = "arithmetic"

    @Option(help: "Operations: any of + - * (e.g. +-*).")
    var ops: String = "+"

    @Flag(help: "Phrase training prompts as the bare problem, 'What is …?' or 'what is …?' at random.")
    var naturalQuestions = false

    @Flag(help: "Draw the two operands' digit counts independently (e.g. 123+45).")
    var mixedLengths = false

    @Option(help: "Operand digit counts, e.g. 3 or 1-3.")
    var digits: String = "3"

    @Option(help: "Optimizer steps.") var steps: Int = 1000
    @Option(help: "Sequences per step.") var batch: Int = 16
    @Option(help: "Tokens per sequence.") var seq: Int = 128
    @Option(help: "Output directory (checkpoint, report).") var out: String
    @Flag(help: "Continue the run saved in --out.") var resume = false
    @Option(help: "Random seed (init and data).") var seed: UInt64 = 1
    @Option(help: "Peak learning rate.") var lr: Float = 3e-3
    @Option(help: "Final learning rate of the cosine schedule.") var minLr: Float = 3e-4
    @Option(help: "Warmup steps.") var warmup: Int = 50
    @Option(help: "AdamW weight decay.") var weightDecay: Float = 0.1
    @Option(help: "Global gradient-norm clip (0: off).") var clip: Float = 1.0
    @Option(help: "Aux-loss-free balancing step γ (0 freezes the biases).") var gamma: Float = 1e-3
    @Option(help: "Sequence-wise balance loss weight α (0: off).") var alpha: Float = 1e-4
    @Option(help: "MTP loss weight λ.") var mtpWeight: Float = 0.3
    @Option(help: "Evaluate held-out exact match every N steps (0: never).") var evalEvery: Int = 100
    @Option(help: "Held-out problems per evaluation.") var evalProblems: Int = 100
    @Option(help: "Save a checkpoint every N steps.") var checkpointEvery: Int = 100
    @Option(help: "Print a progress line every N steps.") var logEvery: Int = 10

    func validate() throws {
        guard task == "arithmetic" else { throw ValidationError("--task: only 'arithmetic' is available") }
        guard resume || config != nil else { throw ValidationError("--config is required unless --resume") }
        guard steps > 0, batch > 0, seq >= 8 else { throw ValidationError("--steps and --batch must be positive, --seq at least 8") }
        guard !ops.isEmpty, ops.allSatisfy({ "+-*".contains($0) }) else { throw ValidationError("--ops: use characters from + - *") }
        _ = try digitRange()
        guard logEvery > 0, checkpointEvery > 0, evalEvery >= 0, evalProblems > 0 else { throw ValidationError("--log-every, --checkpoint-every, --eval-problems must be positive") }
    }

    func digitRange() throws -> ClosedRange<Int> {
        let parts = digits.split(separator: "-").compactMap { Int($0) }
        guard (parts.count == 1 || parts.count == 2), let lo = parts.first, let hi = parts.last, lo >= 1, hi >= lo, hi <= 9 else {
            throw ValidationError("--digits: expected N or A-B with 1 ≤ A ≤ B ≤ 9, got '\(digits)'")
        }
        return lo...hi
    }

    func run() throws {
        let trainer: Trainer
        if resume {
            trainer = try Checkpoint.resume(from: out)
            FileHandle.standardOutput.write(Data("resumed \(out) at step \(trainer.step) of \(trainer.settings.steps)\n".utf8))
        } else {
            var s = TrainingSettings()
            s.steps = steps; s.batch = batch; s.length = seq; s.seed = seed
            s.optimizer.learningRate = lr; s.optimizer.minLearningRate = minLr; s.optimizer.warmupSteps = warmup
            s.optimizer.totalSteps = steps; s.optimizer.weightDecay = weightDecay; s.optimizer.clipNorm = clip
            s.balanceGamma = gamma; s.balanceAlpha = alpha; s.mtpWeight = mtpWeight
            s.evalEvery = evalEvery; s.evalProblems = evalProblems; s.checkpointEvery = checkpointEvery
            s.task = ArithmeticTask(operations: ops.compactMap { ArithmeticOperation(rawValue: String($0)) }, digits: try digitRange(),
                                   naturalQuestions: naturalQuestions, mixedLengths: mixedLengths)
            trainer = try Trainer(config: try ModelConfig(path: config ?? ""), settings: s)
            let total = trainer.model.parameters.entries.filter(\.trainable).reduce(0) { $0 + $1.count }
            FileHandle.standardOutput.write(Data("training \(total) parameters, \(steps) steps of \(batch) × \(seq) tokens, threads \(Parallel.threads)\n".utf8))
        }
        try Self.runLoop(trainer, out: out, logEvery: logEvery)
    }

    /// Steps `trainer` to its last step with progress lines, periodic evaluation, checkpoints and the report.
    static func runLoop(_ trainer: Trainer, out: String, logEvery: Int) throws {
        let s = trainer.settings
        let started = Date()
        let firstStep = trainer.step
        while trainer.step < s.steps {
            let record = try trainer.trainStep()
            let done = trainer.step
            var accuracy: Double?
            if s.evalEvery > 0 && (done % s.evalEvery == 0 || done == s.steps) { accuracy = try trainer.evaluate() }
            if done % logEvery == 0 || done == s.steps || accuracy != nil {
                let elapsed = Date().timeIntervalSince(started)
                let eta = elapsed / Double(done - firstStep) * Double(s.steps - done)
                var line = String(format: "step %d/%d loss %.4f", done, s.steps, record.mainLoss)
                if let mtp = record.mtpLoss { line += String(format: " mtp %.4f", mtp) }
                line += String(format: " lr %.2e |g| %.3f %.0f tok/s ETA %@ load max/mean %.2f", record.learningRate, record.gradientNorm,
                               record.tokensPerSecond, Self.duration(eta), record.loadMaxOverMean)
                if let accuracy { line += String(format: " held-out exact match %.1f%%", accuracy * 100) }
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
            if done % s.checkpointEvery == 0 || done == s.steps {
                try Checkpoint.save(trainer, to: out)
                try TrainingReport.write(trainer, to: out)
            }
        }
        print("checkpoint and report in \(out)")
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}
