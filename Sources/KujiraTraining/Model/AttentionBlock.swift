import KujiraTensor
import KujiraModels

/// Reads weights (and their transposes) and accumulates gradients in a `ParameterStore` by offset.
struct WeightAccess: @unchecked Sendable {
    let store: ParameterStore

    @inline(__always) func value(_ offset: Int) -> UnsafeMutablePointer<Float> { store.values + offset }
    @inline(__always) func grad(_ offset: Int) -> UnsafeMutablePointer<Float> { store.grads + offset }

    /// y (rows, out) = x (rows, in) · Wᵀ, W the (out, in) matrix at `offset`.
    func linear(_ x: UnsafePointer<Float>, _ offset: Int, rows: Int, inFeatures: Int, outFeatures: Int, parallel: Bool = true) -> FloatBuffer {
        let y = FloatBuffer(uninitializedCount: rows * outFeatures)
        MatMul.linearForward(x: x, wT: store.transposed + offset, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                             y: y.pointer, parallel: parallel)
        return y
    }

    /// dx += dy · W (if dx given); dW += dyᵀ · x.
    func linearBackward(_ x: UnsafePointer<Float>, _ offset: Int, dy: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
                        dx: UnsafeMutablePointer<Float>?, parallel: Bool = true) {
        MatMul.linearBackward(x: x, w: store.values + offset, dy: dy, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                              dx: dx, dw: store.grads + offset, accumulateInput: true, parallel: parallel)
    }

    /// RMSNorm of x (rows, d) with the weight at `offset`: (y, rstd).
    func rmsNorm(_ x: UnsafePointer<Float>, _ offset: Int, rows: Int, d: Int, eps: Float) -> (FloatBuffer, FloatBuffer) {
        let y = FloatBuffer(uninitializedCount: rows * d), rstd = FloatBuffer(uninitializedCount: rows)
        NormOps.rmsNormForward(x: x, weight: store.values + offset, rows: rows, d: d, eps: eps, y: y.pointer, rstd: rstd.pointer)
        return (y, rstd)
    }

    /// dx += RMSNorm backward.
    func rmsNormBackward(_ x: UnsafePointer<Float>, _ offset: Int, rstd: FloatBuffer, dy: UnsafePointer<Float>, rows: Int, d: Int,
                         dx: UnsafeMutablePointer<Float>) {
        NormOps.rmsNormBackward(x: x, weight: store.values + offset, rstd: rstd.pointer, dy: dy, rows: rows, d: d, dx: dx,
                                dWeight: store.grads + offset)
    }
}

/// Shapes of one pass: `batch` sequences of `length` tokens, rows ordered (sequence, position).
struct PassShape: Sendable {
    let batch: Int, length: Int
    var rows: Int { batch * length }
}

/// Activations of one MLA block kept for its backward pass.
final class AttentionActivations {
    var qa: FloatBuffer?, qaNormed: FloatBuffer?, qaRstd: FloatBuffer?
    var latent: FloatBuffer, latentNormed: FloatBuffer, latentRstd: FloatBuffer
    var q: FloatBuffer, k: FloatBuffer, v: FloatBuffer, probabilities: FloatBuffer, attended: FloatBuffer

    init(latent: FloatBuffer, latentNormed: FloatBuffer, latentRstd: FloatBuffer, q: FloatBuffer, k: FloatBuffer, v: FloatBuffer,
         probabilities: FloatBuffer, attended: FloatBuffer) {
        self.latent = latent; self.latentNormed = latentNormed; self.latentRstd = latentRstd
        self.q = q; self.k = k; self.v = v; self.probabilities = probabilities; self.attended = attended
    }
}

