import CKujiraKernels
#if canImport(Glibc)
import Glibc
#endif

/// Matrix products with weights in their stored format (the hot path of every model).
public enum Linear {
    /// out (n, rows) = x (n, cols) @ W (rows, cols)^T, for n tokens.
    ///
    /// Rows are split across `ThreadPool.shared`. Each weight row is read once and dotted with every token
    /// while it sits in L1 (n == 1 is the matvec case). Block-quantized weights use fused integer dots with
    /// the activations quantized to int8 blocks of 32 (`Q8Activations`), as llama.cpp does; F32/F16/BF16/FP8
    /// weights are decoded in registers and dotted with the float activations. A token's result does not
    /// depend on n.
    public static func forward(_ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, into out: UnsafeMutableBufferPointer<Float>) {
        forward(w, x, n: n, into: out, isa: KernelISA.selected)
    }

    /// `forward` in the arithmetic `numerics` names: Kujira's kernels, or `GGMLLinear`'s emulation of llama.cpp.
    @inline(__always)
    public static func forward(_ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, into out: UnsafeMutableBufferPointer<Float>, numerics: Numerics) {
        if numerics == .llamaCpp { GGMLLinear.forward(w, x, n: n, into: out) } else { forward(w, x, n: n, into: out) }
    }

    /// `forward` with the block dots of `isa` (at most `KernelISA.supported`; tests compare every level).
    static func forward(_ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, into out: UnsafeMutableBufferPointer<Float>, isa: KernelISA) {
        let rows = w.rows, cols = w.cols
        precondition(x.count >= n * cols && out.count >= n * rows, "linear: buffers too small")
        guard n > 0, rows > 0 else { return }
        guard cols > 0 else {
            for i in 0..<(n * rows) { out[i] = 0 }  // empty sums
            return
        }
        let grain = max(1, 32768 / max(1, cols * n))
        switch w.data.dtype {
        case .q4_0:
            if isa != .swift { CBlockDots.vnniBlocks(isa, w, x, n: n, out: out, grain: grain) } else { quantized(Q4_0.self, w, x, n: n, out: out, grain: grain) }
        case .q4_1:
            if isa != .swift { CBlockDots.vnniBlocks(isa, w, x, n: n, out: out, grain: grain) } else { quantized(Q4_1.self, w, x, n: n, out: out, grain: grain) }
        case .q5_0:
            if isa != .swift { CBlockDots.vnniBlocks(isa, w, x, n: n, out: out, grain: grain) } else { quantized(Q5_0.self, w, x, n: n, out: out, grain: grain) }
        case .q5_1:
            if isa != .swift { CBlockDots.vnniBlocks(isa, w, x, n: n, out: out, grain: grain) } else { quantized(Q5_1.self, w, x, n: n, out: out, grain: grain) }
        case .q8_0:
            if isa != .swift { CBlockDots.vnniBlocks(isa, w, x, n: n, out: out, grain: grain) } else { quantized(Q8_0.self, w, x, n: n, out: out, grain: grain) }
        case .q2_K:
            if isa != .swift { CBlockDots.lowBitK(w, x, n: n, out: out, grain: grain) } else { quantized(Q2_K.self, w, x, n: n, out: out, grain: grain) }
        case .q3_K:
            if isa != .swift { CBlockDots.lowBitK(w, x, n: n, out: out, grain: grain) } else { quantized(Q3_K.self, w, x, n: n, out: out, grain: grain) }
        case .q4_K, .q5_K, .q6_K:
            KQuantQ8K.forward(isa, w, x, n: n, out: out, grain: grain)
        case .iq4_nl:
            if isa != .swift { CBlockDots.vnniBlocks(isa, w, x, n: n, out: out, grain: grain) } else { quantized(IQ4_NL.self, w, x, n: n, out: out, grain: grain) }
        case .iq4_xs:
            if isa != .swift { CBlockDots.vnniBlocks(isa, w, x, n: n, out: out, grain: grain) } else { quantized(IQ4_XS.self, w, x, n: n, out: out, grain: grain) }
        case .iq2_xxs:
            if isa != .swift { CBlockDots.iqGrid(isa, w, x, n: n, out: out, grain: grain) } else { quantized(IQ2_XXS.self, w, x, n: n, out: out, grain: grain) }
        case .iq2_xs:
            if isa != .swift { CBlockDots.iq2Per16(isa, w, x, n: n, out: out, grain: grain) } else { quantized(IQ2_XS.self, w, x, n: n, out: out, grain: grain) }
        case .iq2_s:
            if isa != .swift { CBlockDots.iq2Per16(isa, w, x, n: n, out: out, grain: grain) } else { quantized(IQ2_S.self, w, x, n: n, out: out, grain: grain) }
        case .iq3_xxs:
            if isa != .swift { CBlockDots.iqGrid(isa, w, x, n: n, out: out, grain: grain) } else { quantized(IQ3_XXS.self, w, x, n: n, out: out, grain: grain) }
        case .iq3_s:
            if isa != .swift { CBlockDots.iqGrid(isa, w, x, n: n, out: out, grain: grain) } else { quantized(IQ3_S.self, w, x, n: n, out: out, grain: grain) }
        case .iq1_s:
            if isa != .swift { CBlockDots.iqGrid(isa, w, x, n: n, out: out, grain: grain) } else { quantized(IQ1_S.self, w, x, n: n, out: out, grain: grain) }
        case .iq1_m:
            if isa != .swift { CBlockDots.iq2Per16(isa, w, x, n: n, out: out, grain: grain) } else { quantized(IQ1_M.self, w, x, n: n, out: out, grain: grain) }
        case .f32:
            let base = w.data.bytes.baseAddress!, xs = x.baseAddress!, rowBytes = w.rowBytes
            ThreadPool.shared.parallelFor(rows, grain: grain) { range in
                for r in range {
                    for t in 0..<n { out[t * rows + r] = FloatDots.f32(base + r * rowBytes, xs + t * cols, count: cols) }
                }
            }
        case .f16, .bf16:
            halfPrecision(w, x, n: n, out: out, grain: grain)
        case .f8e4m3:
            fp8(w, x, n: n, out: out, grain: grain)
        case .i32, .i64:
            referenceForward(w, x, n: n, into: out)
            return  // decodeRow already includes the adapter
        }
        if let adapter = w.adapter {
            let scratch = LinearScratch.current.adapterFloats(n * adapter.rank)
            adapter.add(x.baseAddress!, n: n, into: out.baseAddress!, scratch: scratch)
        }
    }

