import Foundation
import KujiraFormats
import KujiraTensor

/// A planned tensor: GGUF name, row-major shape, reader.
typealias PlannedTensor = (String, [Int], @Sendable () throws -> [Float])

private func u32(_ v: Int) -> GGUFValue { .uint32(UInt32(clamping: v)) }
private func f32(_ v: Double) -> GGUFValue { .float32(Float(v)) }

/// `llama` and `qwen2` as convert_hf_to_gguf's LlamaModel / Qwen2Model write them.
enum LlamaExport {
    static func plan(config: ModelConfig, source: SourceTensors) throws -> ([(String, GGUFValue)], [PlannedTensor]) {
        let c = try LlamaConfiguration(config)
        let arch = try config.modelType
        var m: [(String, GGUFValue)] = [
            ("general.architecture", .string(arch)), ("\(arch).block_count", u32(c.layers)),
            ("\(arch).context_length", u32(c.maxPositions)), ("\(arch).embedding_length", u32(c.hiddenSize)),
            ("\(arch).feed_forward_length", u32(c.intermediateSize)), ("\(arch).attention.head_count", u32(c.heads)),
            ("\(arch).attention.head_count_kv", u32(c.kvHeads)), ("\(arch).rope.freq_base", f32(c.rope.theta)),
            ("\(arch).attention.layer_norm_rms_epsilon", f32(c.rmsNormEps)),
        ]
        if config.has("head_dim") || c.headDim * c.heads != c.hiddenSize {
            m += [("\(arch).attention.key_length", u32(c.headDim)), ("\(arch).attention.value_length", u32(c.headDim))]
        }
        if arch == "llama" { m += [("\(arch).vocab_size", u32(c.vocabSize)), ("\(arch).rope.dimension_count", u32(c.headDim))] }
        m += try ropeScaling(c.rope, arch: arch, path: config.path, allowLlama3: arch == "llama")

        var tensors: [PlannedTensor] = [try source.plain("model.embed_tokens.weight", shape: [c.vocabSize, c.hiddenSize]),
                                        try source.plain("model.norm.weight", shape: [c.hiddenSize])]
        if source.has("lm_head.weight"), !(try config.bool("tie_word_embeddings", default: false)) {
            tensors.append(try source.plain("lm_head.weight", shape: [c.vocabSize, c.hiddenSize]))
        }
        if c.rope.type == "llama3" {
            let factors = llama3FrequencyFactors(c.rope, dim: c.headDim)
            tensors.append(("rope_freqs.weight", [factors.count], { factors }))
        }
        // llama.cpp's converter permutes Llama's q/k rows so interleaved-pair rotation is exact (GGUFModelAdapter
        // reads them back with rope_interleave); Qwen2 keeps HF's half-split order.
        let permute = arch == "llama" && !c.ropeInterleaved
        for i in 0..<c.layers {
            let p = "model.layers.\(i)"
            let qRows = c.heads * c.headDim, kvRows = c.kvHeads * c.headDim
            tensors.append(try source.plain("\(p).input_layernorm.weight", shape: [c.hiddenSize]))
            for (proj, rows, heads) in [("q_proj", qRows, c.heads), ("k_proj", kvRows, c.kvHeads), ("v_proj", kvRows, 0)] {
                let hf = "\(p).self_attn.\(proj)"
                let reorder = permute && heads > 0
                let (name, shape, read) = try source.plain("\(hf).weight", shape: [rows, c.hiddenSize])
                let permuted: @Sendable () throws -> [Float] = { permuteRows(try read(), heads: heads, rows: rows) }
                tensors.append((name, shape, reorder ? permuted : read))
                if c.attentionBias || source.has("\(hf).bias") {
                    let (bName, bShape, bRead) = try source.plain("\(hf).bias", shape: [rows])
                    let permuted: @Sendable () throws -> [Float] = { permuteRows(try bRead(), heads: heads, rows: rows) }
                    tensors.append((bName, bShape, reorder ? permuted : bRead))
                }
            }
            tensors.append(try source.plain("\(p).self_attn.o_proj.weight", shape: [c.hiddenSize, qRows]))
            tensors.append(try source.plain("\(p).post_attention_layernorm.weight", shape: [c.hiddenSize]))
            tensors.append(try source.plain("\(p).mlp.gate_proj.weight", shape: [c.intermediateSize, c.hiddenSize]))
            tensors.append(try source.plain("\(p).mlp.up_proj.weight", shape: [c.intermediateSize, c.hiddenSize]))
            tensors.append(try source.plain("\(p).mlp.down_proj.weight", shape: [c.hiddenSize, c.intermediateSize]))
        }
        return (m, tensors)
    }