/// Multi-head latent attention for training, in the expanded per-head form: K_h = [W_UK,h · c_kv ; k_pe], V_h = W_UV,h · c_kv.
///
/// q = q_b(RMSNorm(q_a(x))) (or q_proj(x)); [c_kv | k_pe] = kv_a(x); c = RMSNorm(c_kv); kv = kv_b(c) with per head
/// [k_nope (nope) | v (v)]; the rope parts of q and k_pe are rotated (interleaved pairs, YaRN-scaled), k_pe is shared
/// by all heads; scores use qk_head_dim^-½ · mscale².
struct AttentionBlock: Sendable {
    let weights: WeightAccess
    let parameters: AttentionParameters
    let hidden: Int, heads: Int, nope: Int, rope: Int, valueDim: Int, rank: Int, qRank: Int?
    let softmaxScale: Float
    /// The low-rank norms use the reference's fixed epsilon (as `MultiHeadLatentAttention`).
    static let latentNormEps: Float = 1e-6

    var qkDim: Int { nope + rope }
    var kvWidth: Int { nope + valueDim }

    func forward(_ x: FloatBuffer, shape: PassShape, tables: RotaryTables) -> (FloatBuffer, AttentionActivations) {
        let n = shape.rows, w = weights, p = parameters
        var qa: FloatBuffer?, qaNormed: FloatBuffer?, qaRstd: FloatBuffer?
        let q: FloatBuffer
        if let qA = p.qA, let qANorm = p.qANorm, let qB = p.qB, let r = qRank {
            let a = w.linear(x.pointer, qA, rows: n, inFeatures: hidden, outFeatures: r)
            let (normed, rstd) = w.rmsNorm(a.pointer, qANorm, rows: n, d: r, eps: Self.latentNormEps)
            q = w.linear(normed.pointer, qB, rows: n, inFeatures: r, outFeatures: heads * qkDim)
            qa = a; qaNormed = normed; qaRstd = rstd
        } else {
            q = w.linear(x.pointer, p.qProj ?? 0, rows: n, inFeatures: hidden, outFeatures: heads * qkDim)
        }
        tables.apply(q.pointer + nope, rows: n, rowStride: heads * qkDim, count: heads, vectorStride: qkDim, inverse: false)
        let compressed = w.linear(x.pointer, p.kvA, rows: n, inFeatures: hidden, outFeatures: rank + rope)
        let latent = FloatBuffer(uninitializedCount: n * rank), kpe = FloatBuffer(uninitializedCount: n * rope)
        for r in 0..<n {
            (latent.pointer + r * rank).update(from: compressed.pointer + r * (rank + rope), count: rank)
            (kpe.pointer + r * rope).update(from: compressed.pointer + r * (rank + rope) + rank, count: rope)
        }
        tables.apply(kpe.pointer, rows: n, rowStride: rope, count: 1, vectorStride: rope, inverse: false)
        let (c, cRstd) = w.rmsNorm(latent.pointer, p.kvANorm, rows: n, d: rank, eps: Self.latentNormEps)
        let kv = w.linear(c.pointer, p.kvB, rows: n, inFeatures: rank, outFeatures: heads * kvWidth)
        let k = FloatBuffer(uninitializedCount: n * heads * qkDim), v = FloatBuffer(uninitializedCount: n * heads * valueDim)
        for r in 0..<n {
            for h in 0..<heads {
                let src = kv.pointer + (r * heads + h) * kvWidth
                (k.pointer + (r * heads + h) * qkDim).update(from: src, count: nope)
                (k.pointer + (r * heads + h) * qkDim + nope).update(from: kpe.pointer + r * rope, count: rope)
                (v.pointer + (r * heads + h) * valueDim).update(from: src + nope, count: valueDim)
            }
        }
        let attended = FloatBuffer(uninitializedCount: n * heads * valueDim)
        let probabilities = FloatBuffer(uninitializedCount: shape.batch * heads * shape.length * shape.length)
        AttentionOps.forward(q: q.pointer, k: k.pointer, v: v.pointer, batch: shape.batch, length: shape.length, heads: heads,
                             qkDim: qkDim, valueDim: valueDim, scale: softmaxScale, out: attended.pointer, probabilities: probabilities.pointer)
        let out = w.linear(attended.pointer, p.o, rows: n, inFeatures: heads * valueDim, outFeatures: hidden)
        let saved = AttentionActivations(latent: latent, latentNormed: c, latentRstd: cRstd, q: q, k: k, v: v,
                                         probabilities: probabilities, attended: attended)
        saved.qa = qa; saved.qaNormed = qaNormed; saved.qaRstd = qaRstd
        return (out, saved)
    }

