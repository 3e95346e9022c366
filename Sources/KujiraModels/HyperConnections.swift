import Foundation
import KujiraFormats
import KujiraTensor

/// Manifold-constrained hyper-connections (DeepSeek-V4): the residual stream is `streams` copies of the hidden state.
/// Before a block, learned weights computed from all copies collapse them into the block's input (`pre`); after it,
/// the block's output is spread back (`post`) and added to the copies mixed by a doubly-stochastic matrix (`comb`,
/// made so by Sinkhorn iterations).
public struct HyperConnection: Sendable {
    /// `fn` ((2 + n)·n, n·hidden), `base` ((2 + n)·n) and `scale` (3: pre, post, comb).
    public let mixing: LinearWeight, base: [Float], scale: [Float]
    public let streams: Int, sinkhornIterations: Int, eps: Float, normEps: Float

    /// Tensor names under the block's prefix (`…attn_hc`, `…ffn_hc`).
    public enum Names { public static let mixing = "fn", base = "base", scale = "scale" }

    public init(weights: any WeightStore, prefix: String, hidden: Int, streams: Int, sinkhornIterations: Int, eps: Float, normEps: Float) throws {
        let mixes = (2 + streams) * streams
        mixing = try weights.linear("\(prefix).\(Names.mixing)", rows: mixes, cols: streams * hidden)
        base = try weights.floats("\(prefix).\(Names.base)", shape: [mixes])
        scale = try weights.floats("\(prefix).\(Names.scale)", shape: [3])
        self.streams = streams
        self.sinkhornIterations = sinkhornIterations
        self.eps = eps
        self.normEps = normEps
    }

    public static func parameters(_ prefix: String, hidden: Int, streams: Int) -> [ParameterLayout.Entry] {
        let mixes = (2 + streams) * streams
        return [.init("\(prefix).\(Names.mixing)", [mixes, streams * hidden]), .init("\(prefix).\(Names.base)", [mixes], .zeros),
                .init("\(prefix).\(Names.scale)", [3], .ones)]
    }

    public var parameterCount: Int { mixing.rows * mixing.cols + base.count + scale.count }

    /// For each of n rows of the residual x (n, streams·hidden): `collapsed` (n, hidden) = Σ_i pre_i · x_i, and each
    /// row's `post` (streams) and `comb` (streams²) into `weights` (n, streams + streams²).
    func prepare(_ x: UnsafeBufferPointer<Float>, n: Int, hidden: Int, collapsed: UnsafeMutablePointer<Float>,
                 weights: UnsafeMutablePointer<Float>, workspace: ForwardWorkspace) {
        let k = streams, width = k * hidden, mixes = (2 + k) * k
        let normed = workspace.buffer(.hyperNormed, n * width), mixed = workspace.buffer(.hyperMixes, n * mixes)
        normed.baseAddress!.update(from: x.baseAddress!, count: n * width)
        Elementwise.rmsNormUnweighted(normed.baseAddress!, width: width, rows: n, eps: normEps)
        Linear.forward(mixing, UnsafeBufferPointer(normed), n: n, into: mixed)
        for t in 0..<n {
            let m = mixed.baseAddress! + t * mixes, w = weights + t * (k + k * k), row = x.baseAddress! + t * width
            let out = collapsed + t * hidden
            out.update(repeating: 0, count: hidden)
            for i in 0..<k {
                let pre = Elementwise.sigmoid(m[i] * scale[0] + base[i]) + eps
                for c in 0..<hidden { out[c] += pre * row[i * hidden + c] }
                w[i] = 2 * Elementwise.sigmoid(m[k + i] * scale[1] + base[k + i])
            }
            // comb: softmax over each row (+eps), then Sinkhorn: columns, then (rows, columns) × (iterations − 1).
            let comb = w + k
            for i in 0..<k {
                var maximum = -Float.infinity
                for j in 0..<k {
                    comb[i * k + j] = m[2 * k + i * k + j] * scale[2] + base[2 * k + i * k + j]
                    maximum = max(maximum, comb[i * k + j])
                }
                var sum: Float = 0
                for j in 0..<k { comb[i * k + j] = exp(comb[i * k + j] - maximum); sum += comb[i * k + j] }
                for j in 0..<k { comb[i * k + j] = comb[i * k + j] / sum + eps }
            }
            normalizeColumns(comb)
            for _ in 1..<max(sinkhornIterations, 1) {
                for i in 0..<k {
                    var sum: Float = 0
                    for j in 0..<k { sum += comb[i * k + j] }
                    for j in 0..<k { comb[i * k + j] /= sum + eps }
                }
                normalizeColumns(comb)
            }
        }
    }