    /// Rows of a block format dotted with quantized activations.
    @inline(__always)
    static func quantized<Format: QuantizedDot>(_: Format.Type, _ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int,
                                                out: UnsafeMutableBufferPointer<Float>, grain: Int) {
        let rows = w.rows, cols = w.cols, rowBytes = w.rowBytes
        let blocks = cols / w.data.dtype.blockElements
        let activations = LinearScratch.current.activations(x, n: n, cols: cols)
        let base = w.data.bytes.baseAddress!
        let rowChunk = 16  // rows per prefill chunk: 16 rows of a 2048-column Q8_0 matrix are 35 KB, about L1 (4 and 64: same speed)
        let output = out.baseAddress!
        ThreadPool.shared.parallelFor(rows, grain: grain) { range in
            if n == 1 {
                Format.rowDots(range, base: base, rowBytes: rowBytes, activations.row(0), blocks: blocks, out: output)
                return
            }
            // Prefill: a chunk of rows (in L1) against every token quad (4.6 KB of activations per quad at
            // 576 columns), so the activations are read from L2 once per chunk instead of once per row; the
            // micro-kernel is the one-row, four-token `dot4` (a 2-row × 4-token tile needs 8 accumulators
            // plus 4 weight vectors and spilled: 10–25% slower, measured). Leftover tokens use `dot`.
            let quads = n / 4
            var first = range.lowerBound
            while first < range.upperBound {
                let chunkEnd = min(range.upperBound, first + rowChunk)
                for q in 0..<quads {
                    let t = 4 * q
                    let x4 = (activations.row(t), activations.row(t + 1), activations.row(t + 2), activations.row(t + 3))
                    Format.quads(first..<chunkEnd, base: base, rowBytes: rowBytes, x4, blocks: blocks, out: output + t * rows, stride: rows)
                }
                for t in (4 * quads)..<n {
                    Format.rowDots(first..<chunkEnd, base: base, rowBytes: rowBytes, activations.row(t), blocks: blocks, out: output + t * rows)
                }
                first = chunkEnd
            }
        }
    }

