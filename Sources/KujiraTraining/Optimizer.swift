import Foundation
import KujiraFormats
import KujiraTensor

/// AdamW hyper-parameters and the learning-rate schedule (linear warmup, then cosine decay to `minLearningRate`).
public struct OptimizerSettings: Sendable, Codable, Equatable {
    public var learningRate: Float = 3e-3
    public var minLearningRate: Float = 3e-4
    public var warmupSteps: Int = 50
    public var totalSteps: Int = 1000
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var epsilon: Float = 1e-8
    /// Decoupled weight decay (applied to matrices only, not norms).
    public var weightDecay: Float = 0.1
    /// Global gradient-norm clip (≤ 0: off).
    public var clipNorm: Float = 1.0

    public init() {}

    /// The learning rate at `step` (0-based): lr·(step+1)/warmup during warmup, then cosine from lr to minLearningRate.
    public func learningRate(at step: Int) -> Float {
        if step < warmupSteps { return learningRate * Float(step + 1) / Float(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, Float(step - warmupSteps) / Float(span))
        return minLearningRate + 0.5 * (learningRate - minLearningRate) * (1 + cos(Float.pi * progress))
    }
}

/// AdamW over a `ParameterStore`'s flat buffers, with moment estimates kept in the same layout.
public final class AdamW: @unchecked Sendable {
    public let settings: OptimizerSettings
    /// First and second moments, one per parameter value.
    public let m: FloatBuffer, v: FloatBuffer
    /// Number of updates applied so far (bias correction uses it).
    public var step: Int = 0

    public init(settings: OptimizerSettings, parameterCount: Int) {
        self.settings = settings
        m = FloatBuffer(count: parameterCount)
        v = FloatBuffer(count: parameterCount)
    }

    /// √(Σ g²) over the trainable gradients.
    public static func gradientNorm(_ store: ParameterStore) -> Float {
        var total = 0.0
        for e in store.entries where store.isTrained(e) {
            let g = store.grads + e.offset
            var s: Float = 0
            for i in 0..<e.count { s += g[i] * g[i] }
            total += Double(s)
        }
        return Float(total.squareRoot())
    }

    /// Clips (global norm), then applies one AdamW update with the scheduled learning rate.
    /// Returns (gradient norm before clipping, learning rate used).
    @discardableResult
    public func update(_ store: ParameterStore) -> (gradientNorm: Float, learningRate: Float) {
        let s = settings
        let norm = Self.gradientNorm(store)
        let clip: Float = s.clipNorm > 0 && norm > s.clipNorm ? s.clipNorm / (norm + 1e-6) : 1
        let lr = s.learningRate(at: step)
        step += 1
        let correction1 = 1 - pow(s.beta1, Float(step)), correction2 = 1 - pow(s.beta2, Float(step))
        let entries = store.entries.filter { store.isTrained($0) }
        Parallel.forEach(entries.count) { index in
            let e = entries[index]
            let p = store.values + e.offset, g = store.grads + e.offset, m1 = m.pointer + e.offset, m2 = v.pointer + e.offset
            let decay = e.kind == .matrix ? 1 - lr * s.weightDecay : 1
            for i in 0..<e.count {
                let grad = g[i] * clip
                m1[i] = s.beta1 * m1[i] + (1 - s.beta1) * grad
                m2[i] = s.beta2 * m2[i] + (1 - s.beta2) * grad * grad
                let update = (m1[i] / correction1) / ((m2[i] / correction2).squareRoot() + s.epsilon)
                p[i] = p[i] * decay - lr * update
            }
        }
        return (norm, lr)
    }
}

/// DeepSeek-V3's auxiliary-loss-free balancing: after each step, per MoE layer and expert, b_i −= γ if the expert's
/// load is above the layer's mean, += γ if below (γ = 0 freezes the biases).
public enum ExpertBalancing {
    /// Applies the rule to each `e_score_correction_bias` (in layer order, MTP last) with that layer's loads.
    public static func update(_ store: ParameterStore, loads: [[Int]], gamma: Float) {
        guard gamma != 0 else { return }
        let biases = store.entries.filter { $0.kind == .balanceBias }
        for (entry, load) in zip(biases, loads) where load.count == entry.count {
            let mean = Float(load.reduce(0, +)) / Float(load.count)
            let b = store.values + entry.offset
            for i in 0..<entry.count {
                if Float(load[i]) > mean { b[i] -= gamma } else if Float(load[i]) < mean { b[i] += gamma }
            }
        }
    }
}

extension AdamW {
    /// Writes the moments of every trained tensor (`exp_avg.NAME`, `exp_avg_sq.NAME`, F32) to one safetensors file
    /// tagged with `step`, atomically.
    public func writeMoments(of parameters: ParameterStore, step: Int, to path: String) throws {
        var moments: [SafeTensorsWriter.Tensor] = []
        for e in parameters.entries where parameters.isTrained(e) {
            moments.append(.float32("exp_avg.\(e.name)", shape: e.shape, values: Array(UnsafeBufferPointer(start: m.pointer + e.offset, count: e.count))))
            moments.append(.float32("exp_avg_sq.\(e.name)", shape: e.shape, values: Array(UnsafeBufferPointer(start: v.pointer + e.offset, count: e.count))))
        }
        try SafeTensorsWriter.write(moments, metadata: ["step": String(step)], to: path)
    }

    /// Restores `writeMoments`' file and the step, checking the file belongs to `step`. Moments saved for stacked
    /// experts (`exp_avg.….experts.gate_up_proj`, checkpoints from before the per-expert layout) are sliced per expert.
    public func readMoments(of parameters: ParameterStore, step: Int, from path: String) throws {
        let saved = try SafeTensorsFile(path: path).metadata["step"]
        guard saved == String(step) else {
            throw TrainingError.badCheckpoint(path: path, detail: "is from step \(saved ?? "?"), the trainer state from step \(step)")
        }
        let moments = try SafeTensorsStore(files: [path], source: path)
        for e in parameters.entries where parameters.isTrained(e) {
            for (prefix, buffer) in [("exp_avg.", m), ("exp_avg_sq.", v)] {
                let values = try ParameterStore.read(e.name, shape: e.shape, from: PrefixedWeightStore(base: moments, prefix: prefix))
                values.withUnsafeBufferPointer { (buffer.pointer + e.offset).update(from: $0.baseAddress!, count: e.count) }
            }
        }
        self.step = step
    }
}

/// The tensors of `base` whose names start with `prefix`, under their names without it.
struct PrefixedWeightStore: WeightStore {
    let base: any WeightStore, prefix: String
    var source: String { base.source }
    var tensorNames: [String] { base.tensorNames.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }
    func contains(_ name: String) -> Bool { base.contains(prefix + name) }
    func tensor(_ name: String) throws -> TensorData { try base.tensor(prefix + name) }
    func file(of name: String) -> String? { base.file(of: prefix + name) }
    func adapter(for name: String) -> LowRankAdapter? { nil }
}
