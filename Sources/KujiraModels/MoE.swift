import KujiraFormats
import KujiraTensor

/// How DeepSeekMoE picks experts for a token.
public struct RouterSettings: Sendable {
    /// `sigmoid` (V3), `softmax` (V2, Qwen-style MoE) or `sqrtsoftplus` (V4: √softplus) over the router logits.
    public enum Scoring: String, Sendable { case sigmoid, softmax, sqrtSoftplus = "sqrtsoftplus" }
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
    /// Normalise even a single chosen expert's weight (to 1), as V4 does; V2/V3 normalise only for top-k > 1.
    public var normalizeSingle: Bool = false

    public init(scoring: Scoring, method: Method, experts: Int, topK: Int, groups: Int = 1, topKGroups: Int = 1, normalize: Bool,
                scalingFactor: Float = 1, scaleOnlyWithoutNormalize: Bool = false, normalizeSingle: Bool = false) {
        self.scoring = scoring
        self.method = method
        self.experts = experts
        self.topK = topK
        self.groups = groups
        self.topKGroups = topKGroups
        self.normalize = normalize
        self.scalingFactor = scalingFactor
        self.scaleOnlyWithoutNormalize = scaleOnlyWithoutNormalize
        self.normalizeSingle = normalizeSingle
    }
}

/// Expert selection for one token: indices and the weights their outputs are mixed with.
public struct Routing: Sendable, Equatable {
    public var experts: [Int]
    public var weights: [Float]
}

/// The DeepSeekMoE router: scores, group-limited top-k, and weights from the unbiased scores. With a hash table
/// (DeepSeek-V4's first layers) the token id alone picks the experts; the scores still weight them.
public struct Router: Sendable {
    public let settings: RouterSettings
    /// `gate.weight` (experts, hidden), decoded.
    public let weight: LinearWeight
    /// `e_score_correction_bias`: added to scores only to choose experts (auxiliary-loss-free balancing).
    public let scoreCorrectionBias: [Float]?
    /// `tid2eid` (vocab, topK): the experts of each token id, or nil for learned routing.
    public let hashTable: [Int32]?

    public init(settings: RouterSettings, weight: LinearWeight, scoreCorrectionBias: [Float]?, hashTable: [Int32]? = nil) {
        self.settings = settings
        self.weight = weight
        self.scoreCorrectionBias = scoreCorrectionBias
        self.hashTable = hashTable
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
        if let hashTable {
            let ids = workspace.ints(.tokenIds, n)
            for t in 0..<n {
                let row = UnsafeBufferPointer(rebasing: logits[(t * e)..<((t + 1) * e)])
                score(row, into: scores)
                for j in 0..<k { chosen[t * k + j] = Int(hashTable[ids[t] * k + j]) }
                weigh(scores: scores, chosen: UnsafeMutableBufferPointer(rebasing: chosen[(t * k)..<((t + 1) * k)]),
                      weights: UnsafeMutableBufferPointer(rebasing: weights[(t * k)..<((t + 1) * k)]))
            }
            return
        }
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
        score(logits, into: scores)
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
        weigh(scores: scores, chosen: chosen, weights: weights)
    }

    /// scores[i] = the scoring function of logits[i] (e values).
    @inline(__always)
    public func score(_ logits: UnsafeBufferPointer<Float>, into scores: UnsafeMutableBufferPointer<Float>) {
        let e = settings.experts
        for i in 0..<e { scores[i] = logits[i] }
        switch settings.scoring {
        case .sigmoid: for i in 0..<e { scores[i] = Elementwise.sigmoid(scores[i]) }
        case .softmax: Elementwise.softmax(scores)
        case .sqrtSoftplus: for i in 0..<e { scores[i] = Elementwise.softplus(scores[i]).squareRoot() }
        }
    }

