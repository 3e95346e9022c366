import Foundation
import XCTest
import KujiraFormats
import KujiraModels

/// HF fixture → GGUF (our writer) → our GGUF loader reproduces the HF goldens: the export is the exact inverse of
/// `GGUFModelAdapter` for every fixture architecture.
final class GGUFExportTests: XCTestCase {
    func scratchDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-export-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.path
    }

    func convert(_ fixture: String, _ type: GGUFExportType) throws -> String {
        let path = try scratchDirectory() + "/\(fixture)-\(type.rawValue).gguf"
        let plan = try GGUFExporter.plan(directory: FixturePaths.model(fixture), type: type)
        let vocab = try ModelConfig(path: FixturePaths.model(fixture)).int("vocab_size")
        try GGUFExporter.write(plan, tokenizerMetadata: GGUFExporter.placeholderVocabulary(size: vocab), to: path)
        return path
    }

    /// Largest |Δlogit| over every golden position, and whether the step-1 greedy token (argmax at the last prompt
    /// position) matches the golden's.
    func compare(_ path: String, with fixture: String) throws -> (maxError: Float, sameFirstToken: Bool) {
        let model = try ModelRegistry.load(directory: path)
        var worst: Float = 0
        var same = true
        for golden in try Golden.load(FixturePaths.model(fixture)) {
            let logits = try model.forward(golden.tokens, cache: model.makeCache(), allLogits: true)
            XCTAssertEqual(logits.count, golden.tokens.count * golden.logits[0].count, path)
            guard logits.count == golden.tokens.count * golden.logits[0].count else { return (.infinity, false) }
            for (t, row) in golden.logits.enumerated() {
                for (v, expected) in row.enumerated() { worst = max(worst, abs(logits[t * model.vocabSize + v] - expected)) }
            }
            let last = Array(logits[((golden.tokens.count - 1) * model.vocabSize)...])
            let expectedLast = golden.logits[golden.tokens.count - 1]
            same = same && argmax(last) == argmax(expectedLast)
        }
        return (worst, same)
    }

    func argmax(_ values: [Float]) -> Int { values.indices.max { values[$0] < values[$1] }! }

    static let fixtures = ["qwen2-tiny", "llama-tiny", "deepseek-v3-tiny", "deepseek-v3-tiny-fp8", "deepseek-v2-lite-tiny",
                           "deepseek-v3-tiny-bf16", "qwen3-tiny", "qwen3-moe-tiny"]

    /// F32 files hold the source values exactly (FP8 dequantised with its block scales), so the logits match the goldens
    /// to the same 1e-4 as the safetensors checkpoints (the FP8 fixture's own tolerance is 1e-3).
    func testF32ExportReproducesTheGoldens() throws {
        for fixture in Self.fixtures {
            let (error, same) = try compare(try convert(fixture, .f32), with: fixture)
            print("\(fixture) → GGUF f32: max |Δlogit| = \(error)")
            XCTAssertLessThanOrEqual(error, fixture.hasSuffix("fp8") ? 1e-3 : 1e-4, fixture)
            XCTAssertTrue(same, fixture)
        }
    }

    /// Q8_0 rounds each weight to 1/254 of its block's range (and our loader then runs 8-bit activations): the same 0.25
    /// that bounds llama.cpp's own quantized files in GGUFModelTests bounds ours, and the first greedy token must not
    /// change. MoE models are left to the byte comparison below: a router near-tie flips an expert under any 8-bit
    /// rounding (the fixtures README), and our MoE Q8_0 file is llama.cpp's byte for byte.
    func testQ8_0ExportStaysCloseToTheGoldens() throws {
        for fixture in ["qwen2-tiny", "llama-tiny"] {
            let (error, same) = try compare(try convert(fixture, .q8_0), with: fixture)
            print("\(fixture) → GGUF q8_0: max |Δlogit| = \(error)")
            XCTAssertLessThanOrEqual(error, 0.25, fixture)
            XCTAssertTrue(same, fixture)
        }
    }

    /// Our exports of the fixtures llama.cpp's converter also converted carry the same architecture metadata, tensor
    /// names, shapes and types, and the same tensor bytes.
    func testExportsMatchLlamaCppConverterByteForByte() throws {
        for (fixture, type, reference) in [("deepseek-v3-tiny", GGUFExportType.q8_0, "deepseek-v3-tiny-q8_0"), ("deepseek-v3-tiny", .f32, "deepseek-v3-tiny-f32"),
                                           ("deepseek-v3-tiny", .f16, "deepseek-v3-tiny-f16"), ("qwen2-tiny", .q8_0, "qwen2-tiny-q8_0"),
                                           ("qwen2-tiny", .f32, "qwen2-tiny-f32"), ("qwen2-tiny", .f16, "qwen2-tiny-f16"),
                                           ("qwen3-tiny", .f32, "qwen3-tiny-f32"), ("qwen3-tiny", .q8_0, "qwen3-tiny-q8_0"),
                                           ("qwen3-moe-tiny", .f32, "qwen3-moe-tiny-f32"), ("qwen3-moe-tiny", .q8_0, "qwen3-moe-tiny-q8_0")] {
            let ours = try GGUFFile(path: try convert(fixture, type))
            let theirs = try GGUFFile(path: FixturePaths.root.appendingPathComponent("gguf/\(reference).gguf").path)
            let arch = try XCTUnwrap(theirs.string("general.architecture"))
            func modelKeys(_ file: GGUFFile) -> [String] { file.metadataKeys.filter { $0.hasPrefix(arch + ".") || $0 == "general.architecture" || $0 == "general.file_type" } }
            XCTAssertEqual(Set(modelKeys(ours)), Set(modelKeys(theirs)), reference)
            for key in modelKeys(theirs) { XCTAssertEqual(ours.metadata[key], theirs.metadata[key], "\(reference) \(key)") }
            XCTAssertEqual(Set(ours.tensorInfos.map(\.name)), Set(theirs.tensorInfos.map(\.name)), reference)
            for info in theirs.tensorInfos {
                let mine = try XCTUnwrap(ours.tensorInfo(info.name))
                XCTAssertEqual(mine.dims, info.dims, "\(reference) \(info.name)")
                XCTAssertEqual(mine.type, info.type, "\(reference) \(info.name)")
                XCTAssertTrue(ours.tensorBytes(mine).elementsEqual(theirs.tensorBytes(info)), "\(reference) \(info.name): bytes differ from llama.cpp's")
            }
        }
    }

    /// A tensor that fails while writing (here: the config promises a larger vocabulary than the weights hold) leaves
    /// neither the output nor a temporary file; an existing output is kept unless overwriting is asked for.
    func testFailedOrRefusedWritesLeaveNothingBehind() throws {
        let model = try scratchDirectory(), out = try scratchDirectory()
        var config = try ModelConfig(path: FixturePaths.model("qwen2-tiny")).values
        config["vocab_size"] = .integer(300)
        try JSONValue.object(config).serialized().write(to: URL(fileURLWithPath: model + "/config.json"))
        try FileManager.default.copyItem(atPath: FixturePaths.model("qwen2-tiny") + "/model.safetensors", toPath: model + "/model.safetensors")
        let plan = try GGUFExporter.plan(directory: model, type: .q8_0)
        XCTAssertThrowsError(try GGUFExporter.write(plan, tokenizerMetadata: GGUFExporter.placeholderVocabulary(size: 300), to: out + "/m.gguf")) {
            XCTAssertTrue("\($0)".contains("model.embed_tokens.weight"), "\($0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), [])

        let existing = out + "/keep.gguf"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: existing))
        let good = try GGUFExporter.plan(directory: FixturePaths.model("qwen2-tiny"), type: .f16)
        XCTAssertThrowsError(try GGUFExporter.write(good, tokenizerMetadata: GGUFExporter.placeholderVocabulary(size: 256), to: existing)) {
            XCTAssertTrue("\($0)".contains("--force"), "\($0)")
        }
        XCTAssertEqual(try String(contentsOfFile: existing, encoding: .utf8), "keep")
        try GGUFExporter.write(good, tokenizerMetadata: GGUFExporter.placeholderVocabulary(size: 256), to: existing, overwrite: true)
        XCTAssertNoThrow(try ModelRegistry.load(directory: existing))
    }

    func testUnsupportedModelTypeIsNamed() throws {
        let dir = try scratchDirectory()
        try Data(#"{"model_type": "mamba", "hidden_size": 8}"#.utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        try Data(contentsOf: URL(fileURLWithPath: FixturePaths.model("qwen2-tiny") + "/model.safetensors"))
            .write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        XCTAssertThrowsError(try GGUFExporter.plan(directory: dir, type: .f32)) {
            XCTAssertTrue("\($0)".contains("'mamba'") && "\($0)".contains("deepseek_v3"), "\($0)")
        }
    }

    /// MTP layers (index ≥ num_hidden_layers) are left out, as llama.cpp's converter drops them.
    func testMultiTokenPredictionLayersAreSkipped() throws {
        let plan = try GGUFExporter.plan(directory: FixturePaths.model("deepseek-v3-tiny-mtp"), type: .f32)
        XCTAssertFalse(plan.skippedTensors.isEmpty)
        XCTAssertTrue(plan.skippedTensors.allSatisfy { $0.hasPrefix("model.layers.3.") }, "\(plan.skippedTensors)")
        XCTAssertFalse(plan.tensors.contains { $0.descriptor.name.hasPrefix("blk.3.") })
        // The main model is unchanged: its last-position logits match the golden's.
        let model = try ModelRegistry.load(directory: try convert("deepseek-v3-tiny-mtp", .f32))
        let url = URL(fileURLWithPath: FixturePaths.model("deepseek-v3-tiny-mtp")).appendingPathComponent("golden.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        for c in json["cases"] as! [[String: Any]] {
            let tokens = (c["tokens"] as! [NSNumber]).map(\.intValue), expected = (c["main_logits_last"] as! [NSNumber]).map(\.floatValue)
            let logits = try model.forward(tokens, cache: model.makeCache(), allLogits: false)
            XCTAssertEqual(logits.count, expected.count)
            XCTAssertLessThanOrEqual(zip(logits, expected).map { abs($0 - $1) }.max() ?? .infinity, 1e-4)
        }
    }
}
