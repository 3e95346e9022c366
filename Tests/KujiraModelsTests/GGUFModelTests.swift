import Foundation
import XCTest
import KujiraFormats
import KujiraModels
import KujiraTensor

/// GGUF files converted by llama.cpp load and run: f32/f16 files reproduce the HF goldens, quantized files follow
/// llama.cpp's own greedy tokens.
final class GGUFModelTests: XCTestCase {
    static let ggufDirectory = FixturePaths.root.appendingPathComponent("gguf")

    struct LlamaCppGolden {
        let tokens: [Int]
        let greedy: [Int]
        let lastLogits: [Float]
    }

    static func llamaCppGoldens(_ file: String) throws -> [LlamaCppGolden] {
        let url = ggufDirectory.appendingPathComponent(file.replacingOccurrences(of: ".gguf", with: ".golden.json"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (json["cases"] as! [[String: Any]]).map {
            LlamaCppGolden(tokens: ($0["tokens"] as! [NSNumber]).map(\.intValue), greedy: ($0["greedy"] as! [NSNumber]).map(\.intValue),
                           lastLogits: ($0["last_logits"] as! [NSNumber]).map(\.floatValue))
        }
    }

    func model(_ file: String) throws -> any LanguageModel {
        try ModelRegistry.load(directory: Self.ggufDirectory.appendingPathComponent(file).path)
    }

    /// An f32 GGUF is the same function as the HF checkpoint it came from (same 1e-4 as the safetensors goldens).
    /// f16 files round every weight to half precision (~5e-4 relative), which moves logits by up to ~1e-2 here.
    func testFloatFilesReproduceTheHFGoldens() throws {
        for (file, source, tolerance) in [("deepseek-v3-tiny-f32.gguf", "deepseek-v3-tiny", Float(1e-4)), ("qwen2-tiny-f32.gguf", "qwen2-tiny", 1e-4),
                                          ("deepseek-v3-tiny-f16.gguf", "deepseek-v3-tiny", 2e-2), ("qwen2-tiny-f16.gguf", "qwen2-tiny", 2e-2),
                                          ("qwen3-tiny-f32.gguf", "qwen3-tiny", 1e-4), ("qwen3-moe-tiny-f32.gguf", "qwen3-moe-tiny", 1e-4)] {
            let model = try model(file)
            for golden in try Golden.load(FixturePaths.model(source)) {
                let logits = try model.forward(golden.tokens, cache: model.makeCache(), allLogits: true)
                var maxError: Float = 0
                for (t, row) in golden.logits.enumerated() {
                    for (v, expected) in row.enumerated() { maxError = max(maxError, abs(logits[t * model.vocabSize + v] - expected)) }
                }
                print("\(file) vs HF \(source): max |Δlogit| = \(maxError)")
                XCTAssertLessThanOrEqual(maxError, tolerance, "\(file) vs HF \(source)")
            }
        }
    }

    /// Quantized fixtures follow llama.cpp, with a tolerance derived per case from what the file's formats round.
    ///
    /// Both engines run the same quantized weights, so weight rounding is common to them; what separates them is
    /// that each rounds the activations to 8 bits (q8_0 blocks of 32, or q8_K blocks of 256 for K-quants) before its
    /// integer dots, in its own order, and llama.cpp keeps K/V in f16. Call E the exact function of the file's
    /// weights: Kujira over the same tensors decoded to f32 with float activations — no quantized kernel involved,
    /// and the decoding is pinned to gguf-py's by `GGUFDequantizeTests`. ρ = max |llama.cpp − E| is then how far
    /// 8-bit activation rounding moves this case's logits, measured on llama.cpp, independently of our kernels. Our
    /// engine rounds the same activations with the same block schemes, so it must stay as close to E:
    /// |Kujira − E| ≤ 2ρ + 0.02, and |Kujira − llama.cpp| ≤ 3ρ + 0.02 (the 0.02: the f16 cache alone, ~1e-3 relative
    /// on logits of magnitude ~10). A broken quantized kernel moves Kujira away from E while ρ stays put.
    /// DeepSeek (MoE) files included. A router is discontinuous: where two experts' scores sit within the rounding
    /// noise, either engine may pick the other one and its logits jump by ~2 (measured: in 3 of the 45 cases Kujira's
    /// rounding flips a router that llama.cpp's does not, in 1 both flip). Such a case is recognised by its routing — Kujira's experts for some
    /// token differ from the exact function's (this happens on 10 of the 18 DeepSeek cases, mostly far from the last
    /// position) — and only where such a case misses the bounds is it excused; those are listed, and at most 4 may
    /// occur, so a kernel that scrambles activations cannot hide behind them.
    /// Where llama.cpp's top-2 margin exceeds our measured difference, its top-1 token must be ours.
    func testQuantizedFilesFollowLlamaCpp() throws {
        let files = try Self.goldenFiles().filter { !Self.isFloat($0) }
        XCTAssertGreaterThanOrEqual(files.count, 23)
        var report: [String] = [], flipped: [String] = [], topOneCompared = 0
        for file in files {
            let (config, store) = try ModelRegistry.open(Self.ggufDirectory.appendingPathComponent(file).path)
            let model = try ModelRegistry.build(config: config, weights: store)
            let exact = try ModelRegistry.build(config: config, weights: DequantizedWeights(base: store))
            for (index, golden) in try Self.llamaCppGoldens(file).enumerated() {
                XCTAssertEqual(golden.lastLogits.count, model.vocabSize, "\(file) case \(index): golden row width")
                let run = try RoutedRun.run(model, tokens: golden.tokens), exactRun = try RoutedRun.run(exact, tokens: golden.tokens)
                let logits = run.logits.last!, exactLogits = exactRun.logits.last!
                let rounding = Self.maxDifference(golden.lastLogits, exactLogits)
                let ours = Self.maxDifference(logits, exactLogits), difference = Self.maxDifference(logits, golden.lastLogits)
                let routerFlip = run.routing != exactRun.routing
                report.append("\(file) #\(index): ρ = |llama.cpp − exact| \(rounding), |Kujira − exact| \(ours), |Kujira − llama.cpp| \(difference)"
                              + (routerFlip ? " (a router flipped)" : ""))
                XCTAssertGreaterThan(ours, 0, "\(file) case \(index): quantized activations changed nothing — is the exact path the same kernel?")
                if routerFlip && (ours > 2 * rounding + 0.02 || difference > 3 * rounding + 0.02) {
                    flipped.append("\(file) #\(index)")
                } else {
                    XCTAssertLessThanOrEqual(ours, 2 * rounding + 0.02, "\(file) case \(index): Kujira vs the exact function of the weights")
                    XCTAssertLessThanOrEqual(difference, 3 * rounding + 0.02, "\(file) case \(index): first-step logits vs llama.cpp")
                }
                let sorted = golden.lastLogits.sorted(by: >)
                if sorted[0] - sorted[1] > difference {
                    topOneCompared += 1
                    XCTAssertEqual(argmax(logits), argmax(golden.lastLogits), "\(file) case \(index): first-step top-1")
                }
            }
        }
        print(report.joined(separator: "\n"))
        print("top-1 compared on \(topOneCompared) of \(report.count) cases")
        print("cases excused by a router flip: \(flipped.count) (\(flipped.joined(separator: ", ")))")
        XCTAssertLessThanOrEqual(flipped.count, 4, "too many routing flips: \(flipped)")
        XCTAssertTrue(flipped.allSatisfy { $0.hasPrefix("deepseek") || $0.contains("moe") }, "only MoE files have routers: \(flipped)")
        XCTAssertGreaterThanOrEqual(topOneCompared, report.count / 2, "the top-1 check must run on most cases")
    }

    /// The greedy agreement the README states: the first 4 greedy tokens equal llama.cpp's on at least 51 of the
    /// 57 cases with a llama.cpp golden (43 of the 49 before the Qwen3 files, which all agree; llama.cpp reaches the
    /// same 43 of 49 against its own goldens when only its attention settings change —
    /// scripts/llama-cpp-gguf-fixtures-self-check.py). Counted, so it cannot drop silently.
    func testGreedyTokensAgreeWithLlamaCppOnTheStatedNumberOfCases() throws {
        let files = try Self.goldenFiles()
        var agreeing = 0, total = 0, disagreeing: [String] = []
        for file in files {
            let model = try model(file)
            for (index, golden) in try Self.llamaCppGoldens(file).enumerated() {
                XCTAssertGreaterThanOrEqual(golden.greedy.count, 4, "\(file) case \(index)")
                let cache = model.makeCache()
                var logits = try model.forward(golden.tokens, cache: cache, allLogits: false)
                var tokens: [Int] = []
                for _ in 0..<4 {
                    tokens.append(argmax(logits))
                    logits = try model.forward([tokens.last!], cache: cache, allLogits: false)
                }
                total += 1
                if tokens == Array(golden.greedy.prefix(4)) { agreeing += 1 } else { disagreeing.append("\(file) #\(index)") }
            }
        }
        print("first 4 greedy tokens equal to llama.cpp's on \(agreeing) of \(total) cases; differ: \(disagreeing.joined(separator: ", "))")
        XCTAssertEqual(total, 57)
        XCTAssertGreaterThanOrEqual(agreeing, 51)
    }

    /// Every GGUF fixture with a llama.cpp golden beside it.
    static func goldenFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: ggufDirectory.path).filter {
            $0.hasSuffix(".gguf") && FileManager.default.fileExists(atPath: ggufDirectory.appendingPathComponent($0.replacingOccurrences(of: ".gguf", with: ".golden.json")).path)
        }.sorted()
    }

