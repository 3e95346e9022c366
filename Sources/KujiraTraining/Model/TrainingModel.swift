import Foundation
import KujiraTensor
import KujiraFormats
import KujiraModels

/// Loss terms and statistics of one forward + backward pass.
public struct PassResult: Sendable {
    /// Total loss: main cross-entropy + λ·MTP cross-entropy + balance loss.
    public var loss: Double
    /// Mean cross-entropy of logits[t] vs tokens[t+1].
    public var mainLoss: Double
    /// Mean cross-entropy of the MTP head (predicting tokens[t+2]); nil without MTP.
    public var mtpLoss: Double?
    public var balanceLoss: Double
    /// Tokens routed to each expert, per MoE layer (in layer order, the MTP block last).
    public var expertLoads: [[Int]]
    /// Logits (rows, vocab) of the main head and the MTP head (B·(T−1) rows), when `LossSettings.keepLogits`.
    public var logits: [Float]?
    public var mtpLogits: [Float]?
}

/// Loss settings of a training pass.
public struct LossSettings: Sendable {
    /// Weight λ of the MTP loss (ignored when the model has no MTP module; 0 skips the MTP pass entirely).
    public var mtpWeight: Float
    /// Weight α of the sequence-wise balance loss (0: off).
    public var balanceAlpha: Float
    /// Copy the logits into the result (tests, evaluation).
    public var keepLogits: Bool
    /// Replaces the main head's mean cross-entropy by an objective over the targets' log-probabilities (GRPO).
    public var tokenObjective: TokenObjective?
    public init(mtpWeight: Float = 0.3, balanceAlpha: Float = 0, keepLogits: Bool = false, tokenObjective: TokenObjective? = nil) {
        self.mtpWeight = mtpWeight; self.balanceAlpha = balanceAlpha; self.keepLogits = keepLogits; self.tokenObjective = tokenObjective
    }
}

/// A DeepSeek-V3 model for training: the same configuration (`DeepseekV3Configuration`), tensor names and RoPE as
/// inference, with hand-written backward passes. Parameters live in one `ParameterStore`.
public final class DeepseekTrainingModel: @unchecked Sendable {
    public let config: ModelConfig
    public let configuration: DeepseekV3Configuration
    public let parameters: ParameterStore
    public let rope: RotaryEmbedding
    /// Whether the depth-1 MTP module (layer `num_hidden_layers`) is part of the model.
    public let hasMTP: Bool
    let layers: [LayerParameters]
    let mtp: MTPParameters?
    let embedding: Int, finalNorm: Int, lmHead: Int

    /// A model with parameters laid out for `config`; MTP is included when `num_nextn_predict_layers` ≥ 1.
    public init(config: ModelConfig) throws {
        let c = try DeepseekV3Configuration(config)
        guard c.modelType == "deepseek_v3" else { throw TrainingError.unsupported("model_type '\(c.modelType)' (only deepseek_v3)") }
        if let r = c.router, r.scoring != .sigmoid { throw TrainingError.unsupported("scoring_func '\(r.scoring.rawValue)' (only sigmoid)") }
        if try config.bool("tie_word_embeddings", default: false) { throw TrainingError.unsupported("tie_word_embeddings: true") }
        guard c.nextTokenPredictLayers <= 1 else { throw TrainingError.unsupported("num_nextn_predict_layers > 1") }
        TrainingMemory.keepFreedMemory()
        self.config = config
        configuration = c
        hasMTP = c.nextTokenPredictLayers == 1
        let store = ParameterStore(layout: try TrainingLayout.items(config))
        parameters = store
        rope = RotaryEmbedding(config: c.rope, dim: c.qkRopeHeadDim, maxPositionEmbeddings: c.maxPositions, layout: .interleaved)
        layers = try (0..<c.layers).map { try TrainingLayout.layer(c, $0, in: store) }
        if c.nextTokenPredictLayers == 1 {
            let p = "model.layers.\(c.layers)"
            mtp = MTPParameters(enorm: try parameters.offset("\(p).enorm.weight"), hnorm: try parameters.offset("\(p).hnorm.weight"),
                                ehProj: try parameters.offset("\(p).eh_proj.weight"), headNorm: try parameters.offset("\(p).shared_head.norm.weight"),
                                block: try TrainingLayout.layer(c, c.layers, in: parameters))
        } else {
            mtp = nil
        }
        embedding = try parameters.offset("model.embed_tokens.weight")
        finalNorm = try parameters.offset("model.norm.weight")
        lmHead = try parameters.offset("lm_head.weight")
    }

