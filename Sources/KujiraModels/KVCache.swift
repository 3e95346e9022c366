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

/// What a model keeps per token per layer so decoding never recomputes the past.
///
/// Each layer stores one row of `rowWidth` values per token. Standard attention stores
/// `[K (kvHeads·headDim) | V (kvHeads·valueDim)]`; MLA stores its compressed latent
/// `[c_kv (kv_lora_rank) | k_pe (qk_rope_head_dim)]` — 576 values per token for DeepSeek-V3
/// instead of 128 heads × (192 + 128).
///
/// Rows are written with `write` (from a float row, e.g. `staging`) and read through `layerView`, whose `dot` and
/// `addScaled` dequantize int8 rows inside the loop — the cache is never expanded to floats.
/// A cache belongs to one sequence and one task at a time (it is not `Sendable`).
public final class KVCache {
    /// Values stored per token per layer.
    public let rowWidth: Int
    /// Number of layers with a cache.
    public let layerCount: Int
    /// Storage of the rows.
    public let precision: KVCachePrecision
    /// Values sharing one scale (int8); `rowWidth` at float32.
    public let groupSize: Int
    /// Tokens stored so far (the next token's position).
    public private(set) var length: Int = 0
    /// Tokens that fit before the buffers must grow.
    public private(set) var capacity: Int = 0
    /// Per layer: float rows (float32) or int8 codes (int8).
    private var values: [UnsafeMutableRawPointer] = []
    /// Per layer: one scale per group per token (int8 only).
    private var scales: [UnsafeMutablePointer<Float>] = []
    private let groupsPerRow: Int
    /// A row of floats the model composes before `write` (reused by every layer and token).
    public let staging: UnsafeMutablePointer<Float>

    /// Scratch buffers of this sequence's forward passes (so decoding does not allocate).
    public let workspace = ForwardWorkspace()

    /// Tokens routed to each expert, per MoE layer, when the caller asks for it (`kujira bench`); nil otherwise.
    public var expertLoad: ExpertLoad?

    /// RoPE position of cache entry 0 (the MTP module's entry i sits at position i + 1).
    public let positionOffset: Int

    public init(layerCount: Int, rowWidth: Int, initialCapacity: Int = 64, positionOffset: Int = 0,
                precision: KVCachePrecision = .float32, groupSize: Int = 32) {
        precondition(precision != .int8 || (groupSize > 0 && rowWidth % groupSize == 0),
                     "int8 KV cache: group size \(groupSize) must divide the row width \(rowWidth)")
        self.layerCount = layerCount
        self.rowWidth = rowWidth
        self.positionOffset = positionOffset
        self.precision = precision
        self.groupSize = precision == .int8 ? groupSize : max(rowWidth, 1)
        groupsPerRow = precision == .int8 ? rowWidth / groupSize : 0
        staging = .allocate(capacity: max(rowWidth, 1))
        reserve(initialCapacity)
    }

    deinit {
        for p in values { p.deallocate() }
        for p in scales { p.deallocate() }
        staging.deallocate()
    }

    private var valueBytes: Int { precision.rawValue / 8 }