    static func isFloat(_ file: String) -> Bool { file.hasSuffix("-f32.gguf") || file.hasSuffix("-f16.gguf") }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    func testGGUFArchitecturesMapToTheirModels() throws {
        XCTAssertEqual(try model("deepseek-v3-tiny-q8_0.gguf").summary.architecture, "deepseek_v3")
        XCTAssertEqual(try model("deepseek-v3-tiny-q8_0.gguf").summary.kvValuesPerTokenPerLayer, 24)
        XCTAssertEqual(try model("qwen2-tiny-q8_0.gguf").summary.architecture, "qwen2")
        XCTAssertEqual(try model("llama-256-q4_k_m.gguf").summary.architecture, "llama")
        XCTAssertEqual(try model("qwen3-tiny-q8_0.gguf").summary.architecture, "qwen3")
        XCTAssertEqual(try model("qwen3-moe-tiny-q8_0.gguf").summary.architecture, "qwen3_moe")
    }

    func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}

/// The same tensors with every quantized one decoded to f32: the exact function of a GGUF's weights, run without
/// activation quantization.
struct DequantizedWeights: WeightStore {
    let base: any WeightStore
    var source: String { base.source }
    var tensorNames: [String] { base.tensorNames }
    func contains(_ name: String) -> Bool { base.contains(name) }
    func file(of name: String) -> String? { base.file(of: name) }
    func tensor(_ name: String) throws -> TensorData {
        let t = try base.tensor(name)
        guard t.dtype.isFloatingPoint, t.dtype != .f32 else { return t }
        return TensorData.owned(t.toFloatArray(), shape: t.shape)
    }
}