    /// F16/BF16 rows. With several tokens each row is decoded once (exactly, in the phase-split order) and
    /// reused, so the per-token work is a float dot with the same accumulation as the fused 1-token dot.
    static func halfPrecision(_ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, out: UnsafeMutableBufferPointer<Float>, grain: Int) {
        let rows = w.rows, cols = w.cols, rowBytes = w.rowBytes
        let split = PhaseSplitActivations(x, n: n, cols: cols, phases: 2, reusing: LinearScratch.current.floats(n * cols))
        let base = w.data.bytes.baseAddress!, xs = UnsafePointer(split.values)
        let isF16 = w.data.dtype == .f16
        ThreadPool.shared.parallelFor(rows, grain: grain) { range in
            if n < 3 {
                for r in range {
                    for t in 0..<n {
                        out[t * rows + r] = isF16
                            ? FloatDots.f16(base + r * rowBytes, xs + t * cols, count: cols)
                            : FloatDots.bf16(base + r * rowBytes, xs + t * cols, count: cols)
                    }
                }
                return
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: cols) { decoded in
                for r in range {
                    FloatDots.decodeHalfRow(base + r * rowBytes, isF16: isF16, count: cols, into: decoded.baseAddress!)
                    for t in 0..<n { out[t * rows + r] = FloatDots.splitDecoded(decoded.baseAddress!, xs + t * cols, count: cols) }
                }
            }
        }
        withExtendedLifetime(split) {}
    }

    /// FP8 rows: sum over the column blocks of (fp8 · x) times that block's scale.
    static func fp8(_ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, out: UnsafeMutableBufferPointer<Float>, grain: Int) {
        let rows = w.rows, cols = w.cols
        guard w.blockScales.map({ $0.blockCols % 16 == 0 }) ?? true else {
            return referenceForward(w, x, n: n, into: out)
        }
        let split = PhaseSplitActivations(x, n: n, cols: cols, phases: 4, reusing: LinearScratch.current.floats(n * cols))
        let base = w.data.bytes.baseAddress!, xs = UnsafePointer(split.values)
        let scales = w.blockScales
        ThreadPool.shared.parallelFor(rows, grain: grain) { range in
            // With several tokens, each row is decoded once (same values, same summation order per token).
            let decoded = n >= 3 ? UnsafeMutablePointer<Float>.allocate(capacity: cols) : nil
            let special = n >= 3 ? UnsafeMutablePointer<Bool>.allocate(capacity: cols / 16 + 1) : nil
            defer {
                decoded?.deallocate()
                special?.deallocate()
            }
            for r in range {
                let row = base + r * cols
                if let decoded, let special { FloatDots.decodeE4M3Row(row, count: cols, into: decoded, special: special) }
                for t in 0..<n {
                    let xt = xs + t * cols
                    func partial(_ start: Int, _ end: Int) -> Float {
                        if let decoded, let special { return FloatDots.e4m3Decoded(decoded, special, xt, start: start, end: end) }
                        return FloatDots.e4m3(row, xt, start: start, end: end)
                    }
                    guard let scales else {
                        out[t * rows + r] = partial(0, cols)
                        continue
                    }
                    let blockRow = r / scales.blockRows
                    var sum: Float = 0
                    var start = 0, blockCol = 0
                    while start < cols {
                        let end = min(cols, start + scales.blockCols)
                        sum += partial(start, end) * scales.scale(blockRow: blockRow, blockCol: blockCol)
                        start = end
                        blockCol += 1
                    }
                    out[t * rows + r] = sum
                }
            }
        }
        withExtendedLifetime(split) {}
    }

