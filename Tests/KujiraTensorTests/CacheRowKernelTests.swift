import XCTest
import KujiraTensor

/// The KV-cache row kernels (half rows of `--kv-bits 16`, int8 rows of `--kv-bits 8`) against their plain references.
final class CacheRowKernelTests: XCTestCase {
    func testHalfRowsMatchTheirReferences() {
        var rng = SplitMix64(seed: 11)
        for count in [1, 7, 8, 31, 64, 93, 512] {
            let x = (0..<count).map { _ in Float.random(in: -70_000...70_000, using: &rng) / Float(1 + Int.random(in: 0...1000, using: &rng)) }
            var halves = [Float16](repeating: 0, count: count)
            x.withUnsafeBufferPointer { xs in halves.withUnsafeMutableBufferPointer { HalfRows.store(xs.baseAddress!, count: count, into: $0.baseAddress!) } }
            for i in 0..<count { XCTAssertEqual(halves[i].bitPattern, Float16(x[i]).bitPattern, "store, count \(count), value \(i)") }
            let q = (0..<count).map { _ in Float.random(in: -2...2, using: &rng) }
            q.withUnsafeBufferPointer { qs in
                halves.withUnsafeBufferPointer { hs in
                    let fast = HalfRows.dot(qs.baseAddress!, hs.baseAddress!, count: count)
                    let plain = HalfRows.referenceDot(qs.baseAddress!, hs.baseAddress!, count: count)
                    let magnitude = (0..<count).reduce(Float(0)) { $0 + abs(q[$1] * Float(halves[$1])) }
                    XCTAssertEqual(fast, plain, accuracy: magnitude * 1e-6 + 1e-30, "dot, count \(count)")
                    var a = (0..<count).map { Float($0) * 0.25 }, b = a
                    a.withUnsafeMutableBufferPointer { HalfRows.addScaled(hs.baseAddress!, count: count, weight: 0.375, into: $0.baseAddress!) }
                    b.withUnsafeMutableBufferPointer { HalfRows.referenceAddScaled(hs.baseAddress!, count: count, weight: 0.375, into: $0.baseAddress!) }
                    for i in 0..<count {
                        XCTAssertEqual(a[i], b[i], accuracy: abs(b[i]) * 2e-7 + 1e-30, "addScaled, count \(count), value \(i)")
                    }
                }
            }
        }
    }
}
