import Foundation
import XCTest
@testable import KujiraTokenizer

/// tokenizer_config.json / generation_config.json handling around the small tokenizer.json fixture.
final class TokenizerConfigTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes the tiny tokenizer.json (optionally without its BOS-adding post-processor) and a config.
    func makeModelDirectory(keepPostProcessor: Bool, config: [String: Any], generation: [String: Any]? = nil) throws -> Tokenizer {
        let base = TokenizerFixtures.path("tokenizers/tiny/tokenizer.json")
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base))) as? [String: Any])
        if !keepPostProcessor {
            json["post_processor"] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        }
        try JSONSerialization.data(withJSONObject: json).write(to: directory.appendingPathComponent("tokenizer.json"))
        try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("tokenizer_config.json"))
        if let generation {
            try JSONSerialization.data(withJSONObject: generation).write(to: directory.appendingPathComponent("generation_config.json"))
        }
        return try Tokenizer.load(path: directory.path)
    }

    func testAddBOSTokenFromConfig() throws {
        let config: [String: Any] = [
            "add_bos_token": true,
            "bos_token": ["__type": "AddedToken", "content": "<s>", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false],
            "eos_token": "</s>",
        ]
        let plain = try makeModelDirectory(keepPostProcessor: false, config: config)
        let bos = try XCTUnwrap(plain.tokenToId("<s>"))
        XCTAssertEqual(plain.bosTokenId, bos)
        XCTAssertEqual(plain.eosTokenIds, [try XCTUnwrap(plain.tokenToId("</s>"))])
        let ids = plain.encode("Hello world")
        XCTAssertFalse(ids.isEmpty)
        XCTAssertEqual(plain.encode("Hello world", addSpecialTokens: true), [bos] + ids)
        // A template that already adds BOS does not get a second one.
        let templated = try makeModelDirectory(keepPostProcessor: true, config: config)
        XCTAssertEqual(templated.encode("Hello world", addSpecialTokens: true), [bos] + ids)
    }

    func testNamedChatTemplatesAndGenerationConfigEOS() throws {
        let config: [String: Any] = [
            "eos_token": "</s>",
            "chat_template": [["name": "tool_use", "template": "TOOLS"], ["name": "default", "template": "DEFAULT"]],
        ]
        let tokenizer = try makeModelDirectory(keepPostProcessor: false, config: config,
                                               generation: ["eos_token_id": [401, 400]])
        XCTAssertEqual(tokenizer.chatTemplate, "DEFAULT")
        XCTAssertEqual(tokenizer.namedChatTemplates, ["tool_use": "TOOLS", "default": "DEFAULT"])
        XCTAssertEqual(tokenizer.eosTokenIds, [401, 400])
        XCTAssertEqual(tokenizer.encode("Hello", addSpecialTokens: true), tokenizer.encode("Hello"))
    }

    /// transformers' precedence: chat_template.jinja beats the config field; a named list needs a "default".
    func testChatTemplateSourcesFollowTransformersPrecedence() throws {
        try "FROM FILE".write(to: directory.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        let tokenizer = try makeModelDirectory(keepPostProcessor: false, config: ["chat_template": "FROM CONFIG"])
        XCTAssertEqual(tokenizer.chatTemplate, "FROM FILE")
        XCTAssertEqual(try ChatTemplate.load(path: directory.path).render(messages: [JinjaValue]()), "FROM FILE")
        try FileManager.default.removeItem(at: directory.appendingPathComponent("chat_template.jinja"))
        let named = try makeModelDirectory(keepPostProcessor: false, config: ["chat_template": [["name": "tool_use", "template": "TOOLS"]]])
        XCTAssertNil(named.chatTemplate)
        XCTAssertEqual(named.namedChatTemplates, ["tool_use": "TOOLS"])
    }
}
