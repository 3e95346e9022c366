import KujiraTensor

/// One kind of rows a layer keeps in its cache, as an architecture declares it.
public struct CacheStreamSpec: Sendable, Equatable {
    /// How the stream's rows relate to the tokens seen.
    public enum Kind: Sendable, Equatable {
        /// One row per token (K/V rows, MLA's latent, indexer keys): row i is token i.
        case perToken
        /// One row per `rate` tokens (compressed entries), appended as windows close.
        case compressed(rate: Int)
        /// The last `size` tokens' rows in a ring: token i sits at row i mod size.
        case window(size: Int)
        /// `rows` rows of running float state (a compressor's pending tokens); always 32-bit.
        case state(rows: Int)
    }

    /// What the rows hold (printed by `kujira inspect`).
    public var name: String
    /// Values per row.
    public var width: Int
    public var kind: Kind
    /// Pieces of a row that are read separately: int8 scale groups never straddle them.
    public var segments: [Int]

    public init(_ name: String, width: Int, kind: Kind = .perToken, segments: [Int]? = nil) {
        self.name = name
        self.width = width
        self.kind = kind
        self.segments = segments ?? [width]
    }

    /// Values per int8 scale for this stream (`KVCachePrecision.groupSize(segments:)`).
    public var groupSize: Int { KVCachePrecision.groupSize(segments: segments) }

    /// Rows held when `tokens` tokens have been seen.
    public func rows(forTokens tokens: Int) -> Int {
        switch kind {
        case .perToken: return tokens
        case let .compressed(rate): return tokens / rate
        case let .window(size): return min(tokens, size)
        case let .state(rows): return rows
        }
    }

    /// The precision the stream stores at when the cache is asked for `precision` (state stays 32-bit).
    public func storage(_ precision: KVCachePrecision) -> KVCachePrecision {
        if case .state = kind { return .float32 }
        return precision
    }

    /// Bytes added per token at `precision` (fractional for compressed streams; 0 for fixed-size ones).
    public func bytesPerToken(_ precision: KVCachePrecision) -> Double {
        let row = Double(storage(precision).bytesPerRow(width: width, groupSize: groupSize))
        switch kind {
        case .perToken: return row
        case let .compressed(rate): return row / Double(rate)
        case .window, .state: return 0
        }
    }

    /// Bytes held whatever the context length (window rings and state) at `precision`.
    public func fixedBytes(_ precision: KVCachePrecision) -> Int {
        let row = storage(precision).bytesPerRow(width: width, groupSize: groupSize)
        switch kind {
        case .perToken, .compressed: return 0
        case let .window(size): return row * size
        case let .state(rows): return row * rows
        }
    }
}

/// The storage of one cache stream of one layer: rows of `width` values at a precision, growing on demand.
public final class CacheRows {
    public let spec: CacheStreamSpec
    public let precision: KVCachePrecision
    public let width: Int
    /// Values sharing one scale (int8); `width` otherwise.
    public let groupSize: Int
    /// Rows stored so far (compressed streams count their entries here; per-token streams follow the cache's length).
    public var count = 0
    /// Rows that fit before the storage must grow.
    public private(set) var capacity = 0
    private var values: UnsafeMutableRawPointer?
    private var scales: UnsafeMutablePointer<Float>?
    private let groupsPerRow: Int

    init(spec: CacheStreamSpec, precision requested: KVCachePrecision) {
        self.spec = spec
        precision = spec.storage(requested)
        width = spec.width
        groupSize = precision == .int8 ? spec.groupSize : max(spec.width, 1)
        precondition(precision != .int8 || (groupSize > 0 && width % groupSize == 0),
                     "int8 KV cache: group size \(groupSize) must divide the row width \(width)")
        groupsPerRow = precision == .int8 ? width / groupSize : 0
        switch spec.kind {
        case let .window(size): reserve(size)
        case let .state(rows): reserve(rows); zeroState()
        default: break
        }
    }

    deinit {
        values?.deallocate()
        scales?.deallocate()
    }

    private var valueBytes: Int { precision.rawValue / 8 }

