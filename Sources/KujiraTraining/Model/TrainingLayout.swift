import KujiraFormats
import KujiraModels

/// Offsets of one MLA block's tensors in the parameter store.
struct AttentionParameters: Sendable {
    var qA: Int?, qANorm: Int?, qB: Int?, qProj: Int?
    var kvA: Int, kvANorm: Int, kvB: Int, o: Int
}

/// Offsets of a SwiGLU MLP: separate gate/up (dense, shared experts) or one stacked gate_up slice (routed experts).
struct MLPParameters: Sendable {
    /// Offset of the gate rows (I, H); `up` is (I, H) too. For stacked experts up = gate + I·H.
    var gate: Int, up: Int, down: Int
    var hidden: Int, intermediate: Int
}

/// Offsets of a DeepSeekMoE block.
struct MoEParameters: Sendable {
    var router: Int, bias: Int?
    var gateUp: Int, down: Int
    var shared: MLPParameters?
    var experts: Int, hidden: Int, intermediate: Int

    /// Routed expert e as an MLP view into the stacked tensors.
    func expert(_ e: Int) -> MLPParameters {
        let gate = gateUp + e * 2 * intermediate * hidden
        return MLPParameters(gate: gate, up: gate + intermediate * hidden, down: down + e * hidden * intermediate,
                             hidden: hidden, intermediate: intermediate)
    }
}

/// Offsets of one decoder layer.
struct LayerParameters: Sendable {
    enum FeedForward: Sendable { case dense(MLPParameters), moe(MoEParameters) }
    var index: Int
    var inputNorm: Int, postNorm: Int
    var attention: AttentionParameters
    var feedForward: FeedForward
}

/// Offsets of the depth-1 multi-token-prediction module (stored as layer `num_hidden_layers`).
struct MTPParameters: Sendable {
    var enorm: Int, hnorm: Int, ehProj: Int, headNorm: Int
    var block: LayerParameters
}

/// The training layout: `KujiraModels.ParameterLayout` (the one list of an architecture's tensors) with each MoE
/// layer's routed experts stacked as transformers 5 saves them — `experts.gate_up_proj` (E, 2·I, H), gate rows
/// first, and `experts.down_proj` (E, H, I) — so an expert's gate and up run as one product.
public enum TrainingLayout {
    public typealias Item = (name: String, shape: [Int], kind: ParameterStore.Kind)

    /// Every tensor of the model, including the MTP module (layer `num_hidden_layers`) when the config has one.
    /// With `stackExperts` false the routed experts keep their per-expert names (the inference blocks' training passes).
    public static func items(_ config: ModelConfig, stackExperts: Bool = true) throws -> [Item] {
        var items: [Item] = []
        var stacked = Set<String>()
        let entries = try ParameterLayout.entries(for: config)
        for entry in entries {
            if stackExperts, let range = entry.name.range(of: ".mlp.experts.") {
                let prefix = String(entry.name[..<range.upperBound].dropLast())
                guard stacked.insert(prefix).inserted else { continue }
                let gate = entries.first { $0.name == "\(prefix).0.gate_proj.weight" }?.shape ?? []
                let expertCount = entries.filter { $0.name.hasPrefix(prefix + ".") && $0.name.hasSuffix(".gate_proj.weight") }.count
                guard gate.count == 2 else { throw TrainingError.unsupported("routed experts without \(prefix).0.gate_proj.weight") }
                items.append(("\(prefix).gate_up_proj", [expertCount, 2 * gate[0], gate[1]], .matrix))
                items.append(("\(prefix).down_proj", [expertCount, gate[1], gate[0]], .matrix))
                continue
            }
            let kind: ParameterStore.Kind
            switch entry.initial {
            case .normal: kind = .matrix
            case .ones: kind = .norm
            case .zeros: kind = entry.name.hasSuffix("e_score_correction_bias") ? .balanceBias : .bias
            case .expertTable: throw TrainingError.unsupported("hash-routing table \(entry.name)")
            }
            items.append((entry.name, entry.shape, kind))
        }
        return items
    }

    /// Offsets of layer i's tensors.
    static func layer(_ c: DeepseekV3Configuration, _ i: Int, in store: ParameterStore) throws -> LayerParameters {
        let p = "model.layers.\(i)", a = "\(p).self_attn"
        func o(_ name: String) throws -> Int { try store.offset(name) }
        func optional(_ name: String) -> Int? { store.contains(name) ? (try? store.offset(name)) : nil }
        let attention = AttentionParameters(
            qA: optional("\(a).q_a_proj.weight"), qANorm: optional("\(a).q_a_layernorm.weight"), qB: optional("\(a).q_b_proj.weight"),
            qProj: optional("\(a).q_proj.weight"), kvA: try o("\(a).kv_a_proj_with_mqa.weight"),
            kvANorm: try o("\(a).kv_a_layernorm.weight"), kvB: try o("\(a).kv_b_proj.weight"), o: try o("\(a).o_proj.weight"))
        let feedForward: LayerParameters.FeedForward
        if c.isMoELayer(i), let r = c.router {
            let m = "\(p).mlp", inter = c.moeIntermediateSize
            let shared = c.sharedExperts > 0
                ? MLPParameters(gate: try o("\(m).shared_experts.gate_proj.weight"), up: try o("\(m).shared_experts.up_proj.weight"),
                                down: try o("\(m).shared_experts.down_proj.weight"), hidden: c.hiddenSize, intermediate: inter * c.sharedExperts)
                : nil
            feedForward = .moe(MoEParameters(router: try o("\(m).gate.weight"), bias: optional("\(m).gate.e_score_correction_bias"),
                                             gateUp: try o("\(m).experts.gate_up_proj"), down: try o("\(m).experts.down_proj"),
                                             shared: shared, experts: r.experts, hidden: c.hiddenSize, intermediate: inter))
        } else {
            feedForward = .dense(MLPParameters(gate: try o("\(p).mlp.gate_proj.weight"), up: try o("\(p).mlp.up_proj.weight"),
                                               down: try o("\(p).mlp.down_proj.weight"), hidden: c.hiddenSize, intermediate: c.intermediateSize))
        }
        return LayerParameters(index: i, inputNorm: try o("\(p).input_layernorm.weight"), postNorm: try o("\(p).post_attention_layernorm.weight"),
                               attention: attention, feedForward: feedForward)
    }
}
