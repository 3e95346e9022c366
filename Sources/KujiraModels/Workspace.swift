import KujiraTensor

/// Scratch buffers of one sequence's forward pass, kept with its `KVCache`, so that decoding reuses memory
/// instead of allocating arrays per call. Each block uses its own slots; a slot grows (geometrically) only when a
/// longer chunk (a prefill) or a longer context needs more, so steady-state decoding does not allocate.
public final class ForwardWorkspace {
    /// The buffers, one per use (a block never hands its slot to a block it calls).
    public enum Slot: Int, CaseIterable, Sendable {
        /// The residual stream (n, hidden) and the normalised copy the blocks read.
        case hidden, normed, mixerOut, finalHidden, logits
        /// Batched decoding: one logits row per sequence (`LanguageModel.decodeBatch`).
        case batchLogits
        /// Attention: projections, per-head output, RoPE angles, softmax row.
        case query, key, value, attention, ropeTable, scores
        /// llama.cpp-exact attention: the f16-rounded query and 16 partial sums per output value.
        case ggmlAttention
        /// MLA: q-LoRA, compressed latent, absorbed queries, latent outputs, expanded values, one decoded row.
        case queryLatent, compressed, absorbedQuery, latentOut, expandedValues, decodedRow, headSlice, headProjected
        /// Feed-forward: gate and up projections; MoE: router logits, shared-expert output, gathered tokens, expert output.
        case gate, up, routerLogits, routerScores, routerChoice, routerWeights, groupScores, gathered, expertOut
    }

    private var pointers: [UnsafeMutablePointer<Float>?]
    private var capacities: [Int]
    private var intPointers: [UnsafeMutablePointer<Int>?]
    private var intCapacities: [Int]

    public init() {
        pointers = Array(repeating: nil, count: Slot.allCases.count)
        capacities = Array(repeating: 0, count: Slot.allCases.count)
        intPointers = Array(repeating: nil, count: IntSlot.allCases.count)
        intCapacities = Array(repeating: 0, count: IntSlot.allCases.count)
    }

    deinit {
        for p in pointers { p?.deallocate() }
        for p in intPointers { p?.deallocate() }
    }

    /// `count` integers of `slot` (contents unspecified).
    @inline(__always)
    public func ints(_ slot: IntSlot, _ count: Int) -> UnsafeMutableBufferPointer<Int> {
        let i = slot.rawValue
        if count > intCapacities[i] {
            intPointers[i]?.deallocate()
            intCapacities[i] = max(count, 2 * intCapacities[i], 64)
            intPointers[i] = .allocate(capacity: intCapacities[i])
        }
        return UnsafeMutableBufferPointer(start: intPointers[i]!, count: count)
    }

    /// `count` floats of `slot` (contents unspecified; valid until the slot is requested again with a larger count).
    @inline(__always)
    public func buffer(_ slot: Slot, _ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let i = slot.rawValue
        if count > capacities[i] { grow(i, count) }
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
        pointers[i]?.deallocate()
        let capacity = max(count, 2 * capacities[i], 64)
        pointers[i] = .allocate(capacity: capacity)
        capacities[i] = capacity
    }

    /// Bytes currently held.
    public var bytes: Int { capacities.reduce(0, +) * MemoryLayout<Float>.size + intCapacities.reduce(0, +) * MemoryLayout<Int>.size }
}

extension ForwardWorkspace {
    /// Integer buffers (expert routing).
    public enum IntSlot: Int, CaseIterable, Sendable { case chosenExperts, expertCounts, expertOrder, keptGroups }
}
