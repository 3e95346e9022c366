import Foundation
import KujiraFormats
import XCTest

/// The checkpoint layout: complete `step-N` directories, `latest` pointing at the newest, the newest `keep` kept,
/// leftovers of an interrupted publish removed, and a run directory opening as its newest checkpoint.
final class CheckpointDirectoryTests: XCTestCase {
    var root: String!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-ckdir-\(UUID().uuidString)").path
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    func publish(_ run: CheckpointDirectory, step: Int, keep: Int = 3) throws {
        try run.publish(step: step, keep: keep) { directory in
            try Data("{\"step\": \(step)}".utf8).write(to: URL(fileURLWithPath: "\(directory)/config.json"))
            try FileManager.default.createDirectory(atPath: "\(directory)/sub", withIntermediateDirectories: false)
            try Data([UInt8(step)]).write(to: URL(fileURLWithPath: "\(directory)/sub/weights"))
        }
    }

    func testPublishKeepsTheNewestAndPointsLatestAtIt() throws {
        let run = CheckpointDirectory(root: root)
        for step in 1...5 { try publish(run, step: step) }
        XCTAssertEqual(run.steps(), [3, 4, 5])
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: "\(root!)/latest"), "step-5")
        XCTAssertEqual(try String(contentsOfFile: "\(root!)/latest/config.json", encoding: .utf8), "{\"step\": 5}")
        XCTAssertEqual(CheckpointDirectory.modelDirectory(root), "\(root!)/step-5")
        XCTAssertEqual(CheckpointDirectory.modelDirectory("\(root!)/step-4"), "\(root!)/step-4", "a checkpoint names itself")
        // Publishing a step again replaces it whole.
        try publish(run, step: 5)
        XCTAssertEqual(run.steps(), [3, 4, 5])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasPrefix(".tmp-") }, [])
    }

    func testKeepIsAtLeastTwo() throws {
        let run = CheckpointDirectory(root: root)
        for step in 1...4 { try publish(run, step: step, keep: 1) }
        XCTAssertEqual(run.steps(), [3, 4])
    }

    func testAFailedWriteLeavesThePreviousCheckpointsAndNoTemporary() throws {
        let run = CheckpointDirectory(root: root)
        try publish(run, step: 1)
        struct Interrupted: Error {}
        XCTAssertThrowsError(try run.publish(step: 2) { directory in
            try Data("partial".utf8).write(to: URL(fileURLWithPath: "\(directory)/config.json"))
            throw Interrupted()
        })
        XCTAssertEqual(run.steps(), [1])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root).sorted(), ["latest", "step-1"])
    }

    func testLeftoversOfAKilledPublishAreIgnoredAndRemoved() throws {
        let run = CheckpointDirectory(root: root)
        try publish(run, step: 1)
        // What a SIGKILL can leave: a half-written temporary directory, and `latest` not yet moved to a newer step.
        try FileManager.default.createDirectory(atPath: "\(root!)/.tmp-step-2-99-1", withIntermediateDirectories: false)
        try Data("half".utf8).write(to: URL(fileURLWithPath: "\(root!)/.tmp-step-2-99-1/config.json"))
        try publish(run, step: 3)
        try FileManager.default.removeItem(atPath: "\(root!)/latest")
        try FileManager.default.createSymbolicLink(atPath: "\(root!)/latest", withDestinationPath: "step-1")
        XCTAssertEqual(run.newest(), "\(root!)/step-3", "the newest complete directory, not what latest says")
        run.removeTemporaries()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasPrefix(".tmp-") }, [])
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: "\(root!)/latest"), "step-3")
    }

    /// A run begun in the older flat layout (files in the run directory) and continued with `step-N` directories opens
    /// the newer checkpoint; a plain model directory opens itself.
    func testFlatLayoutRunContinuedInStepDirectories() throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: "\(root!)/config.json"))
        XCTAssertEqual(CheckpointDirectory.modelDirectory(root), root)
        try publish(CheckpointDirectory(root: root), step: 2)
        XCTAssertEqual(CheckpointDirectory.modelDirectory(root), "\(root!)/step-2")
    }
}
