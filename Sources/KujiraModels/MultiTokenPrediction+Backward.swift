import KujiraTensor

/// The multi-token-prediction module's training pass, beside its inference forward (`MultiTokenPrediction.swift`):
/// for each sequence of T tokens and the main model's final hidden states h (after the final norm), rows i < T − 1 run
/// m_i = block(eh_proj([enorm(embed(t_{i+1})) ; hnorm(h_i)])) causally at RoPE position i + 1, and
/// logits_i = head(shared_head.norm(m_i)) predict t_{i+2}. The backward returns ∂loss/∂h, which the main stack's
/// backward adds to its own (`DecoderStackPullback.backward(_:finalHiddenGradient:into:)`).
extension MultiTokenPrediction {
    /// Throws naming what the module's block has no training pass for.
    public func checkTrainable() throws { try block.checkTrainable() }

    /// Logits (batch·(length − 1), vocab) for `tokens` (`shape` of the main pass, length ≥ 2) given the main model's
    /// final hidden states (shape.rows, hidden), and the pullback of the pass. The module's block sees
    /// `shape.balanceAlpha` and positions offset by one.
    public func trainingForward(mainHidden: FloatBuffer, tokens: [Int], shape: TrainingShape) throws
        -> (logits: FloatBuffer, pullback: MultiTokenPredictionPullback) {
        precondition(shape.length >= 2 && tokens.count == shape.rows && mainHidden.count == shape.rows * hidden, "MTP pass needs length ≥ 2")
        let h = hidden, T = shape.length, moduleShape = TrainingShape(batch: shape.batch, length: T - 1,
                                                                     positionOffset: shape.positionOffset + 1, balanceAlpha: shape.balanceAlpha)
        let n = moduleShape.rows
        var next = [Int](repeating: 0, count: n)
        let embedded = FloatBuffer(uninitializedCount: n * h), previous = FloatBuffer(uninitializedCount: n * h)
        for b in 0..<shape.batch {
            for i in 0..<(T - 1) {
                let r = b * (T - 1) + i
                next[r] = tokens[b * T + i + 1]
                embedding.decodeRow(next[r], into: UnsafeMutableBufferPointer(start: embedded.pointer + r * h, count: h))
                (previous.pointer + r * h).update(from: mainHidden.pointer + (b * T + i) * h, count: h)
            }
        }
        let e = TrainingKernels.rmsNorm(embedded, weight: enorm, rows: n, eps: eps)
        let p = TrainingKernels.rmsNorm(previous, weight: hnorm, rows: n, eps: eps)
        let joined = FloatBuffer(uninitializedCount: n * 2 * h)
        for r in 0..<n {
            (joined.pointer + r * 2 * h).update(from: e.y.pointer + r * h, count: h)
            (joined.pointer + r * 2 * h + h).update(from: p.y.pointer + r * h, count: h)
        }
        let projected = TrainingKernels.project(ehProj, joined, rows: n)
        let (out, blockPullback) = try block.trainingForward(projected, shape: moduleShape)
        let headIn = TrainingKernels.rmsNorm(out, weight: sharedHeadNorm, rows: n, eps: eps)
        let logits = TrainingKernels.project(head, headIn.y, rows: n)
        let pullback = MultiTokenPredictionPullback(module: self, shape: shape, next: next, embedded: embedded, embeddedRstd: e.rstd,
                                                    previous: previous, previousRstd: p.rstd, joined: joined, block: blockPullback,
                                                    out: out, headRstd: headIn.rstd, headIn: headIn.y)
        return (logits, pullback)
    }
}

/// Saved activations of a `MultiTokenPrediction` training pass.
public final class MultiTokenPredictionPullback {
    let module: MultiTokenPrediction, shape: TrainingShape, next: [Int]
    let embedded: FloatBuffer, embeddedRstd: FloatBuffer, previous: FloatBuffer, previousRstd: FloatBuffer, joined: FloatBuffer
    let block: any Pullback, out: FloatBuffer, headRstd: FloatBuffer, headIn: FloatBuffer

