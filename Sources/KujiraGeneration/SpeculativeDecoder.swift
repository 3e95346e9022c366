import KujiraModels

/// Greedy speculative decoding with DeepSeek-V3's MTP module as the drafter.
///
/// Each round the MTP module drafts `draftTokens` tokens (chaining its own output hidden state past the first),
/// the main model verifies them in one batched forward, and the longest agreeing prefix plus the main model's own
/// next token are kept. The output is exactly what plain greedy decoding produces.
public struct SpeculativeDecoder {
    public let model: DeepseekV3Model
    public let mtp: MultiTokenPrediction
    public let draftTokens: Int

    /// Counts from the last `generate` call.
    public struct Statistics: Sendable, Equatable {
        public var rounds = 0
        public var drafted = 0
        public var accepted = 0
        /// Fraction of drafted tokens the main model agreed with.
        public var acceptanceRate: Double { drafted == 0 ? 0 : Double(accepted) / Double(drafted) }
        /// Tokens produced per main-model forward pass (1.0 without speculation).
        public var tokensPerRound: Double { rounds == 0 ? 0 : Double(accepted + rounds) / Double(rounds) }
    }

    public init(model: DeepseekV3Model, draftTokens: Int = 1) throws {
        guard let mtp = model.multiTokenPrediction else {
            throw GenerationError.invalidParameter(name: "speculative", detail: "the model has no MTP module (num_nextn_predict_layers = 0)")
        }
        guard draftTokens >= 1 else { throw GenerationError.invalidParameter(name: "draft tokens", detail: "must be ≥ 1, got \(draftTokens)") }
        self.model = model
        self.mtp = mtp
        self.draftTokens = draftTokens
    }

    /// Greedy continuation of `prompt` (up to `maxTokens`, stopping after a stop token), with statistics.
    public func generate(prompt: [Int], maxTokens: Int, stopTokens: Set<Int>? = nil,
                         onToken: (Int) -> Bool = { _ in true }) throws -> (tokens: [Int], statistics: Statistics) {
        guard maxTokens >= 0 else { throw GenerationError.invalidParameter(name: "max_tokens", detail: "must be ≥ 0, got \(maxTokens)") }
        var statistics = Statistics()
        guard maxTokens > 0 else { return ([], statistics) }
        let stops = stopTokens ?? Set(model.eosTokenIds)
        let hiddenSize = model.stack.hidden, vocab = model.vocabSize
        let mainCache = model.makeCache(), mtpCache = mtp.makeCache()
        var hidden = try model.hiddenStates(prompt, cache: mainCache)
        var next = Sampler.argmax(model.stack.logits(fromHidden: hidden, n: prompt.count, allLogits: false))
        // MTP entry i pairs main hidden state i with token i + 1; entries for the prompt use prompt[1...] then `next`.
        var pendingTokens = Array(prompt.dropFirst()) + [next]
        var output: [Int] = []
        while true {
            output.append(next)
            if !onToken(next) || stops.contains(next) || output.count >= maxTokens { break }
            // Room left in the context for `next` plus drafts.
            let room = model.maxPositions - mainCache.length - 1
            if room < 0 { break }
            // Draft: the MTP module over the pending (hidden, next-token) pairs, then chain on its own outputs.
            let committedMTP = mtpCache.length
            var mtpOut = mtp.forward(mainHidden: hidden, nextTokens: pendingTokens, cache: mtpCache)
            var drafts: [Int] = []
            let wanted = min(draftTokens, room, maxTokens - output.count)
            while drafts.count < wanted {
                let n = mtpOut.count / hiddenSize
                let last = Array(mtpOut[((n - 1) * hiddenSize)..<(n * hiddenSize)])
                let draft = Sampler.argmax(mtp.logits(fromOutput: last, n: 1))
                drafts.append(draft)
                if drafts.count < wanted { mtpOut = mtp.forward(mainHidden: last, nextTokens: [draft], cache: mtpCache) }
            }
            statistics.rounds += 1
            statistics.drafted += drafts.count
            // Verify `next` and the drafts in one batched forward of the main model.
            let start = mainCache.length
            let verifyHidden = try model.hiddenStates([next] + drafts, cache: mainCache)
            let logits = model.stack.logits(fromHidden: verifyHidden, n: drafts.count + 1, allLogits: true)
            var accepted = 0
            while accepted < drafts.count, Sampler.argmax(logits[(accepted * vocab)..<((accepted + 1) * vocab)]) == drafts[accepted] {
                accepted += 1
            }
            statistics.accepted += accepted
            let bonus = Sampler.argmax(logits[(accepted * vocab)..<((accepted + 1) * vocab)])
            mainCache.truncate(to: start + 1 + accepted)
            // The MTP cache keeps the entries built from true main hidden states; chained draft entries are dropped.
            mtpCache.truncate(to: committedMTP + pendingTokens.count)
            hidden = Array(verifyHidden[0..<((accepted + 1) * hiddenSize)])
            pendingTokens = Array(drafts.prefix(accepted)) + [bonus]
            var stopped = false
            for token in drafts.prefix(accepted) {
                output.append(token)
                if !onToken(token) || stops.contains(token) || output.count >= maxTokens { stopped = true; break }
            }
            if stopped { break }
            next = bonus
        }
        return (output, statistics)
    }
}
