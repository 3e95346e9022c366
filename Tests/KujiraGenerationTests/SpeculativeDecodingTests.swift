import Foundation
import XCTest
import KujiraGeneration
import KujiraFormats
import KujiraModels

/// MTP speculation is lossless: the same greedy tokens as plain decoding, for any draft length.
final class SpeculativeDecodingTests: XCTestCase {
    func testSpeculativeGreedyEqualsPlainGreedy() throws {
        let dir = GreedyGoldenTests.models.appendingPathComponent("deepseek-v3-tiny-mtp").path
        let model = try XCTUnwrap(try ModelRegistry.load(directory: dir) as? DeepseekV3Model)
        let prompts = [[5, 17, 200, 3], [1], [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111]]
        var totalAccepted = 0
        for prompt in prompts {
            let plain = try Generator(model: model).generate(prompt: prompt, maxTokens: 40, sampling: SamplingConfiguration(), stopTokens: [])
            for k in 1...3 {
                let (tokens, stats) = try SpeculativeDecoder(model: model, draftTokens: k).generate(prompt: prompt, maxTokens: 40, stopTokens: [])
                XCTAssertEqual(tokens, plain, "prompt \(prompt) k \(k)")
                XCTAssertGreaterThan(stats.rounds, 0)
                XCTAssertLessThanOrEqual(stats.accepted, stats.drafted)
                totalAccepted += stats.accepted
            }
        }
        // Random weights still agree sometimes; the test also covers the accept path, not only rejections.
        XCTAssertGreaterThan(totalAccepted, 0)
    }

    func testLosslessOnAModelCreatedByInit() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-spec-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let config = try ModelConfig(path: GreedyGoldenTests.models.appendingPathComponent("deepseek-v3-tiny-mtp").path)
        try ModelInitializer.write(config: config, to: out.path, seed: 11)
        let model = try XCTUnwrap(try ModelRegistry.load(directory: out.path) as? DeepseekV3Model)
        let plain = try Generator(model: model).generate(prompt: [3, 1, 4, 1, 5], maxTokens: 32, sampling: SamplingConfiguration(), stopTokens: [])
        for k in [1, 2, 4] {
            let (tokens, _) = try SpeculativeDecoder(model: model, draftTokens: k).generate(prompt: [3, 1, 4, 1, 5], maxTokens: 32, stopTokens: [])
            XCTAssertEqual(tokens, plain, "k \(k)")
        }
    }

    func testStopsAtStopTokenAndLengthLimit() throws {
        let dir = GreedyGoldenTests.models.appendingPathComponent("deepseek-v3-tiny-mtp").path
        let model = try XCTUnwrap(try ModelRegistry.load(directory: dir) as? DeepseekV3Model)
        let plain = try Generator(model: model).generate(prompt: [7, 8, 9], maxTokens: 30, sampling: SamplingConfiguration(), stopTokens: [])
        let stop = plain[5]
        let expected = Array(plain.prefix(through: plain.firstIndex(of: stop)!))
        let (tokens, _) = try SpeculativeDecoder(model: model, draftTokens: 3).generate(prompt: [7, 8, 9], maxTokens: 30, stopTokens: [stop])
        XCTAssertEqual(tokens, expected)
        let (short, _) = try SpeculativeDecoder(model: model, draftTokens: 3).generate(prompt: [7, 8, 9], maxTokens: 4, stopTokens: [])
        XCTAssertEqual(short, Array(plain.prefix(4)))
    }

    func testModelWithoutMTPIsRejected() throws {
        let dir = GreedyGoldenTests.models.appendingPathComponent("deepseek-v3-tiny").path
        let model = try XCTUnwrap(try ModelRegistry.load(directory: dir) as? DeepseekV3Model)
        XCTAssertThrowsError(try SpeculativeDecoder(model: model))
    }
}
