import Foundation
import KujiraModels
import KujiraTensor

/// Activations of one SwiGLU MLP: [gate | up] (rows, 2I), h = silu(gate) ⊙ up (rows, I), output (rows, H).
final class MLPActivations: @unchecked Sendable {
    let gateUp: FloatBuffer, h: FloatBuffer, out: FloatBuffer
    init(gateUp: FloatBuffer, h: FloatBuffer, out: FloatBuffer) { self.gateUp = gateUp; self.h = h; self.out = out }
}

/// SwiGLU MLP: down(silu(gate(x)) ⊙ up(x)). `fused`: gate and up are one (2I, H) matrix (a routed expert's slice
/// of `experts.gate_up_proj`, gate rows first); otherwise two (I, H) tensors.
struct MLPBlock: Sendable {
    let weights: WeightAccess
    let parameters: MLPParameters
    let fused: Bool

    func forward(_ x: UnsafePointer<Float>, rows: Int, parallel: Bool = true) -> MLPActivations {
        let h = parameters.hidden, inter = parameters.intermediate, t = weights.store.transposed
        let gateUp = FloatBuffer(uninitializedCount: rows * 2 * inter)
        if fused {
            MatMul.gemm(m: rows, n: 2 * inter, k: h, a: x, aRowStride: h, aColStride: 1, b: t + parameters.gate, ldb: 2 * inter,
                        c: gateUp.pointer, ldc: 2 * inter, accumulate: false, parallel: parallel)
        } else {
            MatMul.gemm(m: rows, n: inter, k: h, a: x, aRowStride: h, aColStride: 1, b: t + parameters.gate, ldb: inter,
                        c: gateUp.pointer, ldc: 2 * inter, accumulate: false, parallel: parallel)
            MatMul.gemm(m: rows, n: inter, k: h, a: x, aRowStride: h, aColStride: 1, b: t + parameters.up, ldb: inter,
                        c: gateUp.pointer + inter, ldc: 2 * inter, accumulate: false, parallel: parallel)
        }
        let act = FloatBuffer(uninitializedCount: rows * inter)
        ActivationOps.swigluForward(gate: gateUp.pointer, up: gateUp.pointer + inter, stride: 2 * inter, rows: rows, width: inter, h: act.pointer)
        let out = weights.linear(act.pointer, parameters.down, rows: rows, inFeatures: inter, outFeatures: h, parallel: parallel)
        return MLPActivations(gateUp: gateUp, h: act, out: out)
    }

    /// dx += ∂L/∂x given dy (rows, H); weight gradients accumulate in the store.
    func backward(_ x: UnsafePointer<Float>, _ saved: MLPActivations, dy: UnsafePointer<Float>, rows: Int, dx: UnsafeMutablePointer<Float>,
                  parallel: Bool = true) {
        let h = parameters.hidden, inter = parameters.intermediate, w = weights
        let dh = FloatBuffer(count: rows * inter)
        w.linearBackward(saved.h.pointer, parameters.down, dy: dy, rows: rows, inFeatures: inter, outFeatures: h, dx: dh.pointer, parallel: parallel)
        let dGateUp = FloatBuffer(uninitializedCount: rows * 2 * inter)
        ActivationOps.swigluBackward(gate: saved.gateUp.pointer, up: saved.gateUp.pointer + inter, stride: 2 * inter, rows: rows,
                                     width: inter, dh: dh.pointer, dGate: dGateUp.pointer, dUp: dGateUp.pointer + inter)
        if fused {
            w.linearBackward(x, parameters.gate, dy: dGateUp.pointer, rows: rows, inFeatures: h, outFeatures: 2 * inter, dx: dx, parallel: parallel)
            return
        }
        for (offset, column) in [(parameters.gate, 0), (parameters.up, inter)] {
            let dPart = dGateUp.pointer + column
            MatMul.gemm(m: rows, n: h, k: inter, a: dPart, aRowStride: 2 * inter, aColStride: 1, b: w.value(offset), ldb: h,
                        c: dx, ldc: h, accumulate: true, parallel: parallel)
            MatMul.gemm(m: inter, n: h, k: rows, a: dPart, aRowStride: 1, aColStride: 2 * inter, b: x, ldb: h,
                        c: w.grad(offset), ldc: h, accumulate: true, parallel: parallel)
        }
    }
}

/// Activations of one DeepSeekMoE block.
final class MoEActivations {
    /// Sigmoid router scores s (rows, E).
    let scores: FloatBuffer
    /// Chosen experts and their mixing weights, K per row.
    let chosen: [Int], mixing: [Float]
    /// Per expert: the (row, slot) pairs routed to it and its MLP activations.
    let assignments: [[(row: Int, slot: Int)]]
    let expertActivations: [MLPActivations?]
    let shared: MLPActivations?
    /// Tokens per expert in this pass (the load the balancing rule reads).
    var load: [Int] { assignments.map(\.count) }
    /// Sequence-wise balance loss terms: f_i per (sequence, expert), used by its gradient.
    let balanceFrequency: [Float]

