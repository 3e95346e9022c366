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

    /// Routing of one token from its router logits (the training model's router calls this).
    public func route(logits: [Float]) -> Routing {
        let e = settings.experts, k = settings.topK
        var scores = [Float](repeating: 0, count: e), choice = scores, groupScores = [Float](repeating: 0, count: max(settings.groups, 1))
        var kept = [Int](repeating: 0, count: settings.topKGroups), chosen = [Int](repeating: 0, count: k)
        var weights = [Float](repeating: 0, count: k)
        logits.withUnsafeBufferPointer { row in
            scores.withUnsafeMutableBufferPointer { sb in choice.withUnsafeMutableBufferPointer { cb in
                groupScores.withUnsafeMutableBufferPointer { gb in kept.withUnsafeMutableBufferPointer { kb in
                    chosen.withUnsafeMutableBufferPointer { ch in weights.withUnsafeMutableBufferPointer { wb in
                        routeToken(row, scores: sb, choice: cb, groupScores: gb, kept: kb, chosen: ch, weights: wb)
                    } }
                } }
            } }
        }
        return Routing(experts: chosen, weights: weights)
    }

    /// Routes n tokens (x is (n, hidden)) without allocating: `chosen[t·k + j]` and `weights[t·k + j]` are token t's
    /// j-th expert and its weight — the same choices, order and weights as `route(logits:)`.
    public func route(_ x: UnsafeBufferPointer<Float>, n: Int, workspace: ForwardWorkspace,
                      chosen: UnsafeMutableBufferPointer<Int>, weights: UnsafeMutableBufferPointer<Float>) {
        let s = settings, e = s.experts, k = s.topK
        let logits = workspace.buffer(.routerLogits, n * e)
        Linear.forward(weight, x, n: n, into: logits)
        let scores = workspace.buffer(.routerScores, e), choice = workspace.buffer(.routerChoice, e)
        let groupScores = workspace.buffer(.groupScores, max(s.groups, 1)), kept = workspace.ints(.keptGroups, s.topKGroups)
        for t in 0..<n {
            routeToken(UnsafeBufferPointer(rebasing: logits[(t * e)..<((t + 1) * e)]), scores: scores, choice: choice,
                       groupScores: groupScores, kept: kept, chosen: UnsafeMutableBufferPointer(rebasing: chosen[(t * k)..<((t + 1) * k)]),
                       weights: UnsafeMutableBufferPointer(rebasing: weights[(t * k)..<((t + 1) * k)]))
        }
    }

    /// One token's routing from its router logits row (e values) into `chosen` / `weights` (k each): scores (sigmoid or
    /// softmax), the bias-corrected choice values, group-limited selection, top-k, and the weights from the unbiased
    /// scores. `scores`, `choice` (e each), `groupScores` (groups) and `kept` (topk_group) are scratch.
    func routeToken(_ logits: UnsafeBufferPointer<Float>, scores: UnsafeMutableBufferPointer<Float>, choice: UnsafeMutableBufferPointer<Float>,
                    groupScores: UnsafeMutableBufferPointer<Float>, kept: UnsafeMutableBufferPointer<Int>,
                    chosen: UnsafeMutableBufferPointer<Int>, weights: UnsafeMutableBufferPointer<Float>) {
        let s = settings, e = s.experts, k = s.topK
        for i in 0..<e { scores[i] = logits[i] }
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
            for g in 0..<s.groups {
                var first = -Float.infinity, second = -Float.infinity
                for i in (g * perGroup)..<((g + 1) * perGroup) {
                    let v = choice[i]
                    if v > first { second = first; first = v } else if v > second { second = v }
                }
                groupScores[g] = s.method == .noauxTC ? (perGroup > 1 ? first + second : first) : first
            }
            Self.selectTop(UnsafeBufferPointer(rebasing: groupScores[0..<s.groups]), k: s.topKGroups, into: kept)
            for g in 0..<s.groups where !kept.contains(g) {
                for i in (g * perGroup)..<((g + 1) * perGroup) { choice[i] = -.infinity }
            }
        }
        Self.selectTop(UnsafeBufferPointer(choice), k: k, into: chosen)
        var sum: Float = 0
        for j in 0..<k {
            weights[j] = scores[chosen[j]]
            sum += weights[j]
        }
        sum += 1e-20
        for j in 0..<k {
            if s.normalize && k > 1 {
                weights[j] /= sum
                if !s.scaleOnlyWithoutNormalize { weights[j] *= s.scalingFactor }
            } else {
                weights[j] *= s.scalingFactor
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
