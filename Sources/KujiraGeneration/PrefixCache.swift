import Foundation
import KujiraFormats
import KujiraModels

/// KV rows of prompt prefixes shared by every slot of a server (`kujira serve --cache-ram`, `--cache-dir`): a radix tree
/// over blocks of `blockSize` tokens, each node the rows of one block given the blocks before it. Two requests with the
/// same system prompt share its rows; a request whose prompt starts like an earlier one imports those rows instead of
/// recomputing them. RAM holds at most `budgetBytes` (least recently used blocks go first); with a directory, every
/// block is also a file there (written atomically), so the prefix survives a restart. A file is trusted only when its
/// header names this model and layout, its tokens and parent are the ones looked up, and its checksum holds —
/// anything else (truncated, corrupt, another model) is ignored.
///
/// Owned by one thread (the scheduler's); not `Sendable`.
public final class PrefixCache {
    /// Tokens per node.
    public let blockSize: Int
    /// Most bytes of rows kept in RAM.
    public let budgetBytes: Int
    /// Where blocks are kept across restarts (nil: RAM only).
    public let directory: URL?
    /// Model, layout and precision: what a block's rows depend on besides its tokens.
    let fingerprint: UInt64

    private struct Node {
        let parent: UInt64
        let tokens: [Int]
        let rows: [UInt8]
        var lastUse: Int
    }

    private var nodes: [UInt64: Node] = [:]
    private var bytesInRAM = 0
    private var clock = 0
    /// Blocks read from disk and files refused (tests and logs).
    public private(set) var diskHits = 0, rejectedFiles = 0

    /// `model` names the weights (their file or directory and size); the cache's layout and precision are added.
    public init(model: String, layout: String, blockSize: Int = 64, budgetBytes: Int, directory: String? = nil) throws {
        precondition(blockSize > 0 && budgetBytes >= 0)
        self.blockSize = blockSize
        self.budgetBytes = budgetBytes
        fingerprint = Self.hash(Array("kujira-prefix-v1|\(model)|\(layout)|\(blockSize)".utf8).map { Int($0) }, seed: 0x4B554A49)
        if let directory {
            let url = URL(fileURLWithPath: directory, isDirectory: true)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            self.directory = url
        } else {
            self.directory = nil
        }
    }

    /// Bytes of rows held in RAM.
    public var residentBytes: Int { bytesInRAM }

