import KujiraTensor

/// The SwiGLU feed-forward's training pass, beside its inference forward (`Blocks.swift`).
extension GatedMLP: TrainableFeedForward {
    public func checkTrainable() throws {
        guard limit == nil else { throw TrainingSupportError.unsupportedBlock("the clamped SwiGLU of \(prefix) (swiglu_limit)") }
    }

    public func trainingForward(_ x: FloatBuffer, shape: TrainingShape) throws -> (out: FloatBuffer, pullback: any Pullback) {
        try checkTrainable()
        let n = shape.rows, width = gate.rows
        let g = TrainingKernels.project(gate, x, rows: n), u = TrainingKernels.project(up, x, rows: n)
        let h = FloatBuffer(uninitializedCount: n * width)
        ActivationOps.swigluForward(gate: g.pointer, up: u.pointer, stride: width, rows: n, width: width, h: h.pointer)
        return (TrainingKernels.project(down, h, rows: n), GatedMLPPullback(block: self, rows: n, x: x, g: g, u: u, h: h))
    }
}

/// Saved activations of one `GatedMLP` training pass: its input, gate and up projections and their SwiGLU.
final class GatedMLPPullback: Pullback {
    let block: GatedMLP, rows: Int, x: FloatBuffer, g: FloatBuffer, u: FloatBuffer, h: FloatBuffer

    init(block: GatedMLP, rows: Int, x: FloatBuffer, g: FloatBuffer, u: FloatBuffer, h: FloatBuffer) {
        self.block = block; self.rows = rows; self.x = x; self.g = g; self.u = u; self.h = h
    }

    func backward(_ dOut: FloatBuffer, into sink: GradientSink) throws -> FloatBuffer {
        let b = block, n = rows, width = b.gate.rows, names = "\(b.prefix)."
        let dh = FloatBuffer(uninitializedCount: n * width)
        TrainingKernels.linearBackward(b.down, name: names + GatedMLP.downName, x: h, dy: dOut, rows: n, dx: dh,
                                        accumulateInput: false, sink: sink)
        let dg = FloatBuffer(uninitializedCount: n * width), du = FloatBuffer(uninitializedCount: n * width)
        ActivationOps.swigluBackward(gate: g.pointer, up: u.pointer, stride: width, rows: n, width: width, dh: dh.pointer,
                                     dGate: dg.pointer, dUp: du.pointer)
        let dx = FloatBuffer(uninitializedCount: n * b.gate.cols)
        TrainingKernels.linearBackward(b.gate, name: names + GatedMLP.gateName, x: x, dy: dg, rows: n, dx: dx,
                                        accumulateInput: false, sink: sink)
        TrainingKernels.linearBackward(b.up, name: names + GatedMLP.upName, x: x, dy: du, rows: n, dx: dx,
                                        accumulateInput: true, sink: sink)
        return dx
    }
}

/// The pre-norm decoder layer's training pass, beside its inference forward (`Blocks.swift`):
/// x₁ = x + mixer(norm₁(x)); x₂ = x₁ + ffn(norm₂(x₁)).
extension DecoderLayer: TrainableBlock {
    /// The mixer and feed-forward as training blocks; throws naming the one without a training pass.
    func trainableParts() throws -> (mixer: any TrainableMixer, feedForward: any TrainableFeedForward) {
        guard let mixer = mixer as? any TrainableMixer else {
            throw TrainingSupportError.unsupportedBlock("\(type(of: self.mixer)) (the mixer of \(prefix))")
        }
        guard let feedForward = feedForward as? any TrainableFeedForward else {
            throw TrainingSupportError.unsupportedBlock("\(type(of: self.feedForward)) (the feed-forward of \(prefix))")
        }
        return (mixer, feedForward)
    }

    /// Throws naming what this layer's training pass does not cover (checked at load, before any step).
    public func checkTrainable() throws {
        let parts = try trainableParts()
        try parts.mixer.checkTrainable()
        try parts.feedForward.checkTrainable()
    }

    public func trainingForward(_ x: FloatBuffer, shape: TrainingShape) throws -> (out: FloatBuffer, pullback: any Pullback) {
        let (mixer, feedForward) = try trainableParts()
        let n = shape.rows
        let a = TrainingKernels.rmsNorm(x, weight: inputNorm, rows: n, eps: eps)
        let (m, mixerPullback) = try mixer.trainingForward(a.y, shape: shape)
        let x1 = FloatBuffer(uninitializedCount: x.count)
        for i in 0..<x.count { x1[i] = x[i] + m[i] }
        let b = TrainingKernels.rmsNorm(x1, weight: postAttentionNorm, rows: n, eps: eps)
        let (f, feedForwardPullback) = try feedForward.trainingForward(b.y, shape: shape)
        for i in 0..<x.count { f[i] += x1[i] }
        return (f, DecoderLayerPullback(layer: self, rows: n, x: x, rstd1: a.rstd, mixer: mixerPullback, x1: x1, rstd2: b.rstd,
                                        feedForward: feedForwardPullback))
    }
}

/// Saved activations of one `DecoderLayer` training pass: both residuals, the norms' scales and the sub-blocks' pullbacks.
final class DecoderLayerPullback: Pullback {
    let layer: DecoderLayer, rows: Int
    let x: FloatBuffer, rstd1: FloatBuffer, mixer: any Pullback, x1: FloatBuffer, rstd2: FloatBuffer, feedForward: any Pullback

    init(layer: DecoderLayer, rows: Int, x: FloatBuffer, rstd1: FloatBuffer, mixer: any Pullback, x1: FloatBuffer, rstd2: FloatBuffer,
         feedForward: any Pullback) {
        self.layer = layer; self.rows = rows; self.x = x; self.rstd1 = rstd1; self.mixer = mixer; self.x1 = x1; self.rstd2 = rstd2
        self.feedForward = feedForward
    }

    func backward(_ dOut: FloatBuffer, into sink: GradientSink) throws -> FloatBuffer {
        let names = "\(layer.prefix)."
        // x₂ = x₁ + ffn(norm₂(x₁)): ∂x₁ = ∂x₂ + norm₂ᵀ(ffnᵀ(∂x₂)).
        let dx1 = FloatBuffer(dOut.array)
        let dNormed2 = try feedForward.backward(dOut, into: sink)
        TrainingKernels.rmsNormBackward(x: x1, weight: layer.postAttentionNorm, rstd: rstd2, dy: dNormed2, rows: rows, dx: dx1,
                                        name: names + DecoderLayer.postAttentionNormName, sink: sink)
        // x₁ = x + mixer(norm₁(x)).
        let dx = FloatBuffer(dx1.array)
        let dNormed1 = try mixer.backward(dx1, into: sink)
        TrainingKernels.rmsNormBackward(x: x, weight: layer.inputNorm, rstd: rstd1, dy: dNormed1, rows: rows, dx: dx,
                                        name: names + DecoderLayer.inputNormName, sink: sink)
        return dx
    }
}

extension Pullback {
    /// The routed-expert pass of a decoder layer whose feed-forward is a mixture of experts, else nil.
    var routedExperts: MixtureOfExpertsPullback? { (self as? DecoderLayerPullback)?.feedForward as? MixtureOfExpertsPullback }
}
