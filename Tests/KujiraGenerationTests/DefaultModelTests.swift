import Foundation
import KujiraGeneration
import XCTest

final class DefaultModelTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-default-\(UUID().uuidString)").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// The compiled-in model is written out byte for byte as Models/kujira-arith, under KUJIRA_CACHE, once.
    func testEmbeddedModelIsWrittenOutExactlyOnce() throws {
        let cache = temporaryDirectory()
        let directory = try DefaultModel.embeddedDirectory(environment: ["KUJIRA_CACHE": cache])
        XCTAssertTrue(directory.hasPrefix(cache + "/embedded/kujira-arith-"), directory)
        let source = Self.repository.appendingPathComponent("Models/kujira-arith").path
        let names = try FileManager.default.contentsOfDirectory(atPath: source).filter { !$0.hasPrefix(".") }.sorted()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).sorted(), names)
        for name in names {
            XCTAssertEqual(FileManager.default.contents(atPath: "\(directory)/\(name)"), FileManager.default.contents(atPath: "\(source)/\(name)"), name)
        }
        let modified = try FileManager.default.attributesOfItem(atPath: "\(directory)/model.safetensors")[.modificationDate] as? Date
        XCTAssertEqual(try DefaultModel.embeddedDirectory(environment: ["KUJIRA_CACHE": cache]), directory)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: "\(directory)/model.safetensors")[.modificationDate] as? Date, modified,
                       "the second use reuses the written files")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache + "/embedded").filter { $0.hasPrefix(".tmp-") }, [])
    }

    func testCacheDirectoryFollowsTheEnvironment() {
        XCTAssertEqual(DefaultModel.cacheDirectory(environment: ["KUJIRA_CACHE": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"]), "/c")
        XCTAssertEqual(DefaultModel.cacheDirectory(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]), "/x/kujira")
        XCTAssertEqual(DefaultModel.cacheDirectory(environment: ["HOME": "/h"]), "/h/.cache/kujira")
    }

    func testEnvironmentOverrideWinsAndIsChecked() throws {
        let dir = NSTemporaryDirectory()
        XCTAssertEqual(try DefaultModel.directory(environment: ["KUJIRA_MODEL": dir]), dir)
        XCTAssertEqual(try DefaultModel.resolve("/explicit", environment: ["KUJIRA_MODEL": dir]), "/explicit")
        XCTAssertThrowsError(try DefaultModel.directory(environment: ["KUJIRA_MODEL": "/no/such/model"])) { error in
            XCTAssertEqual(error as? DefaultModelError, .missingOverride(path: "/no/such/model"))
        }
    }

    func testFallsBackToTheEmbeddedModelAndNamesAnUnwritableCache() throws {
        let cache = temporaryDirectory()
        let embedded = try DefaultModel.embeddedDirectory(environment: ["KUJIRA_CACHE": cache])
        XCTAssertEqual(try DefaultModel.directory(environment: ["KUJIRA_CACHE": cache]), embedded)
        XCTAssertEqual(try DefaultModel.directory(environment: ["KUJIRA_CACHE": cache, "KUJIRA_MODEL": ""]), embedded)
        let file = temporaryDirectory()
        try Data().write(to: URL(fileURLWithPath: file))  // a file where the cache directory should be
        XCTAssertThrowsError(try DefaultModel.directory(environment: ["KUJIRA_CACHE": file])) { error in
            XCTAssertTrue("\(error)".contains("KUJIRA_CACHE") && "\(error)".contains(file), "\(error)")
        }
    }

    /// The binary copied out of the build tree and run from `/` still has its model: it answers from the bytes compiled
    /// into it (issue 18: `cp .build/release/kujira /usr/local/bin/ && cd / && kujira chat "What is 2+3?"`).
    func testACopiedBinaryAnswersFromAnyDirectory() throws {
        let built = try builtKujira()
        let home = temporaryDirectory()
        try FileManager.default.createDirectory(atPath: home + "/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: built, toPath: home + "/bin/kujira")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: home + "/bin/kujira")
        process.arguments = ["chat", "What is 2+3?"]
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        process.environment = ["HOME": home, "PATH": "/usr/bin:/bin"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("5"), text)
        XCTAssertTrue(FileManager.default.fileExists(atPath: home + "/.cache/kujira/embedded"), "written under the user's cache")
    }
}
