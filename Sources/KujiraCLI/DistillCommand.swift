import ArgumentParser
import Foundation
import KujiraFormats
import KujiraGeneration
import KujiraModels
import KujiraTraining

/// `kujira distill`: rejection-sampled teacher traces (verified correct only) → SFT of a student from scratch.
struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distil a teacher into a student: sample solutions, keep only verified-correct ones, train the student on them.",
        discussion: #"Example: kujira distill --student-config docs/configs/arithmetic-300k.json --out runs/student --steps 600"#)

    @Option(help: "Teacher model directory (default: $KUJIRA_MODEL, else the embedded model).") var teacher: String?
    @Option(help: "Student config.json (deepseek_v3).") var studentConfig: String
    @Option(help: "Output directory (student checkpoint, traces.json).") var out: String
    @Option(help: "Operations: any of + - *.") var ops: String = "+-"
    @Option(help: "Operand digit counts, e.g. 1-3.") var digits: String = "1-3"
    @Option(help: "Training-split prompts the teacher solves.") var prompts: Int = 1000
    @Option(help: "Teacher samples per prompt.") var samples: Int = 2
    @Option(help: "Teacher sampling temperature.") var temperature: Float = 0.7
    @Flag(help: "Baseline: train on the verified answers only (the reasoning removed).") var answersOnly = false
    @Option(help: "Student optimizer steps.") var steps: Int = 600
    @Option(help: "Sequences per step.") var batch: Int = 32
    @Option(help: "Tokens per sequence.") var seq: Int = 64
    @Option(help: "Peak learning rate.") var lr: Float = 3e-3
    @Option(help: "Final learning rate.") var minLr: Float = 3e-4
    @Option(help: "Warmup steps.") var warmup: Int = 50
    @Option(help: "Evaluate held-out exact match every N steps (0: never).") var evalEvery: Int = 200
    @Option(help: "Held-out problems per evaluation.") var evalProblems: Int = 200
    @Option(help: "Random seed (student init, data, teacher sampling).") var seed: UInt64 = 1

    func validate() throws {
        guard !ops.isEmpty, ops.allSatisfy({ "+-*".contains($0) }) else { throw ValidationError("--ops: use characters from + - *") }
        _ = try parseDigitRange(digits)
        guard prompts > 0, samples > 0, steps > 0, batch > 0, seq >= 8, evalEvery >= 0, evalProblems > 0 else {
            throw ValidationError("--prompts, --samples, --steps, --batch, --eval-problems must be positive, --seq ≥ 8")
        }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be ≥ 0") }
    }

    func run() throws {
        let task = ArithmeticTask(operations: ops.compactMap { ArithmeticOperation(rawValue: String($0)) }, digits: try parseDigitRange(digits))
        let teacherPath = try resolveModelArgument(try DefaultModel.resolve(teacher))
        var rng = TrainingRandom(seed: seed &+ 0xD157)
        let problems = (0..<prompts).map { _ in task.sample(&rng) }
        let started = Date()
        let collection = try Distillation.collect(teacher: try ModelRegistry.load(directory: teacherPath), problems: problems, samples: samples,
                                                  temperature: temperature, seed: seed)
        FileHandle.standardOutput.write(Data((String(format: "teacher %@: %d samples, %d verified (%.1f%%), %d distinct traces covering %d of %d prompts, %.0fs",
                     teacherPath, collection.sampled, collection.verified, Double(collection.verified) / Double(max(1, collection.sampled)) * 100,
                     collection.examples.count, collection.promptsCovered, prompts, Date().timeIntervalSince(started)) + "\n").utf8))
        guard !collection.examples.isEmpty else { throw ValidationError("the teacher produced no verified-correct solution") }
        let corpus = answersOnly ? Distillation.answersOnly(collection.examples) : collection.examples
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted]
        try AtomicFile.write(try encoder.encode(corpus), to: (out as NSString).appendingPathComponent("traces.json"))
        var s = TrainingSettings()
        s.steps = steps; s.batch = batch; s.length = seq; s.seed = seed
        s.optimizer.learningRate = lr; s.optimizer.minLearningRate = minLr; s.optimizer.warmupSteps = warmup; s.optimizer.totalSteps = steps
        s.evalEvery = evalEvery; s.evalProblems = evalProblems; s.checkpointEvery = max(1, steps / 4)
        s.task = task
        s.corpus = corpus
        let trainer = try Trainer(config: try ModelConfig(path: studentConfig), settings: s)
        let total = trainer.model.parameters.entries.filter(\.trainable).reduce(0) { $0 + $1.count }
        print("student: \(total) parameters, \(answersOnly ? "answers only" : "teacher traces"), \(steps) steps of \(batch) × \(seq)")
        try TrainCommand.runLoop(trainer, out: out, logEvery: 20)
    }
}
