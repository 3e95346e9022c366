import Foundation
import XCTest
import KujiraModels
import KujiraTensor

/// The 8-bit cache (`--kv-bits 8`): stores int8 codes plus one scale per group, and changes logits only by what its
/// quantization step allows.
final class KVCacheInt8Tests: XCTestCase {
    /// Every stored value is on its group's grid (code · d, |code| ≤ 127) and within d / 2 = max|x| / 254 of what was written.
    func testQuantizedRowsStayWithinHalfAStep() {
        let cache = KVCache(layerCount: 2, rowWidth: 64, initialCapacity: 4, precision: .int8, groupSize: 32)
        // Seeded, and the seed printed, so a failure reproduces (KUJIRA_TEST_SEED picks another).
        let seed = UInt64(ProcessInfo.processInfo.environment["KUJIRA_TEST_SEED"] ?? "") ?? 20_261_206
        print("KVCacheInt8Tests seed \(seed)")
        var random = SplitMix64(seed: seed)
        var written: [[Float]] = []
        for position in 0..<3 {
            var row = (0..<64).map { _ in Float.random(in: -3...3, using: &random) }
            row[5] = 40  // an outlier only widens its own group's step
            written.append(row)
            row.withUnsafeBufferPointer { cache.write($0.baseAddress!, layer: 1, position: position) }
        }
        for (position, row) in written.enumerated() {
            for g in 0..<2 {
                let group = row[(g * 32)..<((g + 1) * 32)]
                let step = group.map(abs).max()! / 127
                for i in (g * 32)..<((g + 1) * 32) {
                    let stored = cache.value(layer: 1, position: position, index: i)
                    XCTAssertLessThanOrEqual(abs(stored - row[i]), step / 2 * 1.0001, "position \(position) value \(i)")
                    let code = stored / step
                    XCTAssertEqual(code, code.rounded(), accuracy: 1e-3, "not on the int8 grid")
                    XCTAssertLessThanOrEqual(abs(code), 127.001)
                }
            }
        }
        // The second group has no outlier, so its step is ~3/127, not 40/127.
        XCTAssertLessThan(abs(cache.value(layer: 1, position: 0, index: 40) - written[0][40]), 3.0 / 254 * 1.0001)
    }

    /// `dot` and `addScaled` over int8 rows equal the same operations on the dequantized floats.
    func testLayerViewDequantizesInsideTheLoops() {
        let cache = KVCache(layerCount: 1, rowWidth: 48, initialCapacity: 2, precision: .int8, groupSize: 16)
        let row = (0..<48).map { Float(sin(Double($0) * 0.7)) * 2 }
        row.withUnsafeBufferPointer { cache.write($0.baseAddress!, layer: 0, position: 1) }
        let q = (0..<32).map { Float(cos(Double($0))) }
        let view = cache.layerView(0)
        let dot = q.withUnsafeBufferPointer { view.dot($0.baseAddress!, position: 1, offset: 16, count: 32) }
        let expected = (0..<32).reduce(Float(0)) { $0 + q[$1] * cache.value(layer: 0, position: 1, index: 16 + $1) }
        XCTAssertEqual(dot, expected, accuracy: 1e-5)
        var out = [Float](repeating: 1, count: 16)
        out.withUnsafeMutableBufferPointer { view.addScaled(position: 1, offset: 32, count: 16, weight: 0.5, into: $0.baseAddress!) }
        for i in 0..<16 { XCTAssertEqual(out[i], 1 + 0.5 * cache.value(layer: 0, position: 1, index: 32 + i), accuracy: 1e-6) }
    }

    /// The int8 cache is what the model really uses: its size is codes + scales, its values sit on the int8 grid and
    /// the logits move (a silent float fallback would give 0 difference and the float row size).
    func testModelsUseTheInt8Cache() throws {
        let model = try ModelRegistry.load(directory: FixturePaths.model("deepseek-v3-tiny"), cachePrecision: .int8)
        let cache = model.makeCache()
        XCTAssertEqual(cache.precision, .int8)
        // kv_lora_rank 16, rope 8: group gcd(32, 16, 8) = 8 → 24 code bytes + 3 scales of 4 bytes, × 3 layers.
        XCTAssertEqual(cache.groupSize, 8)
        XCTAssertEqual(cache.bytesPerToken, 3 * (24 + 12))
        XCTAssertEqual(model.summary.kvBytesPerToken(bits: 8), cache.bytesPerToken)
        XCTAssertEqual(try ModelRegistry.load(directory: FixturePaths.model("deepseek-v3-tiny")).makeCache().bytesPerToken, 3 * 24 * 4)
        let tokens = Array(1...12)
        let quantized = try model.forward(tokens, cache: cache, allLogits: true)
        let float = try ModelRegistry.load(directory: FixturePaths.model("deepseek-v3-tiny")).forward(tokens, cache: KVCache(layerCount: 3, rowWidth: 24), allLogits: true)
        XCTAssertNotEqual(quantized, float)
        // c_kv of layer 0, token 3 is on its group's grid.
        let group = (0..<8).map { cache.value(layer: 0, position: 3, index: $0) }
        let step = group.map(abs).max()! / 127
        for v in group { XCTAssertEqual(v / step, (v / step).rounded(), accuracy: 1e-3) }
    }

    /// Logits with the int8 cache stay close to the float cache's, token by token, on every architecture.
    ///
    /// Bound: each cached value moves by at most half a step, ≤ 1/254 of its group's largest magnitude. Scores (q·k)
    /// and attention outputs (convex combinations of value rows) then move by about that fraction, once for K and once
    /// for V in each of L layers, so the logits' error is bounded by 2·L/254 of the logit range. A DeepSeekMoE router
    /// is discontinuous: when the perturbation flips a token's expert choice the logits jump by O(1), so those
    /// positions are counted and excluded (positions after a flip still see its different cache row; they are
    /// excluded from the check too). Measured errors are in docs/benchmarks.md.
    func testInt8LogitsAreCloseToFloatLogits() throws {
        try RoutedRun.assertCloseToFloatCache(.int8, relativeStep: 1.0 / 254, models: [
            "deepseek-v3-tiny", "deepseek-v2-lite-tiny", "qwen2-tiny", "llama-tiny", "deepseek-v3-tiny-fp8", "qwen3-tiny", "qwen3-moe-tiny", "deepseek-v32-tiny", "deepseek-v4-tiny"])
    }

    func testUnsupportedBitsAreRejectedClearly() {
        for bits in [0, 4, 12, 64, -8] {
            XCTAssertThrowsError(try KVCachePrecision.parse(bits: bits)) { error in
                XCTAssertEqual(error as? KVCacheError, .unsupportedBits(bits))
                XCTAssertTrue("\(error)".contains("32") && "\(error)".contains("8"), "\(error)")
            }
        }
        XCTAssertEqual(try KVCachePrecision.parse(bits: 8), .int8)
        XCTAssertEqual(try KVCachePrecision.parse(bits: 16), .float16)
        XCTAssertEqual(try KVCachePrecision.parse(bits: 32), .float32)
    }
}

