import KujiraFormats
import KujiraTensor

/// A sequence-mixing block (attention) that reads and extends the layer's slice of the KV cache.
public protocol TokenMixer: Sendable {
    /// out (n, hidden) = attention of x (n, hidden) over its own sequence's cached tokens: each segment of `batch`
    /// writes its rows into its cache at positions from that cache's `length` and attends over that cache only.
    /// Scratch comes from `batch.workspace`; `x` and `out` must not overlap.
    func forward(_ x: UnsafeBufferPointer<Float>, n: Int, batch: SequenceBatch, layer: Int, into out: UnsafeMutableBufferPointer<Float>)
    /// Floats this block stores per token in the cache.
    var cacheRowWidth: Int { get }
    /// Number of weights in the block.
    var parameterCount: Int { get }
    /// Width of the output rows (hidden size).
    var outputWidth: Int { get }
}

extension TokenMixer {
    /// `forward` of n tokens of one sequence, whose positions start at `cache.length`.
    @inline(__always)
    public func forward(_ x: UnsafeBufferPointer<Float>, n: Int, cache: KVCache, layer: Int, into out: UnsafeMutableBufferPointer<Float>) {
        forward(x, n: n, batch: .single(cache), layer: layer, into: out)
    }

    /// Array convenience (allocates the result).
    public func forward(_ x: [Float], n: Int, cache: KVCache, layer: Int) -> [Float] {
        var out = [Float](repeating: 0, count: n * outputWidth)
        x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { forward(xb, n: n, cache: cache, layer: layer, into: $0) } }
        return out
    }
}

/// A position-wise block (dense MLP or mixture of experts).
public protocol FeedForward: Sendable {
    /// out (n, hidden) = f(x (n, hidden)), with scratch from `workspace`; blocks with per-sequence statistics
    /// (expert load) record them in `load`. `x` and `out` must not overlap.
    func forward(_ x: UnsafeBufferPointer<Float>, n: Int, workspace: ForwardWorkspace, load: ExpertLoad?, layer: Int,
                 into out: UnsafeMutableBufferPointer<Float>)
    /// Parameters touched per token (for the active-parameter count).
    var activeParameters: Int { get }
    var totalParameters: Int { get }
}

extension FeedForward {
    /// Array convenience (allocates a workspace and the result).
    public func forward(_ x: [Float], n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { forward(xb, n: n, workspace: ForwardWorkspace(), load: nil, layer: 0, into: $0) }
        }
        return out
    }

    /// The same inside a sequence: scratch from the cache's workspace, expert load recorded in the cache.
    public func forward(_ x: [Float], n: Int, cache: KVCache, layer: Int) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { forward(xb, n: n, workspace: cache.workspace, load: cache.expertLoad, layer: layer, into: $0) }
        }
        return out
    }
}

/// SwiGLU feed-forward: down(silu(gate(x)) * up(x)).
public struct GatedMLP: FeedForward {
    public let gate: LinearWeight
    public let up: LinearWeight
    public let down: LinearWeight
    /// Kujira's kernels or llama.cpp's arithmetic (`Numerics`).
    public let numerics: Numerics

    public init(gate: LinearWeight, up: LinearWeight, down: LinearWeight, numerics: Numerics = .kujira) {
        self.gate = gate
        self.up = up
        self.down = down
        self.numerics = numerics
    }

    /// Loads `<prefix>.gate_proj/up_proj/down_proj.weight`, checking shapes.
    public init(weights: any WeightStore, prefix: String, hidden: Int, intermediate: Int, blockSize: [Int]?, numerics: Numerics = .kujira) throws {
        gate = try weights.linear("\(prefix).gate_proj.weight", rows: intermediate, cols: hidden, blockSize: blockSize)
        up = try weights.linear("\(prefix).up_proj.weight", rows: intermediate, cols: hidden, blockSize: blockSize)
        down = try weights.linear("\(prefix).down_proj.weight", rows: hidden, cols: intermediate, blockSize: blockSize)
        self.numerics = numerics
    }