    init(scores: FloatBuffer, chosen: [Int], mixing: [Float], assignments: [[(row: Int, slot: Int)]], expertActivations: [MLPActivations?],
         shared: MLPActivations?, balanceFrequency: [Float]) {
        self.scores = scores; self.chosen = chosen; self.mixing = mixing; self.assignments = assignments
        self.expertActivations = expertActivations; self.shared = shared; self.balanceFrequency = balanceFrequency
    }
}

/// DeepSeekMoE for training: shared experts plus top-k routed experts chosen by the inference `Router`
/// (sigmoid scores + `e_score_correction_bias` for selection only, group-limited top-k with dropped groups at −inf),
/// mixed with weights w_j = α·s_j / Σ_chosen s (norm_topk_prob) — gradients reach the router through those s_j.
struct MoEBlock: Sendable {
    let weights: WeightAccess
    let parameters: MoEParameters
    let settings: RouterSettings
    /// Weight α of the sequence-wise balance loss (0: off).
    let balanceAlpha: Float

    var topK: Int { settings.topK }
    var experts: Int { settings.experts }

    /// Returns (output, activations, balance loss).
    func forward(_ x: FloatBuffer, shape: PassShape) -> (FloatBuffer, MoEActivations, Double) {
        let n = shape.rows, h = parameters.hidden, e = experts, k = topK, w = weights
        let logits = w.linear(x.pointer, parameters.router, rows: n, inFeatures: h, outFeatures: e)
        let bias = parameters.bias.map { Array(UnsafeBufferPointer(start: w.value($0), count: e)) }
        // Only `route(logits:)` is used (the logits come from the training weights above), so the weight is a placeholder.
        let router = Router(settings: settings, weight: LinearWeight(data: TensorData.owned([0], shape: [1, 1])), scoreCorrectionBias: bias)
        let scores = FloatBuffer(count: n * e)
        var chosen = [Int](repeating: 0, count: n * k), mixing = [Float](repeating: 0, count: n * k)
        var assignments = [[(row: Int, slot: Int)]](repeating: [], count: e)
        for r in 0..<n {
            let row = Array(UnsafeBufferPointer(start: logits.pointer + r * e, count: e))
            for i in 0..<e { scores[r * e + i] = Elementwise.sigmoid(row[i]) }
            let routing = router.route(logits: row)
            for slot in 0..<k {
                chosen[r * k + slot] = routing.experts[slot]
                mixing[r * k + slot] = routing.weights[slot]
                assignments[routing.experts[slot]].append((r, slot))
            }
        }
        let shared = parameters.shared.map { MLPBlock(weights: w, parameters: $0, fused: false).forward(x.pointer, rows: n) }
        let out = FloatBuffer(count: n * h)
        if let shared { out.pointer.update(from: shared.out.pointer, count: n * h) }
        let box = ConcurrentSlots<MLPActivations>(count: e)
        Parallel.forEach(e) { expert in
            let rows = assignments[expert]
            guard !rows.isEmpty else { return }
            let gathered = gather(x, rows: rows)
            box.set(expert, MLPBlock(weights: w, parameters: parameters.expert(expert), fused: true).forward(gathered.pointer, rows: rows.count, parallel: false))
        }
        for expert in 0..<e {
            guard let act = box.items[expert] else { continue }
            for (i, a) in assignments[expert].enumerated() {
                let weight = mixing[a.row * k + a.slot], src = act.out.pointer + i * h, dst = out.pointer + a.row * h
                for j in 0..<h { dst[j] += weight * src[j] }
            }
        }
        // Sequence-wise balance loss: α Σ_i f_i P_i per sequence, f_i = E/(K·T)·count_i, P_i = mean_t s_i,t / Σ_j s_j,t.
        var balanceLoss = 0.0
        var frequency = [Float](repeating: 0, count: shape.batch * e)
        if balanceAlpha > 0 {
            for b in 0..<shape.batch {
                for t in 0..<shape.length {
                    for slot in 0..<k { frequency[b * e + chosen[(b * shape.length + t) * k + slot]] += 1 }
                }
                for i in 0..<e { frequency[b * e + i] *= Float(e) / Float(k * shape.length) }
                for t in 0..<shape.length {
                    let s = scores.pointer + (b * shape.length + t) * e
                    var total: Float = 0
                    for i in 0..<e { total += s[i] }
                    for i in 0..<e { balanceLoss += Double(balanceAlpha * frequency[b * e + i] * s[i] / total) / Double(shape.length * shape.batch) }
                }
            }
        }
        let saved = MoEActivations(scores: scores, chosen: chosen, mixing: mixing, assignments: assignments, expertActivations: box.items,
                                   shared: shared, balanceFrequency: frequency)
        return (out, saved, balanceLoss)
    }

