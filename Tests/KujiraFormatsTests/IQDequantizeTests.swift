import Foundation
import XCTest
import KujiraFormats
import KujiraTensor

/// The GGUF "IQ" formats load from a GGUF file and decode bit-exactly like gguf-py (goldens from
/// scripts/make-iq-goldens.py: random blocks with finite f16 scales, incl. a subnormal scale, -0 and a large one).
final class IQDequantizeTests: XCTestCase {
    static let types: [(String, DType, GGMLType)] = [
        ("iq4_nl", .iq4_nl, .iq4_nl), ("iq4_xs", .iq4_xs, .iq4_xs), ("iq2_xxs", .iq2_xxs, .iq2_xxs), ("iq2_xs", .iq2_xs, .iq2_xs),
        ("iq2_s", .iq2_s, .iq2_s), ("iq3_xxs", .iq3_xxs, .iq3_xxs), ("iq3_s", .iq3_s, .iq3_s), ("iq1_s", .iq1_s, .iq1_s),
        ("iq1_m", .iq1_m, .iq1_m),
    ]

    func testEveryIQTypeDecodesBitExactlyLikeGGUFPy() throws {
        let file = try GGUFFile(path: TestFiles.fixture("quantize/iq-golden.gguf"))
        let store = GGUFWeightStore(file: file)
        for (name, dtype, ggml) in Self.types {
            let info = try XCTUnwrap(file.tensorInfo(name), name)
            XCTAssertEqual(ggml.dtype, dtype, name)
            XCTAssertEqual(dtype.blockElements, ggml.blockLayout.elements, name)
            XCTAssertEqual(dtype.blockBytes, ggml.blockLayout.bytes, name)
            let tensor = try store.tensor(name)
            XCTAssertEqual(tensor.dtype, dtype, name)
            XCTAssertEqual(file.tensorBytes(info).count, dtype.byteCount(elements: tensor.elementCount), name)
            let expected = try store.tensor(name + ".dequant")
            XCTAssertEqual(tensor.shape, expected.shape, name)
            let golden = expected.toFloatArray(), decoded = tensor.toFloatArray()
            XCTAssertEqual(decoded.count, golden.count, name)
            let differing = zip(decoded, golden).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
            XCTAssertTrue(differing.isEmpty, "\(name): \(differing.count) of \(golden.count) differ, first at \(differing.first.map { "\($0.offset): \($0.element.0) vs \($0.element.1)" } ?? "")")
            // The same values through the Linear row decoder and the element accessor.
            let weight = LinearWeight(data: tensor)
            var row = [Float](repeating: 0, count: weight.cols)
            for r in 0..<weight.rows {
                row.withUnsafeMutableBufferPointer { weight.decodeRow(r, into: $0) }
                XCTAssertEqual(row.map(\.bitPattern), golden[(r * weight.cols)..<((r + 1) * weight.cols)].map(\.bitPattern), "\(name) row \(r)")
            }
            XCTAssertEqual(tensor.float(at: 300).bitPattern, golden[300].bitPattern, name)
        }
    }
}
