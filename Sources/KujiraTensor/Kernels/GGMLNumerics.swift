import CKujiraKernels
import Foundation

/// Which arithmetic a model runs: Kujira's own kernels (the default, fastest), or a bit-exact emulation of
/// llama.cpp's CPU backend (`--numerics llama.cpp`), which reproduces its logits bit for bit and so its greedy
/// tokens. docs/inference.md ("Bit-exact llama.cpp numerics") says which build and formats were verified.
public enum Numerics: String, Sendable, CaseIterable, CustomStringConvertible {
    case kujira
    case llamaCpp = "llama.cpp"

    public var description: String { rawValue }
}

/// The float operations of ggml's CPU backend, in its order of operations and roundings, as an AVX-512 build of
/// llama.cpp runs them (read from its source; `scripts/llama-cpp-numerics-check.py` finds every logit equal to
/// llama-cpp-python's). Mostly scalar Swift: this is a reference path, not a fast one.
public enum GGMLMath {
    /// `ggml_v_expf` (AVX-512): exp(x) by a degree-5 polynomial on the reduced argument and `vscalefps`; it
    /// differs from libm's expf in the last bits, so softmax and SiLU use it to match.
    @inline(__always)
    public static func expf(_ x: Float) -> Float {
        let shifter: Float = 0x1.8p23
        let z = shifter.addingProduct(x, 0x1.715476p+0)            // x·log2(e) + 1.5·2^23, rounded to an integer
        let n = z + -shifter
        var b = x.addingProduct(-n, 0x1.62e4p-1)                  // x − n·ln2 (hi)
        b = b.addingProduct(-n, 0x1.7f7d1cp-20)                   // − n·ln2 (lo)
        let t20 = Float(1).addingProduct(0x1.ffffecp-1, b)
        let u = b * b
        let t21 = Float(0x1.fffdb6p-2).addingProduct(0x1.555e66p-3, b)
        var j = Float(0x1.573e2ep-5).addingProduct(b, 0x1.0e4020p-7)
        j = t21.addingProduct(j, u)
        j = t20.addingProduct(j, u)
        if n.isNaN { return .nan }
        if abs(n) > 192 { return n <= 0 ? 0 : .infinity }
        return scaleByPowerOfTwo(j, Int(n))
    }

    /// j · 2^e rounded once, as `vscalefps` does (also into the subnormal range), for |e| ≤ 192.
    @inline(__always)
    static func scaleByPowerOfTwo(_ j: Float, _ e: Int) -> Float {
        @inline(__always) func power(_ k: Int) -> Float { Float(bitPattern: UInt32(k + 127) << 23) }  // -126 ≤ k ≤ 127
        if e >= -126 && e <= 127 { return j * power(e) }
        return e < 0 ? (j * power(e + 100)) * power(-100) : (j * power(e - 100)) * power(100)
    }

    /// `ggml_v_silu`: x / (1 + expf(0 − x)).
    @inline(__always)
    public static func silu(_ x: Float) -> Float { x / (1 + expf(0 - x)) }

    /// `ggml_vec_swiglu_f32` in place: gate[i] = silu(gate[i]) · up[i].
    public static func swiglu(gate: UnsafeMutableBufferPointer<Float>, up: UnsafeBufferPointer<Float>) {
        for i in 0..<gate.count { gate[i] = silu(gate[i]) * up[i] }
    }

    /// `_mm512_reduce_add_ps` as GCC expands it: halves, then quarters, then the two pairs.
    @inline(__always)
    public static func reduce16(_ a: SIMD16<Float>) -> Float {
        let h = a.highHalf + a.lowHalf
        let g = h.highHalf + h.lowHalf
        return (g[0] + g[2]) + (g[1] + g[3])
    }