    /// Reference implementation: decodes one weight row at a time (exactly, via `decodeRow`) and dots it with
    /// every token in float. The fast path is tested against it.
    public static func referenceForward(_ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, into out: UnsafeMutableBufferPointer<Float>) {
        let rows = w.rows, cols = w.cols
        precondition(x.count >= n * cols && out.count >= n * rows, "linear: buffers too small")
        let row = UnsafeMutableBufferPointer<Float>.allocate(capacity: cols)
        defer { row.deallocate() }
        for r in 0..<rows {
            w.decodeRow(r, into: row)
            for t in 0..<n {
                out[t * rows + r] = dot(UnsafeBufferPointer(row), UnsafeBufferPointer(rebasing: x[(t * cols)..<((t + 1) * cols)]))
            }
        }
    }

    /// Convenience: `[Float]` in, `[Float]` out.
    public static func forward(_ w: LinearWeight, _ x: [Float], n: Int) -> [Float] {
        forward(w, x, n: n, isa: KernelISA.selected)
    }

    /// The convenience form with the block dots of `isa` (tests).
    static func forward(_ w: LinearWeight, _ x: [Float], n: Int, isa: KernelISA) -> [Float] {
        var out = [Float](repeating: 0, count: n * w.rows)
        x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { forward(w, xb, n: n, into: $0, isa: isa) } }
        return out
    }

    /// a · b over equal-length float vectors, 16 lanes at a time (`kujira_dot_f32` with AVX2, else `swiftDot`).
    @inline(__always)
    public static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        if KernelISA.floatKernels { return kujira_dot_f32(a.baseAddress!, b.baseAddress!, a.count) }
        return swiftDot(a, b)
    }

    /// out[i] (+)= `dot`(q, row i) for `count` rows of `n` floats, `stride` floats apart (an attention row's scores): the same
    /// bits as one `dot` per row; with AVX2 four rows at a time (`kujira_dot_f32_rows`).
    @inline(__always)
    public static func dots(_ q: UnsafePointer<Float>, rows: UnsafePointer<Float>, stride: Int, count: Int, n: Int, into out: UnsafeMutablePointer<Float>,
                            adding: Bool) {
        if KernelISA.floatKernels { return kujira_dot_f32_rows(q, rows, stride, count, n, out, adding ? 1 : 0) }
        for i in 0..<count {
            let value = swiftDot(UnsafeBufferPointer(start: q, count: n), UnsafeBufferPointer(start: rows + i * stride, count: n))
            out[i] = adding ? out[i] + value : value
        }
    }

    /// `dot` in Swift SIMD code: the reference of `kujira_dot_f32` and the path without AVX2.
    @inline(__always)
    static func swiftDot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        let n = a.count
        var acc = SIMD16<Float>.zero
        var i = 0
        let pa = UnsafeRawPointer(a.baseAddress!), pb = UnsafeRawPointer(b.baseAddress!)
        while i + 16 <= n {
            acc.addProduct(pa.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self), pb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
            i += 16
        }
        var sum = acc.sum()
        while i < n { sum += a[i] * b[i]; i += 1 }
        return sum
    }
}

/// A GGML block format with a fused dot against `Q8Activations`.
protocol QuantizedDot {
    static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float
    /// Four tokens at once (prefill), each bit for bit equal to `dot`; formats without a dedicated one call `dot` 4 times.
    static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float>
}

extension QuantizedDot {
    @inline(__always)
    static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        SIMD4(dot(row, x.0, blocks: blocks), dot(row, x.1, blocks: blocks), dot(row, x.2, blocks: blocks), dot(row, x.3, blocks: blocks))
    }
}