    /// Loads a Hugging Face model directory (config.json + safetensors) for training.
    public convenience init(directory: String) throws {
        let directory = CheckpointDirectory.modelDirectory(directory)
        let config = try ModelConfig(path: directory)
        try self.init(config: config)
        try parameters.load(from: try SafeTensorsStore(directory: directory))
    }

    var eps: Float { Float(configuration.rmsNormEps) }
    var hidden: Int { configuration.hiddenSize }
    var vocab: Int { configuration.vocabSize }

    func attentionBlock(_ p: AttentionParameters) -> AttentionBlock {
        let c = configuration
        return AttentionBlock(weights: WeightAccess(store: parameters), parameters: p, hidden: c.hiddenSize, heads: c.heads,
                              nope: c.qkNopeHeadDim, rope: c.qkRopeHeadDim, valueDim: c.vHeadDim, rank: c.kvLoraRank, qRank: c.qLoraRank,
                              softmaxScale: c.softmaxScale)
    }

    /// Runs forward and backward over `batch` sequences of `length` tokens (row-major in `tokens`), adding the
    /// gradient of the total loss to `parameters.grads` (call `zeroGradients` first).
    ///
    /// `targets` (same shape, −1 = no loss) default to the next token: logits[t] vs tokens[t+1]. The MTP head at
    /// position i is trained on `targets[i+1]` (the token two ahead, where the main target there is used).
    public func forwardBackward(tokens: [Int], batch: Int, length: Int, targets explicitTargets: [Int]? = nil,
                                settings: LossSettings = LossSettings()) throws -> PassResult {
        guard batch > 0, length >= 2, tokens.count == batch * length else {
            throw TrainingError.invalidInput("need batch × length tokens with length ≥ 2 (got \(tokens.count) for \(batch) × \(length))")
        }
        guard length <= configuration.maxPositions else {
            throw TrainingError.invalidInput("sequence length \(length) exceeds max_position_embeddings \(configuration.maxPositions)")
        }
        for (i, t) in tokens.enumerated() where t < 0 || t >= vocab {
            throw TrainingError.invalidInput("token \(t) at position \(i) is outside the vocabulary (0..<\(vocab))")
        }
        if let explicitTargets {
            guard explicitTargets.count == tokens.count else { throw TrainingError.invalidInput("targets must match tokens in length") }
            for (i, t) in explicitTargets.enumerated() where t >= vocab {
                throw TrainingError.invalidInput("target \(t) at position \(i) is outside the vocabulary (0..<\(vocab))")
            }
        }
        let w = WeightAccess(store: parameters), h = hidden
        let shape = PassShape(batch: batch, length: length), n = shape.rows
        let tables = RotaryTables(rope: rope, offset: 0, count: length)
        var x = FloatBuffer(count: n * h)
        NormOps.embeddingForward(tokens: tokens, table: w.value(embedding), d: h, into: x.pointer)
        var saved: [LayerActivations] = []
        var balance = 0.0
        for layer in layers {
            let (out, act, b) = layerForward(layer, x: x, shape: shape, tables: tables, settings: settings)
            saved.append(act); balance += b; x = out
        }
        let (final, finalRstd) = w.rmsNorm(x.pointer, finalNorm, rows: n, d: h, eps: eps)
        let logits = w.linear(final.pointer, lmHead, rows: n, inFeatures: h, outFeatures: vocab)
        var targets = [Int](repeating: -1, count: n)
        for b in 0..<batch { for t in 0..<(length - 1) { targets[b * length + t] = tokens[b * length + t + 1] } }
        if let explicitTargets { targets = explicitTargets }
        let keptLogits = settings.keepLogits ? logits.array : nil
        let count = Double(max(1, targets.filter { $0 >= 0 }.count))
        let mainLoss: Double
        if let objective = settings.tokenObjective {
            mainLoss = try CrossEntropy.objectiveForwardBackward(logits: logits.pointer, targets: targets, vocab: vocab, objective: objective)
        } else {
            mainLoss = CrossEntropy.forwardBackward(logits: logits.pointer, targets: targets, vocab: vocab, scale: Float(1 / count)) / count
        }
        let dFinal = FloatBuffer(count: n * h)
        w.linearBackward(final.pointer, lmHead, dy: logits.pointer, rows: n, inFeatures: h, outFeatures: vocab, dx: dFinal.pointer)
        var mtpLoss: Double?, mtpLogits: [Float]?
        var loads = saved.compactMap { $0.moe?.load }
        if let mtp, settings.mtpWeight > 0 {
            let result = mtpForwardBackward(mtp, tokens: tokens, targets: targets, final: final, dFinal: dFinal, shape: shape, settings: settings)
            mtpLoss = result.loss; balance += result.balance; mtpLogits = result.logits
            if let load = result.load { loads.append(load) }
        }
        var dx = FloatBuffer(count: n * h)
        w.rmsNormBackward(x.pointer, finalNorm, rstd: finalRstd, dy: dFinal.pointer, rows: n, d: h, dx: dx.pointer)
        for (layer, act) in zip(layers, saved).reversed() {
            dx = layerBackward(layer, act, dOut: dx, shape: shape, tables: tables, settings: settings)
        }
        NormOps.embeddingBackward(tokens: tokens, dx: dx.pointer, d: h, dTable: w.grad(embedding))
        let total = mainLoss + Double(settings.mtpWeight) * (mtpLoss ?? 0) + balance
        return PassResult(loss: total, mainLoss: mainLoss, mtpLoss: mtpLoss, balanceLoss: balance, expertLoads: loads,
                          logits: keptLogits, mtpLogits: mtpLogits)
    }

