import Foundation
import KujiraModels

/// How GRPO's per-token losses are averaged.
public enum GRPOLossType: String, Sendable, Codable, CaseIterable {
    /// DeepSeekMath's GRPO: mean over each completion's tokens, then mean over completions; advantages divided by
    /// the group's standard deviation.
    case grpo
    /// Dr. GRPO (Liu et al. 2025): sum over tokens divided by a constant (completions × max new tokens), advantages
    /// not divided by the standard deviation — no length or difficulty bias.
    case drGRPO = "dr_grpo"
}

/// What the GRPO loss needs to know about one completion token.
public struct GRPOToken: Sendable, Equatable {
    /// Group-normalised advantage of the completion the token belongs to.
    public var advantage: Double
    /// log π_old(token) (the policy that sampled it), nil to use the current log-probability (ratio 1).
    public var oldLogProbability: Double?
    /// log π_ref(token) for the KL penalty (ignored when β = 0).
    public var referenceLogProbability: Double
    /// The token's weight in the average (1/(|o|·N) for grpo, 1/(N·L_max) for dr_grpo).
    public var weight: Double

    public init(advantage: Double, oldLogProbability: Double?, referenceLogProbability: Double, weight: Double) {
        self.advantage = advantage; self.oldLogProbability = oldLogProbability
        self.referenceLogProbability = referenceLogProbability; self.weight = weight
    }
}

/// The clipped-ratio objective with a k3 KL penalty, per token:
/// ℓ = −min(ρ·A, clip(ρ, 1−ε, 1+ε)·A) + β·(e^{r−l} − (r−l) − 1), ρ = e^{l−l_old}, l = log π(token), r = log π_ref(token);
/// the loss is Σ weight·ℓ. Gradients with respect to l are exact (the clipped branch has zero gradient).
public enum GRPOObjective {
    /// Loss statistics of one evaluation.
    public struct Statistics: Sendable, Equatable {
        public var loss = 0.0
        /// Mean k3 estimate of KL(π‖π_ref) over the tokens.
        public var kl = 0.0
        /// Fraction of tokens whose clipped branch is active (zero gradient from the surrogate).
        public var clipFraction = 0.0
        public init() {}
    }

    /// Loss, ∂loss/∂l per token, and statistics. Tokens beyond `l.count` are ignored and missing ones get no loss.
    public static func evaluate(logProbabilities l: [Double], tokens: [GRPOToken], clip epsilon: Double, beta: Double)
        -> (statistics: Statistics, gradient: [Double]) {
        var stats = Statistics()
        var gradient = [Double](repeating: 0, count: l.count)
        var clipped = 0
        let count = min(l.count, tokens.count)
        for i in 0..<count {
            let token = tokens[i]
            let ratio = exp(l[i] - (token.oldLogProbability ?? l[i]))
            let a = token.advantage
            let unclipped = ratio * a, bounded = min(max(ratio, 1 - epsilon), 1 + epsilon) * a
            var loss = 0.0, dl = 0.0
            if bounded < unclipped {
                loss = -bounded; clipped += 1            // the clipped branch is the minimum: constant in l
            } else {
                loss = -unclipped; dl = -unclipped       // d(−ρA)/dl = −ρA
            }
            if beta != 0 {
                let d = token.referenceLogProbability - l[i]
                let k3 = exp(d) - d - 1
                loss += beta * k3
                dl += beta * (1 - exp(d))                // d k3/dl = −e^{r−l} + 1
                stats.kl += k3
            }
            stats.loss += token.weight * loss
            gradient[i] = token.weight * dl
        }
        if count > 0 {
            stats.kl /= Double(count)
            stats.clipFraction = Double(clipped) / Double(count)
        }
        return (stats, gradient)
    }

    /// log p(completion[j] | prompt, completion[..<j]) under `model` for every completion token (one forward pass over
    /// prompt + completion; the reference policy's side of the KL).
    public static func logProbabilities(of completion: [Int], after prompt: [Int], under model: any LanguageModel) throws -> [Double] {
        let logits = try model.forward(prompt + completion, cache: model.makeCache(), allLogits: true)
        let vocab = model.vocabSize
        return completion.enumerated().map { j, token in
            let row = logits[((prompt.count - 1 + j) * vocab)..<((prompt.count + j) * vocab)]
            let maxValue = row.max() ?? 0
            let sum = row.reduce(0.0) { $0 + Double(exp($1 - maxValue)) }
            return Double(row[row.startIndex + token] - maxValue) - log(sum)
        }
    }

    /// Group-normalised advantages: r − mean(r), divided by (std(r) + 1e-4) for `grpo` (population std).
    public static func advantages(rewards: [Double], lossType: GRPOLossType) -> [Double] {
        guard !rewards.isEmpty else { return [] }
        let mean = rewards.reduce(0, +) / Double(rewards.count)
        let std = (rewards.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(rewards.count)).squareRoot()
        return rewards.map { lossType == .grpo ? ($0 - mean) / (std + 1e-4) : $0 - mean }
    }
}
