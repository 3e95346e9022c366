import Foundation
import XCTest
@testable import KujiraTokenizer

/// Paths of the fixtures copied into Tests/Fixtures (found from this file, not from bundle resources).
enum TokenizerFixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func json(_ relative: String) throws -> [String: Any] {
        let data = try Data(contentsOf: root.appendingPathComponent(relative))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// One DeepSeek-V3 tokenizer per test process (loading parses a 7.8 MB JSON).
    static let deepseekV3: Result<Tokenizer, Error> = Result {
        try Tokenizer.load(path: path("tokenizers/deepseek-v3"))
    }
}
