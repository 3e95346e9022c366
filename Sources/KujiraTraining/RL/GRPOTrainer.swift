import Foundation
import KujiraFormats
import KujiraGeneration
import KujiraModels

/// Settings of a GRPO run (saved with every checkpoint).
public struct GRPOSettings: Sendable, Codable, Equatable {
    public var steps = 100
    /// Prompts per step and completions per prompt (G).
    public var promptsPerStep = 4
    public var groupSize = 8
    public var learningRate: Float = 1e-4
    /// KL penalty weight β (0: no reference model needed).
    public var beta = 0.04
    /// Ratio clip ε.
    public var clipEpsilon = 0.2
    public var lossType = GRPOLossType.grpo
    /// Policy updates per sampled batch (μ); the first one has ratio 1.
    public var iterations = 1
    public var temperature: Float = 1.0
    public var maxNewTokens = 64
    /// Reward = accuracy (0/1) + formatReward × well-formed (0/1).
    public var formatReward = 0.2
    /// Curriculum: prompts are drawn from a fixed pool, preferring those whose last measured pass rate is in this band.
    public var curriculumLow = 0.1, curriculumHigh = 0.9
    public var poolSize = 256
    public var seed: UInt64 = 1
    public var checkpointEvery = 10
    public var task = ArithmeticTask(operations: [.addition, .subtraction], digits: 4...4)
    public init() {}
}

/// One logged GRPO step.
public struct GRPOStepRecord: Sendable, Codable, Equatable {
    public var step: Int
    public var rewardMean: Double, rewardStd: Double
    public var accuracy: Double, formatRate: Double
    /// KL(π‖π_ref) (k3, at sampling time) and the largest clipped-token fraction over the μ updates (0 when μ = 1:
    /// the first update has ratio 1).
    public var kl: Double, clipFraction: Double
    public var completionLength: Double
    /// Fraction of groups whose rewards are all equal (no learning signal).
    public var zeroVarianceGroups: Double
    /// Fraction of the curriculum pool whose pass rate is in the band (unmeasured prompts count as in band).
    public var poolInBand: Double
    public var seconds: Double
}

/// GRPO (DeepSeekMath / R1): sample G completions per prompt with the KV cache, reward them by rule, normalise the
/// rewards within each group, and step the clipped-ratio objective with a k3 KL to the frozen reference policy.
public final class GRPOTrainer: @unchecked Sendable {
    public let settings: GRPOSettings
    public let policy: DecoderTrainingModel
    public let optimizer: AdamW
    /// The frozen reference model (nil when β = 0) and where it was loaded from.
    public let reference: (any LanguageModel)?
    public let referencePath: String
    public var random: TrainingRandom
    /// Last measured pass rate of each pool prompt (nil: not yet sampled).
    public var passRates: [Double?]
    public var history: [GRPOStepRecord] = []
    public let pool: [ArithmeticProblem]
    let tokenizer = CharacterTokenizer()
    public var step: Int { optimizer.step / max(1, settings.iterations) }

    /// Starts from the model in `modelDirectory` (also the reference policy).
    public convenience init(modelDirectory: String, settings: GRPOSettings) throws {
        // A run directory names its newest checkpoint; the reference stays pinned to that step's directory.
        let modelDirectory = CheckpointDirectory.modelDirectory(modelDirectory)
        // The MTP module is among the parameters (as in `Trainer`, so checkpoints resume alike); λ = 0 leaves it unchanged.
        let policy = try DecoderTrainingModel(path: modelDirectory, trainMTP: true)
        var s = OptimizerSettings()
        s.learningRate = settings.learningRate; s.minLearningRate = settings.learningRate; s.warmupSteps = 0
        s.totalSteps = settings.steps * settings.iterations; s.weightDecay = 0; s.clipNorm = 1
        try self.init(policy: policy, optimizer: AdamW(settings: s, parameterCount: policy.parameters.count), referencePath: modelDirectory,
                      settings: settings, random: TrainingRandom(seed: settings.seed), passRates: nil, history: [])
    }

