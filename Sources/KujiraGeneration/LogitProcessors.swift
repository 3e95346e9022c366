import Foundation
import KujiraTensor

/// Every knob of token selection an OpenAI/DeepSeek request can set; defaults change nothing (greedy at T = 0).
public struct SamplingConfiguration: Sendable, Equatable {
    /// 0 means greedy (argmax).
    public var temperature: Float = 0
    /// Keep only the k most likely tokens (0 = all).
    public var topK: Int = 0
    /// Nucleus: keep the smallest set of tokens whose probability adds up to `topP`.
    public var topP: Float = 1
    /// Drop tokens whose probability is below `minP` × the top token's probability (0 = off).
    public var minP: Float = 0
    /// OpenAI: subtract `presencePenalty` from every token already generated once or more.
    public var presencePenalty: Float = 0
    /// OpenAI: subtract `frequencyPenalty` × count for every token generated so far.
    public var frequencyPenalty: Float = 0
    /// CTRL/transformers: divide positive (multiply negative) logits of tokens seen in prompt or output (1 = off).
    public var repetitionPenalty: Float = 1
    /// Seed of the sampling random generator; the same seed gives the same tokens.
    public var seed: UInt64 = 0
    /// OpenAI `logit_bias`: added to a token's logit before sampling (−100 bans it in practice, +100 forces it).
    public var logitBias: [Int: Float] = [:]

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0, presencePenalty: Float = 0,
                frequencyPenalty: Float = 0, repetitionPenalty: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }

    /// Checks ranges; the error names the API parameter.
    public func validate() throws {
        func bad(_ name: String, _ detail: String) -> GenerationError { .invalidParameter(name: name, detail: detail) }
        guard temperature.isFinite, temperature >= 0 else { throw bad("temperature", "must be ≥ 0, got \(temperature)") }
        guard topK >= 0 else { throw bad("top_k", "must be ≥ 0, got \(topK)") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw bad("top_p", "must be in (0, 1], got \(topP)") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw bad("min_p", "must be in [0, 1], got \(minP)") }
        guard presencePenalty.isFinite else { throw bad("presence_penalty", "must be a finite number") }
        guard frequencyPenalty.isFinite else { throw bad("frequency_penalty", "must be a finite number") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw bad("repetition_penalty", "must be > 0, got \(repetitionPenalty)")
        }
        for (token, bias) in logitBias {
            guard token >= 0 else { throw bad("logit_bias", "token ids must be ≥ 0, got \(token)") }
            guard bias.isFinite, (-100...100).contains(bias) else { throw bad("logit_bias", "biases must be in [-100, 100], got \(bias) for \(token)") }
        }
    }

    /// `validate()`, and every `logit_bias` token inside a vocabulary of `vocabularySize` ids.
    public func validate(vocabularySize: Int) throws {
        try validate()
        if let token = logitBias.keys.first(where: { $0 >= vocabularySize }) {
            throw GenerationError.invalidParameter(name: "logit_bias", detail: "token id \(token) is outside the vocabulary (\(vocabularySize) ids)")
        }
    }
}

/// One token's log-probability and the most likely alternatives at that step (OpenAI `logprobs`).
public struct TokenLogprob: Sendable, Equatable {
    public var token: Int
    public var logprob: Float
    /// The `top` most likely tokens at this step, best first.
    public var top: [(token: Int, logprob: Float)]

    public static func == (lhs: TokenLogprob, rhs: TokenLogprob) -> Bool {
        lhs.token == rhs.token && lhs.logprob == rhs.logprob && lhs.top.map(\.token) == rhs.top.map(\.token)
            && lhs.top.map(\.logprob) == rhs.top.map(\.logprob)
    }
}

/// Turns one row of logits into the next token: penalties, then temperature / top-k / top-p / min-p, then a
/// seeded draw. Deterministic per seed; one instance per sequence (it owns the random state and token counts).
public struct LogitProcessor {
    public let configuration: SamplingConfiguration
    private var rng: SplitMix64
    /// How often each token occurred in the output so far (presence / frequency penalties).
    private var outputCounts: [Int: Int] = [:]
    /// Tokens of the prompt and output (repetition penalty).
    private var seen: Set<Int> = []
    private var candidateScratch: [(index: Int, logit: Float)] = []

    public init(_ configuration: SamplingConfiguration, promptTokens: [Int] = []) throws {
        try configuration.validate()
        self.configuration = configuration
        rng = SplitMix64(seed: configuration.seed)
        if configuration.repetitionPenalty != 1 { seen = Set(promptTokens) }
    }

    /// Records a token chosen for the output (by `sample` or forced by the caller).
    public mutating func record(_ token: Int) {
        outputCounts[token, default: 0] += 1
        if configuration.repetitionPenalty != 1 { seen.insert(token) }
    }

    /// Applies the repetition / presence / frequency penalties and the logit bias in place.
    public func applyPenalties(_ logits: inout [Float]) {
        let c = configuration
        for (token, bias) in c.logitBias where token < logits.count { logits[token] += bias }
        guard c.repetitionPenalty != 1 || c.presencePenalty != 0 || c.frequencyPenalty != 0 else { return }
        if c.repetitionPenalty != 1 {
            for token in seen where token >= 0 && token < logits.count {
                let l = logits[token]
                logits[token] = l > 0 ? l / c.repetitionPenalty : l * c.repetitionPenalty
            }
        }
        if c.presencePenalty != 0 || c.frequencyPenalty != 0 {
            for (token, count) in outputCounts where token >= 0 && token < logits.count {
                logits[token] -= c.presencePenalty + c.frequencyPenalty * Float(count)
            }
        }
    }

