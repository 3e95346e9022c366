/// Open-addressing map from a token pair (left id, right id) to its merge (rank, merged id); the hot lookup
/// of BPE, so it avoids `Dictionary`'s SipHash.
struct PairMergeTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private let mask: Int
    private static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always) private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// Inserts unless the pair is present (the first, lowest-ranked merge wins).
    mutating func insertIfAbsent(left: Int32, right: Int32, rank: Int32, merged: Int32) {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        var i = Self.slot(key, mask)
        while keys[i] != Self.empty {
            if keys[i] == key { return }
            i = (i + 1) & mask
        }
        keys[i] = key
        values[i] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged))
    }

    /// (rank, merged id) of the pair, or nil.
    @inline(__always)
    func lookup(left: Int32, right: Int32) -> (rank: Int32, merged: Int32)? {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        return keys.withUnsafeBufferPointer { keys in
            var i = Self.slot(key, mask)
            while true {
                let k = keys[i]
                if k == key {
                    let v = values[i]
                    return (Int32(truncatingIfNeeded: v >> 32), Int32(truncatingIfNeeded: v))
                }
                if k == Self.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }
}

/// Per-encode cache from a pre-token's bytes to its BPE ids, stored in flat arenas (no allocation per word).
struct WordCache {
    private var slots: [Int32]          // index into entries, -1 empty
    private var hashes: [UInt64] = []
    private var byteStarts: [Int32] = []
    private var idStarts: [Int32] = []
    private var byteArena: [UInt8] = []
    private var idArena: [Int32] = []
    private var mask: Int
    private let maxEntries: Int

    init(maxEntries: Int = 1 << 16) {
        self.maxEntries = maxEntries
        slots = [Int32](repeating: -1, count: 1024)
        mask = 1023
        byteStarts = [0]
        idStarts = [0]
    }

    @inline(__always) static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h ^ (h >> 29)
    }

    /// Appends the cached ids of `bytes` to `out` and returns true, or returns false on a miss.
    func lookup(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt64, into out: inout [Int32]) -> Bool {
        guard bytes.count > 0 else { return false }
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = Int(slots[i])
            if entry < 0 { return false }
            if hashes[entry] == hash {
                let start = Int(byteStarts[entry]), end = Int(byteStarts[entry + 1])
                if end - start == bytes.count && byteArena.withUnsafeBufferPointer({
                    memcmpEqual($0.baseAddress! + start, bytes.baseAddress!, bytes.count)
                }) {
                    out.append(contentsOf: idArena[Int(idStarts[entry])..<Int(idStarts[entry + 1])])
                    return true
                }
            }
            i = (i + 1) & mask
        }
    }

    mutating func insert(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt64, ids: ArraySlice<Int32>) {
        guard hashes.count < maxEntries, bytes.count > 0 else { return }
        if (hashes.count + 1) * 2 > slots.count { grow() }
        let entry = hashes.count
        hashes.append(hash)
        byteArena.append(contentsOf: bytes)
        byteStarts.append(Int32(byteArena.count))
        idArena.append(contentsOf: ids)
        idStarts.append(Int32(idArena.count))
        var i = Int(truncatingIfNeeded: hash) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = Int32(entry)
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        for (entry, hash) in hashes.enumerated() {
            var i = Int(truncatingIfNeeded: hash) & mask
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = Int32(entry)
        }
    }
}

@inline(__always)
func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    var i = 0
    while i < count {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}
