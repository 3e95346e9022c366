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

/// SwiGLU feed-forward: down(silu(gate(x)) * up(x)); with `limit` (DeepSeek-V4), gate is clamped above at limit and
/// up to ±limit first.
public struct GatedMLP: FeedForward {
    public let gate: LinearWeight
    public let up: LinearWeight
    public let down: LinearWeight
    /// DeepSeek-V4's `swiglu_limit`, or nil.
    public let limit: Float?
    /// The block's tensor-name prefix (`model.layers.N.mlp`; empty for experts built from slices): gradients are filed under it.
    public var prefix = ""

    /// Tensor names under the block's prefix.
    public static let gateName = "gate_proj.weight", upName = "up_proj.weight", downName = "down_proj.weight"

    public init(gate: LinearWeight, up: LinearWeight, down: LinearWeight, limit: Float? = nil) {
        self.gate = gate
        self.up = up
        self.down = down
        self.limit = limit
    }

    /// Loads `<prefix>.gate_proj/up_proj/down_proj.weight`, checking shapes.
    public init(weights: any WeightStore, prefix: String, hidden: Int, intermediate: Int, blockSize: [Int]?, limit: Float? = nil) throws {
        gate = try weights.linear("\(prefix).\(Self.gateName)", rows: intermediate, cols: hidden, blockSize: blockSize)
        up = try weights.linear("\(prefix).\(Self.upName)", rows: intermediate, cols: hidden, blockSize: blockSize)
        down = try weights.linear("\(prefix).\(Self.downName)", rows: hidden, cols: intermediate, blockSize: blockSize)
        self.limit = limit
        self.prefix = prefix
    }

    /// The block's parameters under `prefix`.
    public static func parameters(_ prefix: String, hidden: Int, intermediate: Int) -> [ParameterLayout.Entry] {
        [.init("\(prefix).\(gateName)", [intermediate, hidden]), .init("\(prefix).\(upName)", [intermediate, hidden]),
         .init("\(prefix).\(downName)", [hidden, intermediate])]
    }

    public func forward(_ x: UnsafeBufferPointer<Float>, n: Int, workspace: ForwardWorkspace, load: ExpertLoad?, layer: Int,
                        into out: UnsafeMutableBufferPointer<Float>) {
        let numerics = workspace.numerics
        let g = workspace.buffer(.gate, n * gate.rows), u = workspace.buffer(.up, n * up.rows)
        Linear.forward(gate, into: g, up, into: u, sharing: x, n: n, numerics: numerics)
        if let limit {
            Elementwise.swigluClamped(gate: g, up: UnsafeBufferPointer(u), limit: limit)
        } else {
            Elementwise.swiglu(gate: g, up: UnsafeBufferPointer(u), numerics: numerics)
        }
        Linear.forward(down, UnsafeBufferPointer(g), n: n, into: out, numerics: numerics)
    }

    public var totalParameters: Int { gate.rows * gate.cols + up.rows * up.cols + down.rows * down.cols }
    /// Bytes of its three projections as stored (what one token routed to it reads).
    public var weightBytes: Int { gate.data.bytes.count + up.data.bytes.count + down.data.bytes.count }
    public var activeParameters: Int { totalParameters }
}

/// One block of the decoder stack: updates the residual stream (n, `DecoderStack.residualWidth`) in place, reading
/// and extending the caches of `batch`'s sequences.
public protocol DecoderBlock: Sendable {
    func forward(_ x: UnsafeMutableBufferPointer<Float>, n: Int, batch: SequenceBatch, layer: Int)
    /// Number of weights in the block.
    var parameterCount: Int { get }
    /// Weights a token does not touch (experts it is not routed to).
    var inactiveParameterCount: Int { get }
    /// The block's routed experts, if it has any (`kujira bench` counts their bytes).
    var mixtureOfExperts: MixtureOfExperts? { get }
}