    /// Log-softmax of `logits` at `token` and the `top` best alternatives (the model's distribution after
    /// penalties and masks, before temperature, as OpenAI reports it).
    public static func logprobs(_ logits: [Float], token: Int, top: Int) -> TokenLogprob {
        var maxLogit = -Float.infinity
        for l in logits where l > maxLogit { maxLogit = l }
        var total: Float = 0
        for l in logits where l > -Float.infinity { total += exp(l - maxLogit) }
        let logTotal = maxLogit + log(total)
        var best: [(token: Int, logprob: Float)] = []
        if top > 0 {
            // Partial selection: keep a small sorted list of the best `top`.
            for (i, l) in logits.enumerated() {
                if best.count < top || l > best[best.count - 1].logprob {
                    let entry = (token: i, logprob: l)
                    let position = best.firstIndex { $0.logprob < l } ?? best.count
                    best.insert(entry, at: position)
                    if best.count > top { best.removeLast() }
                }
            }
            best = best.map { ($0.token, $0.logprob - logTotal) }
        }
        let value = token >= 0 && token < logits.count ? logits[token] - logTotal : -Float.infinity
        return TokenLogprob(token: token, logprob: value, top: best)
    }

    /// The next token of a plain generation loop: penalties (when configured, in place), then `choose`, then
    /// `record`. A row whose every logit is -inf (only a masked row can be) falls back to the argmax.
    public mutating func next(_ logits: inout [Float]) -> Int {
        applyPenalties(&logits)
        let token = choose(logits) ?? Sampler.argmax(logits)
        record(token)
        return token
    }

    /// Picks a token from already-penalised, already-masked logits: argmax at temperature 0, else a seeded draw
    /// after temperature, top-k, top-p and min-p. Returns nil only when every logit is -inf.
    public mutating func choose(_ logits: [Float]) -> Int? {
        let c = configuration
        if c.temperature == 0 {
            var best = -1
            var bestLogit = -Float.infinity
            for (i, l) in logits.enumerated() where l > bestLogit { best = i; bestLogit = l }
            return best >= 0 ? best : nil
        }
        if c.topK == 0 && c.topP >= 1 { return chooseUnsorted(logits) }
        candidateScratch.removeAll(keepingCapacity: true)
        for (i, l) in logits.enumerated() where l > -Float.infinity { candidateScratch.append((i, l / c.temperature)) }
        guard !candidateScratch.isEmpty else { return nil }
        // Stable order (ties broken by id) so a seed gives the same draw everywhere.
        candidateScratch.sort { $0.logit != $1.logit ? $0.logit > $1.logit : $0.index < $1.index }
        var count = candidateScratch.count
        if c.topK > 0 { count = min(count, c.topK) }
        let maxLogit = candidateScratch[0].logit
        var probabilities = [Float](repeating: 0, count: count)
        var total: Float = 0
        for i in 0..<count {
            probabilities[i] = exp(candidateScratch[i].logit - maxLogit)
            total += probabilities[i]
        }
        for i in 0..<count { probabilities[i] /= total }
        if c.minP > 0 {
            let threshold = c.minP * probabilities[0]
            var keep = 1
            while keep < count && probabilities[keep] >= threshold { keep += 1 }
            count = keep
        }
        if c.topP < 1 {
            var cumulative: Float = 0
            var keep = 0
            while keep < count {
                cumulative += probabilities[keep]
                keep += 1
                if cumulative >= c.topP { break }
            }
            count = keep
        }
        var kept: Float = 0
        for i in 0..<count { kept += probabilities[i] }
        let r = rng.nextUnitFloat() * kept
        var cumulative: Float = 0
        for i in 0..<count {
            cumulative += probabilities[i]
            if r < cumulative { return candidateScratch[i].index }
        }
        return candidateScratch[count - 1].index
    }

    /// Sampling without top-k / top-p needs no sort (a sort of a 50k vocabulary per token costs milliseconds):
    /// min-p is a threshold in logit space, `logit/T ≥ max/T + ln(min_p)`, and the draw walks ids in order.
    private mutating func chooseUnsorted(_ logits: [Float]) -> Int? {
        let c = configuration
        var maxLogit = -Float.infinity
        for l in logits where l > maxLogit { maxLogit = l }
        guard maxLogit > -Float.infinity else { return nil }
        let scale = 1 / c.temperature
        let shift = maxLogit * scale
        let cutoff = c.minP > 0 ? shift + log(c.minP) : -Float.infinity
        var total: Float = 0
        logits.withUnsafeBufferPointer { row in
            for l in row where l * scale >= cutoff { total += exp(l * scale - shift) }
        }
        let r = rng.nextUnitFloat() * total
        var cumulative: Float = 0
        var last = -1
        for (i, l) in logits.enumerated() where l * scale >= cutoff && l > -Float.infinity {
            cumulative += exp(l * scale - shift)
            last = i
            if r < cumulative { return i }
        }
        return last >= 0 ? last : nil
    }
}
