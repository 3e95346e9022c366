import Foundation
import KujiraFormats
import KujiraGeneration
import KujiraModels
import KujiraTokenizer

/// Settings of a GRPO run on the user's prompts and rewards (saved with every checkpoint).
public struct ChatGRPOSettings: Sendable, Codable, Equatable {
    public var model = ""
    public var data = ""
    public var evalData: String?
    public var rewards: [String] = ["exact"]
    public var steps = 50
    public var promptsPerStep = 4
    public var groupSize = 8
    public var learningRate: Float = 1e-4
    /// KL weight β to the starting policy (with LoRA: the base without adapters).
    public var beta = 0.0
    public var clipEpsilon = 0.2
    public var lossType = GRPOLossType.drGRPO
    public var temperature: Float = 1.0
    public var maxNewTokens = 64
    public var seed: UInt64 = 1
    public var checkpointEvery = 10
    public var lora: SFTLoRASettings?
    public init() {}
}

/// One prompt of a GRPO data file: the conversation to answer (ending with the user's turn) and its expected answer.
public struct GRPOPrompt: Sendable, Equatable {
    public var messages: [JinjaValue]
    public var answer: String?
    public var line: Int
}

/// One logged step of `ChatGRPOTrainer`.
public struct ChatGRPORecord: Sendable, Codable, Equatable {
    public var step: Int
    public var rewardMean: Double, rewardStd: Double
    /// Fraction of completions answered correctly by the first answer rule (`exact` or `number`; nil without one).
    public var passRate: Double?
    public var kl: Double
    public var completionLength: Double
    public var zeroVarianceGroups: Double
    public var seconds: Double
    /// Held-out greedy pass rate (or mean reward without `exact`), when evaluated at this step.
    public var evalScore: Double?
}

/// GRPO for any trainable architecture, full or LoRA, on a JSONL of prompts with the user's reward rules: G sampled
/// completions per prompt through the policy's own KV-cached inference model, group-normalised advantages, the clipped
/// objective (`GRPOObjective`) with an optional k3 KL to the starting policy.
public final class ChatGRPOTrainer: @unchecked Sendable {
    public let settings: ChatGRPOSettings
    public let policy: DecoderTrainingModel
    public let optimizer: AdamW
    public let reward: RewardFunction
    public let formatter: SFTFormatter
    public let prompts: [GRPOPrompt], evalPrompts: [GRPOPrompt]
    let reference: (any LanguageModel)?
    let stopTokens: Set<Int>
    public var random: TrainingRandom
    public var history: [ChatGRPORecord] = []
    public var step: Int { optimizer.step }

    public init(settings: ChatGRPOSettings) throws {
        guard settings.promptsPerStep > 0, settings.groupSize > 1, settings.maxNewTokens > 0, settings.steps > 0,
              settings.temperature > 0, settings.clipEpsilon > 0, settings.beta >= 0 else {
            throw TrainingError.invalidInput("GRPO needs positive steps, prompts and max new tokens, a group ≥ 2, temperature > 0, clip ε > 0, β ≥ 0")
        }
        self.settings = settings
        let reward = try RewardFunction(specs: settings.rewards)
        self.reward = reward
        formatter = try SFTFormatter(modelPath: CheckpointDirectory.modelDirectory(settings.model))
        prompts = try Self.load(settings.data, needsAnswer: reward.needsAnswer)
        evalPrompts = try settings.evalData.map { try Self.load($0, needsAnswer: reward.needsAnswer) } ?? []
        if let lora = settings.lora {
            policy = try DecoderTrainingModel.lora(path: settings.model, config: lora.config, seed: settings.seed)
        } else {
            policy = try DecoderTrainingModel(path: settings.model)
        }
        reference = settings.beta > 0 ? try ModelRegistry.load(directory: settings.model) : nil
        var s = OptimizerSettings()
        s.learningRate = settings.learningRate; s.minLearningRate = settings.learningRate; s.warmupSteps = 0
        s.totalSteps = settings.steps; s.weightDecay = 0; s.clipNorm = 1
        optimizer = AdamW(settings: s, parameterCount: policy.parameters.count)
        var stops = Set(formatter.tokenizer.eosTokenIds)
        for name in TextPipeline.endOfGenerationTokens { if let id = formatter.tokenizer.tokenToId(name) { stops.insert(id) } }
        stopTokens = stops
        random = TrainingRandom(seed: settings.seed &+ 0x5EED)
    }

