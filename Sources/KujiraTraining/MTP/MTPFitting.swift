import Foundation
import KujiraFormats
import KujiraGeneration
import KujiraModels
import KujiraTensor

/// Settings of `kujira train-mtp` (saved in the output directory's `mtp_fit.json`).
public struct MTPFitSettings: Sendable, Codable, Equatable {
    /// The model directory whose multi-token-prediction module is fitted.
    public var model: String = ""
    /// Prompts, one per line.
    public var prompts: String = ""
    /// Greedy tokens generated after each prompt: the text the module learns to predict.
    public var newTokens: Int = 128
    /// Render each prompt with the model's chat template as a user message (false: raw text).
    public var chat: Bool = true
    /// Passes over the training sequences (when `steps` is nil).
    public var epochs: Int = 4
    /// Optimizer steps; nil: `epochs` passes.
    public var steps: Int?
    /// Sequences per step.
    public var batch: Int = 4
    /// Start from a fresh module even when the checkpoint has one.
    public var fresh: Bool = false
    /// Every `heldOutEvery`-th prompt is held out to measure the fit (0: none; only when there are at least that many).
    public var heldOutEvery: Int = 8
    public var seed: UInt64 = 1
    /// Bytes the main model's hidden states may take (nil: half of the machine's memory); more is refused before computing.
    public var hiddenStateBudget: UInt64?
    public var optimizer = OptimizerSettings(learningRate: 1e-3, minLearningRate: 1e-4, warmupSteps: 10, weightDecay: 0)
    public init() {}
}

extension OptimizerSettings {
    /// AdamW settings with the given schedule ends and weight decay, the other fields at their defaults.
    public init(learningRate: Float, minLearningRate: Float, warmupSteps: Int, weightDecay: Float) {
        self.init()
        self.learningRate = learningRate; self.minLearningRate = minLearningRate
        self.warmupSteps = warmupSteps; self.weightDecay = weightDecay
    }
}

/// A prompt and the model's greedy continuation: the module learns to predict the continuation's tokens.
public struct MTPFitSequence: Sendable, Equatable {
    public var tokens: [Int]
    public var promptLength: Int
    public init(tokens: [Int], promptLength: Int) { self.tokens = tokens; self.promptLength = promptLength }
}

/// How well the module predicts the token after next on a set of sequences.
public struct MTPFitScore: Sendable, Codable, Equatable {
    /// Mean cross-entropy over the predicted continuation tokens.
    public var loss: Double
    /// Share of those tokens that are the module's top choice: what a one-token MTP draft gets accepted at.
    public var accuracy: Double
    public var tokens: Int
}

/// Fits DeepSeek-V3's multi-token-prediction module (layer `num_hidden_layers`) to the model's own greedy output with
/// the main model frozen, so a checkpoint without a trained MTP head gets one for `--speculative mtp`.
///
/// The main model is read as stored (BF16 or FP8, memory-mapped); only the module's own tensors (norms, `eh_proj`,
/// its decoder block) are float32 parameters, started from the stored module or from N(0, initializer_range). The main
/// model's final hidden states of every sequence are computed once, so each step runs only the module's forward and
/// backward; the embedding and output head it shares with the main model stay frozen.
public final class MTPFitter: @unchecked Sendable {
    /// The model's config with `num_nextn_predict_layers` = 1.
    public let config: ModelConfig
    /// The model directory the fitter read.
    public let directory: String
    /// The module's own tensors (the only parameters trained).
    public let parameters: ParameterStore
    public let model: DecoderTrainingModel
    public let settings: MTPFitSettings
    /// Made when the data is known (its schedule spans `totalSteps`).
    public private(set) var optimizer: AdamW
    /// `model.layers.<num_hidden_layers>.`
    public let prefix: String
    /// Whether the model had a module, which the fit starts from (else from N(0, initializer_range)).
    public let startedFromStoredModule: Bool
    var train: [MTPFitSequence] = [], heldOut: [MTPFitSequence] = []
    /// Each sequence's main-model final hidden states (length, hidden), padded to `length`.
    var trainHidden: [[Float]] = [], heldOutHidden: [[Float]] = []
    /// The padded sequence length (the longest sequence).
    public private(set) var length = 0
    public private(set) var losses: [Double] = []
    var order: [Int] = []
    var random: TrainingRandom

