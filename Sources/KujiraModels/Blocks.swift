import KujiraFormats
import KujiraTensor

/// A sequence-mixing block (attention) that reads and extends the layer's slice of the KV cache.
public protocol TokenMixer: Sendable {
    /// out (n, hidden) = attention over cached tokens + x (n, hidden), whose positions start at `cache.length`.
    func forward(_ x: [Float], n: Int, cache: KVCache, layer: Int) -> [Float]
    /// Floats this block stores per token in the cache.
    var cacheRowWidth: Int { get }
    /// Number of weights in the block.
    var parameterCount: Int { get }
}

/// A position-wise block (dense MLP or mixture of experts).
public protocol FeedForward: Sendable {
    /// out (n, hidden) = f(x (n, hidden)).
    func forward(_ x: [Float], n: Int) -> [Float]
    /// The same, inside a sequence: blocks with per-sequence statistics (expert load) record them in `cache`.
    func forward(_ x: [Float], n: Int, cache: KVCache, layer: Int) -> [Float]
    /// Parameters touched per token (for the active-parameter count).
    var activeParameters: Int { get }
    var totalParameters: Int { get }
}

extension FeedForward {
    public func forward(_ x: [Float], n: Int, cache: KVCache, layer: Int) -> [Float] { forward(x, n: n) }
}

/// SwiGLU feed-forward: down(silu(gate(x)) * up(x)).
public struct GatedMLP: FeedForward {
    public let gate: LinearWeight
    public let up: LinearWeight
    public let down: LinearWeight

    public init(gate: LinearWeight, up: LinearWeight, down: LinearWeight) {
        self.gate = gate
        self.up = up
        self.down = down
    }

    /// Loads `<prefix>.gate_proj/up_proj/down_proj.weight`, checking shapes.
    public init(weights: any WeightStore, prefix: String, hidden: Int, intermediate: Int, blockSize: [Int]?) throws {
        gate = try weights.linear("\(prefix).gate_proj.weight", rows: intermediate, cols: hidden, blockSize: blockSize)
        up = try weights.linear("\(prefix).up_proj.weight", rows: intermediate, cols: hidden, blockSize: blockSize)
        down = try weights.linear("\(prefix).down_proj.weight", rows: hidden, cols: intermediate, blockSize: blockSize)
    }

    public func forward(_ x: [Float], n: Int) -> [Float] {
        var g = Linear.forward(gate, x, n: n)
        let u = Linear.forward(up, x, n: n)
        g.withUnsafeMutableBufferPointer { gb in u.withUnsafeBufferPointer { Elementwise.swiglu(gate: gb, up: $0) } }
        return Linear.forward(down, g, n: n)
    }

    public var totalParameters: Int { gate.rows * gate.cols + up.rows * up.cols + down.rows * down.cols }
    public var activeParameters: Int { totalParameters }
}

/// One pre-norm decoder layer: x += mixer(norm(x)); x += ffn(norm(x)).
public struct DecoderLayer: Sendable {
    public let inputNorm: [Float]
    public let mixer: any TokenMixer
    public let postAttentionNorm: [Float]
    public let feedForward: any FeedForward

    public init(inputNorm: [Float], mixer: any TokenMixer, postAttentionNorm: [Float], feedForward: any FeedForward) {
        self.inputNorm = inputNorm
        self.mixer = mixer
        self.postAttentionNorm = postAttentionNorm
        self.feedForward = feedForward
    }

    /// Applies the layer to x (n, hidden) in place.
    public func forward(_ x: inout [Float], n: Int, eps: Float, cache: KVCache, layer: Int) {
        let attention = mixer.forward(Elementwise.rmsNorm(x, weight: inputNorm, eps: eps), n: n, cache: cache, layer: layer)
        for i in 0..<x.count { x[i] += attention[i] }
        let mlp = feedForward.forward(Elementwise.rmsNorm(x, weight: postAttentionNorm, eps: eps), n: n, cache: cache, layer: layer)
        for i in 0..<x.count { x[i] += mlp[i] }
    }
}

/// Embedding → decoder layers → final norm → LM head: the body every supported architecture shares.
public struct DecoderStack: Sendable {
    public let embedding: LinearWeight
    public let layers: [DecoderLayer]
    public let finalNorm: [Float]
    public let lmHead: LinearWeight
    public let eps: Float

    public var hidden: Int { embedding.cols }
    public var vocabSize: Int { lmHead.rows }

    /// Loads `model.embed_tokens`, `model.norm` and `lm_head` (tied to the embedding when the config says so).
    public init(config: ModelConfig, weights: any WeightStore, layers: [DecoderLayer], vocabSize: Int, hidden: Int, eps: Float, blockSize: [Int]?) throws {
        embedding = try weights.linear("model.embed_tokens.weight", rows: vocabSize, cols: hidden, blockSize: blockSize)
        finalNorm = try weights.floats("model.norm.weight", shape: [hidden])
        if try config.bool("tie_word_embeddings", default: false) && !weights.contains("lm_head.weight") {
            lmHead = embedding
        } else {
            lmHead = try weights.linear("lm_head.weight", rows: vocabSize, cols: hidden, blockSize: blockSize)
        }
        self.layers = layers
        self.eps = eps
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
        let n = tokens.count
        cache.reserve(cache.length + n)
        var x = embed(tokens)
        for (index, layer) in layers.enumerated() {
            layer.forward(&x, n: n, eps: eps, cache: cache, layer: index)
        }
        cache.advance(by: n)
        return Elementwise.rmsNorm(x, weight: finalNorm, eps: eps)
    }

    /// Logits for every token (`allLogits`) or the last one.
    public func logits(fromHidden h: [Float], n: Int, allLogits: Bool) -> [Float] {
        if allLogits { return Linear.forward(lmHead, h, n: n) }
        return Linear.forward(lmHead, Array(h[((n - 1) * hidden)..<(n * hidden)]), n: 1)
    }

    /// Count of tensors per dtype across the stack's weights (for `inspect`).
    public var totalParameters: Int {
        var total = embedding.rows * embedding.cols + finalNorm.count
        if lmHead.data.bytes.baseAddress != embedding.data.bytes.baseAddress { total += lmHead.rows * lmHead.cols }
        for layer in layers { total += layer.inputNorm.count + layer.postAttentionNorm.count + layer.mixer.parameterCount + layer.feedForward.totalParameters }
        return total
    }
}