    init(policy: DecoderTrainingModel, optimizer: AdamW, referencePath: String, settings: GRPOSettings, random: TrainingRandom,
         passRates: [Double?]?, history: [GRPOStepRecord]) throws {
        guard settings.promptsPerStep > 0, settings.groupSize > 1, settings.iterations > 0, settings.maxNewTokens > 0, settings.steps > 0 else {
            throw TrainingError.invalidInput("GRPO needs positive steps, prompts, iterations and max new tokens, and a group size ≥ 2")
        }
        guard settings.temperature > 0, settings.clipEpsilon > 0, settings.beta >= 0 else {
            throw TrainingError.invalidInput("GRPO needs temperature > 0, clip ε > 0 and β ≥ 0")
        }
        self.policy = policy; self.optimizer = optimizer; self.settings = settings; self.random = random
        self.referencePath = referencePath; self.history = history
        reference = settings.beta > 0 ? try ModelRegistry.load(directory: referencePath) : nil
        var poolRandom = TrainingRandom(seed: settings.seed &+ 0xC0FFEE)
        pool = (0..<settings.poolSize).map { _ in settings.task.sample(&poolRandom) }
        self.passRates = passRates ?? Array(repeating: nil, count: settings.poolSize)
        guard self.passRates.count == pool.count else { throw TrainingError.invalidInput("pass-rate table does not match the pool size") }
    }

    /// Curriculum: `promptsPerStep` pool indices whose pass rate is in [low, high] (or unmeasured); others fill in
    /// when too few are in band.
    func choosePrompts() -> [Int] {
        let inBand = pool.indices.filter { i in passRates[i].map { $0 >= settings.curriculumLow && $0 <= settings.curriculumHigh } ?? true }
        var candidates = inBand.count >= settings.promptsPerStep ? inBand : Array(pool.indices)
        var chosen: [Int] = []
        while chosen.count < settings.promptsPerStep && !candidates.isEmpty {
            chosen.append(candidates.remove(at: random.below(candidates.count)))
        }
        return chosen
    }

    /// G sampled completions of `prompt`: the prompt is prefilled once and the cache truncated back for each sample.
    func sampleGroup(_ model: any LanguageModel, prompt: [Int]) throws -> [[Int]] {
        let cache = model.makeCache()
        let first = try model.forward(prompt, cache: cache, allLogits: false)
        let budget = min(settings.maxNewTokens, model.maxPositions - prompt.count)
        guard budget > 0 else { throw TrainingError.invalidInput("prompt of \(prompt.count) tokens leaves no room in the context") }
        var completions: [[Int]] = []
        for _ in 0..<settings.groupSize {
            cache.truncate(to: prompt.count)
            var sampler = try LogitProcessor(SamplingConfiguration(temperature: settings.temperature, seed: random.next()))
            var logits = first, out: [Int] = []
            while out.count < budget {
                let token = sampler.next(&logits)
                out.append(token)
                if token == tokenizer.eosId || out.count == budget { break }
                logits = try model.forward([token], cache: cache, allLogits: false)
            }
            completions.append(out)
        }
        return completions
    }

    /// log π_ref of each completion token (row order of the batch).
    func referenceLogProbabilities(prompt: [Int], completion: [Int]) throws -> [Double] {
        guard let reference else { return Array(repeating: 0, count: completion.count) }
        return try GRPOObjective.logProbabilities(of: completion, after: prompt, under: reference)
    }

