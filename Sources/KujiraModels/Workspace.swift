import Foundation
import KujiraTensor

/// Scratch buffers of one sequence's forward pass, kept with its `KVCache`, so that decoding reuses memory
/// instead of allocating arrays per call. Each block uses its own slots; a slot grows (geometrically) only when a
/// longer chunk (a prefill) or a longer context needs more, so steady-state decoding does not allocate.
///
/// The workspace is also the forward pass's context: `numerics` says whose arithmetic the kernels run, so blocks read
/// it here instead of carrying it from their constructors.
public final class ForwardWorkspace {
    /// A named buffer. Blocks declare their own slots where they are defined
    /// (`extension ForwardWorkspace.Slot { static let myScratch = Slot("myScratch") }`); a block never hands its slot
    /// to a block it calls.
    public struct Slot: Sendable, Hashable {
        /// Dense index of the name (assigned once per name, process-wide).
        public let id: Int
        public let name: String

        public init(_ name: String) {
            self.name = name
            id = SlotNames.shared.id(of: name)
        }
    }

    /// A named buffer of integers (expert routing, token ids).
    public typealias IntSlot = Slot

    /// Kujira's kernels, or llama.cpp's arithmetic bit for bit (`--numerics llama.cpp`).
    public let numerics: Numerics

    private var pointers: [UnsafeMutablePointer<Float>?] = []
    private var capacities: [Int] = []
    private var intPointers: [UnsafeMutablePointer<Int>?] = []
    private var intCapacities: [Int] = []

    public init(numerics: Numerics = .kujira) {
        self.numerics = numerics
        let count = SlotNames.shared.count + 16
        pointers = Array(repeating: nil, count: count)
        capacities = Array(repeating: 0, count: count)
        intPointers = Array(repeating: nil, count: count)
        intCapacities = Array(repeating: 0, count: count)
    }

    deinit {
        for p in pointers { p?.deallocate() }
        for p in intPointers { p?.deallocate() }
    }

    /// `count` integers of `slot` (contents unspecified).
    @inline(__always)
    public func ints(_ slot: Slot, _ count: Int) -> UnsafeMutableBufferPointer<Int> {
        let i = slot.id
        if i >= intCapacities.count || count > intCapacities[i] { growInts(i, count) }
        return UnsafeMutableBufferPointer(start: intPointers[i]!, count: count)
    }

    /// `count` floats of `slot` (contents unspecified; valid until the slot is requested again with a larger count).
    @inline(__always)
    public func buffer(_ slot: Slot, _ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let i = slot.id
        if i >= capacities.count || count > capacities[i] { grow(i, count) }
        return UnsafeMutableBufferPointer(start: pointers[i]!, count: count)
    }

    /// As `buffer`, zero-filled.
    @inline(__always)
    public func zeroed(_ slot: Slot, _ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let b = buffer(slot, count)
        b.baseAddress!.update(repeating: 0, count: count)
        return b
    }

    private func grow(_ i: Int, _ count: Int) {
        while i >= capacities.count { pointers.append(nil); capacities.append(0) }
        pointers[i]?.deallocate()
        let capacity = max(count, 2 * capacities[i], 64)
        pointers[i] = .allocate(capacity: capacity)
        capacities[i] = capacity
    }

    private func growInts(_ i: Int, _ count: Int) {
        while i >= intCapacities.count { intPointers.append(nil); intCapacities.append(0) }
        intPointers[i]?.deallocate()
        intCapacities[i] = max(count, 2 * intCapacities[i], 64)
        intPointers[i] = .allocate(capacity: intCapacities[i])
    }

    /// Bytes currently held.
    public var bytes: Int { capacities.reduce(0, +) * MemoryLayout<Float>.size + intCapacities.reduce(0, +) * MemoryLayout<Int>.size }
}

/// Process-wide slot name → dense index table (a slot's id is looked up once, when its `static let` is created).
final class SlotNames: @unchecked Sendable {
    static let shared = SlotNames()
    private let lock = NSLock()
    private var ids: [String: Int] = [:]

    func id(of name: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        if let id = ids[name] { return id }
        let id = ids.count
        ids[name] = id
        return id
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return ids.count
    }
}

extension ForwardWorkspace.Slot {
    /// The residual stream (n, width) and the normalised copy the blocks read.
    public static let hidden = Self("hidden"), normed = Self("normed"), mixerOut = Self("mixerOut")
    public static let finalHidden = Self("finalHidden"), logits = Self("logits")
    /// Batched decoding: one logits row per sequence (`LanguageModel.decodeBatch`).
    public static let batchLogits = Self("batchLogits")
    /// Attention: projections, per-head output, RoPE angles, softmax row.
    public static let query = Self("query"), key = Self("key"), value = Self("value"), attention = Self("attention")
    public static let ropeTable = Self("ropeTable"), scores = Self("scores")
    /// llama.cpp-exact attention: the f16-rounded query and 16 partial sums per output value.
    public static let ggmlAttention = Self("ggmlAttention")
    /// MLA: q-LoRA, compressed latent, absorbed queries, latent outputs, expanded values, one decoded row.
    public static let queryLatent = Self("queryLatent"), compressed = Self("compressed"), absorbedQuery = Self("absorbedQuery")
    public static let latentOut = Self("latentOut"), expandedValues = Self("expandedValues"), decodedRow = Self("decodedRow")
    public static let headSlice = Self("headSlice"), headProjected = Self("headProjected")
    /// Feed-forward: gate and up projections; MoE: router logits, shared-expert output, gathered tokens, expert output.
    public static let gate = Self("gate"), up = Self("up"), routerLogits = Self("routerLogits"), routerScores = Self("routerScores")
    public static let routerChoice = Self("routerChoice"), routerWeights = Self("routerWeights"), groupScores = Self("groupScores")
    public static let gathered = Self("gathered"), expertOut = Self("expertOut")
    /// Integer buffers: expert routing, and the token id of every row of the pass (hash-routed experts read it).
    public static let chosenExperts = Self("chosenExperts"), expertCounts = Self("expertCounts"), expertOrder = Self("expertOrder")
    public static let keptGroups = Self("keptGroups"), tokenIds = Self("tokenIds")
}
