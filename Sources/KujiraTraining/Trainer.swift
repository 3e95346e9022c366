import Foundation
import KujiraFormats
import KujiraGeneration
import KujiraModels
import KujiraTensor

/// Settings of a training run (saved with every checkpoint).
public struct TrainingSettings: Sendable, Codable, Equatable {
    public var steps: Int = 1000
    public var batch: Int = 16
    public var length: Int = 128
    public var seed: UInt64 = 1
    public var optimizer = OptimizerSettings()
    /// Auxiliary-loss-free balancing step γ (0 freezes the selection biases).
    public var balanceGamma: Float = 1e-3
    /// Sequence-wise balance loss weight α (0: off).
    public var balanceAlpha: Float = 1e-4
    /// MTP loss weight λ.
    public var mtpWeight: Float = 0.3
    public var initStd: Float = 0.02
    /// Evaluate held-out exact match every this many steps (0: never).
    public var evalEvery: Int = 100
    public var evalProblems: Int = 100
    public var checkpointEvery: Int = 100
    public var task = ArithmeticTask()
    /// Fixed examples to train on instead of the task's generated ones (distillation); nil: generate from `task`.
    public var corpus: [TrainingExample]?
    public init() {}
}

/// One supervised example: the user's question and the assistant's reply (without end-of-sentence).
public struct TrainingExample: Sendable, Codable, Equatable {
    public var question: String
    public var reply: String
    public init(question: String, reply: String) { self.question = question; self.reply = reply }
}

/// One logged step.
public struct StepRecord: Sendable, Codable, Equatable {
    public var step: Int
    public var loss: Double
    public var mainLoss: Double
    public var mtpLoss: Double?
    public var learningRate: Float
    public var gradientNorm: Float
    public var tokensPerSecond: Double
    /// Max over mean of the expert loads, averaged over MoE layers (1 = perfectly balanced).
    public var loadMaxOverMean: Double
    /// Held-out exact match, when evaluated at this step.
    public var accuracy: Double?
}

/// A training run from scratch: model (any trainable registry architecture; DeepSeek-V3 with its MTP module and
/// expert balancing), optimizer, data stream (seeded PRNG), evaluation and history.
public final class Trainer: @unchecked Sendable {
    public let model: DecoderTrainingModel
    public let optimizer: AdamW
    public let settings: TrainingSettings
    public let tokenizer = CharacterTokenizer()
    /// The data stream's PRNG (saved in checkpoints so a resumed run continues identically).
    public var random: TrainingRandom
    public var step: Int { optimizer.step }
    public var history: [StepRecord] = []

    /// A fresh run: parameters initialised from `settings.seed`.
    public init(config: ModelConfig, settings: TrainingSettings) throws {
        guard settings.batch > 0, settings.length >= 8, settings.steps > 0 else {
            throw TrainingError.invalidInput("batch, steps must be positive and seq at least 8")
        }
        model = try DecoderTrainingModel(config: config, trainMTP: true)
        guard model.vocabSize >= CharacterTokenizer().count else {
            throw TrainingError.invalidInput("\(config.path): vocab_size \(model.vocabSize) is smaller than the task's \(CharacterTokenizer().count) tokens")
        }
        self.settings = settings
        var initRandom = TrainingRandom(seed: settings.seed)
        model.parameters.initialize(std: settings.initStd, rng: &initRandom)
        try model.refresh()
        random = TrainingRandom(seed: settings.seed &+ 0x9E37_79B9)
        optimizer = AdamW(settings: settings.optimizer, parameterCount: model.parameters.count)
    }

    init(model: DecoderTrainingModel, optimizer: AdamW, settings: TrainingSettings, random: TrainingRandom, history: [StepRecord]) {
        self.model = model; self.optimizer = optimizer; self.settings = settings; self.random = random; self.history = history
    }

