import KujiraTensor

/// Multi-head latent attention's training pass, beside its inference forward (`MLA.swift`). Training runs the expanded
/// per-head form — K_h = [W_UK,h · c ; k_pe], V_h = W_UV,h · c with c = RMSNorm(c_kv) — which gives the same scores as the
/// absorbed inference form and makes the backward plain attention: q = q_b(RMSNorm(q_a(x))) (or q_proj(x));
/// [c_kv | k_pe] = kv_a(x); the rope parts of q and k_pe rotated; k_pe shared by all heads, so its gradient is the sum
/// over heads of the rope part of dK_h.
extension MultiHeadLatentAttention: TrainableMixer {
    public func checkTrainable() throws {
        guard indexer == nil else { throw TrainingSupportError.unsupportedBlock("the lightning indexer's sparse attention (\(prefix))") }
        guard case .fused = latentProjections else {
            throw TrainingSupportError.unsupportedBlock("MLA with split k_b/v_b projections (GGUF layout) at \(prefix)")
        }
    }

    public func trainingForward(_ x: FloatBuffer, shape: TrainingShape) throws -> (out: FloatBuffer, pullback: any Pullback) {
        try checkTrainable()
        guard case let .fused(kvB, _, _) = latentProjections else { fatalError("checked by checkTrainable") }
        let n = shape.rows, qkDim = nopeDim + ropeDim, rank = kvLoraRank, kvWidth = nopeDim + valueDim
        var queryLatent: (a: FloatBuffer, normed: FloatBuffer, rstd: FloatBuffer)?
        let q: FloatBuffer
        if let qA, let qANorm, let qB {
            let a = TrainingKernels.project(qA, x, rows: n)
            let normed = TrainingKernels.rmsNorm(a, weight: qANorm, rows: n, eps: Self.latentNormEps)
            q = TrainingKernels.project(qB, normed.y, rows: n)
            queryLatent = (a, normed.y, normed.rstd)
        } else {
            q = TrainingKernels.project(qProj!, x, rows: n)
        }
        let tables = RotaryTables(rope: rope, offset: shape.positionOffset, count: shape.length)
        tables.apply(q.pointer + nopeDim, rows: n, rowStride: heads * qkDim, count: heads, vectorStride: qkDim, inverse: false)
        let compressed = TrainingKernels.project(kvA, x, rows: n)
        let latent = FloatBuffer(uninitializedCount: n * rank), kpe = FloatBuffer(uninitializedCount: n * ropeDim)
        for r in 0..<n {
            (latent.pointer + r * rank).update(from: compressed.pointer + r * (rank + ropeDim), count: rank)
            (kpe.pointer + r * ropeDim).update(from: compressed.pointer + r * (rank + ropeDim) + rank, count: ropeDim)
        }
        tables.apply(kpe.pointer, rows: n, rowStride: ropeDim, count: 1, vectorStride: ropeDim, inverse: false)
        let c = TrainingKernels.rmsNorm(latent, weight: kvANorm, rows: n, eps: Self.latentNormEps)
        let kv = TrainingKernels.project(kvB, c.y, rows: n)
        let k = FloatBuffer(uninitializedCount: n * heads * qkDim), v = FloatBuffer(uninitializedCount: n * heads * valueDim)
        for r in 0..<n {
            for h in 0..<heads {
                let src = kv.pointer + (r * heads + h) * kvWidth
                (k.pointer + (r * heads + h) * qkDim).update(from: src, count: nopeDim)
                (k.pointer + (r * heads + h) * qkDim + nopeDim).update(from: kpe.pointer + r * ropeDim, count: ropeDim)
                (v.pointer + (r * heads + h) * valueDim).update(from: src + nopeDim, count: valueDim)
            }
        }
        let attended = FloatBuffer(uninitializedCount: n * heads * valueDim)
        let probabilities = FloatBuffer(uninitializedCount: shape.batch * heads * shape.length * shape.length)
        AttentionOps.forward(q: q.pointer, k: k.pointer, v: v.pointer, batch: shape.batch, length: shape.length, heads: heads,
                             qkDim: qkDim, valueDim: valueDim, scale: softmaxScale, out: attended.pointer, probabilities: probabilities.pointer)
        let out = TrainingKernels.project(oProj, attended, rows: n)
        let pullback = LatentAttentionPullback(block: self, kvB: kvB, shape: shape, x: x, queryLatent: queryLatent, latent: latent,
                                               latentNormed: c.y, latentRstd: c.rstd, q: q, k: k, v: v, probabilities: probabilities,
                                               attended: attended, tables: tables)
        return (out, pullback)
    }
}

/// Saved activations of one `MultiHeadLatentAttention` training pass.
final class LatentAttentionPullback: Pullback {
    let block: MultiHeadLatentAttention, kvB: LinearWeight, shape: TrainingShape, x: FloatBuffer
    let queryLatent: (a: FloatBuffer, normed: FloatBuffer, rstd: FloatBuffer)?
    let latent: FloatBuffer, latentNormed: FloatBuffer, latentRstd: FloatBuffer
    let q: FloatBuffer, k: FloatBuffer, v: FloatBuffer, probabilities: FloatBuffer, attended: FloatBuffer
    let tables: RotaryTables

