import KujiraFormats
import KujiraTensor

/// How DeepSeekMoE picks experts for a token.
public struct RouterSettings: Sendable {
    /// `sigmoid` (V3) or `softmax` (V2) over the router logits.
    public enum Scoring: String, Sendable { case sigmoid, softmax }
    /// `noaux_tc` (V3: bias for selection, groups scored by their top-2 sum), `greedy`, `group_limited_greedy` (V2: group max).
    public enum Method: String, Sendable { case noauxTC = "noaux_tc", greedy, groupLimitedGreedy = "group_limited_greedy" }

    public var scoring: Scoring
    public var method: Method
    public var experts: Int
    public var topK: Int
    public var groups: Int
    public var topKGroups: Int
    public var normalize: Bool
    public var scalingFactor: Float
    /// V2 scales only when it does not normalise; V3 always scales after normalising.
    public var scaleOnlyWithoutNormalize: Bool
}

/// Expert selection for one token: indices and the weights their outputs are mixed with.
public struct Routing: Sendable, Equatable {
    public var experts: [Int]
    public var weights: [Float]
}

/// The DeepSeekMoE router: scores, group-limited top-k, and weights from the unbiased scores.
public struct Router: Sendable {
    public let settings: RouterSettings
    /// `gate.weight` (experts, hidden), decoded.
    public let weight: LinearWeight
    /// `e_score_correction_bias`: added to scores only to choose experts (auxiliary-loss-free balancing).
    public let scoreCorrectionBias: [Float]?

    public init(settings: RouterSettings, weight: LinearWeight, scoreCorrectionBias: [Float]?) {
        self.settings = settings
        self.weight = weight
        self.scoreCorrectionBias = scoreCorrectionBias
    }

    /// Routes each of n tokens (x is (n, hidden)).
    public func route(_ x: [Float], n: Int) -> [Routing] {
        let logits = Linear.forward(weight, x, n: n)
        let e = settings.experts
        return (0..<n).map { t in route(logits: Array(logits[(t * e)..<((t + 1) * e)])) }
    }

    /// Routing of one token from its router logits.
    public func route(logits: [Float]) -> Routing {
        let s = settings, e = s.experts
        var scores = logits
        switch s.scoring {
        case .sigmoid: scores = scores.map(Elementwise.sigmoid)
        case .softmax: scores.withUnsafeMutableBufferPointer { Elementwise.softmax($0) }
        }
        var choice = scores
        if s.method == .noauxTC, let bias = scoreCorrectionBias {
            for i in 0..<e { choice[i] += bias[i] }
        }
        if s.method != .greedy && s.groups > 1 {
            let perGroup = e / s.groups
            let groupScores: [Float] = (0..<s.groups).map { g in
                let members = choice[(g * perGroup)..<((g + 1) * perGroup)]
                if s.method == .noauxTC { return members.sorted(by: >).prefix(2).reduce(0, +) }
                return members.max() ?? -.infinity
            }
            let keptGroups = Set(Self.topIndices(groupScores, k: s.topKGroups))
            for g in 0..<s.groups where !keptGroups.contains(g) {
                for i in (g * perGroup)..<((g + 1) * perGroup) { choice[i] = -.infinity }
            }
        }
        let chosen = Self.topIndices(choice, k: s.topK)
        var weights = chosen.map { scores[$0] }
        if s.normalize && s.topK > 1 {
            let sum = weights.reduce(0, +) + 1e-20
            weights = weights.map { $0 / sum }
            if !s.scaleOnlyWithoutNormalize { weights = weights.map { $0 * s.scalingFactor } }
        } else {
            weights = weights.map { $0 * s.scalingFactor }
        }
        return Routing(experts: chosen, weights: weights)
    }

    /// Indices of the k largest values, largest first (ties: lower index first).
    static func topIndices(_ values: [Float], k: Int) -> [Int] {
        Array(values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(k))
    }

