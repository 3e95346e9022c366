import Foundation
import XCTest
import KujiraFormats

/// Builds small GGUF files byte by byte so tests control every field (including broken ones).
struct GGUFBuilder {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func raw<T>(_ v: T) { withUnsafeBytes(of: v) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes.append(contentsOf: Array(s.utf8))
    }
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes.append(contentsOf: Array("GGUF".utf8))
        u32(version)
        u64(tensors)
        u64(kvs)
    }
    mutating func key(_ name: String, type: UInt32) {
        string(name)
        u32(type)
    }
    mutating func tensorInfo(name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        string(name)
        u32(UInt32(dims.count))
        for d in dims { u64(d) }
        u32(type)
        u64(offset)
    }
    mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
}

/// Fixture and scratch paths for the GGUF tests.
enum TestFiles {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func fixture(_ relative: String) -> String { fixtures.appendingPathComponent(relative).path }

    /// Writes `bytes` to a fresh temporary file and returns its path.
    static func write(_ bytes: [UInt8], name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-gguf-tests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }
}

/// The F32 `*.dequant.safetensors` goldens, read with the project's own `SafeTensorsFile`.
struct TestSafeTensors {
    let tensors: [String: (shape: [Int], values: [Float])]

    init(path: String) throws {
        let file = try SafeTensorsFile(path: path)
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        for name in file.tensorNames {
            let tensor = try file.tensor(name)
            tensors[name] = (tensor.shape, tensor.toFloatArray())
        }
        self.tensors = tensors
    }
}
