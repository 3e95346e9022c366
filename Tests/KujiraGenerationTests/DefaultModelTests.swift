import Foundation
import KujiraGeneration
import XCTest

final class DefaultModelTests: XCTestCase {
    func testEmbeddedDirectoryIsTheRepositoryModelsFolder() {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        XCTAssertEqual(DefaultModel.embeddedDirectory, repo.appendingPathComponent("Models/kujira-arith").path)
    }

    func testEnvironmentOverrideWinsAndIsChecked() throws {
        let dir = NSTemporaryDirectory()
        XCTAssertEqual(try DefaultModel.directory(environment: ["KUJIRA_MODEL": dir]), dir)
        XCTAssertEqual(try DefaultModel.resolve("/explicit", environment: ["KUJIRA_MODEL": dir]), "/explicit")
        XCTAssertThrowsError(try DefaultModel.directory(environment: ["KUJIRA_MODEL": "/no/such/model"])) { error in
            XCTAssertEqual(error as? DefaultModelError, .missingOverride(path: "/no/such/model"))
        }
    }

    func testFallsBackToTheEmbeddedModel() throws {
        let embedded = DefaultModel.embeddedDirectory
        if FileManager.default.fileExists(atPath: embedded + "/config.json") {
            XCTAssertEqual(try DefaultModel.directory(environment: [:]), embedded)
            XCTAssertEqual(try DefaultModel.directory(environment: ["KUJIRA_MODEL": ""]), embedded)
        } else {
            XCTAssertThrowsError(try DefaultModel.directory(environment: [:])) { error in
                XCTAssertTrue("\(error)".contains("KUJIRA_MODEL"))
            }
        }
    }
}