    /// FNV-1a over the tokens' bytes, seeded (a block's key chains its parent's).
    static func hash(_ tokens: [Int], seed: UInt64) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for token in tokens {
            var t = UInt64(UInt32(truncatingIfNeeded: token))
            for _ in 0..<4 {
                h = (h ^ (t & 0xFF)) &* 0x0000_0100_0000_01B3
                t >>= 8
            }
        }
        return h
    }

    private func key(parent: UInt64, block: [Int]) -> UInt64 { Self.hash(block, seed: parent ^ fingerprint) }

    /// Imports into `slot` the stored blocks that extend its cached prefix of `prompt` (never the prompt's last token,
    /// which must run to give logits); returns how many prompt tokens the slot now holds.
    public func restore(prompt: [Int], into slot: SequenceSlot, holding cached: Int) -> Int {
        guard slot.cache.canKeepPrefix else { return cached }
        let usable = (prompt.count - 1) / blockSize
        var parent = fingerprint, chain: [[UInt8]] = []
        let rowBytes = blockSize * slot.cache.exportBytesPerToken
        for b in 0..<usable {
            let block = Array(prompt[(b * blockSize)..<((b + 1) * blockSize)])
            let k = key(parent: parent, block: block)
            guard let rows = lookup(k, parent: parent, block: block), rows.count == rowBytes else { break }
            chain.append(rows)
            parent = k
        }
        let stored = chain.count * blockSize
        guard stored > cached else { return cached }
        // Keep the slot's own rows up to a block boundary, then import whole blocks from there.
        let from = cached / blockSize
        let kept = slot.truncate(to: from * blockSize)
        guard kept == from * blockSize else { return kept }
        for b in from..<chain.count {
            slot.cache.importTokens(chain[b], count: blockSize)
            slot.didFeed(Array(prompt[(b * blockSize)..<((b + 1) * blockSize)]))
        }
        return stored
    }

    /// Stores the blocks of `prompt` that `cache` holds (after its prefill), in RAM and on disk.
    public func insert(prompt: [Int], cache: KVCache) {
        guard cache.canKeepPrefix else { return }
        let blocks = min(prompt.count, cache.length) / blockSize
        var parent = fingerprint
        for b in 0..<blocks {
            let block = Array(prompt[(b * blockSize)..<((b + 1) * blockSize)])
            let k = key(parent: parent, block: block)
            clock += 1
            if nodes[k] == nil {
                let rows = cache.exportTokens(start: b * blockSize, count: blockSize)
                nodes[k] = Node(parent: parent, tokens: block, rows: rows, lastUse: clock)
                bytesInRAM += rows.count
                if let directory { write(k, parent: parent, block: block, rows: rows, in: directory) }
            } else {
                nodes[k]!.lastUse = clock
            }
            parent = k
        }
        evict()
    }

    private func lookup(_ k: UInt64, parent: UInt64, block: [Int]) -> [UInt8]? {
        clock += 1
        if let node = nodes[k], node.parent == parent, node.tokens == block {
            nodes[k]!.lastUse = clock
            return node.rows
        }
        guard let directory, let rows = read(k, parent: parent, block: block, in: directory) else { return nil }
        diskHits += 1
        nodes[k] = Node(parent: parent, tokens: block, rows: rows, lastUse: clock)
        bytesInRAM += rows.count
        evict()
        return rows
    }

    /// Drops least recently used blocks until RAM is within budget.
    private func evict() {
        guard bytesInRAM > budgetBytes else { return }
        for (k, node) in nodes.sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
            if bytesInRAM <= budgetBytes { break }
            nodes[k] = nil
            bytesInRAM -= node.rows.count
        }
    }

    // MARK: disk tier — file: magic "KJPC", version, fingerprint, key, parent, block size, token count, row bytes,
    // the tokens (int32), the rows, then an FNV-1a checksum of everything before it.

    static let magic: [UInt8] = Array("KJPC".utf8)

    private func fileURL(_ k: UInt64, in directory: URL) -> URL {
        directory.appendingPathComponent(String(format: "%016llx.kvblock", k))
    }

    private func write(_ k: UInt64, parent: UInt64, block: [Int], rows: [UInt8], in directory: URL) {
        let url = fileURL(k, in: directory)
        if FileManager.default.fileExists(atPath: url.path) { return }
        var data = Self.magic
        func append(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        append(1); append(fingerprint); append(k); append(parent); append(UInt64(blockSize)); append(UInt64(block.count)); append(UInt64(rows.count))
        for token in block { withUnsafeBytes(of: Int32(truncatingIfNeeded: token).littleEndian) { data.append(contentsOf: $0) } }
        data.append(contentsOf: rows)
        append(Self.checksum(data))
        // A cache file that cannot be written only costs a recompute later.
        try? AtomicFile.write(Data(data), to: url.path)
    }

    private func read(_ k: UInt64, parent: UInt64, block: [Int], in directory: URL) -> [UInt8]? {
        guard let data = try? Data(contentsOf: fileURL(k, in: directory)) else { return nil }
        let bytes = [UInt8](data)
        let header = 4 + 7 * 8
        func u64(_ offset: Int) -> UInt64 {
            bytes[offset..<(offset + 8)].enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        }
        guard bytes.count >= header + 8, Array(bytes[0..<4]) == Self.magic, u64(4) == 1, u64(12) == fingerprint, u64(20) == k,
              u64(28) == parent, u64(36) == UInt64(blockSize), u64(44) == UInt64(block.count) else { rejectedFiles += 1; return nil }
        let rowCount = u64(52)
        guard rowCount <= UInt64(bytes.count), bytes.count == header + 4 * block.count + Int(rowCount) + 8,
              u64(bytes.count - 8) == Self.checksum(bytes[0..<(bytes.count - 8)]) else { rejectedFiles += 1; return nil }
        for (i, token) in block.enumerated() {
            let o = header + 4 * i
            let stored = Int32(bitPattern: UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24)
            guard Int(stored) == token else { rejectedFiles += 1; return nil }
        }
        let start = header + 4 * block.count
        return Array(bytes[start..<(start + Int(rowCount))])
    }

    static func checksum<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}