    /// `batch` sequences of `length` tokens, each packed with whole examples (then padding); targets are the next
    /// token inside assistant replies, −1 elsewhere.
    public func nextBatch() throws -> (tokens: [Int], targets: [Int]) {
        let T = settings.length
        var tokens: [Int] = [], targets: [Int] = []
        for _ in 0..<settings.batch {
            var seq: [Int] = [], tgt: [Int] = []
            while true {
                let (ids, replyStart) = try nextExample()
                guard ids.count <= T else { throw TrainingError.invalidInput("an example has \(ids.count) tokens; --seq \(T) is too short") }
                if seq.count + ids.count > T { break }
                for (i, _) in ids.enumerated() { tgt.append(i + 1 < ids.count && i + 1 >= replyStart ? ids[i + 1] : -1) }
                seq += ids
            }
            while seq.count < T { seq.append(tokenizer.padId); tgt.append(-1) }
            tokens += seq; targets += tgt
        }
        return (tokens, targets)
    }

    /// The next training example's ids and where the reply starts: from the corpus when there is one, else a fresh
    /// problem from the task (phrased at random with `naturalQuestions`).
    func nextExample() throws -> (ids: [Int], replyStart: Int) {
        if let corpus = settings.corpus, !corpus.isEmpty {
            let example = corpus[random.below(corpus.count)]
            return try tokenizer.example(question: example.question, reply: example.reply)
        }
        let problem = settings.task.sample(&random)
        var question: String?
        if settings.task.naturalQuestions == true {
            let phrasings = problem.questionPhrasings
            question = phrasings[random.below(phrasings.count)]
        }
        return try tokenizer.example(problem, question: question)
    }

    /// One optimizer step: forward + backward, clip + AdamW, then the balancing rule on the selection biases.
    @discardableResult
    public func trainStep() throws -> StepRecord {
        let start = DispatchTime.now().uptimeNanoseconds
        let (tokens, targets) = try nextBatch()
        model.parameters.zeroGradients()
        let result = try model.forwardBackward(tokens: tokens, targets: targets, shape: TrainingShape(batch: settings.batch, length: settings.length),
                                               settings: LossSettings(mtpWeight: settings.mtpWeight, balanceAlpha: settings.balanceAlpha))
        let (norm, lr) = optimizer.update(model.parameters)
        ExpertBalancing.update(model.parameters, loads: result.expertLoads, gamma: settings.balanceGamma)
        try model.refresh()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let ratios = result.expertLoads.map { load -> Double in
            let mean = Double(load.reduce(0, +)) / Double(max(1, load.count))
            return mean > 0 ? Double(load.max() ?? 0) / mean : 1
        }
        let record = StepRecord(step: step, loss: result.loss, mainLoss: result.mainLoss, mtpLoss: result.mtpLoss, learningRate: lr,
                                gradientNorm: norm, tokensPerSecond: Double(tokens.count) / seconds,
                                loadMaxOverMean: ratios.isEmpty ? 1 : ratios.reduce(0, +) / Double(ratios.count), accuracy: nil)
        history.append(record)
        return record
    }

    /// Held-out exact match of greedy decoding (the inference engine on the current weights).
    public func evaluate(problems: Int? = nil) throws -> Double {
        let set = settings.task.heldOutSet(count: problems ?? settings.evalProblems)
        let generator = Generator(model: model.inference)
        var correct = 0
        for problem in set {
            let prompt = try tokenizer.encode(CharacterTokenizer.beginOfSentence + CharacterTokenizer.user + problem.question + CharacterTokenizer.assistant)
            let budget = min(model.maxPositions - prompt.count, problem.reply.count + 8)
            let output = try generator.generate(prompt: prompt, maxTokens: budget, sampling: SamplingConfiguration(), stopTokens: [tokenizer.eosId])
            if problem.isCorrect(tokenizer.decode(output)) { correct += 1 }
        }
        let accuracy = Double(correct) / Double(max(1, set.count))
        if !history.isEmpty { history[history.count - 1].accuracy = accuracy }
        return accuracy
    }
}
