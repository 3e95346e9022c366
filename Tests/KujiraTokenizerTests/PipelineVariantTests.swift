import Foundation
import XCTest
@testable import KujiraTokenizer

/// A small byte-level BPE tokenizer under many pipeline variants (split behaviours and invert, Digits,
/// add_prefix_space, NFC, ignore_merges, merges as pairs, added-token lstrip/rstrip/single_word, an unknown
/// regex on the ICU path, TemplateProcessing BOS) against ids from HF tokenizers
/// (scripts/make-tiny-tokenizer-goldens.py).
final class PipelineVariantTests: XCTestCase {
    func testEveryVariantMatchesHFTokenizers() throws {
        let basePath = TokenizerFixtures.path("tokenizers/tiny/tokenizer.json")
        let base = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: basePath))) as? [String: Any])
        let golden = try TokenizerFixtures.json("tokenizers/tiny/golden.json")
        let texts = try XCTUnwrap(golden["texts"] as? [String])
        let variants = try XCTUnwrap(golden["variants"] as? [[String: Any]])
        XCTAssertEqual(variants.count, 27)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-tiny-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        for variant in variants {
            let name = try XCTUnwrap(variant["name"] as? String)
            let spec = try XCTUnwrap(variant["spec"] as? [String: Any])
            var json = base
            for (key, value) in spec {
                var model = json["model"] as? [String: Any] ?? [:]
                switch key {
                case "model.ignore_merges":
                    model["ignore_merges"] = value
                    json["model"] = model
                case "merges-as-pairs":
                    let merges = model["merges"] as? [String] ?? []
                    model["merges"] = merges.map { $0.split(separator: " ", maxSplits: 1).map(String.init) }
                    json["model"] = model
                default:
                    json[key] = value
                }
            }
            let file = directory.appendingPathComponent("\(name).json")
            try JSONSerialization.data(withJSONObject: json).write(to: file)
            let tokenizer = try Tokenizer.load(path: file.path)
            let ids = try XCTUnwrap(variant["ids"] as? [[Int]])
            let withSpecial = try XCTUnwrap(variant["ids_with_special"] as? [[Int]])
            for (index, text) in texts.enumerated() {
                XCTAssertEqual(tokenizer.encode(text, addSpecialTokens: false), ids[index], "\(name): \(text.debugDescription)")
                XCTAssertEqual(tokenizer.encode(text, addSpecialTokens: true), withSpecial[index], "\(name) +special: \(text.debugDescription)")
            }
        }
    }

    func testBadFilesThrowClearErrors() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let notJSON = directory.appendingPathComponent("tokenizer.json")
        try Data("{not json".utf8).write(to: notJSON)
        XCTAssertThrowsError(try Tokenizer.load(path: notJSON.path)) { error in
            XCTAssertTrue("\(error)".contains("tokenizer.json"), "\(error)")
        }
        let noModel = directory.appendingPathComponent("nomodel.json")
        try Data(#"{"added_tokens": []}"#.utf8).write(to: noModel)
        XCTAssertThrowsError(try Tokenizer.load(path: noModel.path)) { error in
            XCTAssertEqual(error as? TokenizerError, .missingField(path: noModel.path, field: "model"))
        }
        let badMerge = directory.appendingPathComponent("badmerge.json")
        try Data(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [42]}}"#.utf8).write(to: badMerge)
        XCTAssertThrowsError(try Tokenizer.load(path: badMerge.path)) { error in
            XCTAssertTrue("\(error)".contains("model.merges[0]"), "\(error)")
        }
        let badGGUF = directory.appendingPathComponent("bad.gguf")
        try Data("GGUF\u{3}\0\0\0".utf8).write(to: badGGUF)
        XCTAssertThrowsError(try Tokenizer.load(path: badGGUF.path))
        XCTAssertThrowsError(try Tokenizer.load(path: directory.appendingPathComponent("missing").path)) { error in
            XCTAssertTrue("\(error)".contains("missing"), "\(error)")
        }
    }
}