    private func normalizeColumns(_ comb: UnsafeMutablePointer<Float>) {
        let k = streams
        for j in 0..<k {
            var sum: Float = 0
            for i in 0..<k { sum += comb[i * k + j] }
            for i in 0..<k { comb[i * k + j] /= sum + eps }
        }
    }

    /// x_k ← post_k · y + Σ_j comb[j][k] · x_j for each row (y: the block's output, (n, hidden)).
    func combine(_ x: UnsafeMutableBufferPointer<Float>, blockOutput y: UnsafePointer<Float>, n: Int, hidden: Int,
                 weights: UnsafePointer<Float>, workspace: ForwardWorkspace) {
        let k = streams, width = k * hidden
        let old = workspace.buffer(.hyperPrevious, width).baseAddress!
        for t in 0..<n {
            let row = x.baseAddress! + t * width, w = weights + t * (k + k * k), comb = w + k, out = y + t * hidden
            old.update(from: row, count: width)
            for s in 0..<k {
                let target = row + s * hidden
                for c in 0..<hidden { target[c] = w[s] * out[c] }
                for j in 0..<k {
                    let a = comb[j * k + s], source = old + j * hidden
                    for c in 0..<hidden { target[c] += a * source[c] }
                }
            }
        }
    }
}

/// A DeepSeek-V4 decoder layer on the hyper-connected residual: attention and feed-forward each between a collapse
/// and a combine (`HyperConnection`), with the usual pre-norms on the collapsed input.
public struct HyperConnectedLayer: DecoderBlock {
    public let attentionConnection: HyperConnection, feedForwardConnection: HyperConnection
    public let inputNorm: [Float], postAttentionNorm: [Float]
    public let mixer: any TokenMixer
    public let feedForward: any FeedForward
    public let eps: Float

    /// Tensor names under the layer's prefix.
    public enum Names { public static let attention = "attn_hc", feedForward = "ffn_hc" }

    public init(attentionConnection: HyperConnection, feedForwardConnection: HyperConnection, inputNorm: [Float], postAttentionNorm: [Float],
                mixer: any TokenMixer, feedForward: any FeedForward, eps: Float) {
        self.attentionConnection = attentionConnection
        self.feedForwardConnection = feedForwardConnection
        self.inputNorm = inputNorm
        self.postAttentionNorm = postAttentionNorm
        self.mixer = mixer
        self.feedForward = feedForward
        self.eps = eps
    }

    public func forward(_ x: UnsafeMutableBufferPointer<Float>, n: Int, batch: SequenceBatch, layer: Int) {
        let workspace = batch.workspace, hidden = inputNorm.count, k = attentionConnection.streams
        let collapsed = workspace.buffer(.hyperCollapsed, n * hidden), normed = workspace.buffer(.normed, n * hidden)
        let update = workspace.buffer(.mixerOut, n * hidden), weights = workspace.buffer(.hyperWeights, n * (k + k * k))
        // Attention, then feed-forward: collapse, pre-norm, block, combine.
        attentionConnection.prepare(UnsafeBufferPointer(x), n: n, hidden: hidden, collapsed: collapsed.baseAddress!, weights: weights.baseAddress!,
                                    workspace: workspace)
        inputNorm.withUnsafeBufferPointer { Elementwise.rmsNorm(UnsafeBufferPointer(collapsed), weight: $0, eps: eps, n: n, into: normed) }
        mixer.forward(UnsafeBufferPointer(normed), n: n, batch: batch, layer: layer, into: update)
        attentionConnection.combine(x, blockOutput: update.baseAddress!, n: n, hidden: hidden, weights: weights.baseAddress!, workspace: workspace)
        feedForwardConnection.prepare(UnsafeBufferPointer(x), n: n, hidden: hidden, collapsed: collapsed.baseAddress!, weights: weights.baseAddress!,
                                      workspace: workspace)
        postAttentionNorm.withUnsafeBufferPointer { Elementwise.rmsNorm(UnsafeBufferPointer(collapsed), weight: $0, eps: eps, n: n, into: normed) }
        feedForward.forward(UnsafeBufferPointer(normed), n: n, workspace: workspace, load: batch.expertLoad, layer: layer, into: update)
        feedForwardConnection.combine(x, blockOutput: update.baseAddress!, n: n, hidden: hidden, weights: weights.baseAddress!, workspace: workspace)
    }

