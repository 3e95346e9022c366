import XCTest
import KujiraModels

/// The 16-bit cache (`--kv-bits 16`): half-float rows, two bytes per value, logits within what half rounding allows.
final class KVCacheHalfTests: XCTestCase {
    func testRowsAreStoredAsHalves() {
        let cache = KVCache(layerCount: 2, rowWidth: 40, initialCapacity: 2, precision: .float16)
        let row = (0..<40).map { Float(sin(Double($0) * 1.3)) * 300 + 1e-3 }
        row.withUnsafeBufferPointer { cache.write($0.baseAddress!, layer: 1, position: 1) }
        for i in 0..<40 { XCTAssertEqual(cache.value(layer: 1, position: 1, index: i), Float(Float16(row[i])), "value \(i)") }
        XCTAssertEqual(cache.bytesPerToken, 2 * 40 * 2)
        let q = (0..<16).map { Float(cos(Double($0))) }
        let view = cache.layerView(1)
        let dot = q.withUnsafeBufferPointer { view.dot($0.baseAddress!, position: 1, offset: 24, count: 16) }
        let expected = (0..<16).reduce(Float(0)) { $0 + q[$1] * cache.value(layer: 1, position: 1, index: 24 + $1) }
        XCTAssertEqual(dot, expected, accuracy: 1e-3)
    }

    /// Bound: each cached value moves by at most 2⁻¹¹ of itself; scores and attention outputs then move by about that
    /// fraction once for K and once for V in each of L layers, so logits stay within 2·L·2⁻¹¹ of the logit range
    /// (positions after a DeepSeekMoE routing flip are not compared, as in the int8 test). The logits must change
    /// (a silent float cache would not), and the cache must be half the float cache's size.
    func testHalfLogitsAreCloseToFloatLogits() throws {
        let models = ["deepseek-v3-tiny", "deepseek-v2-lite-tiny", "qwen2-tiny", "llama-tiny", "qwen3-tiny", "qwen3-moe-tiny", "deepseek-v32-tiny", "deepseek-v4-tiny"]
        for name in models {
            let dir = FixturePaths.model(name)
            let floatCache = try ModelRegistry.load(directory: dir).makeCache()
            let halfModel = try ModelRegistry.load(directory: dir, cachePrecision: .float16)
            XCTAssertEqual(halfModel.makeCache().bytesPerToken * 2, floatCache.bytesPerToken, name)
            XCTAssertEqual(halfModel.summary.kvBytesPerToken(bits: 16), halfModel.makeCache().bytesPerToken, name)
        }
        try RoutedRun.assertCloseToFloatCache(.float16, relativeStep: 1.0 / 2048, models: models)
    }
}