    /// convert_hf_to_gguf's `permute`: within each head, rows (i, i + d/2) become neighbours (2i, 2i+1).
    /// `values` is (rows, cols) row-major; cols is inferred.
    static func permuteRows(_ values: [Float], heads: Int, rows: Int) -> [Float] {
        let cols = values.count / rows, headDim = rows / heads, half = headDim / 2
        var out = values
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let dst = (h * headDim + 2 * i + j) * cols, src = (h * headDim + j * half + i) * cols
                    for k in 0..<cols { out[dst + k] = values[src + k] }
                }
            }
        }
        return out
    }

    /// llama3 frequency factors as convert_hf_to_gguf computes them (float32), stored as `rope_freqs.weight`.
    static func llama3FrequencyFactors(_ rope: RopeConfig, dim: Int) -> [Float] {
        let factor = Float(rope.factor), low = Float(rope.lowFreqFactor), high = Float(rope.highFreqFactor)
        let oldContext = Float(rope.originalMaxPositionEmbeddings ?? 8192)
        let lowWavelength = oldContext / low, highWavelength = oldContext / high
        return stride(from: 0, to: dim, by: 2).map { i in
            let frequency = 1 / powf(Float(rope.theta), Float(i) / Float(dim))
            let wavelength = 2 * Float.pi / frequency
            if wavelength < highWavelength { return 1 }
            if wavelength > lowWavelength { return factor }
            let smooth = (oldContext / wavelength - low) / (high - low)
            return 1 / ((1 - smooth) / factor + smooth)
        }
    }
}

/// RoPE scaling keys (`linear`, `yarn`); llama3 travels as the `rope_freqs` tensor instead.
func ropeScaling(_ rope: RopeConfig, arch: String, path: String, allowLlama3: Bool) throws -> [(String, GGUFValue)] {
    switch rope.type {
    case "default": return []
    case "llama3" where allowLlama3: return []
    case "linear": return [("\(arch).rope.scaling.type", .string("linear")), ("\(arch).rope.scaling.factor", f32(rope.factor))]
    case "yarn":
        var keys: [(String, GGUFValue)] = [("\(arch).rope.scaling.type", .string("yarn")), ("\(arch).rope.scaling.factor", f32(rope.factor))]
        if let original = rope.originalMaxPositionEmbeddings { keys.append(("\(arch).rope.scaling.original_context_length", u32(original))) }
        keys += [("\(arch).rope.scaling.yarn_beta_fast", f32(rope.betaFast)), ("\(arch).rope.scaling.yarn_beta_slow", f32(rope.betaSlow))]
        return keys
    default:
        throw ModelExportError.unsupportedSetting(path: path, key: "rope_type", detail: "'\(rope.type)' cannot be written for GGUF architecture \(arch)")
    }
}