    /// `hsum_float_8`: (a₀..₃ + a₄..₇), then (0+2) + (1+3).
    @inline(__always)
    public static func hsum8(_ a: SIMD8<Float>) -> Float {
        let q = a.lowHalf + a.highHalf
        return (q[0] + q[2]) + (q[1] + q[3])
    }

    /// `ggml_compute_forward_rms_norm_f32` followed by the weight multiply: the sum of squares in double, one at a
    /// time; scale = 1 / sqrtf(mean + eps); out = (x · scale) · weight. x, out (n, d); weight (d,).
    public static func rmsNorm(_ x: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>, eps: Float, n: Int,
                               into out: UnsafeMutableBufferPointer<Float>) {
        let d = weight.count
        for t in 0..<n {
            var sum: Double = 0
            for i in 0..<d { let v = x[t * d + i]; sum += Double(v * v) }
            let mean = Float(sum / Double(d))
            let scale: Float = 1 / (mean + eps).squareRoot()
            for i in 0..<d { out[t * d + i] = (x[t * d + i] * scale) * weight[i] }
        }
    }

    /// `ggml_vec_soft_max_f32` + the normalisation of `soft_max_ext` over one row of scaled scores: exps by
    /// `expf`, summed 16 at a time (`reduce16`, zeros past the end) into a double; row · Float(1 / sum).
    public static func softmax(_ row: UnsafeMutableBufferPointer<Float>) {
        guard !row.isEmpty else { return }
        var maxValue = -Float.infinity
        for v in row where v > maxValue { maxValue = v }
        var sum: Double = 0
        var i = 0
        while i < row.count {
            var block = SIMD16<Float>.zero
            for l in 0..<min(16, row.count - i) {
                let e = expf(row[i + l] - maxValue)
                row[i + l] = e
                block[l] = e
            }
            sum += Double(reduce16(block))
            i += 16
        }
        let inverse = Float(1 / sum)
        for k in 0..<row.count { row[k] *= inverse }
    }

    /// `ggml_vec_dot_f16` (AVX-512), what llama.cpp runs for a one-token batch: four 16-lane accumulators taking 16
    /// values each in turn, folded (0+2) + (1+3), `reduce16`, the tail past a multiple of 64 added in double.
    @inline(__always)
    public static func vectorDot(_ a: UnsafePointer<Float>, halves b: UnsafePointer<Float16>, count: Int) -> Float {
        if KernelISA.floatKernels { return kujira_ggml_vector_dot_f16(a, UnsafeRawPointer(b).assumingMemoryBound(to: UInt16.self), count) }
        return swiftVectorDot(a, halves: b, count: count)
    }

    /// `vectorDot` in Swift (reference of `kujira_ggml_vector_dot_f16`).
    @inline(__always)
    static func swiftVectorDot(_ a: UnsafePointer<Float>, halves b: UnsafePointer<Float16>, count: Int) -> Float {
        var sums = (SIMD16<Float>.zero, SIMD16<Float>.zero, SIMD16<Float>.zero, SIMD16<Float>.zero)
        @inline(__always) func load(_ i: Int) -> (SIMD16<Float>, SIMD16<Float>) {
            var x = SIMD16<Float>.zero, y = SIMD16<Float>.zero
            for l in 0..<16 { x[l] = a[i + l]; y[l] = Float(b[i + l]) }
            return (x, y)
        }
        let whole = count & ~63
        var i = 0
        while i < whole {
            var (x, y) = load(i); sums.0.addProduct(x, y)
            (x, y) = load(i + 16); sums.1.addProduct(x, y)
            (x, y) = load(i + 32); sums.2.addProduct(x, y)
            (x, y) = load(i + 48); sums.3.addProduct(x, y)
            i += 64
        }
        var total = Double(reduce16((sums.0 + sums.2) + (sums.1 + sums.3)))
        for k in whole..<count { total += Double(a[k] * Float(b[k])) }
        return Float(total)
    }

