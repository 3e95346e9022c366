import Foundation
import XCTest
import KujiraFormats
import KujiraTensor

/// Our quantizers produce the same bytes as gguf-py (F16, BF16, Q8_0) and llama.cpp's reference quantizer (Q4_K),
/// on rows chosen to hit the edge cases (ties, zeros, outliers, constant rows, f16 range) — scripts/make-quantize-goldens.py.
final class QuantizeTests: XCTestCase {
    func testBytesMatchTheReferenceQuantizers() throws {
        let file = try GGUFFile(path: TestFiles.fixture("quantize/quantize-golden.gguf"))
        let store = GGUFWeightStore(file: file)
        let input = try store.tensor("input")
        let x = input.toFloatArray()
        let rowLength = input.shape[1]
        for (name, dtype) in [("f16", DType.f16), ("bf16", .bf16), ("q8_0", .q8_0), ("q4_k", .q4_K), ("q6_k", .q6_K)] {
            let info = try XCTUnwrap(file.tensorInfo(name))
            let expected = Array(file.tensorBytes(info))
            let ours = Quantize.array(x, rowLength: rowLength, to: dtype)
            XCTAssertEqual(ours.count, expected.count, name)
            let blockBytes = dtype.blockBytes
            let differing = stride(from: 0, to: expected.count, by: blockBytes).filter { ours[$0..<($0 + blockBytes)] != expected[$0..<($0 + blockBytes)] }
            XCTAssertTrue(differing.isEmpty, "\(name): \(differing.count) of \(expected.count / blockBytes) blocks differ, first at byte \(differing.first ?? -1)")
        }
    }

    /// Q4_K dequantized: every 32-element sub-block's error is bounded by its own 6-bit-quantized affine grid.
    func testQ4KRoundTripErrorIsBounded() throws {
        var generator = SplitMix64(seed: 5)
        let x = (0..<(256 * 8)).map { _ in (generator.nextUnitFloat() * 2 - 1) * 3 }
        let bytes = Quantize.array(x, rowLength: 256, to: .q4_K)
        var decoded = [Float](repeating: 0, count: x.count)
        bytes.withUnsafeBytes { b in decoded.withUnsafeMutableBufferPointer { BlockDequantize.row(.q4_K, b.baseAddress!, count: x.count, into: $0.baseAddress!) } }
        for s in stride(from: 0, to: x.count, by: 32) {
            let sub = x[s..<(s + 32)]
            let range = (sub.max()! - min(0, sub.min()!))
            // 15 steps of the range at most, half a step of rounding plus the 6-bit scale/min quantization (1/63 of the largest).
            let bound = range / 15 * 0.5 + range * 2 / 63 + 1e-3
            for i in s..<(s + 32) { XCTAssertLessThanOrEqual(abs(decoded[i] - x[i]), bound, "element \(i)") }
        }
        let rms = (zip(decoded, x).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Float(x.count)).squareRoot()
        // Uniform rounding on a 16-level grid over (-3, 3): step 0.4, rms 0.4/√12 ≈ 0.115; the least-squares search only improves it.
        XCTAssertLessThan(rms, 0.12, "Q4_K rms error on uniform(-3, 3)")
    }
}
