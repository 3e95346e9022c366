import Foundation
import XCTest
import KujiraFormats
import KujiraTensor

/// safetensors reading: real fixtures, sharded indexes, and every kind of broken file named in the error.
final class SafeTensorsTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func sample() -> [SafeTensorsWriter.Tensor] {
        [.float32("a", shape: [2, 3], values: [1, 2, 3, 4, 5, 6]),
         SafeTensorsWriter.Tensor(name: "b", dtype: .bf16, shape: [2], bytes: [0x80, 0x3F, 0x00, 0xC0]),  // 1.0, -2.0
         SafeTensorsWriter.Tensor(name: "c", dtype: .f16, shape: [1], bytes: [0x00, 0x3C])]  // 1.0
    }

    func testRoundTripAndDTypes() throws {
        try SafeTensorsWriter.write(sample(), metadata: ["format": "pt"], to: path("m.safetensors"))
        let file = try SafeTensorsFile(path: path("m.safetensors"))
        XCTAssertEqual(file.tensorNames, ["a", "b", "c"])
        XCTAssertEqual(file.metadata["format"], "pt")
        XCTAssertEqual(try file.tensor("a").toFloatArray(), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try file.tensor("a").shape, [2, 3])
        XCTAssertEqual(try file.tensor("b").toFloatArray(), [1, -2])
        XCTAssertEqual(try file.tensor("c").toFloatArray(), [1])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("m.safetensors.tmp")))
    }

    func testFP8BlockScalesIncludingPartialEdgeBlocks() throws {
        // 3x5 FP8 weight, blocks of 2x2 → a 2x3 scale grid whose last row and column are partial.
        let fp8One: UInt8 = 0x38  // e4m3: 1.0
        let weight = SafeTensorsWriter.Tensor(name: "w.weight", dtype: .f8e4m3, shape: [3, 5], bytes: Array(repeating: fp8One, count: 15))
        let scales: [Float] = [1, 2, 3, 4, 5, 6]
        try SafeTensorsWriter.write([weight, .float32("w.weight_scale_inv", shape: [2, 3], values: scales)], to: path("model.safetensors"))
        let store = try SafeTensorsStore(directory: directory.path)
        let linear = try store.linear("w.weight", rows: 3, cols: 5, blockSize: [2, 2])
        XCTAssertEqual(linear.toFloatArray(), [1, 1, 2, 2, 3,
                                               1, 1, 2, 2, 3,
                                               4, 4, 5, 5, 6])
        XCTAssertThrowsError(try store.linear("w.weight", rows: 3, cols: 5, blockSize: [1, 1])) { error in
            XCTAssertTrue("\(error)".contains("w.weight_scale_inv"), "\(error)")
        }
    }

    func testFP8DecodingMatchesE4M3() {
        XCTAssertEqual(FloatConversion.decodeF8E4M3(0x38), 1)
        XCTAssertEqual(FloatConversion.decodeF8E4M3(0xB8), -1)
        XCTAssertEqual(FloatConversion.decodeF8E4M3(0x7E), 448)  // largest finite
        XCTAssertEqual(FloatConversion.decodeF8E4M3(0x01), 1.0 / 512)  // smallest subnormal
        XCTAssertTrue(FloatConversion.decodeF8E4M3(0x7F).isNaN)
    }

    func testShardedIndex() throws {
        try SafeTensorsWriter.write([.float32("x", shape: [2], values: [1, 2])], to: path("model-00001-of-00002.safetensors"))
        try SafeTensorsWriter.write([.float32("y", shape: [1], values: [3])], to: path("model-00002-of-00002.safetensors"))
        let index = #"{"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: directory.appendingPathComponent("model.safetensors.index.json"))
        let store = try SafeTensorsStore(directory: directory.path)
        XCTAssertEqual(store.tensorNames, ["x", "y"])
        XCTAssertEqual(try store.tensor("y").toFloatArray(), [3])
        XCTAssertEqual(store.file(of: "x"), path("model-00001-of-00002.safetensors"))
    }

    func testIndexThatListsATensorInTheWrongShard() throws {
        try SafeTensorsWriter.write([.float32("x", shape: [2], values: [1, 2])], to: path("a.safetensors"))
        try SafeTensorsWriter.write([.float32("y", shape: [1], values: [3])], to: path("b.safetensors"))
        try Data(#"{"weight_map": {"x": "b.safetensors", "y": "b.safetensors"}}"#.utf8).write(to: directory.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertThrowsError(try SafeTensorsStore(directory: directory.path)) { error in
            XCTAssertTrue("\(error)".contains("'x'"), "\(error)")
        }
    }

    func testMissingShardNamesTheFile() throws {
        try Data(#"{"weight_map": {"x": "gone.safetensors"}}"#.utf8).write(to: directory.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertThrowsError(try SafeTensorsStore(directory: directory.path)) { error in
            XCTAssertTrue("\(error)".contains("gone.safetensors"), "\(error)")
        }
    }

    func testMissingTensorNamesTensorAndFile() throws {
        try SafeTensorsWriter.write(sample(), to: path("model.safetensors"))
        let store = try SafeTensorsStore(directory: directory.path)
        XCTAssertThrowsError(try store.tensor("nope")) { error in
            XCTAssertEqual(error as? WeightStoreError, .missingTensor(name: "nope", source: path("model.safetensors")))
        }
    }

    func testShapeThatDisagreesWithTheConfig() throws {
        try SafeTensorsWriter.write(sample(), to: path("model.safetensors"))
        let store = try SafeTensorsStore(directory: directory.path)
        XCTAssertThrowsError(try store.tensor("a", shape: [3, 2])) { error in
            XCTAssertEqual(error as? WeightStoreError, .shapeMismatch(name: "a", file: path("model.safetensors"), expected: [3, 2], found: [2, 3]))
        }
    }

    // MARK: broken files

    func expectError(_ bytes: Data, contains fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let p = path("bad-\(UUID().uuidString).safetensors")
        try bytes.write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try SafeTensorsFile(path: p), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(p), "error does not name the file: \(message)", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "error lacks '\(fragment)': \(message)", file: file, line: line)
            }
        }
    }

    func header(_ json: String, dataBytes: Int = 0) -> Data {
        var d = Data()
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(Data(json.utf8))
        d.append(Data(count: dataBytes))
        return d
    }

    func testEveryTruncationOfAValidFileIsAnError() throws {
        let valid = try SafeTensorsWriter.encode(sample())
        for cut in stride(from: 0, to: valid.count - 1, by: 3) {
            let p = path("cut-\(cut).safetensors")
            try valid.prefix(cut).write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try SafeTensorsFile(path: p), "cut at \(cut)")
        }
    }

    func testHeaderLengthPastTheEnd() throws {
        var d = Data()
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { d.append(contentsOf: $0) }
        d.append(Data("{}".utf8))
        try expectError(d, contains: ["header length"])
    }

    func testOffsetsOutsideTheData() throws {
        try expectError(header(#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#, dataBytes: 8), contains: ["'w'", "data_offsets"])
    }

    func testOffsetsThatDisagreeWithTheShape() throws {
        try expectError(header(#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}"#, dataBytes: 16), contains: ["'w'", "needs 16"])
    }

    func testUnknownDType() throws {
        try expectError(header(#"{"w": {"dtype": "Q7_X", "shape": [1], "data_offsets": [0, 1]}}"#, dataBytes: 1), contains: ["'w'", "Q7_X"])
    }

    func testNegativeOrNonIntegerShape() throws {
        try expectError(header(#"{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}"#), contains: ["'w'", "shape"])
        try expectError(header(#"{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 0]}}"#), contains: ["'w'", "shape"])
    }

    func testHeaderThatIsNotJSON() throws {
        try expectError(header("{not json"), contains: ["JSON"])
        try expectError(header("[1, 2]"), contains: ["object"])
    }

    func testDirectoryWithoutWeights() throws {
        XCTAssertThrowsError(try SafeTensorsStore(directory: directory.path)) { error in
            XCTAssertTrue("\(error)".contains(directory.path))
        }
    }
}
