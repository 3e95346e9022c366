import KujiraTensor

/// Grouped-query attention's training pass, beside its inference forward (`Attention.swift`): the same projections,
/// biases, head norms and rotation, with causal attention over each whole sequence instead of a cache.
extension GroupedQueryAttention: TrainableMixer {
    public func trainingForward(_ x: FloatBuffer, shape: TrainingShape) throws -> (out: FloatBuffer, pullback: any Pullback) {
        let n = shape.rows, qWidth = heads * headDim, kvWidth = kvHeads * headDim
        let q = TrainingKernels.project(qProj, x, rows: n), k = TrainingKernels.project(kProj, x, rows: n)
        let v = TrainingKernels.project(vProj, x, rows: n)
        TrainingKernels.addBias(qBias, to: q, width: qWidth)
        TrainingKernels.addBias(kBias, to: k, width: kvWidth)
        TrainingKernels.addBias(vBias, to: v, width: kvWidth)
        var normed: (q: FloatBuffer, qRstd: FloatBuffer, k: FloatBuffer, kRstd: FloatBuffer)?
        var qr = q, kr = k
        if let headNorms {
            let nq = TrainingKernels.rmsNorm(q, weight: headNorms.query, rows: n * heads, eps: headNorms.eps)
            let nk = TrainingKernels.rmsNorm(k, weight: headNorms.key, rows: n * kvHeads, eps: headNorms.eps)
            normed = (q, nq.rstd, k, nk.rstd)
            qr = nq.y
            kr = nk.y
        }
        let tables = RotaryTables(rope: rope, offset: shape.positionOffset, count: shape.length)
        tables.apply(qr.pointer, rows: n, rowStride: qWidth, count: heads, vectorStride: headDim, inverse: false)
        tables.apply(kr.pointer, rows: n, rowStride: kvWidth, count: kvHeads, vectorStride: headDim, inverse: false)
        let attended = FloatBuffer(uninitializedCount: n * qWidth)
        let probabilities = FloatBuffer(uninitializedCount: shape.batch * heads * shape.length * shape.length)
        AttentionOps.forward(q: qr.pointer, k: kr.pointer, v: v.pointer, batch: shape.batch, length: shape.length, heads: heads,
                             kvHeads: kvHeads, qkDim: headDim, valueDim: headDim, scale: softmaxScale,
                             out: attended.pointer, probabilities: probabilities.pointer)
        let out = TrainingKernels.project(oProj, attended, rows: n)
        return (out, GroupedQueryAttentionPullback(block: self, shape: shape, x: x, normed: normed, q: qr, k: kr, v: v,
                                                   probabilities: probabilities, attended: attended, tables: tables))
    }

    /// 1/√head_dim, as the inference forward scales scores.
    var softmaxScale: Float { 1 / Float(headDim).squareRoot() }
}

/// Saved activations of one `GroupedQueryAttention` training pass: q, k after norm and rotation, v, the attention
/// probabilities and the attended values.
final class GroupedQueryAttentionPullback: Pullback {
    let block: GroupedQueryAttention, shape: TrainingShape
    let x: FloatBuffer
    let normed: (q: FloatBuffer, qRstd: FloatBuffer, k: FloatBuffer, kRstd: FloatBuffer)?
    let q: FloatBuffer, k: FloatBuffer, v: FloatBuffer, probabilities: FloatBuffer, attended: FloatBuffer
    let tables: RotaryTables

    init(block: GroupedQueryAttention, shape: TrainingShape, x: FloatBuffer,
         normed: (q: FloatBuffer, qRstd: FloatBuffer, k: FloatBuffer, kRstd: FloatBuffer)?,
         q: FloatBuffer, k: FloatBuffer, v: FloatBuffer, probabilities: FloatBuffer, attended: FloatBuffer, tables: RotaryTables) {
        self.block = block; self.shape = shape; self.x = x; self.normed = normed
        self.q = q; self.k = k; self.v = v; self.probabilities = probabilities; self.attended = attended; self.tables = tables
    }

    func backward(_ dOut: FloatBuffer, into sink: GradientSink) throws -> FloatBuffer {
        let b = block, n = shape.rows, names = "\(b.prefix)."
        let qWidth = b.heads * b.headDim, kvWidth = b.kvHeads * b.headDim
        let dAttended = FloatBuffer(uninitializedCount: n * qWidth)
        TrainingKernels.linearBackward(b.oProj, name: names + GroupedQueryAttention.Names.o, x: attended, dy: dOut, rows: n, dx: dAttended,
                                        accumulateInput: false, sink: sink)
        var dq = FloatBuffer(uninitializedCount: n * qWidth), dk = FloatBuffer(uninitializedCount: n * kvWidth)
        let dv = FloatBuffer(uninitializedCount: n * kvWidth)
        AttentionOps.backward(q: q.pointer, k: k.pointer, v: v.pointer, probabilities: probabilities.pointer, dOut: dAttended.pointer,
                              batch: shape.batch, length: shape.length, heads: b.heads, kvHeads: b.kvHeads, qkDim: b.headDim,
                              valueDim: b.headDim, scale: b.softmaxScale, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer)
        tables.apply(dq.pointer, rows: n, rowStride: qWidth, count: b.heads, vectorStride: b.headDim, inverse: true)
        tables.apply(dk.pointer, rows: n, rowStride: kvWidth, count: b.kvHeads, vectorStride: b.headDim, inverse: true)
        if let normed, let norms = b.headNorms {
            let dqIn = FloatBuffer(count: n * qWidth), dkIn = FloatBuffer(count: n * kvWidth)
            TrainingKernels.rmsNormBackward(x: normed.q, weight: norms.query, rstd: normed.qRstd, dy: dq, rows: n * b.heads, dx: dqIn,
                                            name: names + GroupedQueryAttention.Names.qNorm, sink: sink)
            TrainingKernels.rmsNormBackward(x: normed.k, weight: norms.key, rstd: normed.kRstd, dy: dk, rows: n * b.kvHeads, dx: dkIn,
                                            name: names + GroupedQueryAttention.Names.kNorm, sink: sink)
            dq = dqIn
            dk = dkIn
        }
        let projections: [(LinearWeight, FloatBuffer, String, Bool)] = [
            (b.qProj, dq, GroupedQueryAttention.Names.q, b.qBias != nil), (b.kProj, dk, GroupedQueryAttention.Names.k, b.kBias != nil),
            (b.vProj, dv, GroupedQueryAttention.Names.v, b.vBias != nil),
        ]
        let dx = FloatBuffer(uninitializedCount: n * x.count / n)
        for (i, (weight, dy, name, hasBias)) in projections.enumerated() {
            if hasBias, let dBias = sink.gradientBuffer(names + name + ".bias") {
                TrainingKernels.addBiasGradient(dy.pointer, rows: n, width: weight.rows, into: dBias)
            }
            TrainingKernels.linearBackward(weight, name: names + name + ".weight", x: x, dy: dy, rows: n, dx: dx,
                                        accumulateInput: i > 0, sink: sink)
        }
        return dx
    }
}
