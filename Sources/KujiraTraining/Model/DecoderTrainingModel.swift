import Foundation
import KujiraFormats
import KujiraModels
import KujiraTensor

/// Loss of one training pass (no gradients).
public struct TrainingLoss: Sendable, Equatable {
    /// Mean cross-entropy over the counted targets.
    public var loss: Double
    /// Targets that counted (not −1).
    public var tokens: Int
}

/// What one forward + backward pass optimises besides the main head's cross-entropy.
public struct LossSettings: Sendable {
    /// Weight λ of the multi-token-prediction loss (used when the model has an MTP module; 0 skips the module's pass).
    public var mtpWeight: Float
    /// Weight α of the sequence-wise balance loss of every MoE layer (0: off).
    public var balanceAlpha: Float
    /// Copy the logits into the result (tests, evaluation).
    public var keepLogits: Bool
    /// Replaces the main head's mean cross-entropy by an objective over the targets' log-probabilities (GRPO).
    public var tokenObjective: TokenObjective?
    /// Multiplies the summed cross-entropy's gradient (default 1/count: the mean; gradient accumulation passes
    /// 1/total over its micro-batches). The MTP term's gradient uses λ times the same per-token weight.
    public var gradientScale: Double?

    public init(mtpWeight: Float = 0, balanceAlpha: Float = 0, keepLogits: Bool = false, tokenObjective: TokenObjective? = nil,
                gradientScale: Double? = nil) {
        self.mtpWeight = mtpWeight; self.balanceAlpha = balanceAlpha; self.keepLogits = keepLogits
        self.tokenObjective = tokenObjective; self.gradientScale = gradientScale
    }
}

/// Loss terms and statistics of one forward + backward pass.
public struct PassResult: Sendable {
    /// Total: main loss + λ·MTP loss + balance loss.
    public var loss: Double
    /// Mean cross-entropy of logits[r] vs targets[r] over the counted rows (or the token objective's loss).
    public var mainLoss: Double
    /// Targets that counted (not −1).
    public var tokens: Int
    /// Mean cross-entropy of the MTP head (predicting the token after the target); nil without an MTP pass.
    public var mtpLoss: Double?
    public var balanceLoss: Double
    /// Tokens routed to each expert, per MoE layer (in layer order, the MTP block last).
    public var expertLoads: [[Int]]
    /// Logits (rows, vocab) of the main head and (batch·(length−1), vocab) of the MTP head, when `keepLogits`.
    public var logits: [Float]?
    public var mtpLogits: [Float]?
}

/// Any registry architecture whose blocks have training passes (`llama`, `qwen2`, `qwen3`, `qwen3_moe`, `deepseek_v2`/`v3`): the parameters live in
/// one `ParameterStore`, and the model the architecture file builds over that store — the inference blocks, reading
/// the parameters in place — runs the forward and backward passes (`DecoderStack.trainingForward`). There is no
/// second definition of any block here.
///
/// With LoRA (`lora(path:config:seed:)`) the store holds only the adapters' A and B (PEFT's names); the base weights
/// stay as loaded — BF16, FP8 or a quantized GGUF, memory-mapped — and are frozen: the model is built over an
/// `AdaptedWeightStore` whose adapters view the store, so each optimizer step is seen without a rebuild.
public final class DecoderTrainingModel: @unchecked Sendable {
    public let config: ModelConfig
    public let parameters: ParameterStore
    /// What the blocks are built over: `parameters` itself (full fine-tuning) or the base weights with adapters.
    let weights: any WeightStore
    /// The adapter settings when only LoRA adapters train.
    public let lora: LoRAConfig?
    /// The adapters by base weight name (LoRA), viewing `parameters`.
    public let adapters: [String: LowRankAdapter]
    /// The inference model over `weights`; rebuilt by `refresh()` after full fine-tuning changes the parameters (norms
    /// and biases are copied at build, matrices are read in place).
    public private(set) var stack: DecoderStack
    /// The same blocks as a `LanguageModel` (KV caches, sampling: GRPO's rollouts, evaluation).
    public private(set) var inference: any LanguageModel
    public var vocabSize: Int { stack.vocabSize }

    init(config: ModelConfig, parameters: ParameterStore, weights: any WeightStore, lora: LoRAConfig?, adapters: [String: LowRankAdapter]) throws {
        TrainingMemory.keepFreedMemory()
        self.config = config
        self.parameters = parameters
        self.weights = weights
        self.lora = lora
        self.adapters = adapters
        (inference, stack) = try Self.build(config: config, weights: weights)
        try stack.checkTrainable()
    }

