import Foundation
import XCTest
@testable import KujiraFormats
import KujiraTensor

final class GGUFFileTests: XCTestCase {
    /// A file with every metadata value type, a nested array, custom alignment and two tensors.
    func makeSyntheticFile() -> [UInt8] {
        var b = GGUFBuilder()
        b.header(tensors: 2, kvs: 16)
        b.key("u8", type: 0); b.u8(200)
        b.key("i8", type: 1); b.raw(Int8(-5))
        b.key("u16", type: 2); b.raw(UInt16(60000))
        b.key("i16", type: 3); b.raw(Int16(-30000))
        b.key("u32", type: 4); b.u32(4_000_000_000)
        b.key("i32", type: 5); b.raw(Int32(-2_000_000_000))
        b.key("f32", type: 6); b.raw(Float(1.5))
        b.key("flag", type: 7); b.u8(1)
        b.key("name", type: 8); b.string("héllo")
        b.key("u64", type: 10); b.u64(1 << 40)
        b.key("i64", type: 11); b.raw(Int64(-(1 << 40)))
        b.key("f64", type: 12); b.raw(Double(0.25))
        b.key("words", type: 9); b.u32(8); b.u64(3); b.string("a"); b.string(""); b.string("ccc")
        b.key("ids", type: 9); b.u32(5); b.u64(3); b.raw(Int32(7)); b.raw(Int32(-1)); b.raw(Int32(9))
        b.key("nested", type: 9); b.u32(9); b.u64(2)
        b.u32(6); b.u64(2); b.raw(Float(1)); b.raw(Float(2))
        b.u32(7); b.u64(1); b.u8(0)
        b.key("general.alignment", type: 4); b.u32(64)
        // Tensor a: F32, ggml dims [3, 2] (3 innermost) = row-major [2, 3]. Tensor b: Q8_0, 32 x 1.
        b.tensorInfo(name: "a", dims: [3, 2], type: 0, offset: 0)
        b.tensorInfo(name: "b", dims: [32, 1], type: 8, offset: 64)
        b.pad(to: 64)
        for v: Float in [1, 2, 3, 4, 5, 6] { b.raw(v) }
        b.pad(to: 64)
        b.raw(Float16(0.5).bitPattern)
        for q in 0..<32 { b.raw(Int8(q - 16)) }
        return b.bytes
    }