    public func forward(_ x: UnsafeBufferPointer<Float>, n: Int, workspace: ForwardWorkspace, load: ExpertLoad?, layer: Int,
                        into out: UnsafeMutableBufferPointer<Float>) {
        let g = workspace.buffer(.gate, n * gate.rows), u = workspace.buffer(.up, n * up.rows)
        Linear.forward(gate, x, n: n, into: g, numerics: numerics)
        Linear.forward(up, x, n: n, into: u, numerics: numerics)
        Elementwise.swiglu(gate: g, up: UnsafeBufferPointer(u), numerics: numerics)
        Linear.forward(down, UnsafeBufferPointer(g), n: n, into: out, numerics: numerics)
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
    /// The arithmetic of the two norms (the mixer and feed-forward carry their own).
    public let numerics: Numerics

    public init(inputNorm: [Float], mixer: any TokenMixer, postAttentionNorm: [Float], feedForward: any FeedForward, numerics: Numerics = .kujira) {
        self.inputNorm = inputNorm
        self.mixer = mixer
        self.postAttentionNorm = postAttentionNorm
        self.feedForward = feedForward
        self.numerics = numerics
    }

    /// Applies the layer to x (n, hidden) in place; the rows belong to the sequences of `batch`, scratch from
    /// `batch.workspace`.
    @inline(__always)
    public func forward(_ x: UnsafeMutableBufferPointer<Float>, n: Int, eps: Float, batch: SequenceBatch, layer: Int) {
        let workspace = batch.workspace
        let normed = workspace.buffer(.normed, x.count), update = workspace.buffer(.mixerOut, x.count)
        inputNorm.withUnsafeBufferPointer { Elementwise.rmsNorm(UnsafeBufferPointer(x), weight: $0, eps: eps, n: n, into: normed, numerics: numerics) }
        mixer.forward(UnsafeBufferPointer(normed), n: n, batch: batch, layer: layer, into: update)
        Elementwise.add(UnsafeBufferPointer(update), into: x)
        postAttentionNorm.withUnsafeBufferPointer { Elementwise.rmsNorm(UnsafeBufferPointer(x), weight: $0, eps: eps, n: n, into: normed, numerics: numerics) }
        feedForward.forward(UnsafeBufferPointer(normed), n: n, workspace: workspace, load: batch.expertLoad, layer: layer, into: update)
        Elementwise.add(UnsafeBufferPointer(update), into: x)
    }

    /// Applies the layer to n tokens of one sequence in place; scratch from `cache.workspace`.
    public func forward(_ x: UnsafeMutableBufferPointer<Float>, n: Int, eps: Float, cache: KVCache, layer: Int) {
        forward(x, n: n, eps: eps, batch: .single(cache), layer: layer)
    }

    /// Array convenience of `forward(_:n:eps:cache:layer:)`.
    public func forward(_ x: inout [Float], n: Int, eps: Float, cache: KVCache, layer: Int) {
        x.withUnsafeMutableBufferPointer { forward($0, n: n, eps: eps, cache: cache, layer: layer) }
    }
}

/// Embedding → decoder layers → final norm → LM head: the body every supported architecture shares.
public struct DecoderStack: Sendable {
    public let embedding: LinearWeight
    public let layers: [DecoderLayer]
    public let finalNorm: [Float]
    public let lmHead: LinearWeight
    public let eps: Float
    /// The arithmetic of the final norm and the LM head.
    public let numerics: Numerics

    public var hidden: Int { embedding.cols }
    public var vocabSize: Int { lmHead.rows }

