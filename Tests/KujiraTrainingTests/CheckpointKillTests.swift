import Foundation
import KujiraFormats
import KujiraTraining
import XCTest

/// `kujira train` killed with SIGKILL at random moments and resumed each time ends with the loss history of a run
/// that was never interrupted: a kill costs at most the steps since the last checkpoint and never a checkpoint.
final class CheckpointKillTests: XCTestCase {
    /// The `kujira` executable built beside this test bundle (`swift test` builds every product).
    func kujira() throws -> String {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [directory, directory.deletingLastPathComponent()].map { $0.appendingPathComponent("kujira").path }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("no kujira executable beside the test bundle (\(candidates[0])); run `swift build` first")
        }
        return found
    }

    /// Runs `kujira ARGUMENTS`; with `killWhen`, polls it every millisecond and sends SIGKILL once it returns true.
    /// Returns the exit status, or minus the signal that ended the process.
    func run(_ binary: String, _ arguments: [String], killWhen: (() -> Bool)? = nil) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        if let killWhen {
            while process.isRunning && !killWhen() { usleep(1_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? -process.terminationStatus : process.terminationStatus
    }

    /// The main losses of a finished run, from its newest checkpoint.
    func losses(_ run: String) throws -> [Double] {
        let state = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/latest/trainer_state.json"))) as? [String: Any])
        let history = try XCTUnwrap(state["history"] as? [[String: Any]])
        return history.compactMap { $0["loss"] as? Double }
    }

    func testSIGKILLAtRandomMomentsThenResumeGivesTheSameLossCurve() throws {
        let binary = try kujira()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-kill-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        var values = ModelGradientTests.tinyConfig(qLoraRank: 8, mtp: true).values
        values["vocab_size"] = .number(32)
        let config = "\(root)/config.json"
        try JSONValue.object(values).serialized().write(to: URL(fileURLWithPath: config))
        let steps = 60
        let common = ["--steps", "\(steps)", "--batch", "2", "--seq", "48", "--digits", "1-2", "--eval-every", "0", "--checkpoint-every", "1",
                      "--warmup", "5", "--seed", "3"]

        let reference = "\(root)/reference"
        XCTAssertEqual(try run(binary, ["train", "--config", config, "--out", reference] + common), 0)
        let expected = try losses(reference)
        XCTAssertEqual(expected.count, steps)

        // Each round waits for the process to publish a new checkpoint, then kills it 0–30 ms later: in the middle of
        // the next step or of writing, fsyncing, renaming or pruning a checkpoint. The first round is killed during
        // start-up, before any checkpoint exists.
        let path = "\(root)/killed"
        let checkpoints = CheckpointDirectory(root: path)
        var random = SystemRandomNumberGenerator()
        var kills = 0, resumes = 0
        var killedAt: [Int] = []
        for round in 0..<(steps + 1) {
            let newest = checkpoints.steps().last
            let arguments = newest == nil ? ["train", "--config", config, "--out", path] + common : ["train", "--resume", "--out", path]
            if newest != nil { resumes += 1 }
            var status: Int32
            if kills < 20 {
                var progressed: Date?
                let delay = Double.random(in: 0...0.03, using: &random)
                status = try run(binary, arguments) {
                    if round == 0 { return true }
                    if progressed == nil, (checkpoints.steps().last ?? -1) > (newest ?? -1) { progressed = Date() }
                    return progressed.map { Date().timeIntervalSince($0) >= delay } ?? false
                }
                if status == -SIGKILL {
                    kills += 1
                    killedAt.append(checkpoints.steps().last ?? 0)
                    continue
                }
            } else {
                status = try run(binary, arguments)
            }
            XCTAssertEqual(status, 0, "kujira train exited with \(status) after \(kills) kills")
            if checkpoints.steps().last == steps { break }
        }
        let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasPrefix(".tmp-") }
        XCTAssertEqual(leftovers, [], "temporary files left behind")
        print("CheckpointKillTests: \(kills) kills, \(resumes) resumes; newest checkpoint after each kill: \(killedAt)")
        XCTAssertGreaterThanOrEqual(kills, 20)
        XCTAssertGreaterThan(resumes, 0)
        XCTAssertEqual(try losses(path), expected, "\(kills) kills, \(resumes) resumes")
        XCTAssertLessThanOrEqual(checkpoints.steps().count, 3, "only the newest checkpoints are kept")
    }
}

extension CheckpointKillTests {
    /// `kujira sft --lora-rank` killed with SIGKILL at random moments (start-up, steps, saves) and resumed each time ends
    /// with the uninterrupted run's loss history: adapter, optimizer moments and trainer state are published together.
    func testSFTKilledAndResumedGivesTheSameLossCurve() throws {
        let binary = try kujira()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-sft-kill-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        let model = try SFTTests.chatModel()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: model) }
        let data = "\(root)/train.jsonl"
        try (0..<24).map { #"{"messages": [{"role": "user", "content": "Say \#($0 % 5)"}, {"role": "assistant", "content": "whale \#($0 % 5)"}]}"# }
            .joined(separator: "\n").write(toFile: data, atomically: true, encoding: .utf8)
        let steps = 16
        let common = ["--model", model, "--data", data, "--seq", "64", "--batch", "2", "--steps", "\(steps)", "--lr", "3e-3", "--warmup", "2",
                      "--eval-every", "0", "--checkpoint-every", "1", "--lora-rank", "4"]
        let reference = "\(root)/reference"
        XCTAssertEqual(try run(binary, ["sft", "--out", reference] + common), 0)
        let expected = try losses(reference)
        XCTAssertEqual(expected.count, steps)

        let path = "\(root)/killed", checkpoints = CheckpointDirectory(root: path)
        var random = SystemRandomNumberGenerator()
        var kills = 0
        for round in 0..<(steps + 8) {
            let newest = checkpoints.steps().last
            let arguments = newest == nil ? ["sft", "--out", path] + common : ["sft", "--resume", "--out", path]
            let delay = Double.random(in: 0...0.02, using: &random)
            var progressed: Date?
            let status = try run(binary, arguments) {
                guard kills < 8 else { return false }
                if round == 0 { return true }
                if progressed == nil, (checkpoints.steps().last ?? -1) > (newest ?? -1) { progressed = Date() }
                return progressed.map { Date().timeIntervalSince($0) >= delay } ?? false
            }
            if status == -SIGKILL { kills += 1; continue }
            XCTAssertEqual(status, 0, "kujira sft exited with \(status) after \(kills) kills")
            if checkpoints.steps().last == steps { break }
        }
        XCTAssertGreaterThanOrEqual(kills, 8)
        XCTAssertEqual(try losses(path), expected, "\(kills) kills")
        XCTAssertEqual(((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasPrefix(".tmp-") }, [])
    }
}