/// The kernels run in separate (not inlined) functions per row range and token quad: inlined into one large
/// closure the optimizer left generic conversion calls in them (measured, 7x slower in an earlier round); a
/// call per range costs nothing next to its work.
extension QuantizedDot {
    /// `out[r] = dot(row r, x)` for the rows in `range`.
    @inline(never)
    static func rowDots(_ range: Range<Int>, base: UnsafeRawPointer, rowBytes: Int, _ x: Q8Row, blocks: Int, out: UnsafeMutablePointer<Float>) {
        for r in range { out[r] = dot(base + r * rowBytes, x, blocks: blocks) }
    }

    /// `dot4` of every row in `range` with one token quad: token k of row r goes to `out[k * stride + r]`.
    @inline(never)
    static func quads(_ range: Range<Int>, base: UnsafeRawPointer, rowBytes: Int, _ x: Q8Rows4, blocks: Int,
                      out: UnsafeMutablePointer<Float>, stride: Int) {
        for r in range {
            let four = dot4(base + r * rowBytes, x, blocks: blocks)
            for k in 0..<4 { out[k * stride + r] = four[k] }
        }
    }
}

extension Q4_0: QuantizedDot {}
extension Q4_1: QuantizedDot {}
extension Q5_0: QuantizedDot {}
extension Q5_1: QuantizedDot {}
extension Q8_0: QuantizedDot {}
extension Q2_K: QuantizedDot {}
extension Q3_K: QuantizedDot {}

/// The calling thread's activation buffers for `Linear.forward` (quantized or phase-split activations), reused across
/// calls so that decoding does not allocate; they grow to the largest call. One per thread (pthread key), so
/// concurrent callers never share one; the pool's workers only read the caller's buffers during its call.
final class LinearScratch {
    private var quantized: Q8Activations?
    private var split = OwnedBytes(count: 0)

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { if let p = $0 { Unmanaged<LinearScratch>.fromOpaque(p).release() } }
        return key
    }()

    /// This thread's scratch.
    static var current: LinearScratch {
        if let p = pthread_getspecific(key) { return Unmanaged<LinearScratch>.fromOpaque(p).takeUnretainedValue() }
        let scratch = LinearScratch()
        pthread_setspecific(key, Unmanaged.passRetained(scratch).toOpaque())
        return scratch
    }

    /// `x` quantized into the reused `Q8Activations` (with the VNNI plane when `vnni`).
    func activations(_ x: UnsafeBufferPointer<Float>, n: Int, cols: Int, vnni: Bool = false) -> Q8Activations {
        guard let quantized else {
            let fresh = Q8Activations(x, n: n, cols: cols, vnni: vnni)
            self.quantized = fresh
            return fresh
        }
        quantized.quantize(x, n: n, cols: cols, vnni: vnni)
        return quantized
    }

    private let kQuantized = Q8KActivations()

    /// `x` quantized for the Q4_K / Q5_K / Q6_K dots into the reused `Q8KActivations`.
    func q8k(_ x: UnsafeBufferPointer<Float>, n: Int, cols: Int, inC: Bool) -> Q8KActivations {
        kQuantized.quantize(x, n: n, cols: cols, inC: inC)
        return kQuantized
    }

    private var adapterScratch = OwnedBytes(count: 0)

    /// A buffer of at least `count` floats for a LoRA adapter's (n, rank) products.
    func adapterFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
        if adapterScratch.count < count * 4 { adapterScratch = OwnedBytes(count: max(count * 4, 2 * adapterScratch.count)) }
        return adapterScratch.pointer.assumingMemoryBound(to: Float.self)
    }

    /// A buffer of at least `count` floats.
    func floats(_ count: Int) -> OwnedBytes {
        if split.count < count * 4 { split = OwnedBytes(count: max(count * 4, 2 * split.count)) }
        return split
    }
}
