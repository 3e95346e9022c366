import XCTest
@testable import KujiraFormats
import KujiraTensor

/// The fast `Linear.forward` on real GGUF tensors, against gguf-py's dequantized weights (independent of our decoders).
final class GGUFLinearTests: XCTestCase {
    func testFastLinearOnRealTensorsMatchesGoldenWeights() throws {
        let models = ["qwen2-tiny-q4_0", "qwen2-tiny-q4_1", "qwen2-tiny-q5_0", "qwen2-tiny-q8_0", "qwen2-tiny-f16",
                      "llama-256-q2_k", "llama-256-q3_k_m", "llama-256-q6_k"]
        var rng = SplitMix64(seed: 11)
        var checkedTypes = Set<DType>()
        for model in models {
            let store = try GGUFWeightStore(path: TestFiles.fixture("gguf/\(model).gguf"))
            let golden = try TestSafeTensors(path: TestFiles.fixture("gguf/\(model).dequant.safetensors"))
            for (name, expected) in golden.tensors.sorted(by: { $0.key < $1.key }) where expected.shape.count == 2 {
                let tensor = try store.tensor(name)
                guard tensor.dtype != .f32 else { continue }
                checkedTypes.insert(tensor.dtype)
                let weight = LinearWeight(data: tensor)
                let rows = weight.rows, cols = weight.cols
                let n = 5
                let x = (0..<(n * cols)).map { _ in rng.nextNormal() }
                let fast = Linear.forward(weight, x, n: n)
                // What the kernel multiplies with: int8-rounded activations for block formats (per 256 values for the K-quants
                // that read Q8_K activations, per 32 otherwise), x itself otherwise.
                let activations: [[Float]] = Q8KActivations.serves(tensor.dtype)
                    ? x.withUnsafeBufferPointer { xb in let q = Q8KActivations(xb, n: n, cols: cols); return (0..<n).map { q.dequantized($0) } }
                    : tensor.dtype.isQuantized
                    ? x.withUnsafeBufferPointer { xb in let q = Q8Activations(xb, n: n, cols: cols); return (0..<n).map { q.dequantized($0) } }
                    : (0..<n).map { Array(x[($0 * cols)..<(($0 + 1) * cols)]) }
                var worst = 0.0
                for t in 0..<n {
                    for r in 0..<rows {
                        var exact = 0.0, magnitude = 0.0
                        for c in 0..<cols {
                            let term = Double(expected.values[r * cols + c]) * Double(activations[t][c])
                            exact += term
                            magnitude += abs(term)
                        }
                        let tolerance = Double(cols / 16 + 8) * Double(Float.ulpOfOne) * magnitude + 1e-30
                        worst = max(worst, abs(Double(fast[t * rows + r]) - exact) / tolerance)
                    }
                }
                XCTAssertLessThanOrEqual(worst, 1, "\(model) \(name) (\(tensor.dtype.rawValue)): error / bound = \(worst)")
            }
        }
        XCTAssertEqual(checkedTypes, [.q4_0, .q4_1, .q5_0, .q8_0, .f16, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
    }
}
