import CKujiraKernels

/// Bit-exact emulation of llama.cpp's quantized matrix-vector products (the `Numerics.llamaCpp` path): activations
/// quantized by `quantize_row_q8_1` and dotted by `ggml_vec_dot_q4_1_q8_1` / `ggml_vec_dot_q8_0_q8_0` as their AVX2
/// code orders the float work (eight lane sums of four products, one FMA per block, `hsum_float_8`).
public enum GGMLLinear {
    /// Weight types the emulation covers (checked at load; others throw `NumericsError`).
    public static let supported: Set<DType> = [.q4_1, .q8_0]

    /// out (n, rows) = x (n, cols) @ W (rows, cols)^T with llama.cpp's roundings; `w.data.dtype` must be in `supported`.
    public static func forward(_ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, into out: UnsafeMutableBufferPointer<Float>) {
        let rows = w.rows, cols = w.cols, blocks = cols / 32
        precondition(supported.contains(w.data.dtype) && cols % 32 == 0, "GGMLLinear: unsupported weight \(w.data.dtype)")
        precondition(x.count >= n * cols && out.count >= n * rows, "linear: buffers too small")
        guard n > 0, rows > 0 else { return }
        // Scratch: int16 codes (n·cols, the int8 codes widened once), then per block d (fp16-rounded) and s (fp16(d·Σq)).
        let scratch = LinearScratch.current.floats(n * cols / 2 + 2 * n * blocks)
        let codes = scratch.pointer.bindMemory(to: Int16.self, capacity: n * cols)
        let scales = (scratch.pointer + 2 * n * cols).bindMemory(to: Float.self, capacity: 2 * n * blocks)
        let sums = scales + n * blocks
        quantize(x.baseAddress!, count: n * cols, codes: codes, scales: scales, sums: sums)
        let base = w.data.bytes.baseAddress!, rowBytes = w.rowBytes, isQ4_1 = w.data.dtype == .q4_1, inC = KernelISA.floatKernels
        ThreadPool.shared.parallelFor(rows, grain: max(1, 8192 / max(1, cols * n))) { range in
            for r in range {
                let row = base + r * rowBytes
                for t in 0..<n {
                    let q = codes + t * cols, d = scales + t * blocks, s = sums + t * blocks
                    if inC {
                        out[t * rows + r] = isQ4_1 ? kujira_ggml_q4_1_dot(row, q, d, s, blocks) : kujira_ggml_q8_0_dot(row, q, d, blocks)
                        continue
                    }
                    out[t * rows + r] = isQ4_1 ? q4_1Dot(row, q, d, s, blocks: blocks) : q8_0Dot(row, q, d, blocks: blocks)
                }
            }
        }
    }

    /// `quantize_row_q8_1` (AVX2): per 32 values d = max|x| / 127, codes = round-half-even(x · (127 / max|x|)),
    /// d stored as fp16, s = fp16(d · Σcodes) with the unrounded d. (q8_0 is the same without s.) Codes are kept
    /// as int16 (the values llama.cpp's int8 codes hold) so the dots load them without widening.
    static func quantize(_ x: UnsafePointer<Float>, count: Int, codes: UnsafeMutablePointer<Int16>,
                         scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 32) {
            let v = x + 32 * b
            var amax: Float = 0
            for i in 0..<32 { amax = max(amax, abs(v[i])) }
            let d = amax / 127
            let inverse: Float = amax != 0 ? 127 / amax : 0
            var total: Int32 = 0
            for i in 0..<32 {
                let q = (v[i] * inverse).rounded(.toNearestOrEven)
                let code = q.isFinite ? Int16(max(-128, min(127, q))) : 0
                codes[32 * b + i] = code
                total += Int32(code)
            }
            scales[b] = Float(Float16(d))
            sums[b] = Float(Float16(d * Float(total)))
        }
    }

    /// Lane j = Σ_{k<4} w[4j+k]·q[4j+k] of one 32-value block (the `vpmaddubsw` + `vpmaddwd` grouping llama.cpp's
    /// `mul_sum_us8_pairs_float` uses), as exact floats. w0/w1 hold values 0..<16 and 16..<32 in memory order.
    @inline(__always)
    static func laneSums(_ w0: SIMD16<Int16>, _ w1: SIMD16<Int16>, _ q: UnsafePointer<Int16>) -> SIMD8<Float> {
        let raw = UnsafeRawPointer(q)
        let m0 = multiplyAddPairs(w0, raw.loadUnaligned(as: SIMD16<Int16>.self))
        let m1 = multiplyAddPairs(w1, raw.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int16>.self))
        var lanes = SIMD8<Int32>()
        for j in 0..<4 {
            lanes[j] = m0[2 &* j] &+ m0[2 &* j &+ 1]
            lanes[4 &+ j] = m1[2 &* j] &+ m1[2 &* j &+ 1]
        }
        return exactFloat(lanes)
    }

    /// 16 bytes widened to int16 lanes (a lane loop, so LLVM emits one `vpmovzxbw`).
    @inline(__always)
    static func widen(_ v: SIMD16<UInt8>) -> SIMD16<Int16> {
        var r = SIMD16<Int16>()
        for i in 0..<16 { r[i] = Int16(v[i]) }
        return r
    }

    /// 16 signed bytes widened to int16 lanes (`vpmovsxbw`).
    @inline(__always)
    static func widen(_ v: SIMD16<Int8>) -> SIMD16<Int16> {
        var r = SIMD16<Int16>()
        for i in 0..<16 { r[i] = Int16(v[i]) }
        return r
    }

    /// `ggml_vec_dot_q4_1_q8_1` (the reference of `kujira_ggml_q4_1_dot`): acc += (d_w·d_x) · lanes per block, summs = fma(m_w, s_x, summs); hsum8(acc) + summs.
    @inline(__always)
    static func q4_1Dot(_ row: UnsafeRawPointer, _ q: UnsafePointer<Int16>, _ d: UnsafePointer<Float>, _ s: UnsafePointer<Float>, blocks: Int) -> Float {
        var acc = SIMD8<Float>.zero
        var summs: Float = 0
        for b in 0..<blocks {
            let block = row + 20 * b
            summs = summs.addingProduct(loadF16(block, 2), s[b])
            let scale = loadF16(block, 0) * d[b]
            let packed = block.loadUnaligned(fromByteOffset: 4, as: SIMD16<UInt8>.self)
            let lanes = laneSums(widen(packed & 0x0F), widen(packed &>> 4), q + 32 * b)
            acc.addProduct(SIMD8(repeating: scale), lanes)
        }
        return GGMLMath.hsum8(acc) + summs
    }

    /// `ggml_vec_dot_q8_0_q8_0` (the reference of `kujira_ggml_q8_0_dot`): acc += (d_w·d_x) · lanes per block; hsum8(acc).
    @inline(__always)
    static func q8_0Dot(_ row: UnsafeRawPointer, _ q: UnsafePointer<Int16>, _ d: UnsafePointer<Float>, blocks: Int) -> Float {
        var acc = SIMD8<Float>.zero
        for b in 0..<blocks {
            let block = row + 34 * b
            let scale = loadF16(block, 0) * d[b]
            let w0 = widen(block.loadUnaligned(fromByteOffset: 2, as: SIMD16<Int8>.self))
            let w1 = widen(block.loadUnaligned(fromByteOffset: 18, as: SIMD16<Int8>.self))
            acc.addProduct(SIMD8(repeating: scale), laneSums(w0, w1, q + 32 * b))
        }
        return GGMLMath.hsum8(acc)
    }
}
