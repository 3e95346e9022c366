import KujiraTraining
import XCTest

/// Finite-difference checks: central differences of a scalar loss computed in double precision.
enum GradientCheck {
    /// Asserts a gradient equals a reference one (PyTorch's, PEFT's) within `relative` × the reference's largest entry,
    /// entry by entry: same size, a non-zero reference, max |Δ| ≤ relative · max |expected|.
    static func assertClose(_ actual: [Float], to expected: [Float], relative: Float = 1e-4, _ label: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, label, file: file, line: line)
        let scale = expected.map { abs($0) }.max() ?? 0
        let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity
        if ProcessInfo.processInfo.environment["KUJIRA_VERBOSE"] != nil { print(label, worst / scale) }
        XCTAssertGreaterThan(scale, 0, label, file: file, line: line)
        XCTAssertLessThanOrEqual(worst, relative * scale, "\(label): max |Δ| \(worst) vs max |g| \(scale)", file: file, line: line)
    }

    /// Deterministic pseudo-random values in [-scale, scale).
    static func randoms(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = TrainingRandom(seed: seed)
        return (0..<count).map { _ in Float(rng.uniform() * 2 - 1) * scale }
    }

    /// Σ r_i y_i in double precision: a loss whose gradient w.r.t. y is r.
    static func project(_ y: [Float], _ r: [Float]) -> Double {
        zip(y, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Which entries of a tensor to check: all of a small tensor; otherwise its `largest` biggest analytic entries and
    /// `others` spread over the rest by a fixed stride (deterministic, so a failure reproduces).
    static func entries(of analytic: [Float], all limit: Int = 64, largest: Int = 16, others: Int = 48) -> [Int] {
        guard analytic.count > limit else { return Array(analytic.indices) }
        let ranked = analytic.indices.sorted { abs(analytic[$0]) > abs(analytic[$1]) }
        let top = Array(ranked.prefix(largest))
        let rest = Array(ranked.dropFirst(largest))
        return top + (0..<min(others, rest.count)).map { rest[($0 * 7919 + 13) % rest.count] }
    }

    /// Asserts that `analytic` ≈ ∂loss/∂x by central differences at every index (or `indices`), entry by entry:
    /// |numeric − analytic| ≤ `relative` × max(|numeric|, |analytic|) + `absolute` × max |analytic|. The absolute term
    /// is the float32 forward's finite-difference noise floor, so small entries are held to it and large ones to the
    /// relative bound. A non-finite value anywhere is a failure, and a loss that throws fails the test (it rethrows).
    /// Where the loss is not smooth inside ±epsilon (a router's top-k switching), the two-sided difference is
    /// meaningless: an entry whose difference changes by more than the bound when epsilon is halved is counted as a
    /// kink and skipped — at most `maximumKinks` of them (printed), so a wrong gradient cannot hide as one.
    static func assertMatches(_ analytic: [Float], x: [Float], epsilon: Float = 1e-2, relative: Double = 1e-2, absolute: Double = 1e-3,
                              indices: [Int]? = nil, maximumKinks: Double = 0, _ name: String, loss: ([Float]) throws -> Double,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(analytic.count, x.count, "\(name): gradient and parameter sizes differ", file: file, line: line)
        XCTAssertTrue(analytic.allSatisfy(\.isFinite), "\(name): non-finite analytic gradient", file: file, line: line)
        let scale = Double(analytic.map { abs($0) }.max() ?? 0)
        XCTAssertGreaterThan(scale, 0, "\(name): gradient is all zeros", file: file, line: line)
        func difference(_ i: Int, _ step: Float) throws -> Double {
            var plus = x, minus = x
            plus[i] += step; minus[i] -= step
            return (try loss(plus) - loss(minus)) / Double(plus[i] - minus[i])
        }
        let checked = indices ?? Array(x.indices)
        var failures: [String] = [], kinks = 0, worstRatio = 0.0
        for i in checked {
            let numeric = try difference(i, epsilon), value = Double(analytic[i])
            guard numeric.isFinite else { failures.append("entry \(i): non-finite loss difference"); continue }
            let bound = relative * max(abs(numeric), abs(value)) + absolute * scale
            let error = abs(numeric - value)
            if error > bound {
                let half = try difference(i, epsilon / 2)
                if abs(half - numeric) > bound { kinks += 1; continue }
                failures.append("entry \(i): analytic \(value), numeric \(numeric)")
            }
            worstRatio = max(worstRatio, error / bound)
        }
        print("\(name): \(checked.count) entries, worst |Δ| / bound = \(worstRatio)\(kinks > 0 ? ", \(kinks) kinks skipped" : "")")
        XCTAssertTrue(failures.isEmpty, "\(name): \(failures.count) of \(checked.count) entries off (max |g| \(scale)): "
                      + failures.prefix(4).joined(separator: "; "), file: file, line: line)
        XCTAssertLessThanOrEqual(Double(kinks), maximumKinks * Double(checked.count), "\(name): \(kinks) of \(checked.count) entries at kinks",
                                 file: file, line: line)
    }
}
