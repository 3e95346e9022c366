import KujiraTensor

/// How a `KVCache` stores its rows: 32-bit floats, IEEE half floats (llama.cpp's default cache type), or int8 codes
/// with one Float scale per group of values.
public enum KVCachePrecision: Int, Sendable, CaseIterable, CustomStringConvertible {
    case float32 = 32
    case float16 = 16
    case int8 = 8

    /// The precision for `--kv-bits`, or nil for an unsupported width.
    public init?(bits: Int) { self.init(rawValue: bits) }

    /// The precision for `--kv-bits`, or an error naming the supported widths.
    public static func parse(bits: Int) throws -> KVCachePrecision {
        guard let precision = KVCachePrecision(bits: bits) else { throw KVCacheError.unsupportedBits(bits) }
        return precision
    }

    public var bits: Int { rawValue }
    public var description: String { "\(rawValue)-bit" }

    /// Values that share one scale in an int8 row: the largest divisor of 32 that also divides every segment a
    /// model reads separately (MLA: kv_lora_rank and qk_rope_head_dim; GQA: head_dim). 32 for DeepSeek-V3.
    public static func groupSize(segments: [Int]) -> Int {
        segments.reduce(32) { gcd($0, $1) }
    }

    /// Bytes one token occupies in one layer: 4 per value at float32, 2 at float16; 1 per value plus a 4-byte scale per
    /// group at int8.
    public func bytesPerRow(width: Int, groupSize: Int) -> Int {
        switch self {
        case .float32: return width * 4
        case .float16: return width * 2
        case .int8: return width + 4 * ((width + groupSize - 1) / groupSize)
        }
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}

/// A cache setting the engine does not support.
public enum KVCacheError: Error, Equatable, CustomStringConvertible {
    case unsupportedBits(Int)

    public var description: String {
        switch self {
        case let .unsupportedBits(bits):
            return "--kv-bits \(bits) is not supported: use 32 (float), 16 (half float) or 8 (int8 with a scale per group of values)"
        }
    }
}

/// What a model keeps per layer so decoding never recomputes the past: one or more streams of rows per layer
/// (`CacheStreamSpec`), in the precision `--kv-bits` asks for.
///
/// Standard attention stores one row per token, `[K (kvHeads·headDim) | V (kvHeads·valueDim)]`; MLA stores its
/// compressed latent `[c_kv (kv_lora_rank) | k_pe (qk_rope_head_dim)]` — 576 values per token for DeepSeek-V3
/// instead of 128 heads × (192 + 128). DeepSeek-V3.2 adds a second per-token stream (the indexer's keys); DeepSeek-V4
/// keeps a window ring, compressed entries (one per few tokens) and its compressors' pending state.
///
/// Stream 0 of each layer is what `write` and `layerView` address; `rows(layer:stream:)` reaches the others. Rows
/// are dequantized inside the attention loops — the cache is never expanded to floats.
/// A cache belongs to one sequence and one task at a time (it is not `Sendable`).
public final class KVCache {
    /// Streams per layer.
    public let layout: [[CacheStreamSpec]]
    /// Number of layers with a cache.
    public let layerCount: Int
    /// Storage of the rows (state streams are always 32-bit).
    public let precision: KVCachePrecision
    /// Tokens stored so far (the next token's position).
    public private(set) var length: Int = 0
    /// Tokens that fit before the per-token streams must grow.
    public private(set) var capacity: Int = 0
    private let storage: [[CacheRows]]
    /// A row of floats the model composes before `write` (reused by every layer and token; the widest stream's width).
    public let staging: UnsafeMutablePointer<Float>

    /// Scratch buffers of this sequence's forward passes (so decoding does not allocate), and the arithmetic they run.
    public let workspace: ForwardWorkspace

    /// Tokens routed to each expert, per MoE layer, when the caller asks for it (`kujira bench`); nil otherwise.
    public var expertLoad: ExpertLoad?

    /// RoPE position of cache entry 0 (the MTP module's entry i sits at position i + 1).
    public let positionOffset: Int

    /// A cache with `layout[l]` streams in layer l.
    public init(layout: [[CacheStreamSpec]], initialCapacity: Int = 64, positionOffset: Int = 0, precision: KVCachePrecision = .float32,
                numerics: Numerics = .kujira) {
        self.layout = layout
        layerCount = layout.count
        self.positionOffset = positionOffset
        self.precision = precision
        storage = layout.map { streams in streams.map { CacheRows(spec: $0, precision: precision) } }
        staging = .allocate(capacity: max(layout.joined().map(\.width).max() ?? 1, 1))
        workspace = ForwardWorkspace(numerics: numerics)
        reserve(initialCapacity)
    }

