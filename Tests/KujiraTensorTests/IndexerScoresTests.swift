import XCTest
import KujiraTensor

/// The lightning-indexer score kernel against its reference and a naive double-precision sum.
final class IndexerScoresTests: XCTestCase {
    func testFastScoresEqualTheReference() {
        var rng = SplitMix64(seed: 23)
        for (heads, dim, keys) in [(16, 64, 37), (4, 128, 64), (7, 128, 13), (3, 48, 21), (2, 20, 9)] {
            let stride = dim + 8  // rows padded, as a wider cache row would be
            let q = (0..<(heads * dim)).map { _ in Float.random(in: -1...1, using: &rng) }
            let w = (0..<heads).map { _ in Float.random(in: -0.5...1, using: &rng) }
            let k = (0..<(keys * stride)).map { _ in Float.random(in: -1...1, using: &rng) }
            var fast = [Float](repeating: .nan, count: keys), plain = fast
            let scale: Float = 1 / Float(dim).squareRoot()
            IndexerScores.compute(q: q, heads: heads, dim: dim, weights: w, scale: scale, keys: k, rowStride: stride, range: 0..<keys, into: &fast)
            IndexerScores.reference(q: q, heads: heads, dim: dim, weights: w, scale: scale, keys: k, rowStride: stride, range: 0..<keys, into: &plain)
            var zeros = 0
            for j in 0..<keys {
                var expected = 0.0, magnitude = 0.0
                for h in 0..<heads {
                    let d = (0..<dim).reduce(0.0) { $0 + Double(q[h * dim + $1]) * Double(k[j * stride + $1]) }
                    expected += Double(w[h]) * max(Double(scale) * d, 0)
                    magnitude += abs(Double(w[h]) * Double(scale) * d)
                    if d <= 0 { zeros += 1 }
                }
                XCTAssertEqual(Double(fast[j]), expected, accuracy: magnitude * 1e-5 + 1e-12, "fast, heads \(heads), dim \(dim), key \(j)")
                XCTAssertEqual(Double(plain[j]), expected, accuracy: magnitude * 1e-5 + 1e-12, "reference, heads \(heads), dim \(dim), key \(j)")
                XCTAssertEqual(fast[j], plain[j], accuracy: Float(magnitude) * 2e-6 + 1e-30, "fast vs reference, heads \(heads), dim \(dim), key \(j)")
            }
            XCTAssertGreaterThan(zeros, 0, "the ReLU must clip some head scores")
        }
    }
}