    /// llamafile's tinyBLAS f16 dot (AVX-512), what llama.cpp runs for batches of two tokens or more: 16 lane accumulators, one FMA per 16 values in order, then
    /// `reduce16`. `a` is already rounded to half precision; count is a multiple of 16.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, halves b: UnsafePointer<Float16>, count: Int) -> Float {
        if KernelISA.floatKernels { return kujira_ggml_dot_f16(a, UnsafeRawPointer(b).assumingMemoryBound(to: UInt16.self), count) }
        return swiftDot(a, halves: b, count: count)
    }

    /// `dot` in Swift (reference of `kujira_ggml_dot_f16`).
    @inline(__always)
    static func swiftDot(_ a: UnsafePointer<Float>, halves b: UnsafePointer<Float16>, count: Int) -> Float {
        var acc = SIMD16<Float>.zero
        var i = 0
        while i < count {
            var x = SIMD16<Float>.zero, y = SIMD16<Float>.zero
            for l in 0..<16 { x[l] = a[i + l]; y[l] = Float(b[i + l]) }
            acc.addProduct(x, y)
            i += 16
        }
        return reduce16(acc)
    }
}

extension GGMLMath {
    /// One head of llama.cpp's attention (its default path: f16 cache, no flash attention) over `visible` cached
    /// tokens, bit for bit: the query rounded to f16 and dotted with each f16 key (`vectorDot` for a one-token batch,
    /// tinyBLAS `dot` otherwise), times `scale`, `softmax`, the probabilities rounded to f16 and accumulated per value
    /// column in 16 lanes (token i in lane i mod 16; a one-token batch spreads blocks of 16 tokens over 4
    /// accumulators, (i / 16) mod 4, as `ggml_vec_dot_f16` does), then folded and `reduce16`d.
    /// query (headDim,); key i at keys + i·rowWidth, value i at values + i·rowWidth; scores (visible,) and
    /// scratch (headDim + 64·headDim,) are workspace; out (headDim,).
    public static func attendHead(query: UnsafePointer<Float>, keys: UnsafePointer<Float16>, values: UnsafePointer<Float16>, rowWidth: Int,
                                  visible: Int, headDim: Int, scale: Float, singleToken: Bool, scores: UnsafeMutablePointer<Float>,
                                  scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let accumulators = singleToken ? 4 : 1
        let queryHalf = scratch, acc = scratch + headDim
        for d in 0..<headDim { queryHalf[d] = Float(Float16(query[d])) }
        for i in 0..<visible {
            let key = keys + i * rowWidth
            let dot = singleToken ? vectorDot(queryHalf, halves: key, count: headDim) : self.dot(queryHalf, halves: key, count: headDim)
            scores[i] = dot * scale
        }
        let row = UnsafeMutableBufferPointer(start: scores, count: visible)
        softmax(row)
        // acc[(a · headDim + d) · 16 + lane]: accumulator a, output value d, lane.
        acc.update(repeating: 0, count: accumulators * 16 * headDim)
        for i in 0..<visible {
            let p = Float(Float16(row[i])), base = ((i / 16) % accumulators) * headDim * 16 + i % 16
            let value = values + i * rowWidth
            if KernelISA.floatKernels {
                kujira_ggml_accumulate_f16(acc + base, UnsafeRawPointer(value).assumingMemoryBound(to: UInt16.self), headDim, p)
                continue
            }
            for d in 0..<headDim { acc[base + 16 * d] = acc[base + 16 * d].addingProduct(p, Float(value[d])) }
        }
        @inline(__always) func lanes(_ a: Int, _ d: Int) -> SIMD16<Float> {
            UnsafeRawPointer(acc + (a * headDim + d) * 16).loadUnaligned(as: SIMD16<Float>.self)
        }
        for d in 0..<headDim {
            out[d] = reduce16(singleToken ? (lanes(0, d) + lanes(2, d)) + (lanes(1, d) + lanes(3, d)) : lanes(0, d))
        }
    }
}