/// DeepSeek-V2/V3 as convert_hf_to_gguf's DeepseekV2Model writes `deepseek2`: MLA with `attn_kv_b` split into
/// `attn_k_b` (transposed per head) and `attn_v_b`, routed experts stacked per projection.
enum DeepseekExport {
    static func plan(config: ModelConfig, source base: SourceTensors) throws -> ([(String, GGUFValue)], [PlannedTensor]) {
        let c = try DeepseekV3Configuration(config)
        var source = base
        source.blockSize = c.weightBlockSize
        guard c.moeLayerFrequency == 1 else {
            throw ModelExportError.unsupportedSetting(path: config.path, key: "moe_layer_freq", detail: "is \(c.moeLayerFrequency); llama.cpp's deepseek2 supports only 1")
        }
        let a = "deepseek2"
        var m: [(String, GGUFValue)] = [
            ("general.architecture", .string(a)), ("\(a).block_count", u32(c.layers)), ("\(a).context_length", u32(c.maxPositions)),
            ("\(a).embedding_length", u32(c.hiddenSize)), ("\(a).feed_forward_length", u32(c.intermediateSize)),
            ("\(a).attention.head_count", u32(c.heads)), ("\(a).attention.head_count_kv", u32(1)),
        ]
        m += try ropeScaling(c.rope, arch: a, path: config.path, allowLlama3: false)
        m += [("\(a).rope.freq_base", f32(c.rope.theta)), ("\(a).attention.layer_norm_rms_epsilon", f32(c.rmsNormEps))]
        if let router = c.router {
            m += [("\(a).expert_count", u32(router.experts)), ("\(a).expert_used_count", u32(router.topK))]
            // Group-limited routing that keeps every group is plain top-k; llama.cpp asserts used < count, so leave it out.
            if router.method != .greedy && router.topKGroups < router.groups {
                m += [("\(a).expert_group_count", u32(router.groups)), ("\(a).expert_group_used_count", u32(router.topKGroups))]
            }
            m.append(("\(a).expert_gating_func", u32(router.scoring == .sigmoid ? 2 : 1)))
        }
        // The absorbed-MLA layout: one KV "head" of the latent (kv_lora_rank + rope) keys and kv_lora_rank values.
        m += [("\(a).attention.key_length", u32(c.kvLoraRank + c.qkRopeHeadDim)), ("\(a).attention.value_length", u32(c.kvLoraRank)),
              ("\(a).leading_dense_block_count", u32(c.routedExperts == nil ? c.layers : c.firstKDenseReplace)),
              ("\(a).vocab_size", u32(c.vocabSize))]
        // Without q-LoRA (V2-Lite) convert_hf_to_gguf writes 0; llama.cpp then reads attn_q.
        m.append(("\(a).attention.q_lora_rank", u32(c.qLoraRank ?? 0)))
        m += [("\(a).attention.kv_lora_rank", u32(c.kvLoraRank)),
              ("\(a).attention.key_length_mla", u32(c.qkNopeHeadDim + c.qkRopeHeadDim)), ("\(a).attention.value_length_mla", u32(c.vHeadDim))]
        if let router = c.router {
            m += [("\(a).expert_feed_forward_length", u32(c.moeIntermediateSize)), ("\(a).expert_shared_count", u32(c.sharedExperts)),
                  ("\(a).expert_weights_scale", .float32(router.scalingFactor)), ("\(a).expert_weights_norm", .bool(router.normalize))]
        }
        m.append(("\(a).rope.dimension_count", u32(c.qkRopeHeadDim)))
        if c.rope.type == "yarn", let mscaleAllDim = c.rope.mscaleAllDim {
            m.append(("\(a).rope.scaling.yarn_log_multiplier", f32(0.1 * mscaleAllDim)))
        }

        let h = c.hiddenSize, qk = c.qkNopeHeadDim + c.qkRopeHeadDim
        var tensors: [PlannedTensor] = [try source.plain("model.embed_tokens.weight", shape: [c.vocabSize, h]),
                                        try source.plain("model.norm.weight", shape: [h])]
        if source.has("lm_head.weight"), !(try config.bool("tie_word_embeddings", default: false)) {
            tensors.append(try source.plain("lm_head.weight", shape: [c.vocabSize, h]))
        }
        for i in 0..<c.layers {
            let p = "model.layers.\(i)", at = "\(p).self_attn"
            tensors.append(try source.plain("\(p).input_layernorm.weight", shape: [h]))
            if let q = c.qLoraRank {
                tensors += [try source.plain("\(at).q_a_proj.weight", shape: [q, h]), try source.plain("\(at).q_a_layernorm.weight", shape: [q]),
                            try source.plain("\(at).q_b_proj.weight", shape: [c.heads * qk, q])]
            } else {
                tensors.append(try source.plain("\(at).q_proj.weight", shape: [c.heads * qk, h]))
            }
            tensors += [try source.plain("\(at).kv_a_proj_with_mqa.weight", shape: [c.kvLoraRank + c.qkRopeHeadDim, h]),
                        try source.plain("\(at).kv_a_layernorm.weight", shape: [c.kvLoraRank])]
            tensors += try splitKVB(source: source, prefix: at, layer: i, c: c)
            tensors.append(try source.plain("\(at).o_proj.weight", shape: [h, c.heads * c.vHeadDim]))
            tensors.append(try source.plain("\(p).post_attention_layernorm.weight", shape: [h]))
            if c.isMoELayer(i), let router = c.router {
                tensors.append(try source.plain("\(p).mlp.gate.weight", shape: [router.experts, h]))
                if router.method == .noauxTC {
                    tensors.append(try source.plain("\(p).mlp.gate.e_score_correction_bias", shape: [router.experts]))
                }
                tensors += try stackedExperts(source: source, prefix: "\(p).mlp.experts", layer: i, count: router.experts,
                                              hidden: h, intermediate: c.moeIntermediateSize)
                if c.sharedExperts > 0 {
                    let inter = c.moeIntermediateSize * c.sharedExperts
                    tensors += [try source.plain("\(p).mlp.shared_experts.gate_proj.weight", shape: [inter, h]),
                                try source.plain("\(p).mlp.shared_experts.up_proj.weight", shape: [inter, h]),
                                try source.plain("\(p).mlp.shared_experts.down_proj.weight", shape: [h, inter])]
                }
            } else {
                tensors += [try source.plain("\(p).mlp.gate_proj.weight", shape: [c.intermediateSize, h]),
                            try source.plain("\(p).mlp.up_proj.weight", shape: [c.intermediateSize, h]),
                            try source.plain("\(p).mlp.down_proj.weight", shape: [h, c.intermediateSize])]
            }
        }
        return (m, tensors)
    }

