import KujiraTensor

/// DeepSeekMoE's training pass, beside its inference forward (`MoE.swift`): the inference router picks the experts
/// (`Router.route(logits:)`: bias for selection only, group-limited top-k); each routed expert runs its own training pass
/// over the rows sent to it; the mixing weights w_j = α·s_j/S (normalised) or α·s_j carry the gradient to the router
/// through the scores s = sigmoid or softmax of the logits. The selection bias gets no gradient (its update is the
/// auxiliary-loss-free rule, fed by the pullback's `load`); the sequence-wise balance loss is added when the pass asks.
extension MixtureOfExperts: TrainableFeedForward {
    public func checkTrainable() throws {
        guard router.hashTable == nil else { throw TrainingSupportError.unsupportedBlock("hash routing (\(prefix))") }
        guard router.settings.scoring != .sqrtSoftplus else { throw TrainingSupportError.unsupportedBlock("sqrtsoftplus routing (\(prefix))") }
        for expert in experts { try expert.checkTrainable() }
        try sharedExperts?.checkTrainable()
    }

    public func trainingForward(_ x: FloatBuffer, shape: TrainingShape) throws -> (out: FloatBuffer, pullback: any Pullback) {
        try checkTrainable()
        let n = shape.rows, hidden = router.weight.cols, e = experts.count, k = router.settings.topK
        let logits = TrainingKernels.project(router.weight, x, rows: n)
        let scores = FloatBuffer(uninitializedCount: n * e)
        var chosen = [Int](repeating: 0, count: n * k), mixing = [Float](repeating: 0, count: n * k)
        var assignments = [[(row: Int, slot: Int)]](repeating: [], count: e)
        for r in 0..<n {
            let row = Array(UnsafeBufferPointer(start: logits.pointer + r * e, count: e))
            router.score(UnsafeBufferPointer(start: logits.pointer + r * e, count: e), into: UnsafeMutableBufferPointer(start: scores.pointer + r * e, count: e))
            let routing = router.route(logits: row)
            for slot in 0..<k {
                chosen[r * k + slot] = routing.experts[slot]
                mixing[r * k + slot] = routing.weights[slot]
                assignments[routing.experts[slot]].append((r, slot))
            }
        }
        let out = FloatBuffer(count: n * hidden)
        var shared: (any Pullback)?
        if let sharedExperts {
            let (y, pullback) = try sharedExperts.trainingForward(x, shape: shape)
            out.pointer.update(from: y.pointer, count: n * hidden)
            shared = pullback
        }
        // Experts run concurrently (each on its own rows; their GEMMs then run single-threaded inside the pool).
        let results = ConcurrentSlots<Result<(out: FloatBuffer, pullback: any Pullback), Error>>(count: e)
        Parallel.forEach(e) { expert in
            let rows = assignments[expert]
            guard !rows.isEmpty else { return }
            let gathered = FloatBuffer(uninitializedCount: rows.count * hidden)
            for (i, a) in rows.enumerated() { (gathered.pointer + i * hidden).update(from: x.pointer + a.row * hidden, count: hidden) }
            results.set(expert, Result { try experts[expert].trainingForward(gathered, shape: TrainingShape(batch: 1, length: rows.count)) })
        }
        var routed: [(pullback: any Pullback, out: FloatBuffer)?] = Array(repeating: nil, count: e)
        for expert in 0..<e {
            guard let result = results.items[expert] else { continue }
            let (y, pullback) = try result.get()
            for (i, a) in assignments[expert].enumerated() {
                let w = mixing[a.row * k + a.slot], src = y.pointer + i * hidden, dst = out.pointer + a.row * hidden
                for j in 0..<hidden { dst[j] += w * src[j] }
            }
            routed[expert] = (pullback, y)
        }
        let balance = BalanceLoss(alpha: shape.balanceAlpha, shape: shape, experts: e, topK: k, chosen: chosen, scores: scores)
        return (out, MixtureOfExpertsPullback(block: self, x: x, rows: n, scores: scores, chosen: chosen, mixing: mixing,
                                              assignments: assignments, routed: routed, shared: shared, balance: balance))
    }
}

/// DeepSeek-V3's sequence-wise balance loss over one routed-expert block: per sequence, α Σᵢ fᵢ Pᵢ with
/// fᵢ = E/(K·T) · (rows of the sequence routed to expert i) and Pᵢ = mean over its rows of sᵢ / Σⱼ sⱼ (normalised scores),
/// averaged over the batch. The counts f are constants; the gradient reaches the router through the scores.
struct BalanceLoss {
    let alpha: Float, shape: TrainingShape, experts: Int
    /// f per (sequence, expert).
    let frequency: [Float]
    let value: Double

    init(alpha: Float, shape: TrainingShape, experts e: Int, topK k: Int, chosen: [Int], scores: FloatBuffer) {
        self.alpha = alpha; self.shape = shape; experts = e
        guard alpha > 0 else { frequency = []; value = 0; return }
        let T = shape.length
        var frequency = [Float](repeating: 0, count: shape.batch * e), value = 0.0
        for b in 0..<shape.batch {
            for t in 0..<T { for slot in 0..<k { frequency[b * e + chosen[(b * T + t) * k + slot]] += 1 } }
            for i in 0..<e { frequency[b * e + i] *= Float(e) / Float(k * T) }
            for t in 0..<T {
                let s = scores.pointer + (b * T + t) * e
                var total: Float = 0, weighted: Float = 0
                for i in 0..<e { total += s[i]; weighted += frequency[b * e + i] * s[i] }
                value += Double(alpha * weighted / total) / Double(T * shape.batch)
            }
        }
        self.frequency = frequency
        self.value = value
    }

