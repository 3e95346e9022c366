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

/// The tensors of a DeepSeek-V3 model under their Hugging Face names (routed experts stacked as transformers 5 saves them).
public enum ParameterLayout {
    public typealias Item = (name: String, shape: [Int], kind: ParameterStore.Kind)

    /// Every tensor of the model; with `includeMTP`, also the MTP module as layer `num_hidden_layers` (without the
    /// copies of the embedding and head, which are shared and written only into checkpoints).
    public static func items(_ c: DeepseekV3Configuration, includeMTP: Bool) -> [Item] {
        var items: [Item] = [("model.embed_tokens.weight", [c.vocabSize, c.hiddenSize], .matrix)]
        let layerCount = c.layers + (includeMTP ? 1 : 0)
        for i in 0..<layerCount {
            let p = "model.layers.\(i)"
            if i == c.layers {
                items += [("\(p).enorm.weight", [c.hiddenSize], .norm), ("\(p).hnorm.weight", [c.hiddenSize], .norm),
                          ("\(p).eh_proj.weight", [c.hiddenSize, 2 * c.hiddenSize], .matrix),
                          ("\(p).shared_head.norm.weight", [c.hiddenSize], .norm)]
            }
            items += layerItems(c, layer: i)
        }
        items.append(("model.norm.weight", [c.hiddenSize], .norm))
        items.append(("lm_head.weight", [c.vocabSize, c.hiddenSize], .matrix))
        return items
    }

    static func layerItems(_ c: DeepseekV3Configuration, layer i: Int) -> [Item] {
        let p = "model.layers.\(i)", a = "\(p).self_attn", h = c.hiddenSize
        let qDim = c.heads * (c.qkNopeHeadDim + c.qkRopeHeadDim)
        var items: [Item] = [("\(p).input_layernorm.weight", [h], .norm)]
        if let rank = c.qLoraRank {
            items += [("\(a).q_a_proj.weight", [rank, h], .matrix), ("\(a).q_a_layernorm.weight", [rank], .norm),
                      ("\(a).q_b_proj.weight", [qDim, rank], .matrix)]
        } else {
            items.append(("\(a).q_proj.weight", [qDim, h], .matrix))
        }
        items += [("\(a).kv_a_proj_with_mqa.weight", [c.kvLoraRank + c.qkRopeHeadDim, h], .matrix),
                  ("\(a).kv_a_layernorm.weight", [c.kvLoraRank], .norm),
                  ("\(a).kv_b_proj.weight", [c.heads * (c.qkNopeHeadDim + c.vHeadDim), c.kvLoraRank], .matrix),
                  ("\(a).o_proj.weight", [h, c.heads * c.vHeadDim], .matrix),
                  ("\(p).post_attention_layernorm.weight", [h], .norm)]
        if c.isMoELayer(i), let r = c.router {
            let m = "\(p).mlp", inter = c.moeIntermediateSize
            items.append(("\(m).gate.weight", [r.experts, h], .matrix))
            if r.method == .noauxTC { items.append(("\(m).gate.e_score_correction_bias", [r.experts], .balanceBias)) }
            items += [("\(m).experts.gate_up_proj", [r.experts, 2 * inter, h], .matrix),
                      ("\(m).experts.down_proj", [r.experts, h, inter], .matrix)]
            if c.sharedExperts > 0 { items += mlpItems("\(m).shared_experts", hidden: h, intermediate: inter * c.sharedExperts) }
        } else {
            items += mlpItems("\(p).mlp", hidden: h, intermediate: c.intermediateSize)
        }
        return items
    }

    static func mlpItems(_ prefix: String, hidden: Int, intermediate: Int) -> [Item] {
        [("\(prefix).gate_proj.weight", [intermediate, hidden], .matrix), ("\(prefix).up_proj.weight", [intermediate, hidden], .matrix),
         ("\(prefix).down_proj.weight", [hidden, intermediate], .matrix)]
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
