import ArgumentParser
import Foundation
import KujiraGeneration
import KujiraTraining

/// `kujira grpo`: reinforcement learning with verifiable rewards (GRPO / Dr. GRPO) on a synthetic task.
struct GRPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grpo",
        abstract: "GRPO with rule rewards: on your prompts (--data, --reward; llama, qwen, DeepSeek-V3; full or LoRA) or the synthetic arithmetic task.",
        discussion: #"""
            Rewards (--reward, repeatable, summed; prefix W* to weight): exact (the \boxed{} content or last line equals the line's "answer"), number (the last number equals it), \
            regex:PATTERN, json, json-schema:FILE, length:N (penalty past N tokens).
            Example: kujira grpo --model SmolLM2.gguf --data prompts.jsonl --eval-data heldout.jsonl --reward exact --lora-rank 8 --out runs/grpo
            Example: kujira grpo --model runs/base --digits 3 --steps 150 --out runs/grpo
            """#)

    @Option(help: "Starting (and reference) model directory (default: $KUJIRA_MODEL, else the embedded model).") var model: String?
    @Option(help: "Task: arithmetic.") var task: String = "arithmetic"
    @Option(help: "Operations: any of + - *.") var ops: String = "+-"
    @Option(help: "Operand digit counts, e.g. 4 or 3-4.") var digits: String = "4"
    @Option(help: "Output directory (checkpoints).") var out: String
    @Flag(help: "Continue the run saved in --out.") var resume = false
    @Option(help: "GRPO steps.") var steps: Int = 100
    @Option(help: "Prompts per step.") var prompts: Int = 4
    @Option(help: "Completions per prompt (G).") var group: Int = 8
    @Option(help: "Learning rate (constant).") var lr: Float = 1e-4
    @Option(help: "KL weight β (0: no reference).") var beta: Double = 0.04
    @Option(help: "Ratio clip ε.") var clip: Double = 0.2
    @Option(help: "Loss: grpo or dr_grpo.") var loss: String = "grpo"
    @Option(help: "Policy updates per sampled batch (μ).") var iterations: Int = 1
    @Option(help: "Sampling temperature.") var temperature: Float = 1.0
    @Option(help: "Maximum completion tokens.") var maxNewTokens: Int = 64
    @Option(help: "Reward for the <think>…</think> + answer format (accuracy gives 1).") var formatReward: Double = 0.2
    @Option(help: "Curriculum pool size.") var pool: Int = 256
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Save a checkpoint every N steps.") var checkpointEvery: Int = 10
    @Option(help: "Prompts JSONL ({\"messages\": [...]} or {\"prompt\": ...}, optional \"answer\"): GRPO on your data instead of the arithmetic task.")
    var data: String?
    @Option(help: "Held-out prompts JSONL: greedy pass rate (or mean reward) before training and every --checkpoint-every steps.") var evalData: String?
    @Option(help: "Reward rule (with --data; repeatable): exact, number, regex:PATTERN, json, json-schema:FILE, length:N, optionally W*RULE.")
    var reward: [String] = []
    @OptionGroup var lora: LoRAOptions

    func validate() throws {
        guard task == "arithmetic" || data != nil else { throw ValidationError("--task: only 'arithmetic' is available") }
        guard GRPOLossType(rawValue: loss) != nil else { throw ValidationError("--loss: use grpo or dr_grpo, got '\(loss)'") }
        guard !ops.isEmpty, ops.allSatisfy({ "+-*".contains($0) }) else { throw ValidationError("--ops: use characters from + - *") }
        _ = try parseDigitRange(digits)
        guard steps > 0, prompts > 0, group >= 2, iterations > 0, maxNewTokens > 0, pool > 0, checkpointEvery > 0 else {
            throw ValidationError("--steps, --prompts, --iterations, --max-new-tokens, --pool, --checkpoint-every must be positive; --group ≥ 2")
        }
        guard beta >= 0, clip > 0, temperature > 0 else { throw ValidationError("--beta ≥ 0, --clip > 0, --temperature > 0") }
    }

    func run() throws {
        if data != nil || (resume && ChatGRPOTrainer.isRun(out)) { return try runChat() }
        let trainer: GRPOTrainer
        if resume {
            trainer = try GRPOCheckpoint.resume(from: out)
            print("resumed \(out) at step \(trainer.step) of \(trainer.settings.steps)")
        } else {
            var s = GRPOSettings()
            s.steps = steps; s.promptsPerStep = prompts; s.groupSize = group; s.learningRate = lr; s.beta = beta; s.clipEpsilon = clip
            s.lossType = GRPOLossType(rawValue: loss) ?? .grpo; s.iterations = iterations; s.temperature = temperature
            s.maxNewTokens = maxNewTokens; s.formatReward = formatReward; s.poolSize = pool; s.seed = seed; s.checkpointEvery = checkpointEvery
            s.task = ArithmeticTask(operations: ops.compactMap { ArithmeticOperation(rawValue: String($0)) }, digits: try parseDigitRange(digits))
            let path = try resolveModelArgument(try DefaultModel.resolve(model))
            trainer = try GRPOTrainer(modelDirectory: path, settings: s)
            print("GRPO from \(path): \(steps) steps of \(prompts) prompts × \(group) completions, loss \(loss), β \(beta), ε \(clip)")
        }
        let s = trainer.settings
        while trainer.step < s.steps {
            let r = try trainer.trainStep()
            FileHandle.standardOutput.write(Data((String(format: "step %d/%d reward %.3f±%.3f acc %.1f%% format %.1f%% KL %.4f clip %.3f len %.1f zero-var %.2f in-band %.2f %.1fs",
                         r.step, s.steps, r.rewardMean, r.rewardStd, r.accuracy * 100, r.formatRate * 100, r.kl, r.clipFraction,
                         r.completionLength, r.zeroVarianceGroups, r.poolInBand, r.seconds) + "\n").utf8))
            if r.step % s.checkpointEvery == 0 || r.step == s.steps { try GRPOCheckpoint.save(trainer, to: out) }
        }
        print("checkpoint in \(out)")
    }
    /// GRPO on the user's prompts and rewards (`ChatGRPOTrainer`).
    func runChat() throws {
        func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        let trainer: ChatGRPOTrainer
        if resume {
            trainer = try ChatGRPOTrainer.resume(from: out)
            say("resumed \(out) at step \(trainer.step) of \(trainer.settings.steps)")
        } else {
            trainer = try newChatTrainer()
            let s = trainer.settings
            say("GRPO on \(trainer.prompts.count) prompts from \(s.model)\(s.lora.map { " (LoRA rank \($0.rank))" } ?? ""): \(steps) steps of \(prompts) × \(group), rewards \(s.rewards.joined(separator: " + ")), β \(beta)")
            if !trainer.evalPrompts.isEmpty {
                say(String(format: "held-out score before: %.3f (%d prompts)", try trainer.evaluate(trainer.evalPrompts), trainer.evalPrompts.count))
            }
        }
        let s = trainer.settings
        while trainer.step < s.steps {
            let r = try trainer.trainStep()
            var line = String(format: "step %d/%d reward %.3f±%.3f", r.step, s.steps, r.rewardMean, r.rewardStd)
            if let pass = r.passRate { line += String(format: " pass %.1f%%", pass * 100) }
            line += String(format: " KL %.4f len %.1f zero-var %.2f %.1fs", r.kl, r.completionLength, r.zeroVarianceGroups, r.seconds)
            if r.step % s.checkpointEvery == 0 || r.step == s.steps {
                if !trainer.evalPrompts.isEmpty { line += String(format: " held-out %.3f", try trainer.evaluate()) }
                try trainer.save(to: out)
            }
            say(line)
        }
        say(s.lora == nil ? "checkpoints in \(out): kujira chat --model \(out)" : "checkpoints in \(out): kujira chat --model \(s.model) --lora \(out)")
    }

    /// A fresh `ChatGRPOTrainer` from the options.
    func newChatTrainer() throws -> ChatGRPOTrainer {
        guard let model, let data else { throw ValidationError("--model and --data are required for GRPO on your prompts") }
        var s = ChatGRPOSettings()
        s.model = try resolveModelArgument(model); s.data = data; s.evalData = evalData
        s.rewards = reward.isEmpty ? ["exact"] : reward
        s.steps = steps; s.promptsPerStep = prompts; s.groupSize = group; s.learningRate = lr; s.beta = beta; s.clipEpsilon = clip
        s.lossType = GRPOLossType(rawValue: loss) ?? .grpo; s.temperature = temperature; s.maxNewTokens = maxNewTokens; s.seed = seed
        s.checkpointEvery = checkpointEvery
        s.lora = lora.settings
        return try ChatGRPOTrainer(settings: s)
    }
}
