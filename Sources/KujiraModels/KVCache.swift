/// What a model keeps per token per layer so decoding never recomputes the past.
///
/// Each layer stores one row of `rowWidth` floats per token. Standard attention stores
/// `[K (kvHeads·headDim) | V (kvHeads·valueDim)]`; MLA stores its compressed latent
/// `[c_kv (kv_lora_rank) | k_pe (qk_rope_head_dim)]` — 576 values per token for DeepSeek-V3
/// instead of 128 heads × (192 + 128).
///
/// A cache belongs to one sequence and one task at a time (it is not `Sendable`).
public final class KVCache {
    /// Floats stored per token per layer.
    public let rowWidth: Int
    /// Number of layers with a cache.
    public let layerCount: Int
    /// Tokens stored so far (the next token's position).
    public private(set) var length: Int = 0
    /// Tokens that fit before the buffers must grow.
    public private(set) var capacity: Int = 0
    private var layers: [UnsafeMutablePointer<Float>]

    /// Tokens routed to each expert, per MoE layer, when the caller asks for it (`kujira bench`); nil otherwise.
    public var expertLoad: ExpertLoad?

    /// RoPE position of cache entry 0 (the MTP module's entry i sits at position i + 1).
    public let positionOffset: Int

    public init(layerCount: Int, rowWidth: Int, initialCapacity: Int = 64, positionOffset: Int = 0) {
        self.layerCount = layerCount
        self.rowWidth = rowWidth
        self.positionOffset = positionOffset
        self.layers = []
        reserve(initialCapacity)
    }

    deinit {
        for p in layers { p.deallocate() }
    }

    /// Ensures room for `tokens` tokens in total, growing geometrically.
    public func reserve(_ tokens: Int) {
        guard tokens > capacity else { return }
        let newCapacity = max(tokens, capacity * 2, 16)
        var grown: [UnsafeMutablePointer<Float>] = []
        for l in 0..<layerCount {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * rowWidth)
            if l < layers.count {
                p.update(from: layers[l], count: length * rowWidth)
                layers[l].deallocate()
            }
            grown.append(p)
        }
        layers = grown
        capacity = newCapacity
    }

    /// The row of token `position` in `layer` (valid for positions < length + reserved tokens).
    @inline(__always)
    public func row(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        layers[layer] + position * rowWidth
    }

    /// Start of `layer`'s storage; token t's row is at `t * rowWidth`.
    @inline(__always)
    public func storage(layer: Int) -> UnsafeMutablePointer<Float> { layers[layer] }

    /// Marks `count` more tokens as stored (after every layer wrote their rows).
    public func advance(by count: Int) {
        precondition(length + count <= capacity, "KV cache advanced past its reserved capacity")
        length += count
    }

    /// Forgets every token from `newLength` on (rejected speculative tokens, a new prompt sharing a prefix).
    public func truncate(to newLength: Int) {
        length = min(max(newLength, 0), length)
    }

    /// Bytes held per token across all layers at 32-bit storage.
    public var bytesPerToken: Int { layerCount * rowWidth * MemoryLayout<Float>.size }
}

/// Tokens per expert per MoE layer, gathered while a sequence runs.
public final class ExpertLoad {
    /// counts[layer][expert]; layers without experts stay empty.
    public private(set) var counts: [Int: [Int]] = [:]

    public init() {}

    func record(layer: Int, experts: [Int], expertCount: Int) {
        var row = counts[layer] ?? [Int](repeating: 0, count: expertCount)
        for e in experts { row[e] += 1 }
        counts[layer] = row
    }

    /// Over all layers: the busiest expert's share relative to a perfectly even split (max / mean), averaged.
    public var maxOverMean: Double {
        let ratios = counts.values.compactMap { row -> Double? in
            let total = row.reduce(0, +)
            guard total > 0 else { return nil }
            return Double(row.max() ?? 0) / (Double(total) / Double(row.count))
        }
        return ratios.isEmpty ? 0 : ratios.reduce(0, +) / Double(ratios.count)
    }

    /// Experts that received at least one token, over all layers, and how many experts exist.
    public var touched: (used: Int, total: Int) {
        (counts.values.reduce(0) { $0 + $1.filter { $0 > 0 }.count }, counts.values.reduce(0) { $0 + $1.count })
    }
}
