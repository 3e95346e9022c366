/// A 2-D weight used as `y = W x`: `rows` outputs by `cols` inputs, in its stored format.
///
/// Weights are never expanded at load: F32/F16/BF16 rows are decoded inside the dot product, and
/// FP8 (e4m3) weights carry DeepSeek's per-block inverse scales (`w = fp8 * scale_inv[block]`).
public struct LinearWeight: Sendable {
    /// The stored weight, shape `[rows, cols]`.
    public let data: TensorData
    /// Block scales for FP8 weights, nil otherwise.
    public let blockScales: BlockScales?
    /// A LoRA adapter applied on top, unmerged (`Linear.forward`, `decodeRow` and `toFloatArray` include it), or nil.
    public let adapter: LowRankAdapter?

    public init(data: TensorData, blockScales: BlockScales? = nil, adapter: LowRankAdapter? = nil) {
        precondition(data.shape.count == 2, "a linear weight is 2-D, got shape \(data.shape)")
        precondition(data.shape[1] % data.dtype.blockElements == 0, "\(data.dtype.rawValue) rows must be whole blocks, got \(data.shape[1]) columns")
        if let adapter { precondition(adapter.a.shape[1] == data.shape[1] && adapter.b.shape[0] == data.shape[0], "adapter shape does not match the weight") }
        self.data = data
        self.blockScales = blockScales
        self.adapter = adapter
    }

    /// The same weight without its adapter (the base of a LoRA pair).
    public var base: LinearWeight { adapter == nil ? self : LinearWeight(data: data, blockScales: blockScales) }

    /// Output features.
    public var rows: Int { data.shape[0] }
    /// Input features.
    public var cols: Int { data.shape[1] }
    /// Bytes of one stored row.
    public var rowBytes: Int { cols / data.dtype.blockElements * data.dtype.blockBytes }

    /// Decodes row `r` into `out` (count == cols), adapter included. Reference path; kernels use fused dots.
    public func decodeRow(_ r: Int, into out: UnsafeMutableBufferPointer<Float>) {
        decodeBaseRow(r, into: out)
        adapter?.addRow(r, into: out)
    }

    /// Row `r` of the stored weight alone.
    public func decodeBaseRow(_ r: Int, into out: UnsafeMutableBufferPointer<Float>) {
        let base = r * cols
        switch data.dtype {
        case .f32:
            let src = data.bytes.baseAddress!.advanced(by: base * 4).assumingMemoryBound(to: Float.self)
            out.baseAddress!.update(from: src, count: cols)
        case .bf16:
            let src = data.bytes.baseAddress!.advanced(by: base * 2).assumingMemoryBound(to: UInt16.self)
            for c in 0..<cols { out[c] = FloatConversion.bf16ToFloat(src[c]) }
        case .f16:
            let src = data.bytes.baseAddress!.advanced(by: base * 2).assumingMemoryBound(to: UInt16.self)
            for c in 0..<cols { out[c] = FloatConversion.f16ToFloat(src[c]) }
        case .f8e4m3:
            let src = data.bytes.baseAddress!.advanced(by: base).assumingMemoryBound(to: UInt8.self)
            FloatConversion.f8e4m3Table.withUnsafeBufferPointer { table in
                if let scales = blockScales {
                    let blockRow = r / scales.blockRows
                    for c in 0..<cols {
                        out[c] = table[Int(src[c])] * scales.scale(blockRow: blockRow, blockCol: c / scales.blockCols)
                    }
                } else {
                    for c in 0..<cols { out[c] = table[Int(src[c])] }
                }
            }
        case .i32, .i64:
            for c in 0..<cols { out[c] = data.float(at: base + c) }
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K,
             .iq4_nl, .iq4_xs, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m:
            BlockDequantize.row(data.dtype, data.bytes.baseAddress! + r * rowBytes, count: cols, into: out.baseAddress!)
        }
    }

    /// Rows `range` as a weight of their own, sharing the memory (grouped projections read each group's rows). FP8
    /// scales are sliced with them; the range must start on a scale block.
    public func rows(_ range: Range<Int>) -> LinearWeight {
        guard let scales = blockScales else { return LinearWeight(data: data.matrixRows(index: 0, rows: range), adapter: adapter?.rows(range)) }
        precondition(range.lowerBound % scales.blockRows == 0, "FP8 row slices must start on a scale block")
        let first = range.lowerBound / scales.blockRows, last = (range.upperBound + scales.blockRows - 1) / scales.blockRows
        return LinearWeight(data: data.matrixRows(index: 0, rows: range),
                            blockScales: BlockScales(values: Array(scales.values[(first * scales.gridCols)..<(last * scales.gridCols)]),
                                                     gridCols: scales.gridCols, blockRows: scales.blockRows, blockCols: scales.blockCols),
                            adapter: adapter?.rows(range))
    }

    /// The whole weight as Float, row-major, adapter merged in (for tests, conversion and training).
    public func toFloatArray() -> [Float] {
        var result = [Float](repeating: 0, count: rows * cols)
        result.withUnsafeMutableBufferPointer { buffer in
            for r in 0..<rows {
                decodeRow(r, into: UnsafeMutableBufferPointer(rebasing: buffer[(r * cols)..<((r + 1) * cols)]))
            }
        }
        return result
    }
}

/// DeepSeek-V3 FP8 block scales: one F32 `scale_inv` per `blockRows x blockCols` tile (edge tiles partial).
public struct BlockScales: Sendable {
    /// Scales, shape `[ceil(rows / blockRows), ceil(cols / blockCols)]`, decoded to Float.
    public let values: [Float]
    /// Columns of the scale grid.
    public let gridCols: Int
    public let blockRows: Int
    public let blockCols: Int

    public init(values: [Float], gridCols: Int, blockRows: Int, blockCols: Int) {
        self.values = values
        self.gridCols = gridCols
        self.blockRows = blockRows
        self.blockCols = blockCols
    }

    @inline(__always)
    public func scale(blockRow: Int, blockCol: Int) -> Float { values[blockRow * gridCols + blockCol] }
}
