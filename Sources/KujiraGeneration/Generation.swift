import Foundation
import KujiraModels
import KujiraTensor

/// Sampling settings; temperature 0 means greedy (argmax).
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }
}

/// Errors in generation requests.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case invalidParameter(name: String, detail: String)

    public var description: String {
        switch self {
        case let .invalidParameter(name, detail): return "invalid \(name): \(detail)"
        }
    }
}

/// Picks the next token from a row of logits.
public struct Sampler {
    public let parameters: SamplingParameters
    private var rng: SplitMix64

    public init(_ parameters: SamplingParameters) throws {
        guard parameters.temperature >= 0, parameters.temperature.isFinite else {
            throw GenerationError.invalidParameter(name: "temperature", detail: "must be ≥ 0, got \(parameters.temperature)")
        }
        guard parameters.topP > 0, parameters.topP <= 1 else {
            throw GenerationError.invalidParameter(name: "top_p", detail: "must be in (0, 1], got \(parameters.topP)")
        }
        guard parameters.topK >= 0 else { throw GenerationError.invalidParameter(name: "top_k", detail: "must be ≥ 0, got \(parameters.topK)") }
        self.parameters = parameters
        rng = SplitMix64(seed: parameters.seed)
    }

    /// Index of the largest logit (the first one on ties, like torch.argmax).
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        guard var best = logits.first else { return 0 }
        var index = 0
        for i in 1..<logits.count where logits[i] > best {
            best = logits[i]
            index = i
        }
        return index
    }

    /// `argmax` of an array or a slice (index relative to the slice's start).
    public static func argmax(_ logits: ArraySlice<Float>) -> Int { logits.withUnsafeBufferPointer { argmax($0) } }

    /// `argmax` of an array.
    public static func argmax(_ logits: [Float]) -> Int { logits.withUnsafeBufferPointer { argmax($0) } }

    /// The next token: argmax at temperature 0, else top-k / top-p sampling from softmax(logits / T).
    public mutating func sample(_ logits: ArraySlice<Float>) -> Int {
        if parameters.temperature == 0 { return Self.argmax(logits) }
        let base = logits.startIndex
        var candidates = logits.indices.map { (index: $0 - base, logit: logits[$0] / parameters.temperature) }
        candidates.sort { $0.logit > $1.logit }
        if parameters.topK > 0 { candidates = Array(candidates.prefix(parameters.topK)) }
        let maxLogit = candidates[0].logit
        var probabilities = candidates.map { exp($0.logit - maxLogit) }
        let total = probabilities.reduce(0, +)
        probabilities = probabilities.map { $0 / total }
        if parameters.topP < 1 {
            var cumulative: Float = 0
            var keep = 0
            while keep < probabilities.count { cumulative += probabilities[keep]; keep += 1; if cumulative >= parameters.topP { break } }
            probabilities = Array(probabilities.prefix(keep))
            let kept = probabilities.reduce(0, +)
            probabilities = probabilities.map { $0 / kept }
        }
        let r = rng.nextUnitFloat()
        var cumulative: Float = 0
        for (i, p) in probabilities.enumerated() {
            cumulative += p
            if r < cumulative { return candidates[i].index }
        }
        return candidates[probabilities.count - 1].index
    }
}

/// Prefill once, then decode one token at a time through the KV cache.
public struct Generator {
    public let model: any LanguageModel

    public init(model: any LanguageModel) { self.model = model }

    /// Generates up to `maxTokens` new tokens after `prompt`, stopping at an EOS id (included in the output) or
    /// when the context is full. `onToken` sees each token as it is produced; return false to stop.
    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters, stopTokens: Set<Int>? = nil,
                         onToken: (Int) -> Bool = { _ in true }) throws -> [Int] {
        guard maxTokens >= 0 else { throw GenerationError.invalidParameter(name: "max_tokens", detail: "must be ≥ 0, got \(maxTokens)") }
        var sampler = try Sampler(sampling)
        let stops = stopTokens ?? Set(model.eosTokenIds)
        let cache = model.makeCache()
        var output: [Int] = []
        guard maxTokens > 0 else { return output }
        var logits = try model.forward(prompt, cache: cache, allLogits: false)
        while output.count < maxTokens {
            let token = sampler.sample(logits[...])
            output.append(token)
            if !onToken(token) || stops.contains(token) || cache.length >= model.maxPositions { break }
            if output.count == maxTokens { break }
            logits = try model.forward([token], cache: cache, allLogits: false)
        }
        return output
    }
}