    /// Ensures room for `rows` rows, keeping the first `keep` (growing geometrically).
    public func reserve(_ rows: Int, keep: Int? = nil) {
        guard rows > capacity else { return }
        let newCapacity = max(rows, capacity * 2, 16)
        let kept = min(keep ?? capacity, capacity)
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(newCapacity * width * valueBytes, 1), alignment: 64)
        if let values { p.copyMemory(from: values, byteCount: kept * width * valueBytes); values.deallocate() }
        values = p
        if precision == .int8 {
            let s = UnsafeMutablePointer<Float>.allocate(capacity: max(newCapacity * groupsPerRow, 1))
            if let scales { s.update(from: scales, count: kept * groupsPerRow); scales.deallocate() }
            scales = s
        }
        capacity = newCapacity
    }

    /// Stores `row` (`width` floats) as row `index` (< capacity), quantizing at int8: per group d = max|x| / 127,
    /// code = round(x / d), so every value is within d / 2 of what was written.
    public func write(_ row: UnsafePointer<Float>, at index: Int) {
        precondition(index < capacity, "KV cache written past its reserved capacity")
        switch precision {
        case .float32:
            values!.assumingMemoryBound(to: Float.self).advanced(by: index * width).update(from: row, count: width)
        case .float16:
            HalfRows.store(row, count: width, into: values!.assumingMemoryBound(to: Float16.self) + index * width)
        case .int8:
            let codes = values!.assumingMemoryBound(to: Int8.self) + index * width
            let rowScales = scales! + index * groupsPerRow
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

    /// Appends `row` after the last stored row (compressed streams), growing the storage if needed.
    public func append(_ row: UnsafePointer<Float>) {
        reserve(count + 1, keep: count)
        write(row, at: count)
        count += 1
    }

    /// Float rows of a state stream (always 32-bit), for in-place updates.
    public var floats: UnsafeMutablePointer<Float> {
        precondition(precision == .float32, "only 32-bit streams expose their floats")
        return values!.assumingMemoryBound(to: Float.self)
    }

    /// Zeroes a state stream (a new sequence).
    func zeroState() {
        if case .state = spec.kind { floats.update(repeating: 0, count: capacity * width) }
    }

    /// Read access for the attention loops.
    @inline(__always)
    public var view: KVCacheLayerView {
        switch precision {
        case .float32:
            return KVCacheLayerView(floats: UnsafePointer(values!.assumingMemoryBound(to: Float.self)), halves: nil, codes: nil, scales: nil,
                                    rowWidth: width, groupSize: groupSize, groupsPerRow: groupsPerRow)
        case .float16:
            return KVCacheLayerView(floats: nil, halves: UnsafePointer(values!.assumingMemoryBound(to: Float16.self)), codes: nil,
                                    scales: nil, rowWidth: width, groupSize: groupSize, groupsPerRow: groupsPerRow)
        case .int8:
            return KVCacheLayerView(floats: nil, halves: nil, codes: UnsafePointer(values!.assumingMemoryBound(to: Int8.self)),
                                    scales: UnsafePointer(scales!), rowWidth: width, groupSize: groupSize, groupsPerRow: groupsPerRow)
        }
    }

    /// Value `index` of row `row`, dequantized (tests and tools; kernels use `view`).
    public func value(row: Int, index: Int) -> Float {
        let v = view
        switch precision {
        case .float32: return v.floats![row * width + index]
        case .float16: return Float(v.halves![row * width + index])
        case .int8: return Float(v.codes![row * width + index]) * v.scales![row * groupsPerRow + index / groupSize]
        }
    }

    /// Bytes held.
    public var bytes: Int { capacity * precision.bytesPerRow(width: width, groupSize: groupSize) }

    /// Stored bytes per row: values, then the int8 scales.
    public var rowBytes: Int { width * valueBytes + groupsPerRow * 4 }

    /// Rows [start, start + count) as stored (all values, then all scales), appended to `out` (the prefix cache).
    public func exportRows(start: Int, count: Int, into out: inout [UInt8]) {
        precondition(start >= 0 && start + count <= capacity, "export past the stored rows")
        let valueStart = start * width * valueBytes, valueCount = count * width * valueBytes
        out.append(contentsOf: UnsafeRawBufferPointer(start: values! + valueStart, count: valueCount))
        if let scales {
            out.append(contentsOf: UnsafeRawBufferPointer(start: UnsafeRawPointer(scales + start * groupsPerRow), count: count * groupsPerRow * 4))
        }
    }

    /// Writes rows exported by `exportRows` at `start` (capacity reserved by the caller); returns the bytes read.
    public func importRows(_ bytes: UnsafeRawBufferPointer, start: Int, count: Int) -> Int {
        precondition(start >= 0 && start + count <= capacity && bytes.count >= count * rowBytes, "import past the reserved rows")
        let valueCount = count * width * valueBytes
        (values! + start * width * valueBytes).copyMemory(from: bytes.baseAddress!, byteCount: valueCount)
        if let scales {
            UnsafeMutableRawPointer(scales + start * groupsPerRow).copyMemory(from: bytes.baseAddress! + valueCount, byteCount: count * groupsPerRow * 4)
        }
        return count * rowBytes
    }
}

/// Rows of one cache stream as the attention loops read them: float rows, half rows, or int8 codes and per-group scales.
public struct KVCacheLayerView {
    let floats: UnsafePointer<Float>?
    let halves: UnsafePointer<Float16>?
    let codes: UnsafePointer<Int8>?
    let scales: UnsafePointer<Float>?
    let rowWidth: Int, groupSize: Int, groupsPerRow: Int

    /// q · row[offset ..< offset + count] of row `position`; offset and count are whole groups.
    @inline(__always)
    public func dot(_ q: UnsafePointer<Float>, position: Int, offset: Int, count: Int) -> Float {
        if let floats {
            return Linear.dot(UnsafeBufferPointer(start: q, count: count), UnsafeBufferPointer(start: floats + position * rowWidth + offset, count: count))
        }
        if let halves { return HalfRows.dot(q, halves + position * rowWidth + offset, count: count) }
        return Int8RowDots.dot(q, codes! + position * rowWidth + offset, scales: scales! + position * groupsPerRow + offset / groupSize,
                               groupSize: groupSize, count: count)
    }

    /// out[0 ..< count] += weight · row[offset ..< offset + count] of row `position`.
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

    /// out[0 ..< count] = row[offset ..< offset + count] of row `position`, dequantized.
    @inline(__always)
    public func copy(position: Int, offset: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: 0, count: count)
        addScaled(position: position, offset: offset, count: count, weight: 1, into: out)
    }

    /// row[i] (+)= q · row i[offset ..< offset + count] for the first `positions` rows (`adding`: into what row holds).
    @inline(__always)
    public func dots(_ q: UnsafePointer<Float>, positions: Int, offset: Int, count: Int, into row: UnsafeMutablePointer<Float>, adding: Bool = false) {
        if let floats { return Linear.dots(q, rows: floats + offset, stride: rowWidth, count: positions, n: count, into: row, adding: adding) }
        if let halves { return HalfRows.dots(q, rows: halves + offset, stride: rowWidth, count: positions, n: count, into: row, adding: adding) }
        if adding {
            for i in 0..<positions { row[i] += dot(q, position: i, offset: offset, count: count) }
        } else {
            for i in 0..<positions { row[i] = dot(q, position: i, offset: offset, count: count) }
        }
    }

    /// row[j] (+)= q · row indices[j][offset ..< offset + count] for every selected row (sparse attention).
    @inline(__always)
    public func dots(_ q: UnsafePointer<Float>, indices: UnsafeBufferPointer<Int>, offset: Int, count: Int, into row: UnsafeMutablePointer<Float>,
                     adding: Bool = false) {
        if adding {
            for j in 0..<indices.count { row[j] += dot(q, position: indices[j], offset: offset, count: count) }
        } else {
            for j in 0..<indices.count { row[j] = dot(q, position: indices[j], offset: offset, count: count) }
        }
    }

    /// out[0 ..< count] += Σ_i weights[i] · row i[offset ..< offset + count] over the first `positions` rows, in order.
    @inline(__always)
    public func addScaledRows(_ weights: UnsafePointer<Float>, positions: Int, offset: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        if let floats { return Elementwise.addScaledRows(floats + offset, stride: rowWidth, weights: weights, count: positions, n: count, into: out) }
        if let halves { return HalfRows.addScaledRows(halves + offset, stride: rowWidth, weights: weights, count: positions, n: count, into: out) }
        for i in 0..<positions { addScaled(position: i, offset: offset, count: count, weight: weights[i], into: out) }
    }

    /// out[0 ..< count] += Σ_j weights[j] · row indices[j][offset ..< offset + count], in order of `indices`.
    @inline(__always)
    public func addScaledRows(_ weights: UnsafePointer<Float>, indices: UnsafeBufferPointer<Int>, offset: Int, count: Int,
                              into out: UnsafeMutablePointer<Float>) {
        for j in 0..<indices.count { addScaled(position: indices[j], offset: offset, count: count, weight: weights[j], into: out) }
    }
}