    /// Ensures room for `tokens` tokens in total, growing geometrically.
    public func reserve(_ tokens: Int) {
        guard tokens > capacity else { return }
        let newCapacity = max(tokens, capacity * 2, 16)
        for l in 0..<layerCount {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(newCapacity * rowWidth * valueBytes, 1), alignment: 64)
            if l < values.count {
                p.copyMemory(from: values[l], byteCount: length * rowWidth * valueBytes)
                values[l].deallocate()
                values[l] = p
            } else {
                values.append(p)
            }
            guard precision == .int8 else { continue }
            let s = UnsafeMutablePointer<Float>.allocate(capacity: max(newCapacity * groupsPerRow, 1))
            if l < scales.count {
                s.update(from: scales[l], count: length * groupsPerRow)
                scales[l].deallocate()
                scales[l] = s
            } else {
                scales.append(s)
            }
        }
        capacity = newCapacity
    }

    /// Stores `row` (`rowWidth` floats) as token `position` of `layer` (position < capacity), quantizing at int8:
    /// per group d = max|x| / 127, code = round(x / d), so every value is within d / 2 of what was written.
    public func write(_ row: UnsafePointer<Float>, layer: Int, position: Int) {
        precondition(position < capacity, "KV cache written past its reserved capacity")
        switch precision {
        case .float32:
            values[layer].assumingMemoryBound(to: Float.self).advanced(by: position * rowWidth).update(from: row, count: rowWidth)
        case .float16:
            HalfRows.store(row, count: rowWidth, into: values[layer].assumingMemoryBound(to: Float16.self) + position * rowWidth)
        case .int8:
            let codes = values[layer].assumingMemoryBound(to: Int8.self) + position * rowWidth
            let rowScales = scales[layer] + position * groupsPerRow
            for g in 0..<groupsPerRow {
                let x = row + g * groupSize
                var amax: Float = 0
                for i in 0..<groupSize { amax = max(amax, abs(x[i])) }
                let inverse: Float = amax > 0 ? 127 / amax : 0
                rowScales[g] = amax.isFinite ? amax / 127 : .nan
                for i in 0..<groupSize {
                    let q = (x[i] * inverse).rounded(.toNearestOrEven)
                    codes[g * groupSize + i] = q.isFinite ? Int8(max(-127, min(127, q))) : 0
                }
            }
        }
    }

    /// The stored value `index` of token `position` in `layer`, dequantized (tests and tools; kernels use `layerView`).
    public func value(layer: Int, position: Int, index: Int) -> Float {
        let view = layerView(layer)
        switch precision {
        case .float32: return view.floats![position * rowWidth + index]
        case .float16: return Float(view.halves![position * rowWidth + index])
        case .int8: return Float(view.codes![position * rowWidth + index]) * view.scales![position * groupsPerRow + index / groupSize]
        }
    }

    /// Read access to `layer`'s rows for the attention loops.
    @inline(__always)
    public func layerView(_ layer: Int) -> KVCacheLayerView {
        switch precision {
        case .float32:
            return KVCacheLayerView(floats: UnsafePointer(values[layer].assumingMemoryBound(to: Float.self)), halves: nil, codes: nil, scales: nil,
                                    rowWidth: rowWidth, groupSize: groupSize, groupsPerRow: groupsPerRow)
        case .float16:
            return KVCacheLayerView(floats: nil, halves: UnsafePointer(values[layer].assumingMemoryBound(to: Float16.self)), codes: nil,
                                    scales: nil, rowWidth: rowWidth, groupSize: groupSize, groupsPerRow: groupsPerRow)
        case .int8:
            return KVCacheLayerView(floats: nil, halves: nil, codes: UnsafePointer(values[layer].assumingMemoryBound(to: Int8.self)),
                                    scales: UnsafePointer(scales[layer]), rowWidth: rowWidth, groupSize: groupSize, groupsPerRow: groupsPerRow)
        }
    }

    /// Marks `count` more tokens as stored (after every layer wrote their rows).
    public func advance(by count: Int) {
        precondition(length + count <= capacity, "KV cache advanced past its reserved capacity")
        length += count
    }

    /// Forgets every token from `newLength` on (rejected speculative tokens, a new prompt sharing a prefix).
    public func truncate(to newLength: Int) {
        length = min(max(newLength, 0), length)
    }

    /// Bytes held per token across all layers in this cache's precision (codes plus scales at int8).
    public var bytesPerToken: Int { layerCount * precision.bytesPerRow(width: rowWidth, groupSize: groupSize) }
}

/// One layer of a `KVCache` as the attention loops read it: float rows, half rows, or int8 codes and per-group scales.
public struct KVCacheLayerView {
    let floats: UnsafePointer<Float>?
    let halves: UnsafePointer<Float16>?
    let codes: UnsafePointer<Int8>?
    let scales: UnsafePointer<Float>?
    let rowWidth: Int, groupSize: Int, groupsPerRow: Int

    /// q · row[offset ..< offset + count] of token `position`; offset and count are whole groups.
    @inline(__always)
    public func dot(_ q: UnsafePointer<Float>, position: Int, offset: Int, count: Int) -> Float {
        if let floats {
            return Linear.dot(UnsafeBufferPointer(start: q, count: count), UnsafeBufferPointer(start: floats + position * rowWidth + offset, count: count))
        }
        if let halves { return HalfRows.dot(q, halves + position * rowWidth + offset, count: count) }
        return Int8RowDots.dot(q, codes! + position * rowWidth + offset, scales: scales! + position * groupsPerRow + offset / groupSize,
                               groupSize: groupSize, count: count)
    }

    /// out[0 ..< count] += weight · row[offset ..< offset + count] of token `position`.
    @inline(__always)
    public func addScaled(position: Int, offset: Int, count: Int, weight: Float, into out: UnsafeMutablePointer<Float>) {
        if let floats {
            Elementwise.addScaled(UnsafeBufferPointer(start: floats + position * rowWidth + offset, count: count), weight,
                                  into: UnsafeMutableBufferPointer(start: out, count: count))
            return
        }
        if let halves {
            HalfRows.addScaled(halves + position * rowWidth + offset, count: count, weight: weight, into: out)
            return
        }
        Int8RowDots.addScaled(codes! + position * rowWidth + offset, scales: scales! + position * groupsPerRow + offset / groupSize,
                              groupSize: groupSize, count: count, weight: weight, into: out)
    }

    /// row[i] (+)= q · row i[offset ..< offset + count] for the first `positions` tokens (`adding`: into what row holds).
    @inline(__always)
    public func dots(_ q: UnsafePointer<Float>, positions: Int, offset: Int, count: Int, into row: UnsafeMutablePointer<Float>, adding: Bool = false) {
        if adding {
            for i in 0..<positions { row[i] += dot(q, position: i, offset: offset, count: count) }
        } else {
            for i in 0..<positions { row[i] = dot(q, position: i, offset: offset, count: count) }
        }
    }

    /// out[0 ..< count] += Σ_i weights[i] · row i[offset ..< offset + count] over the first `positions` tokens, in order.
    @inline(__always)
    public func addScaledRows(_ weights: UnsafePointer<Float>, positions: Int, offset: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        for i in 0..<positions { addScaled(position: i, offset: offset, count: count, weight: weights[i], into: out) }
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
