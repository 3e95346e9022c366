import Foundation
import XCTest
import KujiraModels

/// Locates the test fixtures copied into `Tests/Fixtures`.
enum FixturePaths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func model(_ name: String) -> String { root.appendingPathComponent("models/\(name)").path }

    /// Copies fixture model `name` (weights and config) into `directory`, replacing what is there, with `edit` applied
    /// to its config dictionary; returns `directory`'s path.
    static func editedCopy(of name: String, into directory: URL, edit: (inout [String: Any]) -> Void) throws -> String {
        let source = URL(fileURLWithPath: model(name))
        for file in ["model.safetensors", "config.json"] { try? FileManager.default.removeItem(at: directory.appendingPathComponent(file)) }
        try FileManager.default.copyItem(at: source.appendingPathComponent("model.safetensors"), to: directory.appendingPathComponent("model.safetensors"))
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("config.json"))
        return directory.path
    }
}

/// One `golden.json` case: tokens, per-position logits from HF transformers, and greedy continuation.
struct GoldenCase {
    let tokens: [Int]
    let logits: [[Float]]
    let greedy: [Int]
}

/// A golden file whose shape is not what the tests read: a missing key or a row count that does not match.
struct MalformedGolden: Error, CustomStringConvertible {
    let description: String
}

enum Golden {
    /// Every case must carry `tokens`, one `logits` row of the same width per token, and a non-empty `greedy`:
    /// a golden that lost its logits fails here instead of leaving the comparisons nothing to compare.
    static func load(_ directory: String) throws -> [GoldenCase] {
        let url = URL(fileURLWithPath: directory).appendingPathComponent("golden.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        guard let cases = json?["cases"] as? [[String: Any]], !cases.isEmpty else { throw MalformedGolden(description: "\(url.path): no cases") }
        return try cases.enumerated().map { index, c in
            let label = "\(url.path) case \(index)"
            guard let tokens = (c["tokens"] as? [NSNumber])?.map(\.intValue), !tokens.isEmpty else { throw MalformedGolden(description: "\(label): no tokens") }
            guard let logits = (c["logits"] as? [[NSNumber]])?.map({ $0.map(\.floatValue) }) else { throw MalformedGolden(description: "\(label): no logits") }
            guard logits.count == tokens.count, let width = logits.first?.count, width > 0, logits.allSatisfy({ $0.count == width }) else {
                throw MalformedGolden(description: "\(label): \(logits.count) logit rows for \(tokens.count) tokens, or rows of different widths")
            }
            guard let greedy = (c["greedy"] as? [NSNumber])?.map(\.intValue), !greedy.isEmpty else { throw MalformedGolden(description: "\(label): no greedy tokens") }
            return GoldenCase(tokens: tokens, logits: logits, greedy: greedy)
        }
    }
}

/// Token-by-token decoding that records each step's logits and each token's expert choices (per MoE layer, the
/// tokens each expert received at that step), so cache-precision tests can stop comparing once routing flips.
enum RoutedRun {
    static func run(_ model: any LanguageModel, tokens: [Int]) throws -> (logits: [[Float]], routing: [[Int: [Int]]]) {
        let cache = model.makeCache()
        cache.expertLoad = ExpertLoad()
        var logits: [[Float]] = [], routing: [[Int: [Int]]] = []
        var before = cache.expertLoad!.counts
        for token in tokens {
            logits.append(try model.forward([token], cache: cache, allLogits: true))
            let after = cache.expertLoad!.counts
            routing.append(after.reduce(into: [:]) { step, layer in
                step[layer.key] = zip(layer.value, before[layer.key] ?? layer.value.map { _ in 0 }).map { $0 - $1 }
            })
            before = after
        }
        return (logits, routing)
    }

    /// Largest |Δlogit| over the positions before the first routing difference, and how many positions that is.
    static func compare(_ a: (logits: [[Float]], routing: [[Int: [Int]]]), _ b: (logits: [[Float]], routing: [[Int: [Int]]])) -> (maxError: Float, compared: Int) {
        var maxError: Float = 0, compared = 0
        for t in a.logits.indices {
            guard a.routing[...t] == b.routing[...t] else { break }
            maxError = max(maxError, zip(a.logits[t], b.logits[t]).map { abs($0 - $1) }.max()!)
            compared += 1
        }
        return (maxError, compared)
    }
}

extension RoutedRun {
    /// Decodes each model's golden prompt token by token with a float cache and with `precision`, and checks the
    /// logits before the first routing flip: they must differ (the cache is really used) and stay within
    /// 2·L·`relativeStep` of the float run's logit range (each cached value moves by at most `relativeStep` of its
    /// scale, once for K and once for V per layer). At least half the positions must be compared.
    static func assertCloseToFloatCache(_ precision: KVCachePrecision, relativeStep: Float, models: [String],
                                        file: StaticString = #filePath, line: UInt = #line) throws {
        for name in models {
            let dir = FixturePaths.model(name)
            let floatModel = try ModelRegistry.load(directory: dir)
            let model = try ModelRegistry.load(directory: dir, cachePrecision: precision)
            let tokens = try Golden.load(dir)[0].tokens
            let reference = try run(floatModel, tokens: tokens), other = try run(model, tokens: tokens)
            let range = reference.logits.joined().map(abs).max()!
            let bound = 2 * Float(floatModel.summary.layers) * relativeStep * range
            let (maxError, compared) = compare(reference, other)
            print("\(precision) cache, \(name): max |Δlogit| \(maxError) over \(compared) of \(tokens.count) positions (bound \(bound))")
            XCTAssertGreaterThanOrEqual(compared, tokens.count / 2, "\(name): routing flipped early", file: file, line: line)
            XCTAssertGreaterThan(maxError, 0, "\(name): the \(precision) cache changed nothing", file: file, line: line)
            XCTAssertLessThanOrEqual(maxError, bound, "\(name): max |Δlogit| \(maxError) over \(compared) positions, bound \(bound)",
                                     file: file, line: line)
        }
    }
}