    public var parameterCount: Int {
        attentionConnection.parameterCount + feedForwardConnection.parameterCount + inputNorm.count + postAttentionNorm.count
            + mixer.parameterCount + feedForward.totalParameters
    }
    public var inactiveParameterCount: Int { feedForward.totalParameters - feedForward.activeParameters }
    public var mixtureOfExperts: MixtureOfExperts? { feedForward as? MixtureOfExperts }
}

/// The hyper-connected residual's ends: embeddings copied into every stream, and the final collapse (`hc_head`:
/// sigmoid weights from the normalised streams, no Sinkhorn) before the final norm.
public struct HyperHead: ResidualExpansion {
    public let mixing: LinearWeight, base: [Float], scale: Float
    public let streams: Int, hidden: Int, eps: Float, normEps: Float

    /// Tensor names (model-wide).
    public enum Names { public static let mixing = "model.hc_head.hc_fn", base = "model.hc_head.hc_base", scale = "model.hc_head.hc_scale" }

    public init(weights: any WeightStore, hidden: Int, streams: Int, eps: Float, normEps: Float) throws {
        mixing = try weights.linear(Names.mixing, rows: streams, cols: streams * hidden)
        base = try weights.floats(Names.base, shape: [streams])
        scale = try weights.floats(Names.scale, shape: [1])[0]
        self.streams = streams
        self.hidden = hidden
        self.eps = eps
        self.normEps = normEps
    }

    public static func parameters(hidden: Int, streams: Int) -> [ParameterLayout.Entry] {
        [.init(Names.mixing, [streams, streams * hidden]), .init(Names.base, [streams], .zeros), .init(Names.scale, [1], .ones)]
    }

    public var width: Int { streams * hidden }
    public var parameterCount: Int { mixing.rows * mixing.cols + base.count + 1 }

    public func expand(_ x: UnsafeMutableBufferPointer<Float>, n: Int) {
        for t in 0..<n {
            let row = x.baseAddress! + t * width
            for s in 1..<streams { (row + s * hidden).update(from: row, count: hidden) }
        }
    }

    public func collapse(_ x: UnsafeBufferPointer<Float>, n: Int, into out: UnsafeMutableBufferPointer<Float>, workspace: ForwardWorkspace) {
        let normed = workspace.buffer(.hyperNormed, n * width), mixed = workspace.buffer(.hyperMixes, n * streams)
        normed.baseAddress!.update(from: x.baseAddress!, count: n * width)
        Elementwise.rmsNormUnweighted(normed.baseAddress!, width: width, rows: n, eps: normEps)
        Linear.forward(mixing, UnsafeBufferPointer(normed), n: n, into: mixed)
        for t in 0..<n {
            let o = out.baseAddress! + t * hidden, row = x.baseAddress! + t * width
            o.update(repeating: 0, count: hidden)
            for s in 0..<streams {
                let pre = Elementwise.sigmoid(mixed[t * streams + s] * scale + base[s]) + eps
                for c in 0..<hidden { o[c] += pre * row[s * hidden + c] }
            }
        }
    }
}

extension ForwardWorkspace.Slot {
    /// Hyper-connections: normalised streams, mixes, collapsed input, post/comb weights, a row's previous streams.
    public static let hyperNormed = Self("hyperNormed"), hyperMixes = Self("hyperMixes"), hyperCollapsed = Self("hyperCollapsed")
    public static let hyperWeights = Self("hyperWeights"), hyperPrevious = Self("hyperPrevious")
}
