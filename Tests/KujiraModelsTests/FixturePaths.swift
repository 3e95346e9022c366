import Foundation

/// Locates the test fixtures copied into `Tests/Fixtures`.
enum FixturePaths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func model(_ name: String) -> String { root.appendingPathComponent("models/\(name)").path }
}

/// One `golden.json` case: tokens, per-position logits from HF transformers, and greedy continuation.
struct GoldenCase {
    let tokens: [Int]
    let logits: [[Float]]
    let greedy: [Int]
}

enum Golden {
    static func load(_ directory: String) throws -> [GoldenCase] {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent("golden.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (json["cases"] as! [[String: Any]]).map { c in
            GoldenCase(tokens: (c["tokens"] as! [NSNumber]).map(\.intValue),
                       logits: ((c["logits"] as? [[NSNumber]]) ?? []).map { $0.map(\.floatValue) },
                       greedy: ((c["greedy"] as? [NSNumber]) ?? []).map(\.intValue))
        }
    }
}
