import Foundation
import XCTest
import KujiraFuzzTargets

/// Replays the committed fuzz corpus and crash regressions (Tests/Fixtures/fuzz/TARGET/) through each fuzz target: a
/// crash or hang here is a regression of a bug fuzzing found.
final class FuzzCorpusTests: XCTestCase {
    static let fuzzFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/fuzz").path
    static let models = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models").path

    func testEveryTargetReplaysItsCorpus() throws {
        let workspace = FuzzWorkspace(fixtures: Self.models)
        XCTAssertFalse(workspace.modelTypes.isEmpty, "no tiny checkpoints found in \(Self.models)")
        for target in FuzzTarget.allCases {
            let directory = (Self.fuzzFixtures as NSString).appendingPathComponent(target.rawValue)
            let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            XCTAssertGreaterThan(names.count, 0, "empty corpus for \(target.rawValue)")
            for name in names {
                let data = try Data(contentsOf: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(name)))
                target.run(data, workspace: workspace)
            }
        }
    }
}
