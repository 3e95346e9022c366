/// Reference quantizers: float rows → F32, F16, BF16, Q8_0 (bit-exact with gguf-py's `gguf.quants.quantize`) and
/// Q4_K and Q6_K (llama.cpp's `quantize_row_q4_K_ref` / `quantize_row_q6_K_ref`), the inverse of `BlockDequantize` for the types `kujira convert` writes.
public enum Quantize {
    /// The element types a row can be quantized to.
    public static let supported: [DType] = [.f32, .f16, .bf16, .q8_0, .q4_K, .q6_K]

    /// Whether a row of `count` elements can be stored as `dtype` (whole blocks only).
    public static func canQuantize(count: Int, to dtype: DType) -> Bool {
        supported.contains(dtype) && count % dtype.blockElements == 0
    }

    /// Encodes `count` floats as `dtype` into `out` (`count / blockElements · blockBytes` bytes).
    /// `count` must be a multiple of the block size; `dtype` one of `supported`.
    public static func row(_ x: UnsafePointer<Float>, count: Int, to dtype: DType, into out: UnsafeMutableRawPointer) {
        precondition(canQuantize(count: count, to: dtype), "cannot quantize \(count) elements to \(dtype.rawValue)")
        switch dtype {
        case .f32:
            out.copyMemory(from: x, byteCount: 4 * count)
        case .f16:
            for i in 0..<count { out.storeBytes(of: Float16(x[i]).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0..<count { out.storeBytes(of: bf16(x[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .q8_0:
            for b in 0..<(count / 32) { q8_0Block(x + 32 * b, into: out + 34 * b) }
        case .q4_K:
            for b in 0..<(count / 256) { q4_KBlock(x + 256 * b, into: out + 144 * b) }
        case .q6_K:
            for b in 0..<(count / 256) { q6_KBlock(x + 256 * b, into: out + 210 * b) }
        default:
            preconditionFailure("unsupported quantization target \(dtype.rawValue)")
        }
    }

    /// Quantizes a whole row-major array whose rows have `rowLength` elements; rows are split over the pool (each row
    /// is quantized on its own, so the bytes do not depend on the split).
    public static func array(_ values: [Float], rowLength: Int, to dtype: DType) -> [UInt8] {
        precondition(rowLength > 0 && values.count % rowLength == 0)
        let rows = values.count / rowLength
        let rowBytes = rowLength / dtype.blockElements * dtype.blockBytes
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { dst in
                let source = src.baseAddress!, target = dst.baseAddress!
                ThreadPool.shared.parallelFor(rows, grain: max(1, 65536 / rowLength)) { range in
                    for r in range { row(source + r * rowLength, count: rowLength, to: dtype, into: target + r * rowBytes) }
                }
            }
        }
        return out
    }

    /// float → bfloat16 with round-to-nearest-even and NaNs kept quiet (ggml_compute_fp32_to_bf16, gguf-py's BF16).
    @inline(__always)
    public static func bf16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if bits & 0x7fff_ffff > 0x7f80_0000 { return UInt16((bits & 0xffff_0000 | (64 << 16)) >> 16) }
        return UInt16((UInt64(bits) + UInt64(0x7fff + ((bits >> 16) & 1))) >> 16)
    }

    /// Q8_0: d = max|x|/127 (stored as f16), q = round-half-away(x · (1/d)) — gguf-py's and ggml's reference.
    static func q8_0Block(_ x: UnsafePointer<Float>, into out: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for i in 0..<32 { amax = max(amax, abs(x[i])) }
        let d = amax / 127
        let id: Float = d == 0 ? 0 : 1 / d
        out.storeBytes(of: Float16(d).bitPattern.littleEndian, toByteOffset: 0, as: UInt16.self)
        for i in 0..<32 {
            let q = (x[i] * id).rounded(.toNearestOrAwayFromZero)  // NaN/inf inputs clamp rather than trap
            out.storeBytes(of: q.isNaN ? 0 : Int8(max(-128, min(127, q))), toByteOffset: 2 + i, as: Int8.self)
        }
    }

    /// ggml's `nearest_int`: round half to even through the 1.5·2^23 trick (|v| ≤ 4194303).
    @inline(__always)
    static func nearestInt(_ v: Float) -> Int {
        let shifted = v + 12_582_912
        return Int(Int32(bitPattern: shifted.bitPattern) & 0x007f_ffff) - 0x0040_0000
    }
}