    /// Prompts of a JSONL file: `{"messages": [...]}` ending with a user turn (a trailing assistant turn is taken as the
    /// answer) or `{"prompt": "..."}`, each with an optional `"answer"` string. Errors name the line.
    public static func load(_ file: String, needsAnswer: Bool) throws -> [GRPOPrompt] {
        guard let text = FileManager.default.contents(atPath: file).flatMap({ String(data: $0, encoding: .utf8) }) else {
            throw SFTDataError(file: file, line: nil, detail: "cannot read the file as UTF-8 text")
        }
        var result: [GRPOPrompt] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.allSatisfy(\.isWhitespace) {
            func fail(_ detail: String) -> SFTDataError { SFTDataError(file: file, line: i + 1, detail: detail) }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { throw fail("not a JSON object") }
            var messages: [[String: Any]]
            var answer = object["answer"] as? String
            if let list = object["messages"] as? [[String: Any]], !list.isEmpty {
                messages = list
                if messages.last?["role"] as? String == "assistant" {
                    if answer == nil { answer = messages.last?["content"] as? String }
                    messages.removeLast()
                }
            } else if let prompt = object["prompt"] as? String {
                messages = [["role": "user", "content": prompt]]
            } else {
                throw fail("expected a \"messages\" array or a \"prompt\" string")
            }
            for (k, m) in messages.enumerated() {
                guard let role = m["role"] as? String, SFTFormatter.roles.contains(role), m["content"] is String else {
                    throw fail("message \(k + 1) needs a known \"role\" and a \"content\" string")
                }
            }
            guard messages.last?["role"] as? String == "user" else { throw fail("the conversation must end with a user message") }
            if needsAnswer && answer == nil { throw fail("the exact reward needs an \"answer\" (or a final assistant message)") }
            result.append(GRPOPrompt(messages: try messages.map { try JinjaValue(any: $0) }, answer: answer, line: i + 1))
        }
        guard !result.isEmpty else { throw SFTDataError(file: file, line: nil, detail: "no prompts") }
        return result
    }

    func promptTokens(_ prompt: GRPOPrompt) throws -> [Int] { try formatter.render(prompt.messages, generationPrompt: true) }

    /// Generates up to `maxNewTokens` after `prompt` (prefilled once into `cache`); greedy at temperature 0.
    func complete(_ model: any LanguageModel, cache: KVCache, first: [Float], temperature: Float) throws -> [Int] {
        let budget = min(settings.maxNewTokens, model.maxPositions - cache.length)
        var sampler = try LogitProcessor(SamplingConfiguration(temperature: temperature, seed: random.next()))
        var logits = first, out: [Int] = []
        while out.count < budget {
            let token = sampler.next(&logits)
            out.append(token)
            if stopTokens.contains(token) || out.count == budget { break }
            logits = try model.forward([token], cache: cache, allLogits: false)
        }
        return out
    }

    func text(_ completion: [Int]) -> String {
        formatter.tokenizer.decode(completion.filter { !stopTokens.contains($0) }, skipSpecialTokens: false)
    }

    /// log π_ref of each completion token.
    func referenceLogProbabilities(prompt: [Int], completion: [Int]) throws -> [Double] {
        guard let reference else { return Array(repeating: 0, count: completion.count) }
        return try GRPOObjective.logProbabilities(of: completion, after: prompt, under: reference)
    }