    /// The chosen experts' weights: their unbiased scores, normalised and scaled as the settings say.
    @inline(__always)
    func weigh(scores: UnsafeMutableBufferPointer<Float>, chosen: UnsafeMutableBufferPointer<Int>, weights: UnsafeMutableBufferPointer<Float>) {
        let s = settings, k = s.topK
        var sum: Float = 0
        for j in 0..<k {
            weights[j] = scores[chosen[j]]
            sum += weights[j]
        }
        sum += 1e-20
        for j in 0..<k {
            if s.normalize && (k > 1 || s.normalizeSingle) {
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
    /// The block's tensor-name prefix (`model.layers.N.mlp`; empty when built from parts): the router's gradient is filed
    /// under it, each expert's under its own.
    public var prefix = ""

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

    /// Router, selection bias, every expert and the shared experts.
    public var totalParameters: Int {
        routerParameters + experts.reduce(0) { $0 + $1.totalParameters } + (sharedExperts?.totalParameters ?? 0)
    }

    public var activeParameters: Int {
        routerParameters + router.settings.topK * (experts.first?.totalParameters ?? 0) + (sharedExperts?.totalParameters ?? 0)
    }

    private var routerParameters: Int { router.weight.rows * router.weight.cols + (router.scoreCorrectionBias?.count ?? 0) }
}

extension MixtureOfExperts {
    /// Tensor names under the block's prefix (`…mlp`).
    public enum Names {
        public static let gate = "gate.weight", bias = "gate.e_score_correction_bias", hashTable = "gate.tid2eid"
        public static let experts = "experts", shared = "shared_experts"
    }

    /// The block's parameters under `prefix`: router, routed experts one tensor per expert (deepseek-ai's names),
    /// the shared experts if any, the selection bias when `bias`, the hash table when `hashVocab` is given.
    public static func parameters(_ prefix: String, hidden: Int, intermediate: Int, experts: Int, sharedIntermediate: Int?, bias: Bool,
                                  hashVocab: Int? = nil, topK: Int = 0) -> [ParameterLayout.Entry] {
        var e: [ParameterLayout.Entry] = [.init("\(prefix).\(Names.gate)", [experts, hidden])]
        if bias { e.append(.init("\(prefix).\(Names.bias)", [experts], .zeros)) }
        if let vocab = hashVocab { e.append(.init("\(prefix).\(Names.hashTable)", [vocab, topK], .expertTable(experts: experts), dtype: .i64)) }
        for expert in 0..<experts { e += GatedMLP.parameters("\(prefix).\(Names.experts).\(expert)", hidden: hidden, intermediate: intermediate) }
        if let shared = sharedIntermediate { e += GatedMLP.parameters("\(prefix).\(Names.shared)", hidden: hidden, intermediate: shared) }
        return e
    }

    /// Loads `<prefix>.gate`, the routed experts and (when `sharedIntermediate` is set) the shared experts. The selection
    /// bias is read for `noaux_tc` routing unless `hashVocab` says the layer is hash-routed (then `tid2eid` is read).
    public static func load(weights: any WeightStore, prefix: String, settings: RouterSettings, hidden: Int, intermediate: Int,
                            sharedIntermediate: Int?, blockSize: [Int]?, limit: Float? = nil, hashVocab: Int? = nil) throws -> MixtureOfExperts {
        let gate = try weights.linear("\(prefix).\(Names.gate)", rows: settings.experts, cols: hidden)
        var bias: [Float]?, table: [Int32]?
        if let vocab = hashVocab {
            table = try loadHashTable(weights: weights, name: "\(prefix).\(Names.hashTable)", vocab: vocab, topK: settings.topK, experts: settings.experts)
        } else if settings.method == .noauxTC {
            bias = try weights.floats("\(prefix).\(Names.bias)", shape: [settings.experts])
        }
        let experts = try loadExperts(weights: weights, prefix: "\(prefix).\(Names.experts)", count: settings.experts, hidden: hidden,
                                      intermediate: intermediate, blockSize: blockSize, limit: limit)
        let shared = try sharedIntermediate.map {
            try GatedMLP(weights: weights, prefix: "\(prefix).\(Names.shared)", hidden: hidden, intermediate: $0, blockSize: blockSize, limit: limit)
        }
        var block = MixtureOfExperts(router: Router(settings: settings, weight: gate, scoreCorrectionBias: bias, hashTable: table),
                                     experts: experts, sharedExperts: shared)
        block.prefix = prefix
        return block
    }

    /// `tid2eid` (vocab, topK) of integers, each checked to name an expert.
    static func loadHashTable(weights: any WeightStore, name: String, vocab: Int, topK: Int, experts: Int) throws -> [Int32] {
        let t = try weights.tensor(name, shape: [vocab, topK])
        let file = weights.file(of: name) ?? weights.source
        var table = [Int32](repeating: 0, count: vocab * topK)
        for i in 0..<table.count {
            let value: Int
            switch t.dtype {
            case .i64: value = Int(t.bytes.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
            case .i32: value = Int(t.bytes.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
            default: throw WeightStoreError.unsupportedDType(name: name, file: file, dtype: t.dtype.rawValue)
            }
            guard value >= 0 && value < experts else {
                throw WeightStoreError.shapeMismatch(name: name, file: file, expected: [experts], found: [value])
            }
            table[i] = Int32(value)
        }
        return table
    }

    /// Routed experts, stored one tensor per expert (`experts.<e>.gate_proj.weight`, as deepseek-ai ships), stacked as
    /// transformers 5 saves them (`experts.gate_up_proj` (E, 2·I, H) with gate rows first, `experts.down_proj` (E, H, I)),
    /// or stacked per projection (GGUF).
    static func loadExperts(weights: any WeightStore, prefix: String, count: Int, hidden: Int, intermediate: Int,
                            blockSize: [Int]?, limit: Float?) throws -> [GatedMLP] {
        if weights.contains("\(prefix).gate_up_proj") {
            let gateUp = try weights.tensor("\(prefix).gate_up_proj", shape: [count, 2 * intermediate, hidden])
            let down = try weights.tensor("\(prefix).down_proj", shape: [count, hidden, intermediate])
            for (name, t) in [("gate_up_proj", gateUp), ("down_proj", down)] where !t.dtype.isFloatingPoint || t.dtype == .f8e4m3 {
                throw WeightStoreError.unsupportedDType(name: "\(prefix).\(name)", file: weights.file(of: "\(prefix).\(name)") ?? weights.source,
                                                        dtype: t.dtype.rawValue)
            }
            return (0..<count).map { e in
                GatedMLP(gate: LinearWeight(data: gateUp.matrixRows(index: e, rows: 0..<intermediate)),
                         up: LinearWeight(data: gateUp.matrixRows(index: e, rows: intermediate..<(2 * intermediate))),
                         down: LinearWeight(data: down.matrixRows(index: e, rows: 0..<hidden)), limit: limit)
            }
        }
        if weights.contains("\(prefix).gate_proj") {
            // Stacked per projection, as llama.cpp's ffn_{gate,up,down}_exps: (E, I, H), (E, I, H), (E, H, I).
            let gate = try weights.tensor("\(prefix).gate_proj", shape: [count, intermediate, hidden])
            let up = try weights.tensor("\(prefix).up_proj", shape: [count, intermediate, hidden])
            let down = try weights.tensor("\(prefix).down_proj", shape: [count, hidden, intermediate])
            return (0..<count).map { e in
                GatedMLP(gate: LinearWeight(data: gate.matrixRows(index: e, rows: 0..<intermediate)),
                         up: LinearWeight(data: up.matrixRows(index: e, rows: 0..<intermediate)),
                         down: LinearWeight(data: down.matrixRows(index: e, rows: 0..<hidden)), limit: limit)
            }
        }
        return try (0..<count).map { e in
            try GatedMLP(weights: weights, prefix: "\(prefix).\(e)", hidden: hidden, intermediate: intermediate, blockSize: blockSize, limit: limit)
        }
    }
}

extension GGUFTensorNames {
    /// `MixtureOfExperts` at `mlp.`: router, selection bias, experts stacked per projection, shared experts.
    public static let mixtureOfExperts: GGUFTensorNames = {
        typealias N = MixtureOfExperts.Names
        return GGUFTensorNames(layer: [
            "ffn_gate_inp.weight": "mlp.\(N.gate)", "exp_probs_b.bias": "mlp.\(N.bias)",
            "ffn_gate_exps.weight": "mlp.\(N.experts).gate_proj", "ffn_up_exps.weight": "mlp.\(N.experts).up_proj",
            "ffn_down_exps.weight": "mlp.\(N.experts).down_proj",
            "ffn_gate_shexp.weight": "mlp.\(N.shared).\(GatedMLP.gateName)", "ffn_up_shexp.weight": "mlp.\(N.shared).\(GatedMLP.upName)",
            "ffn_down_shexp.weight": "mlp.\(N.shared).\(GatedMLP.downName)",
        ])
    }()
}
