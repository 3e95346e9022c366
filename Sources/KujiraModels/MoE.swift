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

    public func forward(_ x: [Float], n: Int) -> [Float] { forward(x, n: n, routings: router.route(x, n: n)) }

    /// Records how many tokens each expert received when the sequence collects expert load.
    public func forward(_ x: [Float], n: Int, cache: KVCache, layer: Int) -> [Float] {
        let routings = router.route(x, n: n)
        if let load = cache.expertLoad {
            for routing in routings { load.record(layer: layer, experts: routing.experts, expertCount: experts.count) }
        }
        return forward(x, n: n, routings: routings)
    }

    /// Only the routed experts run, and each once over all of its tokens (prefill groups tokens by expert).
    func forward(_ x: [Float], n: Int, routings: [Routing]) -> [Float] {
        let hidden = x.count / n
        var out = sharedExperts?.forward(x, n: n) ?? [Float](repeating: 0, count: x.count)
        var tokensOfExpert = [[(token: Int, weight: Float)]](repeating: [], count: experts.count)
        for (t, routing) in routings.enumerated() {
            for (e, w) in zip(routing.experts, routing.weights) { tokensOfExpert[e].append((t, w)) }
        }
        for (e, assigned) in tokensOfExpert.enumerated() where !assigned.isEmpty {
            var gathered = [Float](repeating: 0, count: assigned.count * hidden)
            for (row, a) in assigned.enumerated() {
                for i in 0..<hidden { gathered[row * hidden + i] = x[a.token * hidden + i] }
            }
            let y = experts[e].forward(gathered, n: assigned.count)
            for (row, a) in assigned.enumerated() {
                for i in 0..<hidden { out[a.token * hidden + i] += a.weight * y[row * hidden + i] }
            }
        }
        return out
    }

    public var totalParameters: Int {
        router.weight.rows * router.weight.cols + experts.reduce(0) { $0 + $1.totalParameters } + (sharedExperts?.totalParameters ?? 0)
    }

    public var activeParameters: Int {
        router.weight.rows * router.weight.cols + router.settings.topK * (experts.first?.totalParameters ?? 0) + (sharedExperts?.totalParameters ?? 0)
    }
}