    init(module: MultiTokenPrediction, shape: TrainingShape, next: [Int], embedded: FloatBuffer, embeddedRstd: FloatBuffer,
         previous: FloatBuffer, previousRstd: FloatBuffer, joined: FloatBuffer, block: any Pullback, out: FloatBuffer,
         headRstd: FloatBuffer, headIn: FloatBuffer) {
        self.module = module; self.shape = shape; self.next = next; self.embedded = embedded; self.embeddedRstd = embeddedRstd
        self.previous = previous; self.previousRstd = previousRstd; self.joined = joined; self.block = block; self.out = out
        self.headRstd = headRstd; self.headIn = headIn
    }

    /// Tokens each expert of the module's block received (nil when its feed-forward is dense).
    public var expertLoad: [Int]? { block.routedExperts?.load }
    /// The module block's sequence-wise balance loss.
    public var balanceLoss: Double { block.routedExperts?.balanceLoss ?? 0 }

    /// Adds the module's gradients (and the shared embedding's and head's) to `sink` given ∂loss/∂logits, and returns
    /// ∂loss/∂h for the main model's final hidden states (shape.rows, hidden; zero at each sequence's last row).
    public func backward(_ dLogits: FloatBuffer, into sink: GradientSink) throws -> FloatBuffer {
        let m = module, h = m.hidden, T = shape.length, n = next.count, names = "\(m.prefix)."
        typealias Names = MultiTokenPrediction.Names
        let dHeadIn = FloatBuffer(uninitializedCount: n * h)
        TrainingKernels.linearBackward(m.head, name: m.headName, x: headIn, dy: dLogits, rows: n, dx: dHeadIn, accumulateInput: false, sink: sink)
        let dOut = FloatBuffer(count: n * h)
        TrainingKernels.rmsNormBackward(x: out, weight: m.sharedHeadNorm, rstd: headRstd, dy: dHeadIn, rows: n, dx: dOut,
                                        name: names + Names.sharedHeadNorm, sink: sink)
        let dProjected = try block.backward(dOut, into: sink)
        let dJoined = FloatBuffer(uninitializedCount: n * 2 * h)
        TrainingKernels.linearBackward(m.ehProj, name: names + Names.ehProj, x: joined, dy: dProjected, rows: n, dx: dJoined,
                                       accumulateInput: false, sink: sink)
        let dE = FloatBuffer(uninitializedCount: n * h), dP = FloatBuffer(uninitializedCount: n * h)
        for r in 0..<n {
            (dE.pointer + r * h).update(from: dJoined.pointer + r * 2 * h, count: h)
            (dP.pointer + r * h).update(from: dJoined.pointer + r * 2 * h + h, count: h)
        }
        let dEmbedded = FloatBuffer(count: n * h), dPrevious = FloatBuffer(count: n * h)
        TrainingKernels.rmsNormBackward(x: embedded, weight: m.enorm, rstd: embeddedRstd, dy: dE, rows: n, dx: dEmbedded,
                                        name: names + Names.enorm, sink: sink)
        TrainingKernels.rmsNormBackward(x: previous, weight: m.hnorm, rstd: previousRstd, dy: dP, rows: n, dx: dPrevious,
                                        name: names + Names.hnorm, sink: sink)
        if let dTable = sink.gradientBuffer(m.embeddingName) {
            for (r, token) in next.enumerated() {
                let g = dTable + token * h, row = dEmbedded.pointer + r * h
                for i in 0..<h { g[i] += row[i] }
            }
        }
        let dHidden = FloatBuffer(count: shape.rows * h)
        for b in 0..<shape.batch {
            for i in 0..<(T - 1) {
                (dHidden.pointer + (b * T + i) * h).update(from: dPrevious.pointer + (b * (T - 1) + i) * h, count: h)
            }
        }
        return dHidden
    }
}
