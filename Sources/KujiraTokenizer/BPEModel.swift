/// Byte-level (or character-level) BPE: vocabulary, merge ranks, and the merge loop for one pre-token.
struct BPEModel: Sendable {
    /// Token bytes → id for every vocabulary entry (byte-level entries decoded to raw bytes).
    let idOfBytes: [[UInt8]: Int32]
    /// Id of each single byte (byte-level) or -1.
    let idOfByte: [Int32]
    let merges: PairMergeTable
    /// Initial symbols are bytes (byte-level BPE) rather than UTF-8 characters.
    let byteLevel: Bool
    /// Llama 3's `ignore_merges`: a pre-token that is itself in the vocabulary is emitted whole.
    let ignoreMerges: Bool
    let unknownId: Int32?

    /// Builds the model from vocabulary strings (index = id; nil for holes) and merges given as string pairs.
    /// Merges whose parts or result are not in the vocabulary are skipped, as they can never apply.
    init(vocab: [String?], merges mergePairs: [(String, String)], byteLevel: Bool, ignoreMerges: Bool,
         unknownToken: String?) {
        var idOfBytes = [[UInt8]: Int32](minimumCapacity: vocab.count)
        var idOfString = [String: Int32](minimumCapacity: vocab.count)
        for (id, token) in vocab.enumerated() {
            guard let token else { continue }
            idOfString[token] = Int32(id)
            let bytes = byteLevel ? (ByteLevel.decode(token) ?? Array(token.utf8)) : Array(token.utf8)
            if idOfBytes[bytes] == nil { idOfBytes[bytes] = Int32(id) }
        }
        var idOfByte = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 { idOfByte[byte] = idOfBytes[[UInt8(byte)]] ?? -1 }
        var table = PairMergeTable(capacity: mergePairs.count)
        for (rank, pair) in mergePairs.enumerated() {
            guard let left = idOfString[pair.0], let right = idOfString[pair.1],
                  let merged = idOfString[pair.0 + pair.1] else { continue }
            table.insertIfAbsent(left: left, right: right, rank: Int32(rank), merged: merged)
        }
        self.idOfBytes = idOfBytes
        self.idOfByte = idOfByte
        self.merges = table
        self.byteLevel = byteLevel
        self.ignoreMerges = ignoreMerges
        self.unknownId = unknownToken.flatMap { idOfString[$0] }
    }