    init(block: MultiHeadLatentAttention, kvB: LinearWeight, shape: TrainingShape, x: FloatBuffer,
         queryLatent: (a: FloatBuffer, normed: FloatBuffer, rstd: FloatBuffer)?, latent: FloatBuffer, latentNormed: FloatBuffer,
         latentRstd: FloatBuffer, q: FloatBuffer, k: FloatBuffer, v: FloatBuffer, probabilities: FloatBuffer, attended: FloatBuffer,
         tables: RotaryTables) {
        self.block = block; self.kvB = kvB; self.shape = shape; self.x = x; self.queryLatent = queryLatent
        self.latent = latent; self.latentNormed = latentNormed; self.latentRstd = latentRstd
        self.q = q; self.k = k; self.v = v; self.probabilities = probabilities; self.attended = attended; self.tables = tables
    }

    func backward(_ dOut: FloatBuffer, into sink: GradientSink) throws -> FloatBuffer {
        typealias Names = MultiHeadLatentAttention.Names
        let b = block, n = shape.rows, heads = b.heads, nope = b.nopeDim, rope = b.ropeDim, valueDim = b.valueDim
        let qkDim = nope + rope, rank = b.kvLoraRank, kvWidth = nope + valueDim, names = "\(b.prefix)."
        let dAttended = FloatBuffer(uninitializedCount: n * heads * valueDim)
        TrainingKernels.linearBackward(b.oProj, name: names + Names.o, x: attended, dy: dOut, rows: n, dx: dAttended,
                                       accumulateInput: false, sink: sink)
        let dq = FloatBuffer(uninitializedCount: n * heads * qkDim), dk = FloatBuffer(uninitializedCount: n * heads * qkDim)
        let dv = FloatBuffer(uninitializedCount: n * heads * valueDim)
        AttentionOps.backward(q: q.pointer, k: k.pointer, v: v.pointer, probabilities: probabilities.pointer, dOut: dAttended.pointer,
                              batch: shape.batch, length: shape.length, heads: heads, qkDim: qkDim, valueDim: valueDim,
                              scale: b.softmaxScale, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer)
        tables.apply(dq.pointer + nope, rows: n, rowStride: heads * qkDim, count: heads, vectorStride: qkDim, inverse: true)
        // dK/dV back into kv_b's output layout; k_pe's gradient sums over the heads sharing it.
        let dkv = FloatBuffer(uninitializedCount: n * heads * kvWidth), dCompressed = FloatBuffer(count: n * (rank + rope))
        for r in 0..<n {
            let dkpe = dCompressed.pointer + r * (rank + rope) + rank
            for h in 0..<heads {
                let dst = dkv.pointer + (r * heads + h) * kvWidth, kRow = dk.pointer + (r * heads + h) * qkDim
                dst.update(from: kRow, count: nope)
                (dst + nope).update(from: dv.pointer + (r * heads + h) * valueDim, count: valueDim)
                for i in 0..<rope { dkpe[i] += kRow[nope + i] }
            }
        }
        tables.apply(dCompressed.pointer + rank, rows: n, rowStride: rank + rope, count: 1, vectorStride: rope, inverse: true)
        let dc = FloatBuffer(uninitializedCount: n * rank)
        TrainingKernels.linearBackward(kvB, name: names + Names.kvB, x: latentNormed, dy: dkv, rows: n, dx: dc, accumulateInput: false, sink: sink)
        let dLatent = FloatBuffer(count: n * rank)
        TrainingKernels.rmsNormBackward(x: latent, weight: b.kvANorm, rstd: latentRstd, dy: dc, rows: n, dx: dLatent,
                                        name: names + Names.kvANorm, sink: sink)
        for r in 0..<n { (dCompressed.pointer + r * (rank + rope)).update(from: dLatent.pointer + r * rank, count: rank) }
        let dx = FloatBuffer(uninitializedCount: x.count)
        TrainingKernels.linearBackward(b.kvA, name: names + Names.kvA, x: x, dy: dCompressed, rows: n, dx: dx, accumulateInput: false, sink: sink)
        if let qA = b.qA, let qANorm = b.qANorm, let qB = b.qB, let saved = queryLatent {
            let dNormed = FloatBuffer(uninitializedCount: n * qA.rows), dqa = FloatBuffer(count: n * qA.rows)
            TrainingKernels.linearBackward(qB, name: names + Names.qB, x: saved.normed, dy: dq, rows: n, dx: dNormed, accumulateInput: false, sink: sink)
            TrainingKernels.rmsNormBackward(x: saved.a, weight: qANorm, rstd: saved.rstd, dy: dNormed, rows: n, dx: dqa,
                                            name: names + Names.qANorm, sink: sink)
            TrainingKernels.linearBackward(qA, name: names + Names.qA, x: x, dy: dqa, rows: n, dx: dx, accumulateInput: true, sink: sink)
        } else {
            TrainingKernels.linearBackward(b.qProj!, name: names + Names.q, x: x, dy: dq, rows: n, dx: dx, accumulateInput: true, sink: sink)
        }
        return dx
    }
}
