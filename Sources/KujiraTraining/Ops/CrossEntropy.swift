import Foundation

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