    /// dx += the gradient w.r.t. the block input x (n, hidden); weight gradients accumulate in the store.
    func backward(_ x: FloatBuffer, _ saved: AttentionActivations, dOut: FloatBuffer, shape: PassShape, tables: RotaryTables,
                  dx: UnsafeMutablePointer<Float>) {
        let n = shape.rows, w = weights, p = parameters
        let dAttended = FloatBuffer(count: n * heads * valueDim)
        w.linearBackward(saved.attended.pointer, p.o, dy: dOut.pointer, rows: n, inFeatures: heads * valueDim, outFeatures: hidden,
                         dx: dAttended.pointer)
        // Written completely by the attention backward.
        let dq = FloatBuffer(uninitializedCount: n * heads * qkDim), dk = FloatBuffer(uninitializedCount: n * heads * qkDim)
        let dv = FloatBuffer(uninitializedCount: n * heads * valueDim)
        AttentionOps.backward(q: saved.q.pointer, k: saved.k.pointer, v: saved.v.pointer, probabilities: saved.probabilities.pointer,
                              dOut: dAttended.pointer, batch: shape.batch, length: shape.length, heads: heads, qkDim: qkDim,
                              valueDim: valueDim, scale: softmaxScale, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer)
        tables.apply(dq.pointer + nope, rows: n, rowStride: heads * qkDim, count: heads, vectorStride: qkDim, inverse: true)
        // Split dK/dV back into kv_b's output layout; k_pe's gradient sums over the heads sharing it.
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
        let dc = FloatBuffer(count: n * rank)
        w.linearBackward(saved.latentNormed.pointer, p.kvB, dy: dkv.pointer, rows: n, inFeatures: rank, outFeatures: heads * kvWidth, dx: dc.pointer)
        let dLatent = FloatBuffer(count: n * rank)
        w.rmsNormBackward(saved.latent.pointer, p.kvANorm, rstd: saved.latentRstd, dy: dc.pointer, rows: n, d: rank, dx: dLatent.pointer)
        for r in 0..<n { (dCompressed.pointer + r * (rank + rope)).update(from: dLatent.pointer + r * rank, count: rank) }
        w.linearBackward(x.pointer, p.kvA, dy: dCompressed.pointer, rows: n, inFeatures: hidden, outFeatures: rank + rope, dx: dx)
        if let qA = p.qA, let qANorm = p.qANorm, let qB = p.qB, let r = qRank, let qa = saved.qa, let qaNormed = saved.qaNormed,
           let qaRstd = saved.qaRstd {
            let dNormed = FloatBuffer(count: n * r), dqa = FloatBuffer(count: n * r)
            w.linearBackward(qaNormed.pointer, qB, dy: dq.pointer, rows: n, inFeatures: r, outFeatures: heads * qkDim, dx: dNormed.pointer)
            w.rmsNormBackward(qa.pointer, qANorm, rstd: qaRstd, dy: dNormed.pointer, rows: n, d: r, dx: dqa.pointer)
            w.linearBackward(x.pointer, qA, dy: dqa.pointer, rows: n, inFeatures: hidden, outFeatures: r, dx: dx)
        } else {
            w.linearBackward(x.pointer, p.qProj ?? 0, dy: dq.pointer, rows: n, inFeatures: hidden, outFeatures: heads * qkDim, dx: dx)
        }
    }
}