    /// MTP depth 1: for i in 0..<T−1, m_i = block(eh_proj([enorm(embed(t[i+1])) ; hnorm(h[i])])) at RoPE position i+1,
    /// logits = lm_head(shared_head.norm(m_i)) predicting t[i+2]. Adds λ·loss gradients, including into dFinal (h).
    func mtpForwardBackward(_ p: MTPParameters, tokens: [Int], targets mainTargets: [Int], final: FloatBuffer, dFinal: FloatBuffer, shape: PassShape,
                            settings: LossSettings) -> (loss: Double, balance: Double, load: [Int]?, logits: [Float]?) {
        let w = WeightAccess(store: parameters), h = hidden, T = shape.length, Tm = T - 1
        let mshape = PassShape(batch: shape.batch, length: Tm), n = mshape.rows
        let tables = RotaryTables(rope: rope, offset: 1, count: Tm)
        var shifted = [Int](repeating: 0, count: n)
        let previous = FloatBuffer(count: n * h)
        for b in 0..<shape.batch {
            for i in 0..<Tm {
                shifted[b * Tm + i] = tokens[b * T + i + 1]
                (previous.pointer + (b * Tm + i) * h).update(from: final.pointer + (b * T + i) * h, count: h)
            }
        }
        let embedded = FloatBuffer(count: n * h)
        NormOps.embeddingForward(tokens: shifted, table: w.value(embedding), d: h, into: embedded.pointer)
        let (en, enRstd) = w.rmsNorm(embedded.pointer, p.enorm, rows: n, d: h, eps: eps)
        let (hn, hnRstd) = w.rmsNorm(previous.pointer, p.hnorm, rows: n, d: h, eps: eps)
        let joined = FloatBuffer(count: n * 2 * h)
        for r in 0..<n {
            (joined.pointer + r * 2 * h).update(from: en.pointer + r * h, count: h)
            (joined.pointer + r * 2 * h + h).update(from: hn.pointer + r * h, count: h)
        }
        let projected = w.linear(joined.pointer, p.ehProj, rows: n, inFeatures: 2 * h, outFeatures: h)
        let (blockOut, act, balance) = layerForward(p.block, x: projected, shape: mshape, tables: tables, settings: settings)
        let (headIn, headRstd) = w.rmsNorm(blockOut.pointer, p.headNorm, rows: n, d: h, eps: eps)
        let logits = w.linear(headIn.pointer, lmHead, rows: n, inFeatures: h, outFeatures: vocab)
        let keptLogits = settings.keepLogits ? logits.array : nil
        var targets = [Int](repeating: -1, count: n)
        for b in 0..<shape.batch { for i in 0..<(T - 2) { targets[b * Tm + i] = mainTargets[b * T + i + 1] } }
        let count = Double(max(1, targets.filter { $0 >= 0 }.count))
        let loss = CrossEntropy.forwardBackward(logits: logits.pointer, targets: targets, vocab: vocab,
                                                scale: Float(Double(settings.mtpWeight) / count)) / count
        let dHeadIn = FloatBuffer(count: n * h)
        w.linearBackward(headIn.pointer, lmHead, dy: logits.pointer, rows: n, inFeatures: h, outFeatures: vocab, dx: dHeadIn.pointer)
        let dBlockOut = FloatBuffer(count: n * h)
        w.rmsNormBackward(blockOut.pointer, p.headNorm, rstd: headRstd, dy: dHeadIn.pointer, rows: n, d: h, dx: dBlockOut.pointer)
        let dProjected = layerBackward(p.block, act, dOut: dBlockOut, shape: mshape, tables: tables, settings: settings)
        let dJoined = FloatBuffer(count: n * 2 * h)
        w.linearBackward(joined.pointer, p.ehProj, dy: dProjected.pointer, rows: n, inFeatures: 2 * h, outFeatures: h, dx: dJoined.pointer)
        let dEn = FloatBuffer(count: n * h), dHn = FloatBuffer(count: n * h)
        for r in 0..<n {
            (dEn.pointer + r * h).update(from: dJoined.pointer + r * 2 * h, count: h)
            (dHn.pointer + r * h).update(from: dJoined.pointer + r * 2 * h + h, count: h)
        }
        let dEmbedded = FloatBuffer(count: n * h), dPrevious = FloatBuffer(count: n * h)
        w.rmsNormBackward(embedded.pointer, p.enorm, rstd: enRstd, dy: dEn.pointer, rows: n, d: h, dx: dEmbedded.pointer)
        w.rmsNormBackward(previous.pointer, p.hnorm, rstd: hnRstd, dy: dHn.pointer, rows: n, d: h, dx: dPrevious.pointer)
        NormOps.embeddingBackward(tokens: shifted, dx: dEmbedded.pointer, d: h, dTable: w.grad(embedding))
        for b in 0..<shape.batch {
            for i in 0..<Tm {
                let dst = dFinal.pointer + (b * T + i) * h, src = dPrevious.pointer + (b * Tm + i) * h
                for j in 0..<h { dst[j] += src[j] }
            }
        }
        return (loss, balance, act.moe?.load, keptLogits)
    }
}

