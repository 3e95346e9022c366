import Foundation
import KujiraFormats
import KujiraModels
import KujiraTensor

/// Loss of one training pass.
public struct TrainingLoss: Sendable, Equatable {
    /// Mean cross-entropy over the counted targets.
    public var loss: Double
    /// Targets that counted (not −1).
    public var tokens: Int
}

/// Any registry architecture whose blocks have training passes (`llama`, `qwen2`, `qwen3`): the parameters live in
/// one `ParameterStore`, and the model the architecture file builds over that store — the inference blocks, reading
/// the parameters in place — runs the forward and backward passes (`DecoderStack.trainingForward`). There is no
/// second definition of any block here.
public final class DecoderTrainingModel: @unchecked Sendable {
    public let config: ModelConfig
    public let parameters: ParameterStore
    /// The inference model over `parameters`; rebuilt by `refresh()` after the parameters change (norms and biases
    /// are copied at build, matrices are read in place).
    public private(set) var stack: DecoderStack
    public var vocabSize: Int { stack.vocabSize }

    /// A model with freshly laid-out (zero) parameters for `config`.
    public init(config: ModelConfig) throws {
        TrainingMemory.keepFreedMemory()
        self.config = config
        parameters = ParameterStore(layout: try TrainingLayout.items(config, stackExperts: false), keepsTransposes: false)
        stack = try Self.build(config: config, parameters: parameters)
    }

    /// Loads a model directory (config.json + safetensors, or a run directory's newest checkpoint) or a GGUF file;
    /// every tensor is decoded to float32.
    public convenience init(path: String) throws {
        let (config, weights) = try ModelRegistry.open(CheckpointDirectory.modelDirectory(path))
        try self.init(config: config)
        try parameters.load(from: weights)
        try refresh()
    }

    /// Whether `config`'s architecture can be trained by this model (every block has a training pass).
    public static func supports(_ config: ModelConfig) -> Bool {
        guard let type = try? config.modelType else { return false }
        return ["llama", "qwen2", "qwen3"].contains(type)
    }

    static func build(config: ModelConfig, parameters: ParameterStore) throws -> DecoderStack {
        let model = try ModelRegistry.build(config: config, weights: parameters)
        guard let stack = (model as? any DecoderStackModel)?.stack else {
            throw TrainingError.unsupported("model_type '\(try config.modelType)' (its model is not one decoder stack)")
        }
        return stack
    }

    /// Rebuilds the blocks over the current parameters (after an optimizer step or a load).
    public func refresh() throws {
        stack = try Self.build(config: config, parameters: parameters)
    }

    /// Checks tokens and targets of a pass.
    func validate(tokens: [Int], targets: [Int], shape: TrainingShape) throws {
        guard shape.batch > 0, shape.length >= 1, tokens.count == shape.rows, targets.count == shape.rows else {
            throw TrainingError.invalidInput("need batch × length tokens and targets (got \(tokens.count) and \(targets.count) for \(shape.batch) × \(shape.length))")
        }
        let maxPositions = (try? config.int("max_position_embeddings")) ?? Int.max
        guard shape.length <= maxPositions else {
            throw TrainingError.invalidInput("sequence length \(shape.length) exceeds max_position_embeddings \(maxPositions)")
        }
        for (i, t) in tokens.enumerated() where t < 0 || t >= vocabSize {
            throw TrainingError.invalidInput("token \(t) at position \(i) is outside the vocabulary (0..<\(vocabSize))")
        }
        for (i, t) in targets.enumerated() where t >= vocabSize {
            throw TrainingError.invalidInput("target \(t) at position \(i) is outside the vocabulary (0..<\(vocabSize))")
        }
    }

    /// Next-token targets of `tokens`: tokens[t+1] within each sequence, −1 at each sequence's last position.
    public static func nextTokenTargets(_ tokens: [Int], shape: TrainingShape) -> [Int] {
        var targets = [Int](repeating: -1, count: tokens.count)
        for b in 0..<shape.batch {
            for t in 0..<(shape.length - 1) { targets[b * shape.length + t] = tokens[b * shape.length + t + 1] }
        }
        return targets
    }

    /// Forward and backward over `tokens`: adds ∂loss/∂θ to `parameters.grads` (call `zeroGradients` first), where the
    /// loss is the cross-entropy of logits[r] vs targets[r] over rows with a target ≥ 0, summed and multiplied by
    /// `gradientScale` (default 1/count: the mean; gradient accumulation passes 1/total over its micro-batches).
    /// Returns the mean loss of this pass.
    @discardableResult
    public func forwardBackward(tokens: [Int], targets: [Int], shape: TrainingShape, gradientScale: Double? = nil) throws -> TrainingLoss {
        try validate(tokens: tokens, targets: targets, shape: shape)
        let count = targets.filter { $0 >= 0 }.count
        let (logits, pullback) = try stack.trainingForward(tokens: tokens, shape: shape)
        guard count > 0 else { return TrainingLoss(loss: 0, tokens: 0) }
        let scale = gradientScale ?? 1 / Double(count)
        let sum = CrossEntropy.forwardBackward(logits: logits.pointer, targets: targets, vocab: vocabSize, scale: Float(scale))
        try pullback.backward(logits, into: parameters)
        return TrainingLoss(loss: sum / Double(count), tokens: count)
    }

    /// The mean loss without gradients (evaluation).
    public func loss(tokens: [Int], targets: [Int], shape: TrainingShape) throws -> TrainingLoss {
        try validate(tokens: tokens, targets: targets, shape: shape)
        let count = targets.filter { $0 >= 0 }.count
        guard count > 0 else { return TrainingLoss(loss: 0, tokens: 0) }
        let (logits, _) = try stack.trainingForward(tokens: tokens, shape: shape)
        return TrainingLoss(loss: CrossEntropy.loss(logits: logits.pointer, targets: targets, vocab: vocabSize) / Double(count), tokens: count)
    }
}