    /// A model with freshly laid-out (zero) parameters for `config`. The multi-token-prediction module (layer
    /// `num_hidden_layers`, DeepSeek-V3) trains only with `trainMTP` (training from scratch); fine-tuning freezes it.
    public convenience init(config: ModelConfig, trainMTP: Bool = false) throws {
        let parameters = ParameterStore(layout: try TrainingLayout.items(config))
        if !trainMTP, let layers = try? config.int("num_hidden_layers") {
            parameters.frozen = Set(parameters.entries.map(\.name).filter { $0.hasPrefix("model.layers.\(layers).") })
        }
        try self.init(config: config, parameters: parameters, weights: parameters, lora: nil, adapters: [:])
        if trainMTP { try multiTokenPrediction?.checkTrainable() }
    }

    /// LoRA on the model at `path`: an adapter (A uniform in ±1/√in as PEFT initialises it, B zero) on every linear
    /// weight whose module name is in `lora.targetModules`; only the adapters train.
    public static func lora(path: String, config lora: LoRAConfig, seed: UInt64) throws -> DecoderTrainingModel {
        let (config, base) = try ModelRegistry.open(CheckpointDirectory.modelDirectory(path))
        for target in lora.targetModules where !LoRAConfig.supportedModules.contains(target) {
            throw TrainingError.unsupported("LoRA target '\(target)' (supported: \(LoRAConfig.supportedModules.sorted().joined(separator: ", ")))")
        }
        var items: [TrainingLayout.Item] = [], targets: [(weight: String, rows: Int, cols: Int)] = []
        for entry in try ParameterLayout.entries(for: config) where entry.shape.count == 2 && entry.name.hasSuffix(".weight") {
            let module = entry.name.dropLast(".weight".count)
            guard let last = module.split(separator: ".").last, lora.targetModules.contains(String(last)), !module.contains(".experts.") else { continue }
            let names = PEFTAdapter.tensorNames(forWeight: entry.name)
            items.append((names.a, [lora.rank, entry.shape[1]], .matrix))
            items.append((names.b, [entry.shape[0], lora.rank], .matrix))
            targets.append((entry.name, entry.shape[0], entry.shape[1]))
        }
        guard !targets.isEmpty else { throw TrainingError.unsupported("LoRA: no linear weight of '\(try config.modelType)' matches \(lora.targetModules)") }
        let store = ParameterStore(layout: items)
        var random = TrainingRandom(seed: seed)
        var adapters: [String: LowRankAdapter] = [:]
        for target in targets {
            let names = PEFTAdapter.tensorNames(forWeight: target.weight)
            let bound = 1 / Float(target.cols).squareRoot()
            try store.setValues(names.a, (0..<(lora.rank * target.cols)).map { _ in Float(random.uniform() * 2 - 1) * bound })
            adapters[target.weight] = LowRankAdapter(a: try store.tensor(names.a), b: try store.tensor(names.b), scale: lora.scale,
                                                     aName: names.a, bName: names.b)
        }
        let adapted = AdaptedWeightStore(base: base, adapters: adapters)
        let model = try DecoderTrainingModel(config: config, parameters: store, weights: adapted, lora: lora, adapters: adapters)
        try adapted.checkAllApplied(adapterPath: "LoRA targets")
        return model
    }

    /// Loads a model directory (config.json + safetensors, or a run directory's newest checkpoint) or a GGUF file;
    /// every tensor is decoded to float32.
    public convenience init(path: String, trainMTP: Bool = false) throws {
        let (config, weights) = try ModelRegistry.open(CheckpointDirectory.modelDirectory(path))
        try self.init(config: config, trainMTP: trainMTP)
        try parameters.load(from: weights)
        try refresh()
    }

    static func build(config: ModelConfig, weights: any WeightStore) throws -> (any LanguageModel, DecoderStack) {
        let model = try ModelRegistry.build(config: config, weights: weights)
        guard let stack = (model as? any DecoderStackModel)?.stack else {
            throw TrainingError.unsupported("model_type '\(try config.modelType)' (its model is not one decoder stack)")
        }
        return (model, stack)
    }