    /// One GRPO step: curriculum → sampling → rewards → advantages → `iterations` clipped-objective updates.
    @discardableResult
    public func trainStep() throws -> GRPOStepRecord {
        let started = DispatchTime.now().uptimeNanoseconds
        let sampler = policy.inference
        let chosen = choosePrompts()
        var sequences: [(prompt: [Int], completion: [Int], advantage: Double)] = []
        var rewards: [Double] = [], correctCount = 0, formatted = 0, zeroVariance = 0
        for index in chosen {
            let problem = pool[index]
            let prompt = try tokenizer.encode(CharacterTokenizer.beginOfSentence + CharacterTokenizer.user + problem.question + CharacterTokenizer.assistant)
            let completions = try sampleGroup(sampler, prompt: prompt)
            var groupRewards: [Double] = [], groupCorrect = 0
            for completion in completions {
                let text = tokenizer.decode(completion)
                let correct = problem.isCorrect(text), wellFormed = ReplyFormat.isWellFormed(text)
                if correct { groupCorrect += 1 }
                if wellFormed { formatted += 1 }
                groupRewards.append((correct ? 1 : 0) + (wellFormed ? settings.formatReward : 0))
            }
            correctCount += groupCorrect
            passRates[index] = Double(groupCorrect) / Double(completions.count)
            if Set(groupRewards).count == 1 { zeroVariance += 1 }
            let advantages = GRPOObjective.advantages(rewards: groupRewards, lossType: settings.lossType)
            for (completion, advantage) in zip(completions, advantages) { sequences.append((prompt, completion, advantage)) }
            rewards += groupRewards
        }
        // One batch: prompt + completion, padded; targets only on completion tokens.
        let length = min(policy.maxPositions, sequences.map { $0.prompt.count + $0.completion.count }.max() ?? 2)
        var tokens: [Int] = [], targets: [Int] = [], infos: [GRPOToken] = []
        let n = Double(sequences.count)
        for s in sequences {
            let ids = s.prompt + s.completion
            let reference = settings.beta > 0 ? try referenceLogProbabilities(prompt: s.prompt, completion: s.completion) : []
            let weight = settings.lossType == .grpo ? 1 / (Double(s.completion.count) * n) : 1 / (Double(settings.maxNewTokens) * n)
            for t in 0..<length {
                tokens.append(t < ids.count ? ids[t] : tokenizer.padId)
                let j = t + 1 - s.prompt.count   // index in the completion of the token predicted at t
                if j >= 0 && j < s.completion.count {
                    targets.append(ids[t + 1])
                    infos.append(GRPOToken(advantage: s.advantage, oldLogProbability: nil,
                                           referenceLogProbability: reference.isEmpty ? 0 : reference[j], weight: weight))
                } else {
                    targets.append(-1)
                }
            }
        }
        var statistics = GRPOObjective.Statistics()
        for iteration in 0..<settings.iterations {
            let box = ObjectiveBox(tokens: infos, clip: settings.clipEpsilon, beta: settings.beta)
            policy.parameters.zeroGradients()
            _ = try policy.forwardBackward(tokens: tokens, targets: targets, shape: TrainingShape(batch: sequences.count, length: length),
                                           settings: LossSettings(tokenObjective: box.objective))
            if iteration > 0 { statistics.clipFraction = max(statistics.clipFraction, box.statistics.clipFraction) }
            if iteration == 0 {
                statistics = box.statistics
                // The sampling policy's log-probabilities, for the ratio of later iterations.
                for (i, l) in box.logProbabilities.enumerated() { infos[i].oldLogProbability = l }
            }
            _ = optimizer.update(policy.parameters)
            try policy.refresh()
        }
        let mean = rewards.reduce(0, +) / Double(max(1, rewards.count))
        let std = (rewards.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(1, rewards.count))).squareRoot()
        let inBand = passRates.filter { r in r.map { $0 >= settings.curriculumLow && $0 <= settings.curriculumHigh } ?? true }.count
        let record = GRPOStepRecord(
            step: step, rewardMean: mean, rewardStd: std, accuracy: Double(correctCount) / Double(max(1, rewards.count)),
            formatRate: Double(formatted) / Double(max(1, rewards.count)), kl: statistics.kl, clipFraction: statistics.clipFraction,
            completionLength: Double(sequences.reduce(0) { $0 + $1.completion.count }) / n,
            zeroVarianceGroups: Double(zeroVariance) / Double(max(1, chosen.count)), poolInBand: Double(inBand) / Double(max(1, pool.count)),
            seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
        history.append(record)
        return record
    }
}

/// Carries the GRPO objective into `forwardBackward` and its statistics and log-probabilities back out
/// (called once, on the calling thread).
final class ObjectiveBox: @unchecked Sendable {
    let tokens: [GRPOToken], clip: Double, beta: Double
    var statistics = GRPOObjective.Statistics()
    var logProbabilities: [Double] = []

    init(tokens: [GRPOToken], clip: Double, beta: Double) { self.tokens = tokens; self.clip = clip; self.beta = beta }

    var objective: TokenObjective {
        { [self] l in
            let (stats, gradient) = GRPOObjective.evaluate(logProbabilities: l, tokens: tokens, clip: clip, beta: beta)
            statistics = stats; logProbabilities = l
            return (stats.loss, gradient)
        }
    }
}
