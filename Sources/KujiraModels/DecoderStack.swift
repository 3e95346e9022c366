import KujiraFormats
import KujiraTensor

/// Embedding → decoder layers → final norm → LM head: the body every supported architecture shares.
public struct DecoderStack: Sendable {
    public let embedding: LinearWeight
    public let layers: [any DecoderBlock]
    public let finalNorm: [Float]
    public let lmHead: LinearWeight
    public let eps: Float
    /// How the residual stream widens the hidden state (DeepSeek-V4's hyper-connections), or nil for one stream.
    public let residual: (any ResidualExpansion)?

    public var hidden: Int { embedding.cols }
    public var vocabSize: Int { lmHead.rows }
    /// Values per token of the residual stream the blocks update.
    public var residualWidth: Int { residual?.width ?? hidden }

    /// Tensor names of the model-wide parameters.
    public static let embeddingName = "model.embed_tokens.weight", finalNormName = "model.norm.weight", lmHeadName = "lm_head.weight"

    /// Loads `model.embed_tokens`, `model.norm` and `lm_head` (tied to the embedding when the config says so).
    public init(config: ModelConfig, weights: any WeightStore, layers: [any DecoderBlock], vocabSize: Int, hidden: Int, eps: Float,
                blockSize: [Int]?, residual: (any ResidualExpansion)? = nil) throws {
        embedding = try weights.linear(Self.embeddingName, rows: vocabSize, cols: hidden, blockSize: blockSize)
        finalNorm = try weights.floats(Self.finalNormName, shape: [hidden])
        if try config.bool("tie_word_embeddings", default: false) && !weights.contains(Self.lmHeadName) {
            lmHead = embedding
        } else {
            lmHead = try weights.linear(Self.lmHeadName, rows: vocabSize, cols: hidden, blockSize: blockSize)
        }
        self.layers = layers
        self.eps = eps
        self.residual = residual
    }

    /// The model-wide parameters: embedding, final norm and (unless tied) the LM head.
    public static func parameters(vocabSize: Int, hidden: Int, tied: Bool) -> [ParameterLayout.Entry] {
        var e: [ParameterLayout.Entry] = [.init(embeddingName, [vocabSize, hidden]), .init(finalNormName, [hidden], .ones)]
        if !tied { e.append(.init(lmHeadName, [vocabSize, hidden])) }
        return e
    }

    /// Embedding rows of `tokens`, (n, hidden).
    public func embed(_ tokens: [Int]) -> [Float] {
        var x = [Float](repeating: 0, count: tokens.count * hidden)
        x.withUnsafeMutableBufferPointer { buffer in
            for (t, token) in tokens.enumerated() {
                embedding.decodeRow(token, into: UnsafeMutableBufferPointer(rebasing: buffer[(t * hidden)..<((t + 1) * hidden)]))
            }
        }
        return x
    }

    /// Final hidden states (after the final norm) for `tokens`, extending `cache`.
    public func hiddenStates(_ tokens: [Int], cache: KVCache) -> [Float] {
        Array(hiddenStates(count: tokens.count, cache: cache) { t in tokens[t] })
    }

    /// Final hidden states of `count` tokens (`token(t)` gives the t-th) in `cache.workspace` (slot `finalHidden`,
    /// valid until the next forward pass of this sequence), extending `cache`. Does not allocate once the
    /// workspace and cache have grown to the chunk and context size.
    @inline(__always)
    public func hiddenStates(count n: Int, cache: KVCache, token: (Int) -> Int) -> UnsafeMutableBufferPointer<Float> {
        hiddenStates(count: n, batch: .single(cache), token: token)
    }

    /// Final hidden states of `count` rows belonging to the sequences of `batch` (`token(t)` gives row t's id) in
    /// `batch.workspace` (slot `finalHidden`), extending every cache of the batch by its rows.
    @inline(__always)
    public func hiddenStates(count n: Int, batch: SequenceBatch, token: (Int) -> Int) -> UnsafeMutableBufferPointer<Float> {
        for s in 0..<batch.count {
            let cache = batch.cache(s)
            cache.reserve(cache.length + batch.rows(s, n: n).count)
        }
        let workspace = batch.workspace, width = residualWidth
        let x = workspace.buffer(.hidden, n * width), ids = workspace.ints(.tokenIds, n)
        for t in 0..<n {
            ids[t] = token(t)
            embedding.decodeRow(ids[t], into: UnsafeMutableBufferPointer(rebasing: x[(t * width)..<(t * width + hidden)]))
        }
        residual?.expand(x, n: n)
        for index in 0..<layers.count {  // an index loop: `enumerated()` boxes each element in unoptimised builds
            layers[index].forward(x, n: n, batch: batch, layer: index)
        }
        for s in 0..<batch.count { batch.cache(s).advance(by: batch.rows(s, n: n).count) }
        let out = workspace.buffer(.finalHidden, n * hidden)
        var collapsed = UnsafeBufferPointer(x)
        if let residual {
            let c = workspace.buffer(.collapsedResidual, n * hidden)
            residual.collapse(UnsafeBufferPointer(x), n: n, into: c, workspace: workspace)
            collapsed = UnsafeBufferPointer(c)
        }
        finalNorm.withUnsafeBufferPointer {
            Elementwise.rmsNorm(collapsed, weight: $0, eps: eps, n: n, into: out, numerics: workspace.numerics)
        }
        return out
    }