/// One pre-norm decoder layer: x += mixer(norm(x)); x += ffn(norm(x)).
public struct DecoderLayer: DecoderBlock {
    public let inputNorm: [Float]
    public let mixer: any TokenMixer
    public let postAttentionNorm: [Float]
    public let feedForward: any FeedForward
    /// RMSNorm epsilon of the two norms.
    public let eps: Float
    /// The layer's tensor-name prefix (`model.layers.N`; empty when built from parts): gradients are filed under it.
    public var prefix = ""

    /// Tensor names of the two norms under the layer's prefix.
    public static let inputNormName = "input_layernorm.weight", postAttentionNormName = "post_attention_layernorm.weight"

    public init(inputNorm: [Float], mixer: any TokenMixer, postAttentionNorm: [Float], feedForward: any FeedForward, eps: Float) {
        self.inputNorm = inputNorm
        self.mixer = mixer
        self.postAttentionNorm = postAttentionNorm
        self.feedForward = feedForward
        self.eps = eps
    }

    /// Loads the two norms of `<prefix>` around a mixer and a feed-forward.
    public init(weights: any WeightStore, prefix: String, hidden: Int, eps: Float, mixer: any TokenMixer, feedForward: any FeedForward) throws {
        self.init(inputNorm: try weights.floats("\(prefix).\(Self.inputNormName)", shape: [hidden]), mixer: mixer,
                  postAttentionNorm: try weights.floats("\(prefix).\(Self.postAttentionNormName)", shape: [hidden]),
                  feedForward: feedForward, eps: eps)
        self.prefix = prefix
    }

    /// The two norms' parameters under `prefix`.
    public static func normParameters(_ prefix: String, hidden: Int) -> [ParameterLayout.Entry] {
        [.init("\(prefix).\(inputNormName)", [hidden], .ones), .init("\(prefix).\(postAttentionNormName)", [hidden], .ones)]
    }

    /// Applies the layer to x (n, hidden) in place; the rows belong to the sequences of `batch`, scratch from
    /// `batch.workspace`.
    @inline(__always)
    public func forward(_ x: UnsafeMutableBufferPointer<Float>, n: Int, batch: SequenceBatch, layer: Int) {
        let workspace = batch.workspace, numerics = workspace.numerics
        let normed = workspace.buffer(.normed, x.count), update = workspace.buffer(.mixerOut, x.count)
        inputNorm.withUnsafeBufferPointer { Elementwise.rmsNorm(UnsafeBufferPointer(x), weight: $0, eps: eps, n: n, into: normed, numerics: numerics) }
        mixer.forward(UnsafeBufferPointer(normed), n: n, batch: batch, layer: layer, into: update)
        Elementwise.add(UnsafeBufferPointer(update), into: x)
        postAttentionNorm.withUnsafeBufferPointer { Elementwise.rmsNorm(UnsafeBufferPointer(x), weight: $0, eps: eps, n: n, into: normed, numerics: numerics) }
        feedForward.forward(UnsafeBufferPointer(normed), n: n, workspace: workspace, load: batch.expertLoad, layer: layer, into: update)
        Elementwise.add(UnsafeBufferPointer(update), into: x)
    }

    /// Applies the layer to n tokens of one sequence in place; scratch from `cache.workspace`.
    public func forward(_ x: UnsafeMutableBufferPointer<Float>, n: Int, cache: KVCache, layer: Int) {
        forward(x, n: n, batch: .single(cache), layer: layer)
    }

    /// Array convenience of `forward(_:n:cache:layer:)`.
    public func forward(_ x: inout [Float], n: Int, cache: KVCache, layer: Int) {
        x.withUnsafeMutableBufferPointer { forward($0, n: n, cache: cache, layer: layer) }
    }

    public var parameterCount: Int { inputNorm.count + postAttentionNorm.count + mixer.parameterCount + feedForward.totalParameters }
    public var inactiveParameterCount: Int { feedForward.totalParameters - feedForward.activeParameters }
    public var mixtureOfExperts: MixtureOfExperts? { feedForward as? MixtureOfExperts }
}