/// Activations of one decoder layer: x → x + attn(norm(x)) = h1 → h1 + ffn(norm(h1)).
final class LayerActivations {
    let input: FloatBuffer, inputNormed: FloatBuffer, inputRstd: FloatBuffer, attention: AttentionActivations
    let residual: FloatBuffer, residualNormed: FloatBuffer, residualRstd: FloatBuffer
    let mlp: MLPActivations?, moe: MoEActivations?
    init(input: FloatBuffer, inputNormed: FloatBuffer, inputRstd: FloatBuffer, attention: AttentionActivations, residual: FloatBuffer,
         residualNormed: FloatBuffer, residualRstd: FloatBuffer, mlp: MLPActivations?, moe: MoEActivations?) {
        self.input = input; self.inputNormed = inputNormed; self.inputRstd = inputRstd; self.attention = attention
        self.residual = residual; self.residualNormed = residualNormed; self.residualRstd = residualRstd; self.mlp = mlp; self.moe = moe
    }
}

extension DeepseekTrainingModel {
    func layerForward(_ layer: LayerParameters, x: FloatBuffer, shape: PassShape, tables: RotaryTables,
                      settings: LossSettings) -> (FloatBuffer, LayerActivations, Double) {
        let w = WeightAccess(store: parameters), n = shape.rows, h = hidden
        let (xn, xRstd) = w.rmsNorm(x.pointer, layer.inputNorm, rows: n, d: h, eps: eps)
        let (attended, attentionActivations) = attentionBlock(layer.attention).forward(xn, shape: shape, tables: tables)
        let residual = FloatBuffer(uninitializedCount: n * h)
        BufferMath.add(x, attended, into: residual)
        let (rn, rRstd) = w.rmsNorm(residual.pointer, layer.postNorm, rows: n, d: h, eps: eps)
        let out = FloatBuffer(uninitializedCount: n * h)
        var mlp: MLPActivations?, moe: MoEActivations?, balance = 0.0
        let ffOut: FloatBuffer
        switch layer.feedForward {
        case let .dense(p):
            let a = MLPBlock(weights: w, parameters: p, fused: false).forward(rn.pointer, rows: n)
            mlp = a; ffOut = a.out
        case let .moe(p):
            let (o, a, b) = moeBlock(p, settings: settings).forward(rn, shape: shape)
            moe = a; ffOut = o; balance = b
        }
        BufferMath.add(residual, ffOut, into: out)
        return (out, LayerActivations(input: x, inputNormed: xn, inputRstd: xRstd, attention: attentionActivations, residual: residual,
                                      residualNormed: rn, residualRstd: rRstd, mlp: mlp, moe: moe), balance)
    }

