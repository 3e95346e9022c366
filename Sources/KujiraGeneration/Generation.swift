import Foundation
import KujiraModels
import KujiraTensor

/// Errors in generation requests.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case invalidParameter(name: String, detail: String)

    public var description: String {
        switch self {
        case let .invalidParameter(name, detail): return "invalid \(name): \(detail)"
        }
    }
}

/// The greedy choice (first index of the largest logit) shared by generation, speculative verification and
/// benchmarks; sampling proper (temperature, top-k/p, min-p, penalties, seeds) is `LogitProcessor`.
public enum Sampler {
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
}

/// Prefill once, then decode one token at a time through the KV cache.
public struct Generator {
    public let model: any LanguageModel

    public init(model: any LanguageModel) { self.model = model }

    /// Generates up to `maxTokens` new tokens after `prompt`, stopping at an EOS id (included in the output) or
    /// when the context is full. `onToken` sees each token as it is produced; return false to stop. `onLogits` sees the
    /// model's logits row each token is chosen from (before penalties).
    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingConfiguration, stopTokens: Set<Int>? = nil,
                         onToken: (Int) -> Bool = { _ in true }, onLogits: ((UnsafeBufferPointer<Float>) -> Void)? = nil) throws -> [Int] {
        guard maxTokens >= 0 else { throw GenerationError.invalidParameter(name: "max_tokens", detail: "must be ≥ 0, got \(maxTokens)") }
        var sampler = try LogitProcessor(sampling, promptTokens: prompt)
        let stops = stopTokens ?? Set(model.eosTokenIds)
        let cache = model.makeCache()
        var output: [Int] = []
        guard maxTokens > 0 else { return output }
        // The prompt's logits, then one reused row per decoding step (`decode` writes into the cache's workspace).
        var row = try model.forward(prompt, cache: cache, allLogits: false)
        while output.count < maxTokens {
            if let onLogits { row.withUnsafeBufferPointer(onLogits) }
            let token = sampler.next(&row)
            output.append(token)
            if !onToken(token) || stops.contains(token) || cache.length >= model.maxPositions { break }
            if output.count == maxTokens { break }
            let logits = try model.decode(token, cache: cache)
            row.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: logits) }
        }
        return output
    }
}