    func backward(_ x: FloatBuffer, _ saved: MoEActivations, dOut: FloatBuffer, shape: PassShape, dx: UnsafeMutablePointer<Float>) {
        let n = shape.rows, h = parameters.hidden, e = experts, k = topK, w = weights
        if let sharedParameters = parameters.shared, let shared = saved.shared {
            MLPBlock(weights: w, parameters: sharedParameters, fused: false).backward(x.pointer, shared, dy: dOut.pointer, rows: n, dx: dx)
        }
        // ∂L/∂w_j = dOut · y_j for each chosen (row, slot); the routed experts see dOut scaled by w_j.
        var dMixing = [Float](repeating: 0, count: n * k)
        let inputGradients = ConcurrentSlots<FloatBuffer>(count: e)
        dMixing.withUnsafeMutableBufferPointer { dm in
            let dMix = dm.baseAddress!
            Parallel.forEach(e) { expert in
                let rows = saved.assignments[expert]
                guard !rows.isEmpty, let act = saved.expertActivations[expert] else { return }
                let dy = FloatBuffer(count: rows.count * h)
                for (i, a) in rows.enumerated() {
                    let g = dOut.pointer + a.row * h, y = act.out.pointer + i * h, weight = saved.mixing[a.row * k + a.slot]
                    var dot: Float = 0
                    for j in 0..<h { dot += g[j] * y[j]; dy[i * h + j] = weight * g[j] }
                    dMix[a.row * k + a.slot] = dot
                }
                let gathered = gather(x, rows: rows)
                let dGathered = FloatBuffer(count: rows.count * h)
                MLPBlock(weights: w, parameters: parameters.expert(expert), fused: true)
                    .backward(gathered.pointer, act, dy: dy.pointer, rows: rows.count, dx: dGathered.pointer, parallel: false)
                inputGradients.set(expert, dGathered)
            }
        }
        for expert in 0..<e {
            guard let g = inputGradients.items[expert] else { continue }
            for (i, a) in saved.assignments[expert].enumerated() {
                let dst = dx + a.row * h, src = g.pointer + i * h
                for j in 0..<h { dst[j] += src[j] }
            }
        }
        // Router: w_j = α s_j / S (S = Σ_chosen s) ⇒ ∂L/∂s_j = (α ∂L/∂w_j − Σ_m ∂L/∂w_m w_m) / S; else w_j = α s_j.
        let normalize = settings.normalize && k > 1
        let alpha = normalize && settings.scaleOnlyWithoutNormalize ? 1 : settings.scalingFactor
        let dLogits = FloatBuffer(count: n * e)
        for r in 0..<n {
            let s = saved.scores.pointer + r * e, ds = dLogits.pointer + r * e
            if normalize {
                var total: Float = 0, weighted: Float = 0
                for slot in 0..<k { total += s[saved.chosen[r * k + slot]]; weighted += dMixing[r * k + slot] * saved.mixing[r * k + slot] }
                total += 1e-20
                for slot in 0..<k { ds[saved.chosen[r * k + slot]] += (alpha * dMixing[r * k + slot] - weighted) / total }
            } else {
                for slot in 0..<k { ds[saved.chosen[r * k + slot]] += alpha * dMixing[r * k + slot] }
            }
            if balanceAlpha > 0 {
                // L_bal term per row: c Σ_i f_i s_i / Σ_j s_j with c = α/(T·B).
                let b = r / shape.length, c = balanceAlpha / Float(shape.length * shape.batch)
                var total: Float = 0, weighted: Float = 0
                for i in 0..<e { total += s[i]; weighted += saved.balanceFrequency[b * e + i] * s[i] }
                for i in 0..<e { ds[i] += c * (saved.balanceFrequency[b * e + i] * total - weighted) / (total * total) }
            }
            for i in 0..<e { ds[i] *= s[i] * (1 - s[i]) }
        }
        w.linearBackward(x.pointer, parameters.router, dy: dLogits.pointer, rows: n, inFeatures: h, outFeatures: e, dx: dx)
    }

    /// Rows `rows` of x (n, hidden) gathered into a contiguous (count, hidden) buffer.
    func gather(_ x: FloatBuffer, rows: [(row: Int, slot: Int)]) -> FloatBuffer {
        let h = parameters.hidden, out = FloatBuffer(count: rows.count * h)
        for (i, a) in rows.enumerated() { (out.pointer + i * h).update(from: x.pointer + a.row * h, count: h) }
        return out
    }
}

/// Per-task results written from concurrent tasks (each task writes only its own slot; the lock orders the writes).
final class ConcurrentSlots<Value>: @unchecked Sendable {
    private(set) var items: [Value?]
    private let lock = NSLock()
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: Value) { lock.lock(); items[i] = value; lock.unlock() }
}