    func layerBackward(_ layer: LayerParameters, _ a: LayerActivations, dOut: FloatBuffer, shape: PassShape, tables: RotaryTables,
                       settings: LossSettings) -> FloatBuffer {
        let w = WeightAccess(store: parameters), n = shape.rows, h = hidden
        let dResidualNormed = FloatBuffer(count: n * h)
        switch layer.feedForward {
        case let .dense(p):
            if let mlp = a.mlp {
                MLPBlock(weights: w, parameters: p, fused: false).backward(a.residualNormed.pointer, mlp, dy: dOut.pointer, rows: n,
                                                                           dx: dResidualNormed.pointer)
            }
        case let .moe(p):
            if let moe = a.moe {
                moeBlock(p, settings: settings).backward(a.residualNormed, moe, dOut: dOut, shape: shape, dx: dResidualNormed.pointer)
            }
        }
        let dResidual = FloatBuffer(uninitializedCount: n * h)
        dResidual.pointer.update(from: dOut.pointer, count: n * h)
        w.rmsNormBackward(a.residual.pointer, layer.postNorm, rstd: a.residualRstd, dy: dResidualNormed.pointer, rows: n, d: h,
                          dx: dResidual.pointer)
        let dxNormed = FloatBuffer(count: n * h)
        attentionBlock(layer.attention).backward(a.inputNormed, a.attention, dOut: dResidual, shape: shape, tables: tables, dx: dxNormed.pointer)
        let dx = FloatBuffer(uninitializedCount: n * h)
        dx.pointer.update(from: dResidual.pointer, count: n * h)
        w.rmsNormBackward(a.input.pointer, layer.inputNorm, rstd: a.inputRstd, dy: dxNormed.pointer, rows: n, d: h, dx: dx.pointer)
        return dx
    }

    func moeBlock(_ p: MoEParameters, settings: LossSettings) -> MoEBlock {
        MoEBlock(weights: WeightAccess(store: parameters), parameters: p, settings: configuration.router!, balanceAlpha: settings.balanceAlpha)
    }
}

/// Elementwise sums over whole buffers, split across threads.
enum BufferMath {
    /// out = a + b.
    static func add(_ a: FloatBuffer, _ b: FloatBuffer, into out: FloatBuffer) {
        Parallel.forRanges(out.count, minimumPerPart: 1 << 15) { range in
            for i in range { out[i] = a[i] + b[i] }
        }
    }
}