    /// Logits of `tokens` (every token's if `allLogits`, else the last one's), extending `cache`.
    public func forward(_ tokens: [Int], cache: KVCache, allLogits: Bool) -> [Float] {
        let n = tokens.count
        return logits(fromHidden: UnsafeBufferPointer(hiddenStates(count: n, cache: cache) { tokens[$0] }), n: n, allLogits: allLogits,
                      numerics: cache.workspace.numerics)
    }

    /// One decoding step without allocation: the token's logits in the workspace.
    @inline(__always)
    public func decode(_ token: Int, cache: KVCache) -> UnsafeBufferPointer<Float> {
        lastLogits(fromHidden: hiddenStates(count: 1, cache: cache) { _ in token }, n: 1, workspace: cache.workspace)
    }

    /// One decoding step of several sequences as one pass: row b is `tokens[b]` at position `caches[b].length`; the
    /// projections, feed-forward and LM head read their weights once for all rows, attention runs per sequence over
    /// its own cache. Returns (B, vocab) logits in `caches[0].workspace` (slot `batchLogits`), valid until the next
    /// forward pass on `caches[0]`. Caches must be distinct.
    public func decodeBatch(_ tokens: [Int], caches: [KVCache]) -> UnsafeBufferPointer<Float> {
        precondition(tokens.count == caches.count && !caches.isEmpty, "decodeBatch needs one token per cache")
        let n = tokens.count
        let h = hiddenStates(count: n, batch: .tokens(caches)) { tokens[$0] }
        let out = caches[0].workspace.buffer(.batchLogits, n * vocabSize)
        Linear.forward(lmHead, UnsafeBufferPointer(h), n: n, into: out, numerics: caches[0].workspace.numerics)
        return UnsafeBufferPointer(out)
    }

    /// Logits for every token (`allLogits`) or the last one, from final hidden states (n, hidden).
    public func logits(fromHidden h: UnsafeBufferPointer<Float>, n: Int, allLogits: Bool, numerics: Numerics = .kujira) -> [Float] {
        let rows = allLogits ? n : 1
        var out = [Float](repeating: 0, count: rows * vocabSize)
        out.withUnsafeMutableBufferPointer {
            Linear.forward(lmHead, UnsafeBufferPointer(rebasing: h[((n - rows) * hidden)..<(n * hidden)]), n: rows, into: $0, numerics: numerics)
        }
        return out
    }

    /// `logits(fromHidden:n:allLogits:)` of an array.
    public func logits(fromHidden h: [Float], n: Int, allLogits: Bool, numerics: Numerics = .kujira) -> [Float] {
        h.withUnsafeBufferPointer { logits(fromHidden: $0, n: n, allLogits: allLogits, numerics: numerics) }
    }

    /// The last token's logits into the workspace (slot `logits`) from final hidden states (n, hidden).
    @inline(__always)
    public func lastLogits(fromHidden h: UnsafeMutableBufferPointer<Float>, n: Int, workspace: ForwardWorkspace) -> UnsafeBufferPointer<Float> {
        let out = workspace.buffer(.logits, vocabSize)
        Linear.forward(lmHead, UnsafeBufferPointer(rebasing: h[((n - 1) * hidden)..<(n * hidden)]), n: 1, into: out, numerics: workspace.numerics)
        return UnsafeBufferPointer(out)
    }

    /// Count of tensors per dtype across the stack's weights (for `inspect`).
    public var totalParameters: Int {
        var total = embedding.rows * embedding.cols + finalNorm.count
        if lmHead.data.bytes.baseAddress != embedding.data.bytes.baseAddress { total += lmHead.rows * lmHead.cols }
        for layer in layers { total += layer.parameterCount }
        return total + (residual?.parameterCount ?? 0)
    }

    /// Weights a token does not touch (unrouted experts).
    public var inactiveParameters: Int { layers.reduce(0) { $0 + $1.inactiveParameterCount } }
}

/// A residual stream wider than the hidden state (DeepSeek-V4's hyper-connections): how embeddings fill it and how it
/// collapses back to one hidden row before the final norm.
public protocol ResidualExpansion: Sendable {
    /// Residual values per token.
    var width: Int { get }
    /// Widens x in place: each row (n, width) holds its embedding in its first `hidden` values on entry.
    func expand(_ x: UnsafeMutableBufferPointer<Float>, n: Int)
    /// out (n, hidden) from the residual x (n, width).
    func collapse(_ x: UnsafeBufferPointer<Float>, n: Int, into out: UnsafeMutableBufferPointer<Float>, workspace: ForwardWorkspace)
    var parameterCount: Int { get }
}

extension ForwardWorkspace.Slot {
    /// The residual collapsed to one hidden row per token (`ResidualExpansion`).
    public static let collapsedResidual = Self("collapsedResidual")
}
