import Foundation
import KujiraTensor

/// A loss over the log-probabilities of the target tokens (policy-gradient objectives such as GRPO): given log p(target)
/// for every row with a target, in row order, returns the loss and ∂loss/∂log p for each.
public typealias TokenObjective = @Sendable (_ logProbabilities: [Double]) -> (loss: Double, gradient: [Double])

/// Softmax cross-entropy over vocabulary rows, fused with its gradient.
public enum CrossEntropy {
    /// For each row r with targets[r] ≥ 0: loss += −log softmax(logits[r])[target]. The logits are replaced by
    /// `scale · (softmax − onehot)` (rows with target < 0 get zeros). Returns the summed loss in double precision.
    public static func forwardBackward(logits: UnsafeMutablePointer<Float>, targets: [Int], vocab: Int, scale: Float) -> Double {
        let rows = targets.count
        let parts = Swift.min(Parallel.threads, Swift.max(1, rows / 32))
        var sums = [Double](repeating: 0, count: parts)
        sums.withUnsafeMutableBufferPointer { sb in
            let sumsPointer = sb.baseAddress!
            Parallel.forEach(parts) { p in
                var total = 0.0
                for r in (p * rows / parts)..<((p + 1) * rows / parts) {
                    let row = logits + r * vocab
                    let target = targets[r]
                    guard target >= 0 else { row.update(repeating: 0, count: vocab); continue }
                    var maxValue = -Float.infinity
                    for i in 0..<vocab where row[i] > maxValue { maxValue = row[i] }
                    var sum: Float = 0
                    for i in 0..<vocab { let e = exp(row[i] - maxValue); row[i] = e; sum += e }
                    let targetProbability = row[target] / sum
                    total -= Double(log(targetProbability))
                    let inv = scale / sum
                    for i in 0..<vocab { row[i] *= inv }
                    row[target] -= scale
                }
                sumsPointer[p] = total
            }
        }
        return sums.reduce(0, +)
    }

    /// A general per-token objective: log p(target) for each row with a target (row order) goes to `objective`,
    /// which returns the loss and ∂loss/∂log p; the logits are replaced by ∂loss/∂logits = g·(onehot − softmax)
    /// (zeros on rows without a target). Returns the objective's loss.
    public static func objectiveForwardBackward(logits: UnsafeMutablePointer<Float>, targets: [Int], vocab: Int,
                                                objective: TokenObjective) throws -> Double {
        var logProbabilities: [Double] = []
        var probabilitiesOfRows: [Int] = []
        for (r, target) in targets.enumerated() {
            let row = logits + r * vocab
            guard target >= 0 else { row.update(repeating: 0, count: vocab); continue }
            var maxValue = -Float.infinity
            for i in 0..<vocab where row[i] > maxValue { maxValue = row[i] }
            var sum: Double = 0
            for i in 0..<vocab { sum += Double(exp(row[i] - maxValue)) }
            logProbabilities.append(Double(row[target] - maxValue) - log(sum))
            let inv = 1 / sum
            for i in 0..<vocab { row[i] = Float(Double(exp(row[i] - maxValue)) * inv) }
            probabilitiesOfRows.append(r)
        }
        let (loss, gradient) = objective(logProbabilities)
        guard gradient.count == logProbabilities.count else {
            throw TrainingError.invalidInput("token objective returned \(gradient.count) gradients for \(logProbabilities.count) tokens")
        }
        for (k, r) in probabilitiesOfRows.enumerated() {
            let row = logits + r * vocab, g = Float(gradient[k])
            for i in 0..<vocab { row[i] *= -g }
            row[targets[r]] += g
        }
        return loss
    }

    /// Loss only (no gradient), for evaluation.
    public static func loss(logits: UnsafePointer<Float>, targets: [Int], vocab: Int) -> Double {
        var total = 0.0
        for (r, target) in targets.enumerated() where target >= 0 {
            let row = logits + r * vocab
            var maxValue = -Float.infinity
            for i in 0..<vocab where row[i] > maxValue { maxValue = row[i] }
            var sum: Double = 0
            for i in 0..<vocab { sum += Double(exp(row[i] - maxValue)) }
            total += log(sum) - Double(row[target] - maxValue)
        }
        return total
    }
}
