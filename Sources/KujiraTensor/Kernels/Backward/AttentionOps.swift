import Foundation

/// Causal softmax attention over B sequences of T tokens, per head, forward and backward.
///
/// Layout: Q (B·T, heads, dq), K (B·T, kvHeads, dq), V (B·T, kvHeads, dv), O (B·T, heads, dv), probabilities
/// P (B, heads, T, T) (zero above the diagonal). Grouped-query attention: query head h reads key/value head
/// h / (heads / kvHeads) (kvHeads == heads for plain multi-head attention and MLA's expanded form). Forward tasks are
/// (sequence, head) pairs, backward tasks (sequence, key/value head) pairs, so the heads of a group add into their
/// shared dK and dV on one thread; tasks run concurrently. Products run over blocks of `block` query rows and only the
/// key columns a block can see, so the causal half is not computed.
public enum AttentionOps {
    static let block = 32

    public static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, batch: Int, length: Int,
                               heads: Int, kvHeads: Int? = nil, qkDim: Int, valueDim: Int, scale: Float,
                               out: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>) {
        let T = length, kvHeads = kvHeads ?? heads, group = heads / kvHeads
        precondition(kvHeads > 0 && heads % kvHeads == 0, "query heads must be a multiple of key/value heads")
        Parallel.forEach(batch * heads) { task in
            let b = task / heads, h = task % heads
            let qh = gather(q, batch: b, head: h, length: T, heads: heads, dim: qkDim)
            let kh = gather(k, batch: b, head: h / group, length: T, heads: kvHeads, dim: qkDim)
            let vh = gather(v, batch: b, head: h / group, length: T, heads: kvHeads, dim: valueDim)
            defer { qh.deallocate(); kh.deallocate(); vh.deallocate() }
            let p = probabilities + task * T * T
            // S (T, T) = Qh (T, dq) · Khᵀ (dq, T): Khᵀ read through strides.
            let kT = UnsafeMutablePointer<Float>.allocate(capacity: qkDim * T)
            defer { kT.deallocate() }
            MatMul.transpose(kh, rows: T, cols: qkDim, into: kT)
            for r0 in stride(from: 0, to: T, by: block) {
                let r1 = min(T, r0 + block)
                MatMul.gemm(m: r1 - r0, n: r1, k: qkDim, a: qh + r0 * qkDim, aRowStride: qkDim, aColStride: 1, b: kT, ldb: T,
                            c: p + r0 * T, ldc: T, accumulate: false, parallel: false)
            }
            for i in 0..<T {
                let row = p + i * T
                var maxValue = -Float.infinity
                for j in 0...i { row[j] *= scale; if row[j] > maxValue { maxValue = row[j] } }
                var sum: Float = 0
                for j in 0...i { let e = exp(row[j] - maxValue); row[j] = e; sum += e }
                let inv = 1 / sum
                for j in 0...i { row[j] *= inv }
                if i + 1 < T { (row + i + 1).update(repeating: 0, count: T - i - 1) }
            }
            // Oh (T, dv) = P (T, T) · Vh (T, dv), scattered back into (B·T, heads, dv).
            for r0 in stride(from: 0, to: T, by: block) {
                let r1 = min(T, r0 + block)
                MatMul.gemm(m: r1 - r0, n: valueDim, k: r1, a: p + r0 * T, aRowStride: T, aColStride: 1, b: vh, ldb: valueDim,
                            c: out + ((b * T + r0) * heads + h) * valueDim, ldc: heads * valueDim, accumulate: false, parallel: false)
            }
        }
    }

    /// dP = dO Vᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale; dQ = dS K; dK = Σ_group dSᵀ Q; dV = Σ_group Pᵀ dO (written, not
    /// accumulated across calls).
    public static func backward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                probabilities: UnsafePointer<Float>, dOut: UnsafePointer<Float>, batch: Int, length: Int,
                                heads: Int, kvHeads: Int? = nil, qkDim: Int, valueDim: Int, scale: Float,
                                dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>) {
        let T = length, kvHeads = kvHeads ?? heads, group = heads / kvHeads
        precondition(kvHeads > 0 && heads % kvHeads == 0, "query heads must be a multiple of key/value heads")
        Parallel.forEach(batch * kvHeads) { task in
            let b = task / kvHeads, g = task % kvHeads
            let kh = gather(k, batch: b, head: g, length: T, heads: kvHeads, dim: qkDim)
            let vh = gather(v, batch: b, head: g, length: T, heads: kvHeads, dim: valueDim)
            let vT = UnsafeMutablePointer<Float>.allocate(capacity: valueDim * T)
            let ds = UnsafeMutablePointer<Float>.allocate(capacity: T * T)
            defer { kh.deallocate(); vh.deallocate(); vT.deallocate(); ds.deallocate() }
            MatMul.transpose(vh, rows: T, cols: valueDim, into: vT)
            for h in (g * group)..<((g + 1) * group) {
                let qh = gather(q, batch: b, head: h, length: T, heads: heads, dim: qkDim)
                let doh = gather(dOut, batch: b, head: h, length: T, heads: heads, dim: valueDim)
                defer { qh.deallocate(); doh.deallocate() }
                let p = probabilities + (b * heads + h) * T * T
                for r0 in stride(from: 0, to: T, by: block) {
                    let r1 = min(T, r0 + block)
                    MatMul.gemm(m: r1 - r0, n: r1, k: valueDim, a: doh + r0 * valueDim, aRowStride: valueDim, aColStride: 1, b: vT, ldb: T,
                                c: ds + r0 * T, ldc: T, accumulate: false, parallel: false)
                }
                for i in 0..<T {
                    let pr = p + i * T, dr = ds + i * T
                    var dot: Float = 0
                    for j in 0...i { dot += pr[j] * dr[j] }
                    for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) * scale }
                    if i + 1 < T { (dr + i + 1).update(repeating: 0, count: T - i - 1) }
                }
                let rowStrideQ = heads * qkDim, rowStrideK = kvHeads * qkDim, rowStrideV = kvHeads * valueDim
                let first = h == g * group
                for r0 in stride(from: 0, to: T, by: block) {
                    let r1 = min(T, r0 + block)
                    // dQ rows r0..<r1 see keys 0..<r1; dK and dV rows r0..<r1 receive from queries r0..<T.
                    MatMul.gemm(m: r1 - r0, n: qkDim, k: r1, a: ds + r0 * T, aRowStride: T, aColStride: 1, b: kh, ldb: qkDim,
                                c: dq + ((b * T + r0) * heads + h) * qkDim, ldc: rowStrideQ, accumulate: false, parallel: false)
                    MatMul.gemm(m: r1 - r0, n: qkDim, k: T - r0, a: ds + r0 * T + r0, aRowStride: 1, aColStride: T, b: qh + r0 * qkDim,
                                ldb: qkDim, c: dk + ((b * T + r0) * kvHeads + g) * qkDim, ldc: rowStrideK, accumulate: !first, parallel: false)
                    MatMul.gemm(m: r1 - r0, n: valueDim, k: T - r0, a: p + r0 * T + r0, aRowStride: 1, aColStride: T, b: doh + r0 * valueDim,
                                ldb: valueDim, c: dv + ((b * T + r0) * kvHeads + g) * valueDim, ldc: rowStrideV, accumulate: !first, parallel: false)
                }
            }
        }
    }

    /// Head `head` of sequence `batch` as a contiguous (T, dim) matrix (caller deallocates).
    static func gather(_ x: UnsafePointer<Float>, batch: Int, head: Int, length: Int, heads: Int, dim: Int) -> UnsafeMutablePointer<Float> {
        let out = UnsafeMutablePointer<Float>.allocate(capacity: length * dim)
        for t in 0..<length {
            (out + t * dim).update(from: x + ((batch * length + t) * heads + head) * dim, count: dim)
        }
        return out
    }
}