    /// kv_b_proj (heads·(nope+v), rank) → attn_k_b (heads, rank, nope) — each head's W_UK transposed — and
    /// attn_v_b (heads, v, rank), as current convert_hf_to_gguf splits it.
    static func splitKVB(source: SourceTensors, prefix: String, layer: Int, c: DeepseekV3Configuration) throws -> [PlannedTensor] {
        let name = "\(prefix).kv_b_proj.weight"
        let heads = c.heads, nope = c.qkNopeHeadDim, v = c.vHeadDim, rank = c.kvLoraRank
        let shape = [heads * (nope + v), rank]
        guard source.has(name) else { throw WeightStoreError.missingTensor(name: name, source: source.directory) }
        let k: PlannedTensor = ("blk.\(layer).attn_k_b.weight", [heads, rank, nope], {
            let w = try source.floats(name, shape: shape)
            var out = [Float](repeating: 0, count: heads * rank * nope)
            for hd in 0..<heads { for r in 0..<rank { for n in 0..<nope { out[(hd * rank + r) * nope + n] = w[(hd * (nope + v) + n) * rank + r] } } }
            return out
        })
        let vb: PlannedTensor = ("blk.\(layer).attn_v_b.weight", [heads, v, rank], {
            let w = try source.floats(name, shape: shape)
            var out = [Float](repeating: 0, count: heads * v * rank)
            for hd in 0..<heads { for j in 0..<v { for r in 0..<rank { out[(hd * v + j) * rank + r] = w[(hd * (nope + v) + nope + j) * rank + r] } } }
            return out
        })
        return [k, vb]
    }

    /// ffn_{gate,up,down}_exps (E, I, H), (E, I, H), (E, H, I) from per-expert tensors, transformers 5's fused
    /// `gate_up_proj`, or already-stacked projections.
    static func stackedExperts(source: SourceTensors, prefix: String, layer: Int, count: Int, hidden: Int, intermediate: Int) throws -> [PlannedTensor] {
        let names = ["gate_proj": "ffn_gate_exps", "up_proj": "ffn_up_exps", "down_proj": "ffn_down_exps"]
        func planned(_ proj: String, _ read: @escaping @Sendable () throws -> [Float]) -> PlannedTensor {
            let shape = proj == "down_proj" ? [count, hidden, intermediate] : [count, intermediate, hidden]
            return ("blk.\(layer).\(names[proj]!).weight", shape, read)
        }
        if source.has("\(prefix).gate_up_proj") {
            let fused = "\(prefix).gate_up_proj"
            func half(_ second: Bool) -> @Sendable () throws -> [Float] {
                {
                    let w = try source.floats(fused, shape: [count, 2 * intermediate, hidden])
                    let block = intermediate * hidden
                    var out: [Float] = []
                    out.reserveCapacity(count * block)
                    for e in 0..<count {
                        let start = e * 2 * block + (second ? block : 0)
                        out += w[start..<(start + block)]
                    }
                    return out
                }
            }
            return [planned("gate_proj", half(false)), planned("up_proj", half(true)),
                    planned("down_proj", { try source.floats("\(prefix).down_proj", shape: [count, hidden, intermediate]) })]
        }
        if source.has("\(prefix).gate_proj") {
            return ["gate_proj", "up_proj", "down_proj"].map { proj in
                planned(proj, { try source.floats("\(prefix).\(proj)", shape: proj == "down_proj" ? [count, hidden, intermediate] : [count, intermediate, hidden]) })
            }
        }
        return ["gate_proj", "up_proj", "down_proj"].map { proj in
            planned(proj, {
                var all: [Float] = []
                all.reserveCapacity(count * hidden * intermediate)
                for e in 0..<count {
                    all += try source.floats("\(prefix).\(e).\(proj).weight", shape: proj == "down_proj" ? [hidden, intermediate] : [intermediate, hidden])
                }
                return all
            })
        }
    }
}
