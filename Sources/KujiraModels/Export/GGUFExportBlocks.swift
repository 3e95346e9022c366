import Foundation
import KujiraFormats
import KujiraTensor

/// A planned tensor: GGUF name, row-major shape, reader.
public typealias PlannedTensor = (String, [Int], @Sendable () throws -> [Float])

func u32(_ v: Int) -> GGUFValue { .uint32(UInt32(clamping: v)) }
func f32(_ v: Double) -> GGUFValue { .float32(Float(v)) }

/// The pieces of GGUF export that shared blocks need, whichever architecture uses them: RoPE scaling keys, Llama's
/// q/k row permutation, llama3 frequency factors, MLA's split `kv_b`, experts stacked per projection.
public enum GGUFExportBlocks {
    /// convert_hf_to_gguf's `permute`: within each head, rows (i, i + d/2) become neighbours (2i, 2i+1).
    /// `values` is (rows, cols) row-major; cols is inferred.
    public static func permuteRows(_ values: [Float], heads: Int, rows: Int) -> [Float] {
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
    public static func llama3FrequencyFactors(_ rope: RopeConfig, dim: Int) -> [Float] {
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

    /// The tensors of a GQA decoder layer (`input_layernorm`, q/k/v with biases, optional q/k norms, `o_proj`,
    /// `post_attention_layernorm`) in convert_hf_to_gguf's order, then `feedForward`'s. `permuteHeads` permutes q/k rows
    /// (Llama's converter does; Qwen's do not).
    static func groupedQueryLayer(_ i: Int, source: SourceTensors, hidden: Int, heads: Int, kvHeads: Int, headDim: Int, bias: Bool,
                                  headNorms: Bool, permuteHeads: Bool, feedForward: [PlannedTensor]) throws -> [PlannedTensor] {
        let p = "model.layers.\(i)", a = "\(p).self_attn"
        let qRows = heads * headDim, kvRows = kvHeads * headDim
        var tensors = [try source.plain("\(p).\(DecoderLayer.inputNormName)", shape: [hidden])]
        for (proj, rows, permutedHeads) in [("q_proj", qRows, heads), ("k_proj", kvRows, kvHeads), ("v_proj", kvRows, 0)] {
            let reorder = permuteHeads && permutedHeads > 0
            let (name, shape, read) = try source.plain("\(a).\(proj).weight", shape: [rows, hidden])
            let permuted: @Sendable () throws -> [Float] = { permuteRows(try read(), heads: permutedHeads, rows: rows) }
            tensors.append((name, shape, reorder ? permuted : read))
            if bias || source.has("\(a).\(proj).bias") {
                let (bName, bShape, bRead) = try source.plain("\(a).\(proj).bias", shape: [rows])
                let permuted: @Sendable () throws -> [Float] = { permuteRows(try bRead(), heads: permutedHeads, rows: rows) }
                tensors.append((bName, bShape, reorder ? permuted : bRead))
            }
        }
        if headNorms {
            tensors += [try source.plain("\(a).\(GroupedQueryAttention.Names.kNorm)", shape: [headDim]),
                        try source.plain("\(a).\(GroupedQueryAttention.Names.qNorm)", shape: [headDim])]
        }
        tensors.append(try source.plain("\(a).\(GroupedQueryAttention.Names.o)", shape: [hidden, qRows]))
        tensors.append(try source.plain("\(p).\(DecoderLayer.postAttentionNormName)", shape: [hidden]))
        return tensors + feedForward
    }

    /// A dense MLP's three projections at `<prefix>`.
    static func denseMLP(_ prefix: String, source: SourceTensors, hidden: Int, intermediate: Int) throws -> [PlannedTensor] {
        [try source.plain("\(prefix).\(GatedMLP.gateName)", shape: [intermediate, hidden]),
         try source.plain("\(prefix).\(GatedMLP.upName)", shape: [intermediate, hidden]),
         try source.plain("\(prefix).\(GatedMLP.downName)", shape: [hidden, intermediate])]
    }

    /// Embedding, final norm and (unless tied) the output head, as every converter writes them first.
    static func modelWide(source: SourceTensors, config: ModelConfig, vocabSize: Int, hidden: Int) throws -> [PlannedTensor] {
        var tensors = [try source.plain(DecoderStack.embeddingName, shape: [vocabSize, hidden]),
                       try source.plain(DecoderStack.finalNormName, shape: [hidden])]
        if source.has(DecoderStack.lmHeadName), !(try config.bool("tie_word_embeddings", default: false)) {
            tensors.append(try source.plain(DecoderStack.lmHeadName, shape: [vocabSize, hidden]))
        }
        return tensors
    }

    /// MLA's tensors at `<prefix>` (`…self_attn`) in convert_hf_to_gguf's `deepseek2` order, `kv_b` split.
    static func latentAttention(_ prefix: String, layer: Int, source: SourceTensors, hidden h: Int, heads: Int, qLoraRank: Int?, kvLoraRank: Int,
                                nopeDim: Int, ropeDim: Int, valueDim: Int) throws -> [PlannedTensor] {
        typealias N = MultiHeadLatentAttention.Names
        let qk = nopeDim + ropeDim
        var tensors: [PlannedTensor] = []
        if let q = qLoraRank {
            tensors += [try source.plain("\(prefix).\(N.qA)", shape: [q, h]), try source.plain("\(prefix).\(N.qANorm)", shape: [q]),
                        try source.plain("\(prefix).\(N.qB)", shape: [heads * qk, q])]
        } else {
            tensors.append(try source.plain("\(prefix).\(N.q)", shape: [heads * qk, h]))
        }
        tensors += [try source.plain("\(prefix).\(N.kvA)", shape: [kvLoraRank + ropeDim, h]),
                    try source.plain("\(prefix).\(N.kvANorm)", shape: [kvLoraRank])]
        tensors += try splitKVB(source: source, prefix: prefix, layer: layer, heads: heads, nope: nopeDim, v: valueDim, rank: kvLoraRank)
        tensors.append(try source.plain("\(prefix).\(N.o)", shape: [h, heads * valueDim]))
        return tensors
    }

    /// A mixture of experts at `<prefix>` (`…mlp`): router, selection bias, experts stacked, shared experts.
    static func mixtureOfExperts(_ prefix: String, layer: Int, source: SourceTensors, hidden h: Int, intermediate: Int, experts: Int, bias: Bool,
                                 sharedIntermediate: Int?) throws -> [PlannedTensor] {
        typealias N = MixtureOfExperts.Names
        var tensors = [try source.plain("\(prefix).\(N.gate)", shape: [experts, h])]
        if bias { tensors.append(try source.plain("\(prefix).\(N.bias)", shape: [experts])) }
        tensors += try stackedExperts(source: source, prefix: "\(prefix).\(N.experts)", layer: layer, count: experts, hidden: h, intermediate: intermediate)
        if let shared = sharedIntermediate { tensors += try denseMLP("\(prefix).\(N.shared)", source: source, hidden: h, intermediate: shared) }
        return tensors
    }

    /// kv_b_proj (heads·(nope+v), rank) → attn_k_b (heads, rank, nope) — each head's W_UK transposed — and
    /// attn_v_b (heads, v, rank), as current convert_hf_to_gguf splits it.
    static func splitKVB(source: SourceTensors, prefix: String, layer: Int, heads: Int, nope: Int, v: Int, rank: Int) throws -> [PlannedTensor] {
        let name = "\(prefix).\(MultiHeadLatentAttention.Names.kvB)"
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
        throw ModelExportError.unsupportedSetting(path: path, key: "rope_type", detail: "'\(quoted(rope.type))' cannot be written for GGUF architecture \(arch)")
    }
}

