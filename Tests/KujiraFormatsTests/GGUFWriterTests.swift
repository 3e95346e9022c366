import Foundation
import XCTest
@testable import KujiraFormats
import KujiraTensor

/// The GGUF writer round-trips through our reader, writes atomically, and rejects what it cannot write.
final class GGUFWriterTests: XCTestCase {
    func scratchDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-gguf-writer-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.path
    }

    func testRoundTripThroughTheReader() throws {
        let path = try scratchDirectory() + "/model.gguf"
        let metadata: [(String, GGUFValue)] = [
            ("general.architecture", .string("llama")), ("general.alignment", .uint32(64)), ("u8", .uint8(7)), ("i8", .int8(-3)),
            ("u16", .uint16(65535)), ("i16", .int16(-300)), ("u32", .uint32(123_456)), ("i32", .int32(-5)), ("f32", .float32(0.25)),
            ("bool", .bool(true)), ("u64", .uint64(1 << 40)), ("i64", .int64(-(1 << 40))), ("f64", .float64(-1.5)),
            ("strings", .array([.string("a"), .string("ü ✓"), .string("")])), ("ints", .array([.int32(1), .int32(-2)])),
            ("nested", .array([.array([.uint8(1), .uint8(2)]), .array([.uint8(3)])])), ("empty", .array([])),
        ]
        let values = (0..<96).map { Float($0) * 0.5 - 3 }
        let tensors = [GGUFTensorDescriptor(name: "a", shape: [3, 32], type: .f32),
                       GGUFTensorDescriptor(name: "b", shape: [3, 32], type: .q8_0),
                       GGUFTensorDescriptor(name: "c", shape: [5], type: .f32)]
        let writer = try GGUFWriter(path: path, metadata: metadata, tensors: tensors)
        try writer.append(Array(values[..<40]))  // a tensor may arrive in pieces
        try writer.append(Array(values[40...]))
        try writer.append(Quantize.array(values, rowLength: 32, to: .q8_0))
        try writer.append([Float](repeating: 1, count: 5))
        try writer.finish()

        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.metadataKeys, metadata.map(\.0))
        for (key, value) in metadata where key != "empty" { XCTAssertEqual(file.metadata[key], value, key) }
        XCTAssertEqual(file.metadata["empty"], .array([]))
        XCTAssertEqual(file.tensorInfos.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(file.tensorInfos.map(\.shape), [[3, 32], [3, 32], [5]])
        XCTAssertTrue(file.tensorInfos.allSatisfy { $0.offset % 64 == 0 })
        let store = GGUFWeightStore(file: file)
        XCTAssertEqual(try store.tensor("a").toFloatArray(), values)
        XCTAssertEqual(try store.tensor("b").dtype, .q8_0)
        let decoded = try store.tensor("b").toFloatArray()
        for (i, (x, y)) in zip(decoded, values).enumerated() {
            let blockMax = values[(i / 32 * 32)..<(i / 32 * 32 + 32)].map(abs).max()!
            XCTAssertEqual(x, y, accuracy: blockMax / 127 / 2 + blockMax / 1024)  // half a Q8_0 step + the f16 scale's rounding
        }
        XCTAssertEqual(try store.tensor("c").toFloatArray(), [1, 1, 1, 1, 1])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent), ["model.gguf"])
    }

    /// Pieces larger than the write buffer bypass it; small and large pieces interleave in the right order.
    func testLargePiecesKeepTheirOrder() throws {
        let path = try scratchDirectory() + "/large.gguf"
        let big = (0..<(1100 * 1024)).map { Float($0 % 977) }
        let writer = try GGUFWriter(path: path, metadata: [], tensors: [GGUFTensorDescriptor(name: "small", shape: [3], type: .f32),
                                                                        GGUFTensorDescriptor(name: "big", shape: [1100, 1024], type: .f32),
                                                                        GGUFTensorDescriptor(name: "tail", shape: [2], type: .f32)])
        try writer.append([Float]([1, 2, 3]))
        try writer.append(big)
        try writer.append([Float]([4, 5]))
        try writer.finish()
        let store = try GGUFWeightStore(path: path)
        XCTAssertEqual(try store.tensor("small").toFloatArray(), [1, 2, 3])
        XCTAssertEqual(try store.tensor("big").toFloatArray(), big)
        XCTAssertEqual(try store.tensor("tail").toFloatArray(), [4, 5])
    }

    func testAbandonedWriterLeavesNothingBehind() throws {
        let dir = try scratchDirectory()
        do {
            let writer = try GGUFWriter(path: dir + "/x.gguf", metadata: [("k", .string("v"))],
                                        tensors: [GGUFTensorDescriptor(name: "t", shape: [4], type: .f32)])
            XCTAssertThrowsError(try writer.finish()) { XCTAssertTrue("\($0)".contains("'t' has no data"), "\($0)") }
            XCTAssertThrowsError(try writer.append([Float](repeating: 0, count: 5))) { XCTAssertTrue("\($0)".contains("needs 16 bytes"), "\($0)") }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testRejectsWhatGGUFCannotHold() throws {
        let path = try scratchDirectory() + "/bad.gguf"
        XCTAssertThrowsError(try GGUFWriter(path: path, metadata: [], tensors: [GGUFTensorDescriptor(name: "w", shape: [2, 48], type: .q8_0)])) {
            XCTAssertTrue("\($0)".contains("'w'") && "\($0)".contains("not a multiple of the Q8_0 block size 32"), "\($0)")
        }
        XCTAssertThrowsError(try GGUFWriter(path: path, metadata: [("a", .uint8(1)), ("a", .uint8(2))], tensors: []))
        XCTAssertThrowsError(try GGUFWriter(path: path, metadata: [("mixed", .array([.uint8(1), .string("x")]))], tensors: [])) {
            XCTAssertTrue("\($0)".contains("'mixed'"), "\($0)")
        }
        XCTAssertThrowsError(try GGUFWriter(path: path, metadata: [("general.alignment", .uint32(24))], tensors: []))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }
}
