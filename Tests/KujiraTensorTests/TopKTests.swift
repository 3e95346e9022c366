import Foundation
import XCTest
import KujiraTensor

/// `TorchTopK` keeps the same keys as torch.topk on CPU, ties included (goldens from scripts/make-topk-goldens.py),
/// and the plain top-k wherever there are no ties.
final class TopKTests: XCTestCase {
    func select(_ values: [Float], k: Int) -> [Int] {
        var out = [Int](repeating: -1, count: k), scratch = [Float](repeating: 0, count: values.count), ix = [Int](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { v in
            TorchTopK.select(v.baseAddress!, count: values.count, k: k, into: &out, scratchValues: &scratch, scratchIndices: &ix)
        }
        return out
    }

    func testTiesAreBrokenAsTorchDoes() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/topk/golden.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let cases = json["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 250)
        var differsFromLowestIndex = 0
        for (i, c) in cases.enumerated() {
            let values = (c["values"] as! [Any]).map { ($0 as? String) == "-inf" ? -Float.infinity : ($0 as! NSNumber).floatValue }
            let k = (c["k"] as! NSNumber).intValue, expected = (c["indices"] as! [NSNumber]).map(\.intValue)
            XCTAssertEqual(select(values, k: k), expected, "case \(i) (n \(values.count), k \(k))")
            if TorchTopK.reference(values, k: k) != expected { differsFromLowestIndex += 1 }
        }
        // The goldens really test tie-breaking: a lowest-index rule picks differently on many of them.
        XCTAssertGreaterThan(differsFromLowestIndex, 50)
    }

    func testWithoutTiesEqualsThePlainTopK() {
        var rng = SplitMix64(seed: 9)
        for n in [1, 2, 3, 4, 5, 17, 64, 65, 200, 1000] {
            for k in Set([1, 2, min(n, 3), min(n, 8), n / 2 + 1, n]) where k >= 1 && k <= n {
                let values = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
                XCTAssertEqual(select(values, k: k), TorchTopK.reference(values, k: k), "n \(n) k \(k)")
            }
        }
    }
}
