import Foundation
import XCTest
import KujiraFormats
import KujiraModels
import AllocationCounting

/// One crafted input per crash class fuzzing found in the loaders (issue 21): each used to trap on an integer
/// overflow, allocate gigabytes or hang, and must now throw an error naming the file and the field.
final class HostileFileTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    /// A safetensors file with only a header.
    func safetensors(header: String) throws -> String {
        var bytes = [UInt8]()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array(header.utf8))
        let path = directory.appendingPathComponent("model.safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The tiny fixture's config with `edit` applied, loaded over its own weights.
    func loadEdited(_ fixture: String, _ edit: (inout [String: Any]) -> Void) throws -> any LanguageModel {
        try ModelRegistry.load(directory: try FixturePaths.editedCopy(of: fixture, into: directory, edit: edit))
    }

    /// Shape × element size overflowed `Int` (2^39 · 2^23 elements · 4 bytes).
    func testSafetensorsShapeTimesElementSizeOverflow() throws {
        let path = try safetensors(header: #"{"w": {"dtype": "F32", "shape": [549755813888, 8388608], "data_offsets": [0, 0]}}"#)
        XCTAssertThrowsError(try SafeTensorsFile(path: path)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(path) && message.contains("'w'") && message.contains("elements"), message)
        }
    }

    /// A tensor name with a terminal escape sequence and a megabyte of text is quoted, escaped and cut in the error.
    func testNamesFromFilesAreEscapedAndCut() throws {
        let name = "\u{1B}[2J" + String(repeating: "x", count: 1_000_000)
        let header = try String(decoding: JSONSerialization.data(withJSONObject: [name: ["dtype": "F32", "shape": [2], "data_offsets": [0, 4]]]), as: UTF8.self)
        let path = try safetensors(header: header)
        XCTAssertThrowsError(try SafeTensorsFile(path: path)) { error in
            let message = "\(error)"
            XCTAssertFalse(message.contains("\u{1B}"), "raw escape byte in the message")
            XCTAssertTrue(message.contains("\\u{1B}[2J"), message)
            XCTAssertLessThan(message.count, 400)
        }
    }

    /// Heads × head dims and hidden × vocab each fit an `Int` but the model they describe does not exist.
    func testConfigWhoseProductsAreImpossible() throws {
        XCTAssertThrowsError(try loadEdited("llama-tiny") {
            $0["hidden_size"] = 2_000_000_000; $0["num_attention_heads"] = 2_000_000_000; $0["head_dim"] = 2_000_000_000
            $0["num_key_value_heads"] = 2_000_000_000; $0["intermediate_size"] = 2_000_000_000; $0["vocab_size"] = 2_000_000_000
        }) { error in
            guard let size = error as? SizeError else { return XCTFail("\(error)") }
            XCTAssertTrue(size.source.hasSuffix("config.json"), "\(size)")
        }
    }

    /// An integer beyond 2^31 is refused naming the key (products of two could no longer be trusted).
    func testConfigIntegerOutOfRange() throws {
        XCTAssertThrowsError(try loadEdited("qwen2-tiny") { $0["intermediate_size"] = 1 << 50 }) { error in
            XCTAssertTrue("\(error)".contains("'intermediate_size'") && "\(error)".contains("out of range"), "\(error)")
        }
    }

    /// A layer count of 2^31 − 1 hung listing the parameters before any size check.
    func testRepeatCountsAreBounded() throws {
        XCTAssertThrowsError(try loadEdited("deepseek-v3-tiny") { $0["n_routed_experts"] = Int(Int32.max) }) { error in
            XCTAssertTrue("\(error)".contains("'n_routed_experts'") && "\(error)".contains("at most \(SizeLimits.maxRepeats)"), "\(error)")
        }
        XCTAssertThrowsError(try loadEdited("llama-tiny") { $0["num_hidden_layers"] = 1_000_000 }) { error in
            XCTAssertTrue("\(error)".contains("'num_hidden_layers'"), "\(error)")
        }
    }

    /// A RoPE width that only the config names built its tables (gigabytes) before the weights' shapes were read; the
    /// stored tensors now contradict it first.
    /// (Without the check this load took 3 minutes and 12.6 GB before failing.)
    func testRopeDimensionContradictedByTheWeightsBeforeAllocating() throws {
        kujira_allocations_start()
        XCTAssertThrowsError(try loadEdited("deepseek-v3-tiny") { $0["qk_rope_head_dim"] = 1 << 24 }) { error in
            guard case let .shapeMismatch(name, _, _, _)? = error as? WeightStoreError else { return XCTFail("\(error)") }
            XCTAssertTrue(name.contains("model.layers.0.self_attn"), name)
        }
        _ = kujira_allocations_stop()
        if kujira_allocations_available() == 1 {
            XCTAssertLessThan(kujira_allocations_largest(), 64 << 20, "an allocation sized by the config's RoPE width")
        }
    }

    /// GGUF metadata integers (u64) are clamped before they reach the config, which then names the key.
    func testGGUFMetadataBeyondTheLimitsIsNamed() throws {
        let fixture = FixturePaths.root.appendingPathComponent("fuzz/gguf/llama-tiny-f16.gguf").path
        let file = try GGUFFile(path: fixture)
        var metadata = file.metadataKeys.map { ($0, file.metadata[$0]!) }
        let index = try XCTUnwrap(metadata.firstIndex { $0.0 == "llama.block_count" })
        metadata[index].1 = .uint64(1 << 62)
        let path = directory.appendingPathComponent("m.gguf").path
        let writer = try GGUFWriter(path: path, metadata: metadata,
                                    tensors: file.tensorInfos.map { GGUFTensorDescriptor(name: $0.name, shape: $0.shape, type: $0.type) })
        for info in file.tensorInfos { try writer.append(file.tensorBytes(info)) }
        try writer.finish()
        XCTAssertThrowsError(try ModelRegistry.load(directory: path)) { error in
            XCTAssertTrue("\(error)".contains("'num_hidden_layers'") && "\(error)".contains("out of range"), "\(error)")
        }
    }
}