    func testSyntheticFileEveryValueType() throws {
        let path = try TestFiles.write(makeSyntheticFile(), name: "synthetic.gguf")
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.metadata["u8"], .uint8(200))
        XCTAssertEqual(file.int("u8"), 200)
        XCTAssertEqual(file.int("i8"), -5)
        XCTAssertEqual(file.int("u16"), 60000)
        XCTAssertEqual(file.int("i16"), -30000)
        XCTAssertEqual(file.int("u32"), 4_000_000_000)
        XCTAssertEqual(file.int("i32"), -2_000_000_000)
        XCTAssertEqual(file.float("f32"), 1.5)
        XCTAssertEqual(file.bool("flag"), true)
        XCTAssertEqual(file.string("name"), "héllo")
        XCTAssertEqual(file.int("u64"), 1 << 40)
        XCTAssertEqual(file.int("i64"), -(1 << 40))
        XCTAssertEqual(file.metadata["f64"], .float64(0.25))
        XCTAssertEqual(file.strings("words"), ["a", "", "ccc"])
        XCTAssertEqual(file.ints("ids"), [7, -1, 9])
        XCTAssertEqual(file.metadata["nested"], .array([.array([.float32(1), .float32(2)]), .array([.bool(false)])]))
        XCTAssertNil(file.string("u8"), "a typed accessor must not convert other types")
        XCTAssertNil(file.int("missing"))
        XCTAssertNil(file.strings("ids"))
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.dataOffset % 64, 0)
        XCTAssertEqual(file.metadataKeys.first, "u8")

        XCTAssertEqual(file.tensorInfos.map(\.name), ["a", "b"])
        let store = GGUFWeightStore(file: file)
        let a = try store.tensor("a")
        XCTAssertEqual(a.dtype, .f32)
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(a.toFloatArray(), [1, 2, 3, 4, 5, 6])
        let b = try store.tensor("b")
        XCTAssertEqual(b.dtype, .q8_0)
        XCTAssertEqual(b.shape, [1, 32])
        XCTAssertEqual(b.bytes.count, 34)
        XCTAssertEqual(b.toFloatArray(), (0..<32).map { Float($0 - 16) * 0.5 })
        XCTAssertThrowsError(try store.tensor("c")) { error in
            XCTAssertEqual(error as? WeightStoreError, .missingTensor(name: "c", source: path))
        }
    }

    func testRealFixtureMatchesItsModelConfig() throws {
        let file = try GGUFFile(path: TestFiles.fixture("gguf/qwen2-tiny-q4_0.gguf"))
        XCTAssertEqual(file.string("general.architecture"), "qwen2")
        // models/qwen2-tiny/config.json: hidden 64, 2 layers, 8 heads, 2 kv heads, vocab 256, intermediate 160.
        XCTAssertEqual(file.int("qwen2.embedding_length"), 64)
        XCTAssertEqual(file.int("qwen2.block_count"), 2)
        XCTAssertEqual(file.int("qwen2.attention.head_count"), 8)
        XCTAssertEqual(file.int("qwen2.attention.head_count_kv"), 2)
        XCTAssertEqual(file.int("qwen2.feed_forward_length"), 160)
        XCTAssertEqual(file.strings("tokenizer.ggml.tokens")?.count, file.int("qwen2.vocab_size") ?? 256)
        let store = GGUFWeightStore(file: file)
        XCTAssertEqual(try store.tensor("token_embd.weight").shape, [256, 64])
        XCTAssertEqual(try store.tensor("blk.0.ffn_up.weight").shape, [160, 64])
        XCTAssertEqual(try store.tensor("blk.1.attn_k.weight").shape, [16, 64])
        XCTAssertEqual(try store.tensor("blk.0.attn_norm.weight").dtype, .f32)
        // Tensors tile the data section in order, each starting on an alignment boundary.
        var end = 0
        for info in file.tensorInfos.sorted(by: { $0.offset < $1.offset }) {
            XCTAssertGreaterThanOrEqual(info.offset, end, info.name)
            XCTAssertEqual(info.offset % file.alignment, 0, info.name)
            end = info.offset + info.byteCount
        }
        XCTAssertLessThanOrEqual(file.dataOffset + end, file.mapped.bytes.count)
    }

    func testEveryTruncationThrowsNamingTheFile() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: TestFiles.fixture("gguf/qwen2-tiny-q4_0.gguf")))
        let full = [UInt8](original)
        var cuts = Array(stride(from: 0, to: 4096, by: 7)) + Array(stride(from: 4096, to: full.count, by: 997))
        cuts.append(full.count - 1)
        for cut in cuts {
            let path = try TestFiles.write(Array(full[0..<cut]), name: "truncated.gguf")
            XCTAssertThrowsError(try GGUFFile(path: path), "cut at \(cut)") { error in
                guard let gguf = error as? GGUFError else { return XCTFail("cut at \(cut): \(error)") }
                XCTAssertTrue(gguf.description.hasPrefix(path), gguf.description)
            }
        }
    }

    func testBadMagicAndVersion() throws {
        var bytes = makeSyntheticFile()
        bytes[0] = UInt8(ascii: "X")
        let path = try TestFiles.write(bytes, name: "magic.gguf")
        XCTAssertThrowsError(try GGUFFile(path: path)) { error in
            guard case .badMagic(path, _)? = error as? GGUFError else { return XCTFail("\(error)") }
        }
        bytes = makeSyntheticFile()
        bytes[4] = 1
        let path1 = try TestFiles.write(bytes, name: "version.gguf")
        XCTAssertThrowsError(try GGUFFile(path: path1)) { error in
            XCTAssertEqual(error as? GGUFError, .unsupportedVersion(path: path1, version: 1))
        }
    }

    func testTensorOffsetPastEndOfFile() throws {
        var b = GGUFBuilder()
        b.header(tensors: 1, kvs: 0)
        b.tensorInfo(name: "w", dims: [8, 2], type: 0, offset: 32)
        b.pad(to: 32)
        for _ in 0..<16 { b.raw(Float(1)) }  // 64 bytes of data, but the tensor claims 32..<96
        let path = try TestFiles.write(b.bytes, name: "offset.gguf")
        XCTAssertThrowsError(try GGUFFile(path: path)) { error in
            guard case let .tensorOutOfRange(p, tensor, _, end, size)? = error as? GGUFError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, path)
            XCTAssertEqual(tensor, "w")
            XCTAssertGreaterThan(end, size)
        }
    }

    func testUnknownTypesAndBadShapes() throws {
        var b = GGUFBuilder()
        b.header(tensors: 0, kvs: 1)
        b.key("odd", type: 99)
        let p1 = try TestFiles.write(b.bytes, name: "valuetype.gguf")
        XCTAssertThrowsError(try GGUFFile(path: p1)) { error in
            XCTAssertEqual(error as? GGUFError, .unknownValueType(path: p1, key: "odd", type: 99, offset: 24 + 8 + 3))
        }
        b = GGUFBuilder()
        b.header(tensors: 1, kvs: 0)
        b.tensorInfo(name: "w", dims: [32], type: 200, offset: 0)
        let p2 = try TestFiles.write(b.bytes, name: "tensortype.gguf")
        XCTAssertThrowsError(try GGUFFile(path: p2)) { error in
            XCTAssertEqual(error as? GGUFError, .unknownTensorType(path: p2, tensor: "w", type: 200))
        }
        b = GGUFBuilder()
        b.header(tensors: 1, kvs: 0)
        b.tensorInfo(name: "w", dims: [48], type: 2, offset: 0)  // Q4_0 rows must be multiples of 32
        b.pad(to: 32)
        b.bytes += [UInt8](repeating: 0, count: 64)
        let p3 = try TestFiles.write(b.bytes, name: "shape.gguf")
        XCTAssertThrowsError(try GGUFFile(path: p3)) { error in
            guard case .invalidTensor(p3, "w", _)? = error as? GGUFError else { return XCTFail("\(error)") }
        }
        b = GGUFBuilder()
        b.header(tensors: 0, kvs: 1)
        b.key("big", type: 9); b.u32(8); b.u64(UInt64.max)
        let p4 = try TestFiles.write(b.bytes, name: "hugearray.gguf")
        XCTAssertThrowsError(try GGUFFile(path: p4)) { error in
            guard case .truncated(p4, _, _, _, _)? = error as? GGUFError else { return XCTFail("\(error)") }
        }
    }
}
