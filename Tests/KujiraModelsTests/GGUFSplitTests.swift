import Foundation
import XCTest
import KujiraFormats
import KujiraModels

/// Split GGUF files (llama.cpp's gguf-split layout): the fixture `gguf/split/qwen2-tiny-q8_0-0000{1,2,3}-of-00003.gguf`
/// was written by gguf-py's `GGUFWriter(split_max_tensors=10)` from `gguf/qwen2-tiny-q8_0.gguf`
/// (`scripts/make-split-gguf-fixture.py`); Kujira's own `--split-max-size` shards must load back the same way.
final class GGUFSplitTests: XCTestCase {
    static let unsplit = FixturePaths.root.appendingPathComponent("gguf/qwen2-tiny-q8_0.gguf").path
    static func shard(_ n: Int) -> String {
        FixturePaths.root.appendingPathComponent("gguf/split/qwen2-tiny-q8_0-0000\(n)-of-00003.gguf").path
    }

    func scratchDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-split-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.path
    }

    /// Every position's logits of the golden prompts.
    func logits(_ path: String) throws -> [[Float]] {
        let model = try ModelRegistry.load(directory: path)
        return try GGUFModelTests.llamaCppGoldens("qwen2-tiny-q8_0.gguf").map {
            try model.forward($0.tokens, cache: model.makeCache(), allLogits: true)
        }
    }

    // MARK: Reading llama.cpp's shards

    /// Any shard finds the whole set; metadata is the first shard's, every tensor comes from the shard holding it
    /// with the unsplit file's bytes.
    func testFixtureShardsFormOneFile() throws {
        let whole = try GGUFFile(path: Self.unsplit)
        for n in 1...3 {
            let set = try GGUFFileSet(path: Self.shard(n))
            XCTAssertEqual(set.shards.map(\.path), (1...3).map(Self.shard))
            XCTAssertEqual(set.path, Self.shard(1))
            XCTAssertTrue(set.isSplit)
            XCTAssertEqual(set.shards.map(\.tensorInfos.count), [10, 10, 7])
            XCTAssertEqual(set.tensorInfos.map(\.name), whole.tensorInfos.map(\.name))
            for info in whole.tensorInfos {
                guard let shard = set.shard(of: info.name), let splitInfo = set.tensorInfo(info.name) else { return XCTFail(info.name) }
                XCTAssertEqual(splitInfo.shape, info.shape, info.name)
                XCTAssertEqual(splitInfo.type, info.type, info.name)
                XCTAssertTrue(shard.tensorBytes(splitInfo).elementsEqual(whole.tensorBytes(info)), info.name)
            }
            for key in whole.metadataKeys { XCTAssertEqual(set.metadata[key], whole.metadata[key], key) }
            XCTAssertEqual(set.metadata[GGUFSplit.countKey], .uint16(3))
            XCTAssertEqual(set.metadata[GGUFSplit.tensorsCountKey], .int32(27))
            let sizes = try (1...3).map { try FileManager.default.attributesOfItem(atPath: Self.shard($0))[.size] as! Int }
            XCTAssertEqual(set.fileBytes, sizes.reduce(0, +))
        }
        XCTAssertFalse(try GGUFFileSet(path: Self.unsplit).isSplit)
    }

    /// The split model is the unsplit model: same logits bit for bit, same tensors and summary (what `inspect` prints).
    func testSplitModelEqualsUnsplit() throws {
        let reference = try logits(Self.unsplit)
        for n in [1, 3] {
            let split = try logits(Self.shard(n))
            XCTAssertEqual(split.count, reference.count)
            for (a, b) in zip(split, reference) { XCTAssertTrue(a == b, "shard \(n): logits differ") }
        }
        let (config, weights) = try ModelRegistry.open(Self.shard(1))
        let (wholeConfig, wholeWeights) = try ModelRegistry.open(Self.unsplit)
        XCTAssertEqual(weights.tensorNames, wholeWeights.tensorNames)
        XCTAssertEqual(weights.file(of: "model.layers.1.mlp.down_proj.weight"), Self.shard(2))
        let summary = try ModelRegistry.build(config: config, weights: weights).summary
        let wholeSummary = try ModelRegistry.build(config: wholeConfig, weights: wholeWeights).summary
        XCTAssertEqual(summary.totalParameters, wholeSummary.totalParameters)
        XCTAssertEqual(summary.layers, wholeSummary.layers)
    }

    // MARK: Broken sets

    /// Copies shards 1...3 into a scratch directory (`replace` gives other content for some), returning their paths.
    func copySet(skipping: Int? = nil) throws -> [String] {
        let dir = try scratchDirectory()
        return try (1...3).map { n in
            let dest = (dir as NSString).appendingPathComponent((Self.shard(n) as NSString).lastPathComponent)
            if n != skipping { try FileManager.default.copyItem(atPath: Self.shard(n), toPath: dest) }
            return dest
        }
    }

    /// Rewrites `path` with the metadata `edit` makes and the given tensors (from any shard).
    func rewrite(_ path: String, metadata edit: ([(String, GGUFValue)]) -> [(String, GGUFValue)], tensors: [(GGUFFile, GGUFTensorInfo)]) throws {
        let file = try GGUFFile(path: path)
        let metadata = edit(file.metadataKeys.map { ($0, file.metadata[$0]!) })
        let writer = try GGUFWriter(path: path, metadata: metadata,
                                    tensors: tensors.map { GGUFTensorDescriptor(name: $0.1.name, shape: $0.1.shape, type: $0.1.type) })
        for (source, info) in tensors { try writer.append(source.tensorBytes(info)) }
        try writer.finish()
    }

    func assertThrows(_ path: String, _ expected: GGUFError, mentioning words: [String], line: UInt = #line) {
        XCTAssertThrowsError(try GGUFFileSet(path: path), line: line) { error in
            XCTAssertEqual(error as? GGUFError, expected, line: line)
            for word in words { XCTAssertTrue("\(error)".contains(word), "'\(error)' should mention \(word)", line: line) }
        }
        XCTAssertThrowsError(try ModelRegistry.open(path), line: line) { XCTAssertEqual($0 as? GGUFError, expected, line: line) }
    }

    func testMissingShardIsNamed() throws {
        let paths = try copySet(skipping: 2)
        for given in [paths[0], paths[2]] {
            assertThrows(given, .missingShard(path: paths[1], shard: 1, count: 3, referencedBy: given),
                         mentioning: ["qwen2-tiny-q8_0-00002-of-00003.gguf", "missing shard 2 of 3"])
        }
    }

    func testWrongSplitCountIsNamed() throws {
        let paths = try copySet()
        let third = try GGUFFile(path: paths[2])
        try rewrite(paths[2], metadata: { $0.map { $0.0 == GGUFSplit.countKey ? ($0.0, .uint16(4)) : $0 } },
                    tensors: third.tensorInfos.map { (third, $0) })
        let expected = GGUFError.invalidMetadata(path: paths[2], key: GGUFSplit.countKey, reason: "is 4, but \(paths[0]) has 3")
        assertThrows(paths[0], expected, mentioning: ["00003-of-00003.gguf", "split.count"])
        // Opened from the odd shard itself, the set it names (…-of-00004) is not there.
        XCTAssertThrowsError(try GGUFFileSet(path: paths[2])) { XCTAssertTrue("\($0)".contains("split.no") || "\($0)".contains("named"), "\($0)") }
    }

    func testDuplicateTensorIsNamed() throws {
        let paths = try copySet()
        let second = try GGUFFile(path: paths[1]), third = try GGUFFile(path: paths[2])
        let borrowed = second.tensorInfos[0]
        try rewrite(paths[2], metadata: { $0 }, tensors: third.tensorInfos.map { (third, $0) } + [(second, borrowed)])
        assertThrows(paths[0], .duplicateShardTensor(path: paths[2], tensor: borrowed.name, otherPath: paths[1]),
                     mentioning: [borrowed.name, "00002-of-00003.gguf", "00003-of-00003.gguf"])
    }

    func testWrongTensorTotalAndWrongSplitNumberAreNamed() throws {
        let paths = try copySet()
        let third = try GGUFFile(path: paths[2])
        try rewrite(paths[2], metadata: { $0 }, tensors: third.tensorInfos.dropLast().map { (third, $0) })
        assertThrows(paths[0], .invalidMetadata(path: paths[0], key: GGUFSplit.tensorsCountKey, reason: "is 27, but the 3 shards hold 26 tensors"),
                     mentioning: ["split.tensors.count"])
        try rewrite(paths[2], metadata: { $0.map { $0.0 == GGUFSplit.numberKey ? ($0.0, .uint16(1)) : $0 } },
                    tensors: third.tensorInfos.map { (third, $0) })
        assertThrows(paths[0], .invalidMetadata(path: paths[2], key: GGUFSplit.numberKey,
                                                reason: "is 1, but the file name makes it shard 3 of 3 (split.no 2)"),
                     mentioning: ["split.no", "00003-of-00003.gguf"])
        try rewrite(paths[2], metadata: { $0.map { $0.0 == GGUFSplit.numberKey ? ($0.0, .int32(2)) : $0 } },
                    tensors: third.tensorInfos.map { (third, $0) })
        assertThrows(paths[0], .invalidMetadata(path: paths[2], key: GGUFSplit.numberKey, reason: "must be uint16 (as gguf-split writes it), got int32"),
                     mentioning: ["split.no", "uint16"])
    }

    // MARK: Kujira's writer

    func exportQwen2(to path: String, split: GGUFSplitLimits?) throws -> [String] {
        let plan = try GGUFExporter.plan(directory: FixturePaths.model("qwen2-tiny"), type: .q8_0)
        let vocab = try ModelConfig(path: FixturePaths.model("qwen2-tiny")).int("vocab_size")
        return try GGUFExporter.write(plan, tokenizerMetadata: GGUFExporter.placeholderVocabulary(size: vocab), to: path, split: split)
    }

    /// `convert --split-max-size`: shards named and keyed as gguf-split's, each within the limit, loading back to the
    /// unsplit export's logits exactly.
    func testSplitExportLoadsBackEqual() throws {
        let dir = try scratchDirectory()
        let single = try exportQwen2(to: dir + "/single.gguf", split: nil)
        let limit = 40_000
        let paths = try exportQwen2(to: dir + "/qwen2.gguf", split: GGUFSplitLimits(maxBytes: limit))
        XCTAssertGreaterThanOrEqual(paths.count, 3)
        XCTAssertEqual(paths, paths.indices.map { GGUFSplit.path(prefix: dir + "/qwen2", index: $0, count: paths.count) })
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/qwen2.gguf"))
        let whole = try GGUFFile(path: single[0])
        var names: [String] = []
        for (i, path) in paths.enumerated() {
            let shard = try GGUFFile(path: path)
            XCTAssertEqual(shard.metadata[GGUFSplit.numberKey], .uint16(UInt16(i)))
            XCTAssertEqual(shard.metadata[GGUFSplit.countKey], .uint16(UInt16(paths.count)))
            XCTAssertEqual(shard.metadata[GGUFSplit.tensorsCountKey], .int32(Int32(whole.tensorInfos.count)))
            if i == 0 {
                XCTAssertEqual(Array(shard.metadataKeys.dropLast(3)), whole.metadataKeys)
                XCTAssertEqual(Array(shard.metadataKeys.suffix(3)), GGUFSplit.keys)
            } else {
                XCTAssertEqual(shard.metadataKeys, GGUFSplit.keys)
            }
            let bytes = shard.tensorInfos.reduce(0) { $0 + ($1.byteCount + 31) / 32 * 32 }
            XCTAssertTrue(bytes <= limit || shard.tensorInfos.count == 1, "\(path): \(bytes) bytes")
            names += shard.tensorInfos.map(\.name)
        }
        XCTAssertEqual(names, whole.tensorInfos.map(\.name))
        XCTAssertEqual(try logits(paths[0]), try logits(single[0]))
        XCTAssertEqual(try logits(paths.last!), try logits(single[0]))

        let byCount = try exportQwen2(to: dir + "/by-count", split: GGUFSplitLimits(maxTensors: 10))
        XCTAssertEqual(byCount.count, 3)
        XCTAssertEqual(try byCount.map { try GGUFFile(path: $0).tensorInfos.count }, [10, 10, 7])
        XCTAssertThrowsError(try exportQwen2(to: dir + "/by-count", split: GGUFSplitLimits(maxTensors: 10))) {
            XCTAssertTrue("\($0)".contains("exists"), "\($0)")
        }
    }

    /// gguf-split's rules: sizes in decimal units, a new shard before the tensor that passes the limit (tensors
    /// padded to 32 bytes), at least one tensor per shard; every n-th tensor with a tensor limit.
    func testSplitLimits() {
        XCTAssertEqual(GGUFSplitLimits.parseSize("2G"), 2_000_000_000)
        XCTAssertEqual(GGUFSplitLimits.parseSize("500M"), 500_000_000)
        XCTAssertEqual(GGUFSplitLimits.parseSize("100k"), 100_000)
        XCTAssertEqual(GGUFSplitLimits.parseSize("12345"), 12345)
        for bad in ["0", "-1", "1.5G", "G", "", "2GB", "99999999999999G", "١٢"] { XCTAssertNil(GGUFSplitLimits.parseSize(bad), bad) }
        let t = { (n: Int) in GGUFTensorDescriptor(name: "t\(n)", shape: [n], type: .f32) }
        XCTAssertEqual(GGUFSplitLimits(maxBytes: 128).shards(of: [t(16), t(16), t(16)]), [0..<2, 2..<3])  // 64 B each
        XCTAssertEqual(GGUFSplitLimits(maxBytes: 100).shards(of: [t(1), t(1), t(1), t(1)]), [0..<3, 3..<4])  // 32 B each
        XCTAssertEqual(GGUFSplitLimits(maxBytes: 10).shards(of: [t(100), t(1), t(1)]), [0..<1, 1..<2, 2..<3])
        XCTAssertEqual(GGUFSplitLimits(maxTensors: 2).shards(of: (1...5).map(t)), [0..<2, 2..<4, 4..<5])
        XCTAssertEqual(GGUFSplitLimits(maxTensors: 2).shards(of: []), [0..<0])
    }

    /// A writer dropped halfway (an error while producing tensors) leaves no file at all, not even finished shards.
    func testInterruptedSplitWriteLeavesNothing() throws {
        let dir = try scratchDirectory()
        let tensors = (0..<3).map { GGUFTensorDescriptor(name: "t\($0)", shape: [8], type: .f32) }
        do {
            let writer = try GGUFSplitWriter(prefix: dir + "/m", metadata: [("general.architecture", .string("llama"))], tensors: tensors,
                                             limits: GGUFSplitLimits(maxTensors: 1))
            XCTAssertEqual(writer.paths.count, 3)
            try writer.append([Float](repeating: 1, count: 8))
            try writer.append([Float](repeating: 2, count: 8))
            XCTAssertThrowsError(try writer.finish())
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])

        // Replacing a set: the old first shard is gone before any new shard is renamed, and the new set is whole.
        for value: Float in [1, 2] {
            let writer = try GGUFSplitWriter(prefix: dir + "/m", metadata: [("general.architecture", .string("llama"))], tensors: tensors,
                                             limits: GGUFSplitLimits(maxTensors: 1))
            for _ in 0..<3 { try writer.append([Float](repeating: value, count: 8)) }
            try writer.finish()
            let set = try GGUFFileSet(path: writer.paths[1])
            XCTAssertEqual(set.shards.count, 3)
            XCTAssertEqual(try GGUFWeightStore(files: set).tensor("t2").toFloatArray(), [Float](repeating: value, count: 8))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), (1...3).map { "m-0000\($0)-of-00003.gguf" })
    }
}