    /// Encodes one pre-token (raw UTF-8 bytes) and appends its ids; words of more than `smallLimit` symbols
    /// use the heap merge.
    func encodeWord(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32], workspace: inout BPEWorkspace,
                    smallLimit: Int = 128) {
        guard word.count > 0 else { return }
        if ignoreMerges || word.count == 1, let id = idOfBytes[Array(word)] {
            out.append(id)
            return
        }
        var symbols = workspace.symbols
        symbols.removeAll(keepingCapacity: true)
        if byteLevel {
            for byte in word {
                let id = idOfByte[Int(byte)]
                if id >= 0 { symbols.append(id) } else if let unknownId { symbols.append(unknownId) }
            }
        } else {
            var i = 0
            while i < word.count {
                let length = utf8Length(word[i])
                let end = min(word.count, i + length)
                if let id = idOfBytes[Array(word[i..<end])] {
                    symbols.append(id)
                } else if let unknownId {
                    symbols.append(unknownId)
                }
                i = end
            }
        }
        if symbols.count < 2 {
            out.append(contentsOf: symbols)
        } else if symbols.count <= smallLimit {
            mergeSmall(&symbols, ranks: &workspace.ranks)
            out.append(contentsOf: symbols)
        } else {
            mergeWithHeap(symbols, workspace: &workspace, into: &out)
        }
        workspace.symbols = symbols
    }

    /// Quadratic-in-length merge loop for short words: repeatedly merge the lowest-ranked (leftmost) pair.
    private func mergeSmall(_ symbols: inout [Int32], ranks: inout [Int32]) {
        ranks.removeAll(keepingCapacity: true)
        for i in 0..<(symbols.count - 1) {
            ranks.append(merges.lookup(left: symbols[i], right: symbols[i + 1])?.rank ?? .max)
        }
        while true {
            var best = -1
            var bestRank = Int32.max
            for i in 0..<ranks.count where ranks[i] < bestRank {
                bestRank = ranks[i]
                best = i
            }
            guard best >= 0, let merge = merges.lookup(left: symbols[best], right: symbols[best + 1]) else { return }
            symbols[best] = merge.merged
            symbols.remove(at: best + 1)
            ranks.remove(at: best)
            if best > 0 {
                ranks[best - 1] = merges.lookup(left: symbols[best - 1], right: symbols[best])?.rank ?? .max
            }
            if best < ranks.count {
                ranks[best] = merges.lookup(left: symbols[best], right: symbols[best + 1])?.rank ?? .max
            }
        }
    }

    /// O(n log n) merge for long words: a linked list of symbols and a min-heap of candidate pairs ordered by
    /// (rank, position); stale heap entries are skipped when popped.
    private func mergeWithHeap(_ initial: [Int32], workspace: inout BPEWorkspace, into out: inout [Int32]) {
        let n = initial.count
        var ids = initial
        var next = Array(1...n)  // n = end
        var previous = Array(-1..<(n - 1))
        var heap = MergeHeap()
        heap.reserve(n)
        func push(_ i: Int) {
            let j = next[i]
            guard j < n, let merge = merges.lookup(left: ids[i], right: ids[j]) else { return }
            heap.push(MergeCandidate(rank: merge.rank, position: Int32(i), left: ids[i], right: ids[j]))
        }
        for i in 0..<(n - 1) { push(i) }
        while let candidate = heap.pop() {
            let i = Int(candidate.position)
            let j = next[i]
            // Stale if either side has changed since the candidate was pushed (or i was absorbed: ids[i] == -1).
            guard j < n, ids[i] == candidate.left, ids[j] == candidate.right,
                  let merge = merges.lookup(left: ids[i], right: ids[j]) else { continue }
            ids[i] = merge.merged
            ids[j] = -1
            next[i] = next[j]
            if next[j] < n { previous[next[j]] = i }
            if previous[i] >= 0 { push(previous[i]) }
            push(i)
        }
        var i = 0
        while i < n {
            out.append(ids[i])
            i = next[i]
        }
    }

    @inline(__always) private func utf8Length(_ lead: UInt8) -> Int {
        lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
    }
}

/// Splits a merge written as "left right" at its first space after the first byte (as llama.cpp does, so a
/// left part that is itself " " survives); works on UTF-8, not on `Character`s.
func splitMerge(_ text: String) -> (String, String)? {
    let bytes = Array(text.utf8)
    guard bytes.count >= 3, let space = bytes[1...].firstIndex(of: 0x20) else { return nil }
    return (String(decoding: bytes[..<space], as: UTF8.self), String(decoding: bytes[(space + 1)...], as: UTF8.self))
}

/// Scratch buffers reused across words of one encode call.
struct BPEWorkspace {
    var symbols: [Int32] = []
    var ranks: [Int32] = []
}

struct MergeCandidate {
    var rank: Int32
    var position: Int32
    var left: Int32
    var right: Int32

    @inline(__always) func precedes(_ other: MergeCandidate) -> Bool {
        rank < other.rank || (rank == other.rank && position < other.position)
    }
}

/// A binary min-heap of merge candidates.
struct MergeHeap {
    private var items: [MergeCandidate] = []

    mutating func reserve(_ n: Int) { items.reserveCapacity(n) }

    mutating func push(_ item: MergeCandidate) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].precedes(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var best = parent
                if left < items.count && items[left].precedes(items[best]) { best = left }
                if right < items.count && items[right].precedes(items[best]) { best = right }
                if best == parent { break }
                items.swapAt(parent, best)
                parent = best
            }
        }
        return top
    }
}