    /// One per-token stream of `rowWidth` values in every layer (int8 scales per `groupSize` values).
    public convenience init(layerCount: Int, rowWidth: Int, initialCapacity: Int = 64, positionOffset: Int = 0,
                            precision: KVCachePrecision = .float32, groupSize: Int = 32, numerics: Numerics = .kujira) {
        let spec = CacheStreamSpec("kv", width: rowWidth, segments: [groupSize])
        self.init(layout: Array(repeating: [spec], count: layerCount), initialCapacity: initialCapacity, positionOffset: positionOffset,
                  precision: precision, numerics: numerics)
    }

    deinit { staging.deallocate() }

    /// Values per token per layer of stream 0.
    public var rowWidth: Int { layout.first?.first?.width ?? 0 }
    /// Values sharing one scale (int8) in stream 0; its row width otherwise.
    public var groupSize: Int { storage.first?.first?.groupSize ?? 1 }

    /// Ensures room for `tokens` tokens in total in the per-token and compressed streams, growing geometrically.
    public func reserve(_ tokens: Int) {
        guard tokens > capacity else { return }
        let newCapacity = max(tokens, capacity * 2, 16)
        for layer in storage {
            for rows in layer {
                switch rows.spec.kind {
                case .perToken: rows.reserve(newCapacity, keep: length)
                case let .compressed(rate): rows.reserve(newCapacity / rate + 1, keep: rows.count)
                case .window, .state: break
                }
            }
        }
        capacity = newCapacity
    }

    /// Stores `row` as token `position` of `layer` in stream 0 (position < capacity).
    @inline(__always)
    public func write(_ row: UnsafePointer<Float>, layer: Int, position: Int) {
        storage[layer][0].write(row, at: position)
    }

    /// The stored value `index` of token `position` in `layer` (stream 0), dequantized (tests and tools).
    public func value(layer: Int, position: Int, index: Int) -> Float {
        storage[layer][0].value(row: position, index: index)
    }

    /// Read access to `layer`'s stream 0 for the attention loops.
    @inline(__always)
    public func layerView(_ layer: Int) -> KVCacheLayerView { storage[layer][0].view }

    /// Stream `stream` of `layer`.
    @inline(__always)
    public func rows(layer: Int, stream: Int) -> CacheRows { storage[layer][stream] }

    /// Marks `count` more tokens as stored (after every layer wrote their rows).
    public func advance(by count: Int) {
        precondition(length + count <= capacity, "KV cache advanced past its reserved capacity")
        length += count
    }

    /// Bytes one token's rows take in every stream (caches whose streams are all per-token; the prefix cache's unit).
    public var exportBytesPerToken: Int { storage.joined().reduce(0) { $0 + $1.rowBytes } }

    /// The stored rows of tokens [start, start + count) of every stream, layer by layer (`canKeepPrefix` caches only).
    public func exportTokens(start: Int, count: Int) -> [UInt8] {
        precondition(canKeepPrefix && start + count <= length, "export of tokens the cache does not hold")
        var out: [UInt8] = []
        out.reserveCapacity(count * exportBytesPerToken)
        for layer in storage { for rows in layer { rows.exportRows(start: start, count: count, into: &out) } }
        return out
    }

    /// Appends `count` tokens exported by `exportTokens` (from a cache of the same layout and precision) at `length`.
    public func importTokens(_ bytes: [UInt8], count: Int) {
        precondition(canKeepPrefix && bytes.count == count * exportBytesPerToken, "import of rows from another layout")
        reserve(length + count)
        bytes.withUnsafeBytes { raw in
            var offset = 0
            for layer in storage {
                for rows in layer {
                    offset += rows.importRows(UnsafeRawBufferPointer(rebasing: raw[offset...]), start: length, count: count)
                }
            }
        }
        length += count
    }

    /// What must match for rows to be interchangeable: streams, widths, kinds and precision.
    public var layoutDescription: String {
        "\(precision.bits)-bit " + layout.map { $0.map { "\($0.name):\($0.width):\($0.kind)" }.joined(separator: ",") }.joined(separator: ";")
    }

    /// Whether `truncate` can keep a prefix: only caches whose streams are all per-token can.
    public var canKeepPrefix: Bool { layout.joined().allSatisfy { $0.kind == .perToken } }

    /// Forgets every token from `newLength` on (rejected speculative tokens, a new prompt sharing a prefix) and returns
    /// the length kept. A cache with windows or compressed streams cannot drop a suffix (its old rows are overwritten
    /// or pooled): it starts over empty, and the caller recomputes from the returned 0.
    @discardableResult
    public func truncate(to newLength: Int) -> Int {
        let target = min(max(newLength, 0), length)
        guard target < length else { return length }
        if canKeepPrefix {
            length = target
        } else {
            length = 0
            for layer in storage {
                for rows in layer {
                    rows.count = 0
                    rows.zeroState()
                }
            }
        }
        return length
    }

    /// Bytes added per token across all layers in this cache's precision (codes plus scales at int8; compressed
    /// streams count their share).
    public var bytesPerToken: Int {
        Int(layout.joined().reduce(0.0) { $0 + $1.bytesPerToken(precision) }.rounded(.up))
    }
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
