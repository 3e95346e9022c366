import KujiraTraining
import XCTest

/// Finite-difference checks: central differences of a scalar loss computed in double precision.
enum GradientCheck {
    /// Deterministic pseudo-random values in [-scale, scale).
    static func randoms(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = TrainingRandom(seed: seed)
        return (0..<count).map { _ in Float(rng.uniform() * 2 - 1) * scale }
    }

    /// Σ r_i y_i in double precision: a loss whose gradient w.r.t. y is r.
    static func project(_ y: [Float], _ r: [Float]) -> Double {
        zip(y, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Asserts that `analytic` ≈ ∂loss/∂x by central differences at every index (or `indices`), within
    /// `tolerance` × max |analytic|.
    static func assertMatches(_ analytic: [Float], x: [Float], epsilon: Float = 1e-2, tolerance: Double = 1e-3,
                              indices: [Int]? = nil, _ name: String, loss: ([Float]) -> Double,
                              file: StaticString = #filePath, line: UInt = #line) {
        let scale = Double(analytic.map { abs($0) }.max() ?? 0)
        XCTAssertGreaterThan(scale, 0, "\(name): gradient is all zeros", file: file, line: line)
        var worst = 0.0, worstIndex = 0
        for i in indices ?? Array(x.indices) {
            var plus = x, minus = x
            plus[i] += epsilon; minus[i] -= epsilon
            let numeric = (loss(plus) - loss(minus)) / Double(2 * epsilon)
            let error = abs(numeric - Double(analytic[i]))
            if error > worst { worst = error; worstIndex = i }
        }
        XCTAssertLessThanOrEqual(worst, tolerance * scale, "\(name): worst |Δ| \(worst) at \(worstIndex), max |g| \(scale)", file: file, line: line)
    }
}
