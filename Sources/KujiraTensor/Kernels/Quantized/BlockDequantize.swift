/// Reference dequantization of rows stored in any `DType` (plain or GGML block format) to Float.
public enum BlockDequantize {
    /// Decodes `count` elements starting at `src` (which must begin on a block boundary) into `out`.
    ///
    /// `count` must be a multiple of `dtype.blockElements`. FP8 here is the raw e4m3 value (block scales
    /// are applied by `LinearWeight`).
    public static func row(_ dtype: DType, _ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        let blockElements = dtype.blockElements, blockBytes = dtype.blockBytes
        precondition(count % blockElements == 0, "\(dtype.rawValue): \(count) elements is not a whole number of blocks")
        let blocks = count / blockElements
        switch dtype {
        case .f32:
            out.update(from: src.assumingMemoryBound(to: Float.self), count: count)
        case .f16:
            for i in 0..<count { out[i] = FloatConversion.f16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16:
            for i in 0..<count { out[i] = FloatConversion.bf16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .f8e4m3:
            for i in 0..<count { out[i] = FloatConversion.f8e4m3Table[Int(src.load(fromByteOffset: i, as: UInt8.self))] }
        case .i32:
            for i in 0..<count { out[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .i64:
            for i in 0..<count { out[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K,
             .iq4_nl, .iq4_xs, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m:
            for b in 0..<blocks {
                block(dtype, src + b * blockBytes, into: out + b * blockElements)
            }
        }
    }

    /// Decodes one block of a GGML block format into `dtype.blockElements` floats.
    @inline(__always)
    public static func block(_ dtype: DType, _ src: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .q4_0: Q4_0.dequantize(src, into: out)
        case .q4_1: Q4_1.dequantize(src, into: out)
        case .q5_0: Q5_0.dequantize(src, into: out)
        case .q5_1: Q5_1.dequantize(src, into: out)
        case .q8_0: Q8_0.dequantize(src, into: out)
        case .q2_K: Q2_K.dequantize(src, into: out)
        case .q3_K: Q3_K.dequantize(src, into: out)
        case .q4_K: Q4_K.dequantize(src, into: out)
        case .q5_K: Q5_K.dequantize(src, into: out)
        case .q6_K: Q6_K.dequantize(src, into: out)
        case .iq4_nl: IQ4_NL.dequantize(src, into: out)
        case .iq4_xs: IQ4_XS.dequantize(src, into: out)
        case .iq2_xxs: IQ2_XXS.dequantize(src, into: out)
        case .iq2_xs: IQ2_XS.dequantize(src, into: out)
        case .iq2_s: IQ2_S.dequantize(src, into: out)
        case .iq3_xxs: IQ3_XXS.dequantize(src, into: out)
        case .iq3_s: IQ3_S.dequantize(src, into: out)
        case .iq1_s: IQ1_S.dequantize(src, into: out)
        case .iq1_m: IQ1_M.dequantize(src, into: out)
        default: row(dtype, src, count: dtype.blockElements, into: out)
        }
    }

    /// Element `index` of a row-major tensor stored as `dtype` in `bytes` (slow; decodes its whole block).
    public static func element(_ dtype: DType, _ bytes: UnsafeRawBufferPointer, index: Int) -> Float {
        let blockElements = dtype.blockElements
        let b = index / blockElements
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: blockElements) { tmp in
            row(dtype, bytes.baseAddress! + b * dtype.blockBytes, count: blockElements, into: tmp.baseAddress!)
            return tmp[index - b * blockElements]
        }
    }
}

/// Half-precision load from unaligned block bytes.
@inline(__always)
func loadF16(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    FloatConversion.f16ToFloat(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}
