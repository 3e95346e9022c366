import KujiraTensor

/// The whole stack's training pass, beside its inference forward (`DecoderStack.swift`): embedding → trainable
/// blocks → final norm → LM head, keeping each block's pullback for the backward pass.
extension DecoderStack {
    /// Logits (rows, vocab) for `tokens` (`shape.batch` sequences of `shape.length`, row-major) and the pullback
    /// that turns ∂loss/∂logits into weight gradients. Throws for blocks without a training pass, naming them.
    public func trainingForward(tokens: [Int], shape: TrainingShape) throws -> (logits: FloatBuffer, pullback: DecoderStackPullback) {
        precondition(tokens.count == shape.rows, "training pass needs batch × length tokens")
        guard residual == nil else { throw TrainingSupportError.unsupportedBlock("hyper-connections (a widened residual stream)") }
        let blocks = try layers.enumerated().map { i, layer -> any TrainableBlock in
            guard let block = layer as? any TrainableBlock else { throw TrainingSupportError.unsupportedBlock("\(type(of: layer)) (layer \(i))") }
            return block
        }
        let n = shape.rows, d = hidden
        var x = FloatBuffer(uninitializedCount: n * d)
        for (t, token) in tokens.enumerated() {
            embedding.decodeRow(token, into: UnsafeMutableBufferPointer(start: x.pointer + t * d, count: d))
        }
        var pullbacks: [any Pullback] = []
        pullbacks.reserveCapacity(blocks.count)
        for block in blocks {
            let (out, pullback) = try block.trainingForward(x, shape: shape)
            pullbacks.append(pullback)
            x = out
        }
        let normed = TrainingKernels.rmsNorm(x, weight: finalNorm, rows: n, eps: eps)
        let logits = TrainingKernels.project(lmHead, normed.y, rows: n)
        return (logits, DecoderStackPullback(stack: self, tokens: tokens, blocks: pullbacks, last: x, rstd: normed.rstd, normed: normed.y))
    }

    /// Throws naming the first block without a training pass (before any data is read or any step runs).
    public func checkTrainable() throws {
        guard residual == nil else { throw TrainingSupportError.unsupportedBlock("hyper-connections (a widened residual stream)") }
        for (i, layer) in layers.enumerated() {
            guard let decoder = layer as? DecoderLayer else { throw TrainingSupportError.unsupportedBlock("\(type(of: layer)) (layer \(i))") }
            try decoder.checkTrainable()
        }
    }

    /// Whether the LM head shares the embedding's memory (`tie_word_embeddings`).
    public var lmHeadIsTied: Bool { lmHead.data.bytes.baseAddress == embedding.data.bytes.baseAddress }
}

/// Saved activations of a `DecoderStack` training pass.
public final class DecoderStackPullback {
    let stack: DecoderStack, tokens: [Int], blocks: [any Pullback]
    let last: FloatBuffer, rstd: FloatBuffer, normed: FloatBuffer

    init(stack: DecoderStack, tokens: [Int], blocks: [any Pullback], last: FloatBuffer, rstd: FloatBuffer, normed: FloatBuffer) {
        self.stack = stack; self.tokens = tokens; self.blocks = blocks; self.last = last; self.rstd = rstd; self.normed = normed
    }

    /// The final hidden states after the final norm, (rows, hidden).
    public var finalHidden: FloatBuffer { normed }

    /// Tokens each routed expert received, per MoE layer in layer order (what the auxiliary-loss-free balancing rule reads).
    public var expertLoads: [[Int]] { blocks.compactMap { $0.routedExperts?.load } }
    /// The sequence-wise balance loss summed over the MoE layers (0 unless the pass set `TrainingShape.balanceAlpha`).
    public var balanceLoss: Double { blocks.reduce(0) { $0 + ($1.routedExperts?.balanceLoss ?? 0) } }

    /// Adds every trained tensor's gradient to `sink`, given ∂loss/∂logits (rows, vocab) and optionally a further
    /// ∂loss/∂`finalHidden` from a head reading it (the multi-token-prediction module's).
    public func backward(_ dLogits: FloatBuffer, finalHiddenGradient: FloatBuffer? = nil, into sink: GradientSink) throws {
        let s = stack, n = tokens.count, d = s.hidden
        let dNormed = FloatBuffer(uninitializedCount: n * d)
        if let finalHiddenGradient {
            precondition(finalHiddenGradient.count == n * d, "final hidden gradient needs rows × hidden values")
            dNormed.pointer.update(from: finalHiddenGradient.pointer, count: n * d)
        }
        let headName = s.lmHeadIsTied ? DecoderStack.embeddingName : DecoderStack.lmHeadName
        TrainingKernels.linearBackward(s.lmHead, name: headName, x: normed, dy: dLogits, rows: n, dx: dNormed,
                                        accumulateInput: finalHiddenGradient != nil, sink: sink)
        var dx = FloatBuffer(count: n * d)
        TrainingKernels.rmsNormBackward(x: last, weight: s.finalNorm, rstd: rstd, dy: dNormed, rows: n, dx: dx,
                                        name: DecoderStack.finalNormName, sink: sink)
        for pullback in blocks.reversed() { dx = try pullback.backward(dx, into: sink) }
        if let dEmbedding = sink.gradientBuffer(DecoderStack.embeddingName) {
            for (t, token) in tokens.enumerated() {
                let g = dEmbedding + token * d, row = dx.pointer + t * d
                for i in 0..<d { g[i] += row[i] }
            }
        }
    }
}
