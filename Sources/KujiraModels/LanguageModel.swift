import Foundation
import KujiraFormats
import KujiraTensor

/// A causal language model: tokens in, next-token logits out, with a per-sequence `KVCache`.
public protocol LanguageModel: AnyObject, Sendable {
    /// The config the model was built from.
    var config: ModelConfig { get }
    var vocabSize: Int { get }
    /// Longest sequence the model accepts (`max_position_embeddings`).
    var maxPositions: Int { get }
    /// End-of-sequence ids from the config (may be empty).
    var eosTokenIds: [Int] { get }
    /// An empty cache for one sequence.
    func makeCache() -> KVCache
    /// Runs `tokens` at positions `cache.length ..< cache.length + tokens.count`, appends them to the cache and
    /// returns logits: one row of `vocabSize` per token if `allLogits`, else only the last token's row.
    func forward(_ tokens: [Int], cache: KVCache, allLogits: Bool) throws -> [Float]
    /// One decoding step: runs `token` at position `cache.length`, appends it and returns its logits in the cache's
    /// workspace (valid until the next call on this cache). The built-in architectures do not allocate here once the
    /// cache's buffers have grown to the context (`ForwardWorkspace`).
    func decode(_ token: Int, cache: KVCache) throws -> UnsafeBufferPointer<Float>
    /// One decoding step of B sequences at once (continuous batching): `tokens[b]` runs at position
    /// `caches[b].length` and is appended to `caches[b]`. Returns B rows of `vocabSize` logits (row b for sequence b)
    /// in `caches[0].workspace` (slot `batchLogits`), valid until the next call on `caches[0]`. The caches must be
    /// distinct. Row b equals what `decode(tokens[b], cache: caches[b])` returns (the built-in architectures read
    /// every weight once for all B tokens; see docs/inference.md for the exactness bound).
    func decodeBatch(_ tokens: [Int], caches: [KVCache]) throws -> UnsafeBufferPointer<Float>
    /// Parameter counts and storage facts for `kujira inspect`.
    var summary: ModelSummary { get }
}

/// Errors while running a model on user input.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case tokenOutOfRange(token: Int, vocabSize: Int)
    case contextTooLong(requested: Int, maximum: Int)
    case emptyInput
    case batchMismatch(tokens: Int, caches: Int)
    case duplicateCacheInBatch(index: Int)

    public var description: String {
        switch self {
        case let .tokenOutOfRange(token, vocabSize): return "token id \(token) is outside the vocabulary (0..<\(vocabSize))"
        case let .contextTooLong(requested, maximum): return "sequence of \(requested) tokens exceeds the model's maximum of \(maximum) positions"
        case .emptyInput: return "no input tokens"
        case let .batchMismatch(tokens, caches): return "batched decoding got \(tokens) tokens for \(caches) caches (one token per cache)"
        case let .duplicateCacheInBatch(index): return "batched decoding: cache \(index) appears twice (each sequence needs its own cache)"
        }
    }
}

/// A model that `--numerics llama.cpp` cannot emulate exactly (named, never run approximately).
public enum NumericsError: Error, Equatable, CustomStringConvertible {
    case unsupported(path: String, detail: String)

    public var description: String {
        switch self {
        case let .unsupported(path, detail): return "\(path): --numerics llama.cpp: \(detail)"
        }
    }
}

extension LanguageModel {
    /// `eos_token_id` of the config (one id or a list).
    public var eosTokenIds: [Int] { (try? config.intList("eos_token_id")) ?? [] }

    /// `forward` of one token, copied into the cache's workspace (models without an allocation-free path).
    public func decode(_ token: Int, cache: KVCache) throws -> UnsafeBufferPointer<Float> {
        let logits = try forward([token], cache: cache, allLogits: false)
        let out = cache.workspace.buffer(.logits, logits.count)
        _ = out.initialize(from: logits)
        return UnsafeBufferPointer(out)
    }

    /// `decode` per sequence, each row copied into `caches[0].workspace` (models without a batched path).
    public func decodeBatch(_ tokens: [Int], caches: [KVCache]) throws -> UnsafeBufferPointer<Float> {
        try validateBatch(tokens, caches: caches)
        let out = caches[0].workspace.buffer(.batchLogits, tokens.count * vocabSize)
        for b in 0..<tokens.count {
            let row = try decode(tokens[b], cache: caches[b])
            UnsafeMutableBufferPointer(rebasing: out[(b * vocabSize)..<((b + 1) * vocabSize)]).baseAddress!
                .update(from: row.baseAddress!, count: vocabSize)
        }
        return UnsafeBufferPointer(out)
    }

    /// Checks a batched decoding step: one token per cache, at least one, distinct caches, and each token and context
    /// length as `validate(token:cache:)` does.
    public func validateBatch(_ tokens: [Int], caches: [KVCache]) throws {
        guard !tokens.isEmpty else { throw ModelError.emptyInput }
        guard tokens.count == caches.count else { throw ModelError.batchMismatch(tokens: tokens.count, caches: caches.count) }
        for b in 0..<caches.count {
            try validate(token: tokens[b], cache: caches[b])
            for other in 0..<b where caches[other] === caches[b] { throw ModelError.duplicateCacheInBatch(index: b) }
        }
    }

    /// Checks one token and the context length before a decoding step (without building an array).
    public func validate(token: Int, cache: KVCache) throws {
        guard token >= 0 && token < vocabSize else { throw ModelError.tokenOutOfRange(token: token, vocabSize: vocabSize) }
        guard cache.length + 1 <= maxPositions else { throw ModelError.contextTooLong(requested: cache.length + 1, maximum: maxPositions) }
    }

    /// Checks ids and context length before a forward pass.
    public func validate(_ tokens: [Int], cache: KVCache) throws {
        guard !tokens.isEmpty else { throw ModelError.emptyInput }
        for t in tokens where t < 0 || t >= vocabSize { throw ModelError.tokenOutOfRange(token: t, vocabSize: vocabSize) }
        guard cache.length + tokens.count <= maxPositions else {
            throw ModelError.contextTooLong(requested: cache.length + tokens.count, maximum: maxPositions)
        }
    }
}

/// A model whose whole pass is one `DecoderStack` (every built-in architecture): `forward`, `decode` and
/// `decodeBatch` check their input, then run the stack (the allocation-free and batched paths).
public protocol DecoderStackModel: LanguageModel {
    var stack: DecoderStack { get }
    /// The multi-token-prediction module reading the stack's final hidden states, when the model has one.
    var multiTokenPrediction: MultiTokenPrediction? { get }
}

extension DecoderStackModel {
    public var multiTokenPrediction: MultiTokenPrediction? { nil }
}

extension DecoderStackModel {
    public func forward(_ tokens: [Int], cache: KVCache, allLogits: Bool) throws -> [Float] {
        try validate(tokens, cache: cache)
        return stack.forward(tokens, cache: cache, allLogits: allLogits)
    }

    public func decode(_ token: Int, cache: KVCache) throws -> UnsafeBufferPointer<Float> {
        try validate(token: token, cache: cache)
        return stack.decode(token, cache: cache)
    }

    public func decodeBatch(_ tokens: [Int], caches: [KVCache]) throws -> UnsafeBufferPointer<Float> {
        try validateBatch(tokens, caches: caches)
        return stack.decodeBatch(tokens, caches: caches)
    }
}