    /// Loads `model.embed_tokens`, `model.norm` and `lm_head` (tied to the embedding when the config says so).
    public init(config: ModelConfig, weights: any WeightStore, layers: [DecoderLayer], vocabSize: Int, hidden: Int, eps: Float, blockSize: [Int]?,
                numerics: Numerics = .kujira) throws {
        embedding = try weights.linear("model.embed_tokens.weight", rows: vocabSize, cols: hidden, blockSize: blockSize)
        finalNorm = try weights.floats("model.norm.weight", shape: [hidden])
        if try config.bool("tie_word_embeddings", default: false) && !weights.contains("lm_head.weight") {
            lmHead = embedding
        } else {
            lmHead = try weights.linear("lm_head.weight", rows: vocabSize, cols: hidden, blockSize: blockSize)
        }
        self.layers = layers
        self.eps = eps
        self.numerics = numerics
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
        let workspace = batch.workspace
        let x = workspace.buffer(.hidden, n * hidden)
        for t in 0..<n {
            embedding.decodeRow(token(t), into: UnsafeMutableBufferPointer(rebasing: x[(t * hidden)..<((t + 1) * hidden)]))
        }
        for index in 0..<layers.count {  // an index loop: `enumerated()` boxes each element in unoptimised builds
            layers[index].forward(x, n: n, eps: eps, batch: batch, layer: index)
        }
        for s in 0..<batch.count { batch.cache(s).advance(by: batch.rows(s, n: n).count) }
        let out = workspace.buffer(.finalHidden, n * hidden)
        finalNorm.withUnsafeBufferPointer { Elementwise.rmsNorm(UnsafeBufferPointer(x), weight: $0, eps: eps, n: n, into: out, numerics: numerics) }
        return out
    }

    /// Logits of `tokens` (every token's if `allLogits`, else the last one's), extending `cache`.
    public func forward(_ tokens: [Int], cache: KVCache, allLogits: Bool) -> [Float] {
        let n = tokens.count
        return logits(fromHidden: UnsafeBufferPointer(hiddenStates(count: n, cache: cache) { tokens[$0] }), n: n, allLogits: allLogits)
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
        Linear.forward(lmHead, UnsafeBufferPointer(h), n: n, into: out, numerics: numerics)
        return UnsafeBufferPointer(out)
    }

    /// Logits for every token (`allLogits`) or the last one, from final hidden states (n, hidden).
    public func logits(fromHidden h: UnsafeBufferPointer<Float>, n: Int, allLogits: Bool) -> [Float] {
        let rows = allLogits ? n : 1
        var out = [Float](repeating: 0, count: rows * vocabSize)
        out.withUnsafeMutableBufferPointer {
            Linear.forward(lmHead, UnsafeBufferPointer(rebasing: h[((n - rows) * hidden)..<(n * hidden)]), n: rows, into: $0, numerics: numerics)
        }
        return out
    }

    /// `logits(fromHidden:n:allLogits:)` of an array.
    public func logits(fromHidden h: [Float], n: Int, allLogits: Bool) -> [Float] {
        h.withUnsafeBufferPointer { logits(fromHidden: $0, n: n, allLogits: allLogits) }
    }

    /// The last token's logits into the workspace (slot `logits`) from final hidden states (n, hidden).
    @inline(__always)
    public func lastLogits(fromHidden h: UnsafeMutableBufferPointer<Float>, n: Int, workspace: ForwardWorkspace) -> UnsafeBufferPointer<Float> {
        let out = workspace.buffer(.logits, vocabSize)
        Linear.forward(lmHead, UnsafeBufferPointer(rebasing: h[((n - 1) * hidden)..<(n * hidden)]), n: 1, into: out, numerics: numerics)
        return UnsafeBufferPointer(out)
    }

    /// Count of tensors per dtype across the stack's weights (for `inspect`).
    public var totalParameters: Int {
        var total = embedding.rows * embedding.cols + finalNorm.count
        if lmHead.data.bytes.baseAddress != embedding.data.bytes.baseAddress { total += lmHead.rows * lmHead.cols }
        for layer in layers { total += layer.inputNorm.count + layer.postAttentionNorm.count + layer.mixer.parameterCount + layer.feedForward.totalParameters }
        return total
    }
}
