import ArgumentParser
import Foundation
import KujiraTraining

/// `kujira train-mtp`: fits the multi-token-prediction module of a DeepSeek-V3-architecture model to its own greedy
/// output (main model frozen), so `--speculative mtp` has a head to draft with.
struct TrainMTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-mtp",
        abstract: "Fit the MTP module of a DeepSeek-V3-architecture model to the model's own outputs (main model frozen).",
        discussion: """
            The model writes a greedy continuation of every prompt (one per line of --data); the MTP module (layer \
            num_hidden_layers: norms, eh_proj and one decoder block, sharing the model's embedding and head; the stored \
            one if the model has one, unless --fresh) learns to predict the token after next from the frozen model's \
            hidden states. --out gets the model with the module: \
            its weight files hard-linked, the module in model-mtp.safetensors, and mtp_fit.json with the module's \
            top-1 accuracy (what a one-token draft is accepted at) before and after.
            Example: kujira train-mtp --model ~/models/v3-mini --data prompts.txt --out ~/models/v3-mini-mtp && \
            kujira run --model ~/models/v3-mini-mtp --speculative mtp "Hello"
            """)

    @Option(help: "The model: a Hugging Face directory of model_type deepseek_v3 (with or without an MTP module).") var model: String
    @Option(help: "Prompts, one per line.") var data: String
    @Option(help: "Output model directory (must not exist).") var out: String
    @Option(help: "Greedy tokens the model writes after each prompt.") var newTokens: Int = 128
    @Flag(help: "Use the prompts as raw text (default: a user message in the model's chat template).") var raw = false
    @Flag(help: "Start from a fresh module even when the model has one (default: fit the stored module further).") var fresh = false
    @Option(help: "Passes over the sequences (when --steps is not given).") var epochs: Int = 4
    @Option(help: "Optimizer steps (default: --epochs passes).") var steps: Int?
    @Option(help: "Sequences per step.") var batch: Int = 4
    @Option(help: "Hold out every Nth prompt to measure the fit (0: none).") var heldOutEvery: Int = 8
    @Option(help: "Peak learning rate.") var lr: Float = 1e-3
    @Option(help: "Final learning rate of the cosine schedule.") var minLr: Float = 1e-4
    @Option(help: "Warmup steps.") var warmup: Int = 10
    @Option(help: "Random seed (module init, data order).") var seed: UInt64 = 1
    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard newTokens > 0, epochs > 0, batch > 0, (steps ?? 1) > 0, heldOutEvery >= 0 else {
            throw ValidationError("--new-tokens, --epochs, --batch and --steps must be positive, --held-out-every ≥ 0")
        }
        guard lr > 0, lr.isFinite, minLr >= 0, minLr <= lr, warmup >= 0 else {
            throw ValidationError("--lr must be positive, --min-lr between 0 and --lr, --warmup ≥ 0")
        }
        guard !FileManager.default.fileExists(atPath: out) else { throw ValidationError("--out \(out) exists; choose a new directory") }
    }

    func run() throws {
        threads.apply()
        var s = MTPFitSettings()
        func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
        s.model = absolute(model); s.prompts = absolute(data); s.newTokens = newTokens; s.chat = !raw
        s.fresh = fresh; s.epochs = epochs; s.steps = steps; s.batch = batch; s.heldOutEvery = heldOutEvery; s.seed = seed
        s.optimizer = OptimizerSettings(learningRate: lr, minLearningRate: minLr, warmupSteps: warmup, weightDecay: 0)
        let prompts = try MTPFitter.readPrompts(s.prompts)
        let fitter = try MTPFitter(settings: s)
        SFTCommand.say("fitting \(fitter.startedFromStoredModule ? "the stored" : "a fresh") MTP module of \(fitter.trainedParameters) parameters to \(model)'s greedy output on \(prompts.count) prompts, threads \(threads.effectiveThreads)")
        let generationStart = Date()
        try fitter.prepare(prompts: prompts, progress: { done, total in
            if done == total || done % 8 == 0 { SFTCommand.say(String(format: "generated %d/%d (%.0f s)", done, total, Date().timeIntervalSince(generationStart))) }
        }, stage: { SFTCommand.say($0) })
        let generationSeconds = Date().timeIntervalSince(generationStart)
        let trainBefore = try fitter.score(heldOut: false), heldOutBefore = try fitter.score(heldOut: true)
        SFTCommand.say("\(fitter.trainSequences.count) training sequences, \(fitter.heldOutSequences.count) held out; \(Self.describe(trainBefore, heldOutBefore)) before fitting")
        let trainingStart = Date()
        let total = fitter.totalSteps
        while fitter.step < total {
            let loss = try fitter.trainStep()
            if fitter.step == total || fitter.step % 10 == 0 || fitter.step == 1 {
                SFTCommand.say(String(format: "step %d/%d loss %.4f (%.1f s)", fitter.step, total, loss, Date().timeIntervalSince(trainingStart)))
            }
        }
        let trainingSeconds = Date().timeIntervalSince(trainingStart)
        let trainAfter = try fitter.score(heldOut: false), heldOutAfter = try fitter.score(heldOut: true)
        SFTCommand.say("\(Self.describe(trainAfter, heldOutAfter)) after fitting")
        let report = MTPFitReport(settings: s, trainSequences: fitter.trainSequences.count, heldOutSequences: fitter.heldOutSequences.count,
                                  trainTokens: trainAfter?.tokens ?? 0, heldOutTokens: heldOutAfter?.tokens ?? 0, steps: total,
                                  trainBefore: trainBefore, trainAfter: trainAfter, heldOutBefore: heldOutBefore, heldOutAfter: heldOutAfter,
                                  losses: fitter.losses, generationSeconds: generationSeconds, trainingSeconds: trainingSeconds)
        try fitter.write(to: out, report: report)
        SFTCommand.say("wrote \(out) (the module in \(MTPFitter.moduleFile), the report in \(MTPFitter.reportFile)); try: kujira run --model \(out) --speculative mtp \"...\"")
    }

    static func describe(_ train: MTPFitScore?, _ heldOut: MTPFitScore?) -> String {
        func one(_ score: MTPFitScore?, _ name: String) -> String? {
            score.map { String(format: "%@ accuracy %.1f%% loss %.3f over %d tokens", name, $0.accuracy * 100, $0.loss, $0.tokens) }
        }
        return [one(train, "training"), one(heldOut, "held-out")].compactMap { $0 }.joined(separator: ", ")
    }
}