    /// One step: `promptsPerStep` prompts × G completions → rewards → advantages → one clipped-objective update.
    @discardableResult
    public func trainStep() throws -> ChatGRPORecord {
        let started = Date()
        let model = policy.inference
        var sequences: [(prompt: [Int], completion: [Int], advantage: Double)] = []
        var rewards: [Double] = [], passes = 0, zeroVariance = 0
        var order = Array(prompts.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, random.below(i + 1)) }
        for index in order.prefix(settings.promptsPerStep) {
            let prompt = prompts[index], ids = try promptTokens(prompt)
            guard ids.count < model.maxPositions else { throw SFTDataError(file: settings.data, line: prompt.line, detail: "prompt longer than the context") }
            let cache = model.makeCache()
            let first = try model.forward(ids, cache: cache, allLogits: false)
            var group: [[Int]] = [], groupRewards: [Double] = []
            for _ in 0..<settings.groupSize {
                cache.truncate(to: ids.count)
                let completion = try complete(model, cache: cache, first: first, temperature: settings.temperature)
                let text = text(completion)
                groupRewards.append(reward.score(text, tokens: completion.count, answer: prompt.answer))
                if reward.isCorrect(text, answer: prompt.answer) == true { passes += 1 }
                group.append(completion)
            }
            if Set(groupRewards).count == 1 { zeroVariance += 1 }
            for (completion, advantage) in zip(group, GRPOObjective.advantages(rewards: groupRewards, lossType: settings.lossType)) {
                sequences.append((ids, completion, advantage))
            }
            rewards += groupRewards
        }
        let length = sequences.map { $0.prompt.count + $0.completion.count }.max() ?? 2
        let pad = formatter.tokenizer.eosTokenIds.first ?? 0
        var tokens: [Int] = [], targets: [Int] = [], infos: [GRPOToken] = []
        let n = Double(sequences.count)
        for s in sequences {
            let ids = s.prompt + s.completion
            let reference = try referenceLogProbabilities(prompt: s.prompt, completion: s.completion)
            let weight = settings.lossType == .grpo ? 1 / (Double(s.completion.count) * n) : 1 / (Double(settings.maxNewTokens) * n)
            for t in 0..<length {
                tokens.append(t < ids.count ? ids[t] : pad)
                let j = t + 1 - s.prompt.count
                if j >= 0 && j < s.completion.count {
                    targets.append(ids[t + 1])
                    infos.append(GRPOToken(advantage: s.advantage, oldLogProbability: nil, referenceLogProbability: reference[j], weight: weight))
                } else {
                    targets.append(-1)
                }
            }
        }
        let box = ObjectiveBox(tokens: infos, clip: settings.clipEpsilon, beta: settings.beta)
        policy.parameters.zeroGradients()
        _ = try policy.forwardBackward(tokens: tokens, targets: targets, shape: TrainingShape(batch: sequences.count, length: length),
                                       settings: LossSettings(tokenObjective: box.objective))
        optimizer.update(policy.parameters)
        try policy.refresh()
        let mean = rewards.reduce(0, +) / Double(max(1, rewards.count))
        let std = (rewards.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(1, rewards.count))).squareRoot()
        let record = ChatGRPORecord(step: step, rewardMean: mean, rewardStd: std,
                                    passRate: reward.needsAnswer ? Double(passes) / Double(max(1, rewards.count)) : nil, kl: box.statistics.kl,
                                    completionLength: Double(sequences.reduce(0) { $0 + $1.completion.count }) / max(1, n),
                                    zeroVarianceGroups: Double(zeroVariance) / Double(settings.promptsPerStep),
                                    seconds: Date().timeIntervalSince(started), evalScore: nil)
        history.append(record)
        return record
    }

    /// Greedy held-out score: the fraction of `prompts` (default: the eval data) answered correctly (`exact`/`number`), else the
    /// mean reward. Recorded on the last step.
    @discardableResult
    public func evaluate(_ prompts: [GRPOPrompt]? = nil) throws -> Double {
        let set = prompts ?? evalPrompts
        guard !set.isEmpty else { return 0 }
        let model = policy.inference
        var total = 0.0
        for prompt in set {
            let ids = try promptTokens(prompt)
            let cache = model.makeCache()
            let first = try model.forward(ids, cache: cache, allLogits: false)
            let completion = try complete(model, cache: cache, first: first, temperature: 0)
            let text = text(completion)
            if let correct = reward.isCorrect(text, answer: prompt.answer) {
                total += correct ? 1 : 0
            } else {
                total += reward.score(text, tokens: completion.count, answer: prompt.answer)
            }
        }
        let score = total / Double(set.count)
        if prompts == nil, !history.isEmpty { history[history.count - 1].evalScore = score }
        return score
    }

    /// What `grpo_state.json` holds.
    struct State: Codable {
        var step: Int
        var settings: ChatGRPOSettings
        var history: [ChatGRPORecord]
        /// The sampling PRNG, hex (exact through JSON).
        var random: [String]
    }

    /// Writes the policy (PEFT adapter with LoRA, else a model directory with the base tokenizer), the optimizer's
    /// moments, the sampling PRNG and the history into `root/step-N/` (published atomically; `resume` continues it).
    @discardableResult
    public func save(to root: String) throws -> String {
        try CheckpointDirectory(root: root).publish(step: step, keep: 3) { directory in
            func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
            if policy.lora != nil {
                try policy.writeAdapter(to: directory, baseModel: settings.model)
            } else {
                try SFTCheckpoint.writeModel(policy, base: settings.model, step: step, into: directory)
            }
            try optimizer.writeMoments(of: policy.parameters, step: step, to: path("optimizer.safetensors"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            let state = State(step: step, settings: settings, history: history, random: random.state.map { String($0, radix: 16) })
            try AtomicFile.write(try encoder.encode(state), to: path("grpo_state.json"))
        }
    }

    /// Whether `run` holds a `kujira grpo --data` run (its newest checkpoint has `grpo_state.json`).
    public static func isRun(_ run: String) -> Bool {
        guard let newest = CheckpointDirectory(root: run).newest() else { return false }
        return FileManager.default.fileExists(atPath: (newest as NSString).appendingPathComponent("grpo_state.json"))
    }

    /// Continues the run saved in `run` (its newest complete checkpoint): policy, optimizer moments and step, sampling
    /// PRNG and history, so the remaining steps are those of an uninterrupted run.
    public static func resume(from run: String) throws -> ChatGRPOTrainer {
        let directory = try Checkpoint.resolve(run)
        let statePath = (directory as NSString).appendingPathComponent("grpo_state.json")
        guard let data = FileManager.default.contents(atPath: statePath) else {
            throw TrainingError.badCheckpoint(path: statePath, detail: "missing (not a `kujira grpo --data` checkpoint)")
        }
        let state: State
        do { state = try JSONDecoder().decode(State.self, from: data) } catch {
            throw TrainingError.badCheckpoint(path: statePath, detail: "unreadable: \(error)")
        }
        let randomState = state.random.compactMap { UInt64($0, radix: 16) }
        guard randomState.count == 4 else { throw TrainingError.badCheckpoint(path: statePath, detail: "bad random state") }
        let trainer = try ChatGRPOTrainer(settings: state.settings)
        let saved = state.settings.lora == nil ? try DecoderTrainingModel(path: directory)
            : try DecoderTrainingModel.lora(path: state.settings.model, adapterDirectory: directory)
        for e in trainer.policy.parameters.entries {
            try trainer.policy.parameters.setValues(e.name, try saved.parameters.array(e.name))
        }
        try trainer.policy.refresh()
        try trainer.optimizer.readMoments(of: trainer.policy.parameters, step: state.step,
                                          from: (directory as NSString).appendingPathComponent("optimizer.safetensors"))
        trainer.random = TrainingRandom(state: randomState)
        trainer.history = state.history
        return trainer
    }
}