    /// Adds ∂loss/∂s of row `r` to ds (E values): c·(fᵢ·S − Σⱼ fⱼ sⱼ)/S² with c = α/(T·B), S = Σⱼ sⱼ.
    func addGradient(row r: Int, scores s: UnsafePointer<Float>, into ds: UnsafeMutablePointer<Float>) {
        guard alpha > 0 else { return }
        let f = frequency.withUnsafeBufferPointer { $0.baseAddress! + (r / shape.length) * experts }
        let c = alpha / Float(shape.length * shape.batch)
        var total: Float = 0, weighted: Float = 0
        for i in 0..<experts { total += s[i]; weighted += f[i] * s[i] }
        for i in 0..<experts { ds[i] += c * (f[i] * total - weighted) / (total * total) }
    }
}

/// Saved activations of one `MixtureOfExperts` training pass: router scores and choices, each routed expert's pullback
/// and output, the shared experts' pullback.
final class MixtureOfExpertsPullback: Pullback {
    let block: MixtureOfExperts, x: FloatBuffer, rows: Int
    let scores: FloatBuffer, chosen: [Int], mixing: [Float]
    let assignments: [[(row: Int, slot: Int)]]
    let routed: [(pullback: any Pullback, out: FloatBuffer)?]
    let shared: (any Pullback)?
    let balance: BalanceLoss
    /// Tokens each expert received (what the auxiliary-loss-free balancing rule reads).
    var load: [Int] { assignments.map(\.count) }
    /// This block's sequence-wise balance loss (0 when `TrainingShape.balanceAlpha` is 0).
    var balanceLoss: Double { balance.value }

    init(block: MixtureOfExperts, x: FloatBuffer, rows: Int, scores: FloatBuffer, chosen: [Int], mixing: [Float],
         assignments: [[(row: Int, slot: Int)]], routed: [(pullback: any Pullback, out: FloatBuffer)?], shared: (any Pullback)?,
         balance: BalanceLoss) {
        self.block = block; self.x = x; self.rows = rows; self.scores = scores; self.chosen = chosen; self.mixing = mixing
        self.assignments = assignments; self.routed = routed; self.shared = shared; self.balance = balance
    }

    func backward(_ dOut: FloatBuffer, into sink: GradientSink) throws -> FloatBuffer {
        let b = block, settings = b.router.settings, n = rows, hidden = b.router.weight.cols, e = b.experts.count, k = settings.topK
        let dx = try shared?.backward(dOut, into: sink) ?? FloatBuffer(count: n * hidden)
        // Each routed expert sees dOut scaled by its mixing weight; ∂L/∂w_j = dOut · y_j. Experts run concurrently: each
        // writes its own gradients and its own (row, slot) entries of dMixing.
        let dMixing = FloatBuffer(count: n * k)
        let inputs = ConcurrentSlots<Result<FloatBuffer, Error>>(count: e)
        Parallel.forEach(e) { expert in
            guard let (pullback, y) = routed[expert] else { return }
            let rows = assignments[expert]
            let dy = FloatBuffer(uninitializedCount: rows.count * hidden)
            for (i, a) in rows.enumerated() {
                let g = dOut.pointer + a.row * hidden, yi = y.pointer + i * hidden, w = mixing[a.row * k + a.slot]
                var dot: Float = 0
                for j in 0..<hidden { dot += g[j] * yi[j]; dy[i * hidden + j] = w * g[j] }
                dMixing[a.row * k + a.slot] = dot
            }
            inputs.set(expert, Result { try pullback.backward(dy, into: sink) })
        }
        for expert in 0..<e {
            guard let result = inputs.items[expert] else { continue }
            let dGathered = try result.get()
            for (i, a) in assignments[expert].enumerated() {
                let dst = dx.pointer + a.row * hidden, src = dGathered.pointer + i * hidden
                for j in 0..<hidden { dst[j] += src[j] }
            }
        }
        // Mixing weights from the chosen scores: w_j = α s_j / S (S = Σ_chosen s) ⇒ ∂L/∂s_j = (α ∂L/∂w_j − Σ_m ∂L/∂w_m w_m) / S;
        // else w_j = α s_j. Then through the scoring function to the logits.
        let normalize = settings.normalize && (k > 1 || settings.normalizeSingle)
        let alpha = normalize && settings.scaleOnlyWithoutNormalize ? 1 : settings.scalingFactor
        let dLogits = FloatBuffer(count: n * e)
        for r in 0..<n {
            let s = scores.pointer + r * e, ds = dLogits.pointer + r * e
            if normalize {
                var total: Float = 0, weighted: Float = 0
                for slot in 0..<k { total += s[chosen[r * k + slot]]; weighted += dMixing[r * k + slot] * mixing[r * k + slot] }
                total += 1e-20
                for slot in 0..<k { ds[chosen[r * k + slot]] += (alpha * dMixing[r * k + slot] - weighted) / total }
            } else {
                for slot in 0..<k { ds[chosen[r * k + slot]] += alpha * dMixing[r * k + slot] }
            }
            balance.addGradient(row: r, scores: s, into: ds)
            switch settings.scoring {
            case .sigmoid:
                for i in 0..<e { ds[i] *= s[i] * (1 - s[i]) }
            case .softmax:
                var dot: Float = 0
                for i in 0..<e { dot += s[i] * ds[i] }
                for i in 0..<e { ds[i] = s[i] * (ds[i] - dot) }
            case .sqrtSoftplus:
                break  // refused in the forward pass
            }
        }
        TrainingKernels.linearBackward(b.router.weight, name: "\(b.prefix).\(MixtureOfExperts.Names.gate)", x: x, dy: dLogits, rows: n,
                                       dx: dx, accumulateInput: true, sink: sink)
        return dx
    }
}
