import Foundation
import XCTest
import KujiraFormats
import KujiraModels
import KujiraTensor

/// FP8 checkpoint → plain safetensors directory: dequantised with the block scales, loads, and still matches HF.
final class SafeTensorsExportTests: XCTestCase {
    func scratchDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-st-export-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.path
    }

    func maxError(_ directory: String, golden fixture: String) throws -> Float {
        let model = try ModelRegistry.load(directory: directory)
        var worst: Float = 0
        for golden in try Golden.load(FixturePaths.model(fixture)) {
            let logits = try model.forward(golden.tokens, cache: model.makeCache(), allLogits: true)
            for (t, row) in golden.logits.enumerated() {
                for (v, expected) in row.enumerated() { worst = max(worst, abs(logits[t * model.vocabSize + v] - expected)) }
            }
        }
        return worst
    }

    /// F32 output is the FP8 model's exact function (the FP8 fixture's own 1e-3 vs HF); BF16 output rounds every
    /// dequantised weight (fp8 value × f32 scale) to 8 significant bits, which moves these logits by 0.087 (llama.cpp
    /// running a bf16 GGUF of the same model: 0.081, docs/convert.md); bounded here at 0.1.
    func testFP8CheckpointDequantises() throws {
        let dir = try scratchDirectory()
        let source = FixturePaths.model("deepseek-v3-tiny-fp8")
        for (dtype, tolerance) in [(DType.f32, Float(1e-3)), (.bf16, 0.1)] {
            let out = dir + "/\(dtype.rawValue)"
            try SafeTensorsExporter.export(directory: source, to: out, dtype: dtype)
            let error = try maxError(out, golden: "deepseek-v3-tiny-fp8")
            print("deepseek-v3-tiny-fp8 → safetensors \(dtype.rawValue): max |Δlogit| = \(error)")
            XCTAssertLessThanOrEqual(error, tolerance, dtype.rawValue)
            let config = try ModelConfig(path: out)
            XCTAssertFalse(config.has("quantization_config"))
            let store = try SafeTensorsStore(directory: out)
            XCTAssertFalse(store.tensorNames.contains { $0.hasSuffix("_scale_inv") })
            XCTAssertEqual(try store.tensor("model.layers.0.mlp.down_proj.weight").dtype, dtype)
            XCTAssertEqual(try store.tensor("model.layers.1.mlp.gate.e_score_correction_bias").dtype, .f32)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["BF16", "F32"], "no temporary directories left")
    }

    func testExistingOutputIsNotReplacedWithoutForce() throws {
        let dir = try scratchDirectory()
        let out = dir + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: out + "/note.txt"))
        XCTAssertThrowsError(try SafeTensorsExporter.export(directory: FixturePaths.model("qwen2-tiny"), to: out, dtype: .bf16)) {
            XCTAssertTrue("\($0)".contains("not empty") && "\($0)".contains("--force"), "\($0)")
        }
        XCTAssertEqual(try String(contentsOfFile: out + "/note.txt", encoding: .utf8), "keep")
        try SafeTensorsExporter.export(directory: FixturePaths.model("qwen2-tiny"), to: out, dtype: .bf16, force: true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/note.txt"))
        XCTAssertNoThrow(try ModelRegistry.load(directory: out))
        XCTAssertThrowsError(try SafeTensorsExporter.export(directory: out, to: out, dtype: .bf16, force: true))
        XCTAssertThrowsError(try SafeTensorsExporter.export(directory: FixturePaths.model("qwen2-tiny"), to: dir + "/x", dtype: .q8_0))
    }

    /// Rows that do not fit a type's blocks fall back as llama.cpp's tools do; 1-D tensors and the router stay F32.
    func testStorageTypeFallbacks() {
        XCTAssertEqual(GGUFExportType.q4_k.storageType(ggufName: "blk.0.ffn_up.weight", shape: [512, 1024]), .q4_K)
        XCTAssertEqual(GGUFExportType.q4_k.storageType(ggufName: "output.weight", shape: [129_280, 1024]), .q6_K)
        XCTAssertEqual(GGUFExportType.q4_k.storageType(ggufName: "output.weight", shape: [256, 64]), .q8_0)
        XCTAssertEqual(GGUFExportType.q8_0.storageType(ggufName: "output.weight", shape: [129_280, 1024]), .q8_0)
        XCTAssertEqual(GGUFExportType.q4_k.storageType(ggufName: "blk.0.attn_k_b.weight", shape: [8, 256, 64]), .q8_0)
        XCTAssertEqual(GGUFExportType.q4_k.storageType(ggufName: "blk.0.attn_k_b.weight", shape: [4, 16, 16]), .f16)
        XCTAssertEqual(GGUFExportType.q8_0.storageType(ggufName: "blk.0.attn_k_b.weight", shape: [4, 16, 16]), .f16)
        XCTAssertEqual(GGUFExportType.q8_0.storageType(ggufName: "blk.1.ffn_gate_inp.weight", shape: [8, 64]), .f32)
        XCTAssertEqual(GGUFExportType.bf16.storageType(ggufName: "blk.0.attn_norm.weight", shape: [64]), .f32)
        XCTAssertEqual(GGUFExportType.bf16.storageType(ggufName: "token_embd.weight", shape: [256, 64]), .bf16)
    }
}