    /// Rebuilds the blocks over the current parameters (after an optimizer step or a load).
    public func refresh() throws {
        guard lora == nil else { return }  // adapters are read in place; the base never changes
        (inference, stack) = try Self.build(config: config, weights: weights)
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

    /// The multi-token-prediction module the architecture built (DeepSeek-V3 checkpoints with one), reading the parameters.
    public var multiTokenPrediction: MultiTokenPrediction? { (inference as? any DecoderStackModel)?.multiTokenPrediction }
    public var maxPositions: Int { inference.maxPositions }

    /// Forward and backward over `tokens`: adds ∂loss/∂θ to `parameters.grads` (call `zeroGradients` first) for the loss
    /// the settings name — by default the mean cross-entropy of logits[r] vs targets[r] over rows with a target ≥ 0;
    /// with `mtpWeight` > 0 plus λ × the MTP head's mean cross-entropy against targets[r + 1] (the token after the
    /// target, within each sequence); with `balanceAlpha` > 0 plus every MoE layer's sequence-wise balance loss.
    /// Returns the terms and each MoE layer's expert loads.
    @discardableResult
    public func forwardBackward(tokens: [Int], targets: [Int], shape: TrainingShape, settings: LossSettings = LossSettings()) throws -> PassResult {
        try validate(tokens: tokens, targets: targets, shape: shape)
        let pass = TrainingShape(batch: shape.batch, length: shape.length, balanceAlpha: settings.balanceAlpha)
        let count = targets.filter { $0 >= 0 }.count
        let (logits, pullback) = try stack.trainingForward(tokens: tokens, shape: pass)
        let keptLogits = settings.keepLogits ? logits.array : nil
        let perToken = settings.gradientScale ?? 1 / Double(max(1, count))
        let mainLoss: Double
        if let objective = settings.tokenObjective {
            mainLoss = try CrossEntropy.objectiveForwardBackward(logits: logits.pointer, targets: targets, vocab: vocabSize, objective: objective)
        } else {
            mainLoss = CrossEntropy.forwardBackward(logits: logits.pointer, targets: targets, vocab: vocabSize, scale: Float(perToken)) / Double(max(1, count))
        }
        var result = PassResult(loss: 0, mainLoss: mainLoss, tokens: count, mtpLoss: nil, balanceLoss: pullback.balanceLoss,
                                expertLoads: pullback.expertLoads, logits: keptLogits, mtpLogits: nil)
        var dHidden: FloatBuffer?
        if let mtp = multiTokenPrediction, settings.mtpWeight > 0, shape.length >= 2 {
            let (mtpLogits, mtpPullback) = try mtp.trainingForward(mainHidden: pullback.finalHidden, tokens: tokens, shape: pass)
            let T = shape.length
            var mtpTargets = [Int](repeating: -1, count: shape.batch * (T - 1))
            for b in 0..<shape.batch { for i in 0..<(T - 2) { mtpTargets[b * (T - 1) + i] = targets[b * T + i + 1] } }
            let mtpCount = mtpTargets.filter { $0 >= 0 }.count
            let scale = Double(settings.mtpWeight) * (settings.gradientScale ?? 1 / Double(max(1, mtpCount)))
            if settings.keepLogits { result.mtpLogits = mtpLogits.array }
            result.mtpLoss = CrossEntropy.forwardBackward(logits: mtpLogits.pointer, targets: mtpTargets, vocab: vocabSize, scale: Float(scale))
                / Double(max(1, mtpCount))
            dHidden = try mtpPullback.backward(mtpLogits, into: parameters)
            result.balanceLoss += mtpPullback.balanceLoss
            if let load = mtpPullback.expertLoad { result.expertLoads.append(load) }
        }
        try pullback.backward(logits, finalHiddenGradient: dHidden, into: parameters)
        result.loss = mainLoss + Double(settings.mtpWeight) * (result.mtpLoss ?? 0) + result.balanceLoss
        return result
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

extension DecoderTrainingModel {
    /// LoRA on the model at `path`, starting from the PEFT adapter in `adapterDirectory` (its rank, alpha, targets and
    /// A/B values).
    public static func lora(path: String, adapterDirectory: String) throws -> DecoderTrainingModel {
        let adapter = try PEFTAdapter(directory: adapterDirectory)
        let targets = Set(adapter.adapters.keys.compactMap { $0.split(separator: ".").dropLast().last.map(String.init) })
        var config = adapter.config
        config.targetModules = targets.sorted()
        let model = try lora(path: path, config: config, seed: 0)
        guard Set(model.adapters.keys) == Set(adapter.adapters.keys) else {
            let missing = Set(model.adapters.keys).symmetricDifference(adapter.adapters.keys).sorted().prefix(3)
            throw LoRAError(path: adapterDirectory, detail: "adapter modules differ from the model's \(config.targetModules) weights: \(missing.joined(separator: ", "))")
        }
        for (weight, loaded) in adapter.adapters {
            try model.parameters.setValues(loaded.aName, loaded.a.toFloatArray())
            try model.parameters.setValues(loaded.bName, loaded.b.toFloatArray())
            _ = weight
        }
        return model
    }

    /// Writes the adapters in PEFT's format (`adapter_config.json` + `adapter_model.safetensors`) into `directory`;
    /// Python `peft` loads them onto the transformers model (`PeftModel.from_pretrained`).
    public func writeAdapter(to directory: String, baseModel: String) throws {
        guard var lora else { throw TrainingError.invalidInput("not a LoRA model") }
        lora.baseModel = baseModel
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try AtomicFile.write(lora.json().serialized(), to: (directory as NSString).appendingPathComponent(PEFTAdapter.configFile))
        try SafeTensorsWriter.write(parameters.tensors(gradients: false), metadata: ["format": "pt"],
                                    to: (directory as NSString).appendingPathComponent(PEFTAdapter.weightsFile))
    }
}
