import Foundation
import KujiraFormats
import KujiraModels
import KujiraTensor

/// Settings of a supervised fine-tuning run (saved with every checkpoint).
public struct SFTSettings: Sendable, Codable, Equatable {
    /// The model fine-tuned (a directory or run directory).
    public var model: String = ""
    /// Training and evaluation JSONL files.
    public var data: String = ""
    public var evalData: String?
    public var steps: Int = 100
    /// Sequences per forward pass.
    public var batch: Int = 4
    /// Forward passes whose gradients add up to one optimizer step.
    public var accumulation: Int = 1
    /// Tokens per packed sequence.
    public var length: Int = 512
    public var seed: UInt64 = 1
    public var optimizer = OptimizerSettings()
    /// Evaluate the eval loss every this many steps (0: only at the end, when there is eval data).
    public var evalEvery: Int = 50
    public var checkpointEvery: Int = 50
    /// Checkpoints kept.
    public var keep: Int = 3
    /// Train LoRA adapters only (nil: full fine-tuning).
    public var lora: SFTLoRASettings?
    public init() {}
}

/// LoRA settings of a fine-tuning run.
public struct SFTLoRASettings: Sendable, Codable, Equatable {
    public var rank: Int
    public var alpha: Double
    public var targets: [String]
    public init(rank: Int, alpha: Double, targets: [String]) { self.rank = rank; self.alpha = alpha; self.targets = targets }
    public var config: LoRAConfig { LoRAConfig(rank: rank, alpha: alpha, targetModules: targets) }
}

extension SFTSettings {
    /// The model to train: the full model from `model`, or fresh adapters on it.
    public func makeModel() throws -> DecoderTrainingModel {
        guard let lora else { return try DecoderTrainingModel(path: model) }
        return try DecoderTrainingModel.lora(path: model, config: lora.config, seed: seed)
    }
}

/// One logged fine-tuning step.
public struct SFTRecord: Sendable, Codable, Equatable {
    public var step: Int
    /// Mean cross-entropy over the step's reply tokens.
    public var loss: Double
    public var evalLoss: Double?
    public var learningRate: Float
    public var gradientNorm: Float
    /// Reply tokens (with a loss) and all tokens processed in the step.
    public var targetTokens: Int
    public var tokens: Int
    public var tokensPerSecond: Double
}

/// A supervised fine-tuning run over any trainable architecture: packed chat data, AdamW with warmup + cosine,
/// gradient accumulation, evaluation and history. The data of step s is a function of (seed, s), so a resumed run
/// continues the loss curve of an uninterrupted one exactly.
public final class SFTTrainer: @unchecked Sendable {
    public let model: DecoderTrainingModel
    public let optimizer: AdamW
    public let settings: SFTSettings
    public let schedule: SFTSchedule
    public let evalSequences: [PackedSequence]
    public var history: [SFTRecord]
    public var step: Int { optimizer.step }

    public init(model: DecoderTrainingModel, settings: SFTSettings, schedule: SFTSchedule, evalSequences: [PackedSequence],
                optimizer: AdamW? = nil, history: [SFTRecord] = []) throws {
        guard !schedule.sequences.isEmpty else { throw TrainingError.invalidInput("\(settings.data): no training sequences") }
        guard settings.batch > 0, settings.accumulation > 0, settings.steps > 0 else {
            throw TrainingError.invalidInput("batch, accumulation and steps must be positive")
        }
        self.model = model
        self.settings = settings
        self.schedule = schedule
        self.evalSequences = evalSequences
        self.optimizer = optimizer ?? AdamW(settings: settings.optimizer, parameterCount: model.parameters.count)
        self.history = history
    }

    /// One optimizer step over `batch × accumulation` sequences; the loss is the mean over all their reply tokens.
    @discardableResult
    public func trainStep() throws -> SFTRecord {
        let started = Date()
        let perStep = settings.batch * settings.accumulation
        let sequences = schedule.batch(start: step * perStep, count: perStep)
        let targetTokens = sequences.reduce(0) { $0 + $1.targets.filter { $0 >= 0 }.count }
        model.parameters.zeroGradients()
        var lossSum = 0.0
        for micro in 0..<settings.accumulation {
            let part = sequences[(micro * settings.batch)..<((micro + 1) * settings.batch)]
            let shape = TrainingShape(batch: part.count, length: schedule.length)
            let result = try model.forwardBackward(tokens: part.flatMap(\.tokens), targets: part.flatMap(\.targets), shape: shape,
                                                   settings: LossSettings(gradientScale: 1 / Double(max(1, targetTokens))))
            lossSum += result.mainLoss * Double(result.tokens)
        }
        let (norm, lr) = optimizer.update(model.parameters)
        try model.refresh()
        let seconds = max(Date().timeIntervalSince(started), 1e-9)
        let tokens = perStep * schedule.length
        let record = SFTRecord(step: step, loss: lossSum / Double(max(1, targetTokens)), evalLoss: nil, learningRate: lr, gradientNorm: norm,
                               targetTokens: targetTokens, tokens: tokens, tokensPerSecond: Double(tokens) / seconds)
        history.append(record)
        return record
    }

    /// Mean cross-entropy over every reply token of the eval data (nil without eval data); recorded on the last step.
    @discardableResult
    public func evaluate() throws -> Double? {
        guard !evalSequences.isEmpty else { return nil }
        var sum = 0.0, count = 0
        for start in stride(from: 0, to: evalSequences.count, by: settings.batch) {
            let part = evalSequences[start..<min(evalSequences.count, start + settings.batch)]
            let result = try model.loss(tokens: part.flatMap(\.tokens), targets: part.flatMap(\.targets),
                                        shape: TrainingShape(batch: part.count, length: schedule.length))
            sum += result.loss * Double(result.tokens)
            count += result.tokens
        }
        let loss = count > 0 ? sum / Double(count) : nil
        if let loss, !history.isEmpty { history[history.count - 1].evalLoss = loss }
        return loss
    }
}
