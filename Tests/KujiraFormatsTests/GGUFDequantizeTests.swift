import Foundation
import XCTest
@testable import KujiraFormats
import KujiraTensor

/// Every block format decodes bit-exactly like gguf-py (llama.cpp's own Python library).
final class GGUFDequantizeTests: XCTestCase {
    /// Compares every tensor of `<model>.dequant.safetensors` with our decoding of `<model>.gguf`; returns the types seen.
    @discardableResult
    func checkBitExact(_ model: String, file: StaticString = #filePath, line: UInt = #line) throws -> Set<DType> {
        let store = try GGUFWeightStore(path: TestFiles.fixture("gguf/\(model).gguf"))
        let golden = try TestSafeTensors(path: TestFiles.fixture("gguf/\(model).dequant.safetensors"))
        XCTAssertFalse(golden.tensors.isEmpty, file: file, line: line)
        var seen = Set<DType>()
        for (name, expected) in golden.tensors.sorted(by: { $0.key < $1.key }) {
            let tensor = try store.tensor(name)
            seen.insert(tensor.dtype)
            XCTAssertEqual(tensor.shape, expected.shape, "\(model) \(name)", file: file, line: line)
            let decoded = tensor.toFloatArray()
            XCTAssertEqual(decoded.count, expected.values.count, file: file, line: line)
            let mismatches = zip(decoded, expected.values).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
            XCTAssertTrue(mismatches.isEmpty, "\(model) \(name) (\(tensor.dtype.rawValue)): \(mismatches.count) elements differ, first at \(mismatches.first.map { "\($0.offset): \($0.element.0) vs \($0.element.1)" } ?? "")", file: file, line: line)
            if tensor.shape.count == 2 {
                // The Linear path decodes rows the same way.
                let weight = LinearWeight(data: tensor)
                let r = weight.rows - 1
                var row = [Float](repeating: 0, count: weight.cols)
                row.withUnsafeMutableBufferPointer { weight.decodeRow(r, into: $0) }
                XCTAssertEqual(row, Array(expected.values[(r * weight.cols)...]), "\(model) \(name) last row", file: file, line: line)
            }
        }
        return seen
    }

    func testLegacyFormatsAndF16() throws {
        XCTAssertTrue(try checkBitExact("qwen2-tiny-q4_0").contains(.q4_0))
        XCTAssertTrue(try checkBitExact("qwen2-tiny-q4_1").contains(.q4_1))
        XCTAssertTrue(try checkBitExact("qwen2-tiny-q5_0").contains(.q5_0))
        XCTAssertTrue(try checkBitExact("qwen2-tiny-q8_0").contains(.q8_0))
        XCTAssertTrue(try checkBitExact("qwen2-tiny-f16").contains(.f16))
    }

    func testKQuants() throws {
        XCTAssertEqual(try checkBitExact("llama-256-q2_k"), [.q2_K, .q3_K])
        XCTAssertEqual(try checkBitExact("llama-256-q3_k_m"), [.q4_K, .q5_K])
        XCTAssertEqual(try checkBitExact("llama-256-q6_k"), [.q6_K])
    }

    /// No fixture holds Q5_1; a hand-built block checks the layout (element j stores q = j, d = 0.5, m = -1).
    func testQ5_1HandBuiltBlock() {
        var block = [UInt8](repeating: 0, count: 24)
        withUnsafeBytes(of: Float16(0.5).bitPattern) { block[0] = $0[0]; block[1] = $0[1] }
        withUnsafeBytes(of: Float16(-1).bitPattern) { block[2] = $0[0]; block[3] = $0[1] }
        var qh: UInt32 = 0
        for j in 0..<32 where j & 16 != 0 { qh |= 1 << UInt32(j) }
        withUnsafeBytes(of: qh.littleEndian) { for i in 0..<4 { block[4 + i] = $0[i] } }
        for j in 0..<16 { block[8 + j] = UInt8(j & 15) | UInt8((j + 16) & 15) << 4 }
        var out = [Float](repeating: 0, count: 32)
        block.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { Q5_1.dequantize(src.baseAddress!, into: $0.baseAddress!) } }
        XCTAssertEqual(out, (0..<32).map { 0.5 * Float($0) - 1 })
    }
}

/// GGML block types are GGUF-only: a safetensors header naming one is rejected, not mis-sized.
final class SafeTensorsRejectsBlockTypesTests: XCTestCase {
    func testQuantizedDTypeNameIsUnknownInSafeTensors() throws {
        let header = Array(#"{"w":{"dtype":"Q4_0","shape":[1,48],"data_offsets":[0,864]}}"#.utf8)
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += header + [UInt8](repeating: 0, count: 864)
        let path = try TestFiles.write(bytes, name: "quantized.safetensors")
        XCTAssertThrowsError(try SafeTensorsFile(path: path)) { error in
            guard case .unknownDType(path, "w", "Q4_0")? = error as? SafeTensorsError else { return XCTFail("\(error)") }
        }
    }
}