    /// Routes n tokens (x is (n, hidden)) without allocating: `chosen[t·k + j]` and `weights[t·k + j]` are token t's
    /// j-th expert and its weight — the same choices, order and weights as `route(logits:)`.
    public func route(_ x: UnsafeBufferPointer<Float>, n: Int, workspace: ForwardWorkspace,
                      chosen: UnsafeMutableBufferPointer<Int>, weights: UnsafeMutableBufferPointer<Float>) {
        let s = settings, e = s.experts, k = s.topK
        let logits = workspace.buffer(.routerLogits, n * e)
        Linear.forward(weight, x, n: n, into: logits)
        let scores = workspace.buffer(.routerScores, e), choice = workspace.buffer(.routerChoice, e)
        for t in 0..<n {
            for i in 0..<e { scores[i] = logits[t * e + i] }
            switch s.scoring {
            case .sigmoid: for i in 0..<e { scores[i] = Elementwise.sigmoid(scores[i]) }
            case .softmax: Elementwise.softmax(scores)
            }
            for i in 0..<e { choice[i] = scores[i] }
            if s.method == .noauxTC, let bias = scoreCorrectionBias {
                bias.withUnsafeBufferPointer { b in for i in 0..<e { choice[i] += b[i] } }
            }
            if s.method != .greedy && s.groups > 1 {
                let perGroup = e / s.groups
                let groupScores = workspace.buffer(.groupScores, s.groups)
                for g in 0..<s.groups {
                    var first = -Float.infinity, second = -Float.infinity
                    for i in (g * perGroup)..<((g + 1) * perGroup) {
                        let v = choice[i]
                        if v > first { second = first; first = v } else if v > second { second = v }
                    }
                    groupScores[g] = s.method == .noauxTC ? (perGroup > 1 ? first + second : first) : first
                }
                let kept = workspace.ints(.keptGroups, s.topKGroups)
                Self.selectTop(UnsafeBufferPointer(groupScores), k: s.topKGroups, into: kept)
                for g in 0..<s.groups where !kept.contains(g) {
                    for i in (g * perGroup)..<((g + 1) * perGroup) { choice[i] = -.infinity }
                }
            }
            let mine = UnsafeMutableBufferPointer(rebasing: chosen[(t * k)..<((t + 1) * k)])
            Self.selectTop(UnsafeBufferPointer(choice), k: k, into: mine)
            var sum: Float = 0
            for j in 0..<k {
                weights[t * k + j] = scores[mine[j]]
                sum += weights[t * k + j]
            }
            sum += 1e-20
            for j in 0..<k {
                if s.normalize && k > 1 {
                    weights[t * k + j] /= sum
                    if !s.scaleOnlyWithoutNormalize { weights[t * k + j] *= s.scalingFactor }
                } else {
                    weights[t * k + j] *= s.scalingFactor
                }
            }
        }
    }

    /// `topIndices` without allocating: the k largest, largest first, ties to the lower index.
    @inline(__always)
    static func selectTop(_ values: UnsafeBufferPointer<Float>, k: Int, into out: UnsafeMutableBufferPointer<Int>) {
        for r in 0..<k {
            var best = -1
            for i in 0..<values.count {
                var taken = false
                for q in 0..<r where out[q] == i { taken = true }
                if taken { continue }
                if best < 0 || values[i] > values[best] { best = i }
            }
            out[r] = best
        }
    }
}

/// DeepSeekMoE: shared experts for every token plus the top-k routed experts, weighted by the router.
public struct MixtureOfExperts: FeedForward {
    public let router: Router
    public let experts: [GatedMLP]
    public let sharedExperts: GatedMLP?

    public init(router: Router, experts: [GatedMLP], sharedExperts: GatedMLP?) {
        self.router = router
        self.experts = experts
        self.sharedExperts = sharedExperts
    }

    /// Only the routed experts run, and each once over all of its tokens (prefill groups tokens by expert, in token
    /// order); scratch from `workspace`, so decoding does not allocate (unless `load` records expert statistics).
    public func forward(_ x: UnsafeBufferPointer<Float>, n: Int, workspace: ForwardWorkspace, load: ExpertLoad?, layer: Int,
                        into out: UnsafeMutableBufferPointer<Float>) {
        let hidden = router.weight.cols, k = router.settings.topK, e = experts.count
        let chosen = workspace.ints(.chosenExperts, n * k), weights = workspace.buffer(.routerWeights, n * k)
        router.route(x, n: n, workspace: workspace, chosen: chosen, weights: weights)
        if let load {
            for t in 0..<n { load.record(layer: layer, experts: Array(chosen[(t * k)..<((t + 1) * k)]), expertCount: e) }
        }
        if let sharedExperts {
            sharedExperts.forward(x, n: n, workspace: workspace, load: nil, layer: layer, into: out)
        } else {
            out.baseAddress!.update(repeating: 0, count: n * hidden)
        }
        // Counting sort of the (token, choice) pairs by expert; stable, so each expert sees its tokens in order.
        let ends = workspace.ints(.expertCounts, e), order = workspace.ints(.expertOrder, n * k)
        ends.baseAddress!.update(repeating: 0, count: e)
        for i in 0..<(n * k) { ends[chosen[i]] += 1 }
        var running = 0
        for c in 0..<e { let count = ends[c]; ends[c] = running; running += count }
        for i in 0..<(n * k) { order[ends[chosen[i]]] = i; ends[chosen[i]] += 1 }
        var start = 0
        for c in 0..<e {
            let end = ends[c], m = end - start
            defer { start = end }
            guard m > 0 else { continue }
            let gathered = workspace.buffer(.gathered, m * hidden), y = workspace.buffer(.expertOut, m * hidden)
            for r in 0..<m {
                (gathered.baseAddress! + r * hidden).update(from: x.baseAddress! + order[start + r] / k * hidden, count: hidden)
            }
            experts[c].forward(UnsafeBufferPointer(gathered), n: m, workspace: workspace, load: nil, layer: layer, into: y)
            for r in 0..<m {
                let token = order[start + r] / k, w = weights[order[start + r]]
                for i in 0..<hidden { out[token * hidden + i] += w * y[r * hidden + i] }
            }
        }
    }

    public var totalParameters: Int {
        router.weight.rows * router.weight.cols + experts.reduce(0) { $0 + $1.totalParameters } + (sharedExperts?.totalParameters ?? 0)
    }

    public var activeParameters: Int {
        router.weight.rows * router.weight.cols + router.settings.topK * (experts.first?.totalParameters ?? 0) + (sharedExperts?.totalParameters ?? 0)
    }
}