    public var trainSequences: [MTPFitSequence] { train }
    public var heldOutSequences: [MTPFitSequence] { heldOut }
    public var step: Int { optimizer.step }

    /// Opens the model at `settings.model` and lays out its module: the stored one when the checkpoint has one (an
    /// untrained or a trained head, fitted further) unless `settings.fresh`, else a fresh one. Throws for architectures that build no module (the architecture file decides, not a list here).
    public init(settings: MTPFitSettings) throws {
        self.settings = settings
        directory = CheckpointDirectory.modelDirectory(settings.model)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TrainingError.unsupported("train-mtp on \(settings.model): it needs a Hugging Face model directory (config.json and safetensors weights)")
        }
        let (original, base) = try ModelRegistry.open(directory)
        let type = try original.modelType
        let layers = try original.int("num_hidden_layers")
        guard try original.int("num_nextn_predict_layers", default: 0) <= 1 else {
            throw TrainingError.unsupported("train-mtp on \(settings.model): num_nextn_predict_layers > 1 (one module of depth 1 is fitted)")
        }
        let prefix = "model.layers.\(layers)."
        self.prefix = prefix
        var values = original.values
        values["num_nextn_predict_layers"] = .integer(1)
        config = ModelConfig(values: values, path: original.path)
        let own = try TrainingLayout.items(config).filter { $0.name.hasPrefix(prefix) }
        parameters = ParameterStore(layout: own)
        random = TrainingRandom(seed: settings.seed)
        startedFromStoredModule = !settings.fresh && base.tensorNames.contains { Self.isReplaced($0, prefix: prefix) }
        if startedFromStoredModule {
            try parameters.load(from: base)
        } else {
            parameters.initialize(std: Float(try config.float("initializer_range", default: 0.02)), rng: &random)
        }
        model = try DecoderTrainingModel(config: config, parameters: parameters, weights: OverlayWeightStore(base: base, overlay: parameters),
                                         lora: nil, adapters: [:])
        guard let module = model.multiTokenPrediction else {
            throw TrainingError.unsupported("train-mtp on model_type '\(type)': its architecture has no multi-token-prediction module (DeepSeek-V3's has)")
        }
        try module.checkTrainable()
        optimizer = AdamW(settings: settings.optimizer, parameterCount: parameters.count)
    }

    /// Whether a stored tensor is the module's own (replaced by the fit), not the embedding or head copy it shares.
    static func isReplaced(_ name: String, prefix: String) -> Bool {
        name.hasPrefix(prefix) && name != prefix + MultiTokenPrediction.Names.embedding && name != prefix + MultiTokenPrediction.Names.head
    }

    /// The module's parameter count (what trains).
    public var trainedParameters: Int { parameters.count }

    /// Prompts of a text file: one per non-empty line. Throws naming the file when it has none.
    public static func readPrompts(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError.invalidInput("\(path): cannot read the prompts file") }
        guard let text = String(data: data, encoding: .utf8) else { throw TrainingError.invalidInput("\(path): not UTF-8 text") }
        let prompts = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !prompts.isEmpty else { throw TrainingError.invalidInput("\(path): no prompts (one per line)") }
        return prompts
    }

    /// Generates the model's greedy continuation of every prompt (the model as stored, no speculation), holds out
    /// every `heldOutEvery`-th, and computes the main model's hidden states of all of them. `progress` sees
    /// (prompts done, prompts), `stage` a line before the hidden states are computed.
    public func prepare(prompts: [String], progress: (Int, Int) -> Void = { _, _ in }, stage: (String) -> Void = { _ in }) throws {
        let pipeline = try TextPipeline.load(path: directory, speculation: .off)
        let generator = Generator(model: pipeline.model)
        let limit = min(pipeline.contextLength, model.maxPositions)
        var sequences: [MTPFitSequence] = []
        for (i, text) in prompts.enumerated() {
            let prompt = settings.chat ? try pipeline.chatPrompt(messages: [["role": "user", "content": .string(text)]]) : pipeline.completionPrompt(text)
            guard prompt.tokens.count + 2 <= limit else {
                throw TrainingError.invalidInput("\(settings.prompts): prompt \(i + 1) has \(prompt.tokens.count) tokens; the context holds \(limit)")
            }
            let output = try generator.generate(prompt: prompt.tokens, maxTokens: min(settings.newTokens, limit - prompt.tokens.count),
                                                sampling: SamplingConfiguration(temperature: 0), stopTokens: pipeline.stopTokens)
            sequences.append(MTPFitSequence(tokens: prompt.tokens + output, promptLength: prompt.tokens.count))
            progress(i + 1, prompts.count)
        }
        let every = settings.heldOutEvery
        let holdOut = every > 1 && sequences.count >= every
        train = sequences.enumerated().filter { !holdOut || ($0.offset + 1) % every != 0 }.map(\.element)
        heldOut = holdOut ? sequences.enumerated().filter { ($0.offset + 1) % every == 0 }.map(\.element) : []
        length = sequences.map(\.tokens.count).max() ?? 0
        stage("computing the model's hidden states of \(sequences.count) sequences × \(length) tokens (\(hiddenStateBytes >> 20) MiB)")
        try computeHiddenStates()
    }

    /// The main model's hidden states of the data, and an optimizer whose schedule spans the run.
    func computeHiddenStates() throws {
        guard !train.isEmpty else { throw TrainingError.invalidInput("\(settings.prompts): no training sequences") }
        guard length >= 3 else { throw TrainingError.invalidInput("sequences need at least 3 tokens (the module predicts the token after next)") }
        let budget = settings.hiddenStateBudget ?? ProcessInfo.processInfo.physicalMemory / 2
        guard hiddenStateBytes <= budget else {
            throw TrainingError.invalidInput("the main model's hidden states of \(train.count + heldOut.count) sequences × \(length) tokens need "
                + "\(hiddenStateBytes >> 20) MiB, over the \(budget >> 20) MiB allowed\(settings.hiddenStateBudget == nil ? " (half of this machine's memory)" : ""): "
                + "use fewer prompts or --new-tokens")
        }
        trainHidden = hiddenStates(train)
        heldOutHidden = hiddenStates(heldOut)
        var schedule = settings.optimizer
        schedule.totalSteps = totalSteps
        optimizer = AdamW(settings: schedule, parameterCount: parameters.count)
        order = []
    }

    /// Bytes of the main model's hidden states of every sequence (float32, padded to `length`).
    public var hiddenStateBytes: UInt64 {
        UInt64(train.count + heldOut.count) * UInt64(length) * UInt64((try? config.int("hidden_size")) ?? 0) * 4
    }

    /// Steps of the whole run: `settings.steps`, else `epochs` passes over the training sequences.
    public var totalSteps: Int {
        settings.steps ?? max(1, settings.epochs * ((train.count + settings.batch - 1) / max(1, settings.batch)))
    }

    /// Tokens padded to `length` (the pad never reaches a counted row: attention is causal and pads come last).
    func padded(_ sequence: MTPFitSequence) -> [Int] { sequence.tokens + [Int](repeating: sequence.tokens[0], count: length - sequence.tokens.count) }

    /// The main model's final hidden states (after the final norm) of each sequence — what the drafter records at
    /// inference (`DecoderStack.hiddenStates`) — padded to `length` with zero rows (after the sequence, so no counted row
    /// attends to them, and their targets are −1).
    func hiddenStates(_ sequences: [MTPFitSequence]) -> [[Float]] {
        let stack = model.stack
        return sequences.map { s in
            stack.hiddenStates(s.tokens, cache: model.inference.makeCache()) + [Float](repeating: 0, count: (length - s.tokens.count) * stack.hidden)
        }
    }

    /// Targets of the module's rows for `sequences` (row i pairs hidden state i with token i + 1 and predicts token
    /// i + 2): counted only where token i + 2 is part of the model's continuation.
    func targets(_ sequences: [MTPFitSequence]) -> [Int] {
        var targets: [Int] = []
        targets.reserveCapacity(sequences.count * (length - 1))
        for s in sequences {
            for i in 0..<(length - 1) {
                let t = i + 2
                targets.append(t < s.tokens.count && t >= s.promptLength ? s.tokens[t] : -1)
            }
        }
        return targets
    }

    /// The module's logits for a batch (from the precomputed hidden states) and its pullback.
    func forward(_ indices: [Int], sequences: [MTPFitSequence], hidden: [[Float]]) throws -> (FloatBuffer, MultiTokenPredictionPullback, [Int]) {
        guard let module = model.multiTokenPrediction else { throw TrainingError.unsupported("no MTP module") }
        let h = module.hidden, part = indices.map { sequences[$0] }
        let states = FloatBuffer(uninitializedCount: part.count * length * h)
        for (b, i) in indices.enumerated() {
            hidden[i].withUnsafeBufferPointer { (states.pointer + b * length * h).update(from: $0.baseAddress!, count: length * h) }
        }
        let (logits, pullback) = try module.trainingForward(mainHidden: states, tokens: part.flatMap(padded),
                                                            shape: TrainingShape(batch: part.count, length: length))
        return (logits, pullback, targets(part))
    }

    /// One optimizer step on the next `batch` training sequences (a fresh shuffle each pass); returns the mean loss.
    @discardableResult
    public func trainStep() throws -> Double {
        var indices: [Int] = []
        while indices.count < min(settings.batch, train.count) {
            if order.isEmpty { order = Array(train.indices); order.shuffle(using: &random) }
            indices.append(order.removeLast())
        }
        parameters.zeroGradients()
        let (logits, pullback, targets) = try forward(indices, sequences: train, hidden: trainHidden)
        let count = max(1, targets.filter { $0 >= 0 }.count)
        let loss = CrossEntropy.forwardBackward(logits: logits.pointer, targets: targets, vocab: model.vocabSize, scale: 1 / Float(count)) / Double(count)
        _ = try pullback.backward(logits, into: parameters)
        optimizer.update(parameters)
        try model.refresh()
        losses.append(loss)
        return loss
    }

    /// Loss and top-1 accuracy of the module on the training sequences or the held-out ones (nil when there are none).
    public func score(heldOut useHeldOut: Bool) throws -> MTPFitScore? {
        let sequences = useHeldOut ? heldOut : train, hidden = useHeldOut ? heldOutHidden : trainHidden
        guard !sequences.isEmpty else { return nil }
        var loss = 0.0, correct = 0, count = 0
        let vocab = model.vocabSize
        for start in stride(from: 0, to: sequences.count, by: max(1, settings.batch)) {
            let indices = Array(start..<min(sequences.count, start + max(1, settings.batch)))
            let (logits, _, targets) = try forward(indices, sequences: sequences, hidden: hidden)
            loss += CrossEntropy.loss(logits: logits.pointer, targets: targets, vocab: vocab)
            for (r, target) in targets.enumerated() where target >= 0 {
                let row = UnsafeBufferPointer(start: logits.pointer + r * vocab, count: vocab)
                if Sampler.argmax(row) == target { correct += 1 }
                count += 1
            }
        }
        return MTPFitScore(loss: loss / Double(max(1, count)), accuracy: Double(correct) / Double(max(1, count)), tokens: count)
    }
}

/// The base model's tensors with some replaced or added by another store (the module's parameters over the frozen
/// main model).
struct OverlayWeightStore: WeightStore {
    let base: any WeightStore, overlay: any WeightStore
    var source: String { base.source }
    var tensorNames: [String] { Array(Set(base.tensorNames).union(overlay.tensorNames)).sorted() }
    func contains(_ name: String) -> Bool { overlay.contains(name) || base.contains(name) }
    func tensor(_ name: String) throws -> TensorData { overlay.contains(name) ? try overlay.tensor(name) : try base.tensor(name) }
    func file(of name: String) -> String? { overlay.contains(name) ? overlay.file(of: name) : base.file(of: name) }
}
