import CKujiraKernels

/// Activations quantized as llama.cpp's q8_K for the Q4_K / Q5_K / Q6_K dots: per 256 values one Float scale
/// (`d = 1 / iscale`, `iscale = −127 / m` with m the value of largest magnitude), the int8 codes in value order and the
/// int16 sum of every 16 codes. Rows of `n` tokens; token t's codes start at `t · cols`.
public final class Q8KActivations: @unchecked Sendable {
    /// Tokens and values per token.
    public private(set) var count = 0, cols = 0
    private var storage = OwnedBytes(count: 0)
    private(set) var codes: UnsafeMutablePointer<Int8>
    private(set) var scales: UnsafeMutablePointer<Float>
    private(set) var sums: UnsafeMutablePointer<Int16>

    /// True for the weight formats whose dots read these activations (Q4_K, Q5_K, Q6_K).
    public static func serves(_ dtype: DType) -> Bool { KQuantQ8K.handles(dtype) }

    /// Quantizes `n` rows of `cols` values (`cols` a multiple of 256).
    public convenience init(_ x: UnsafeBufferPointer<Float>, n: Int, cols: Int) {
        self.init(x, n: n, cols: cols, inC: KernelISA.floatKernels)
    }

    /// `inC` uses `kujira_q8k_quantize` (same bits).
    convenience init(_ x: UnsafeBufferPointer<Float>, n: Int, cols: Int, inC: Bool) {
        self.init()
        quantize(x, n: n, cols: cols, inC: inC)
    }

    /// No activations yet (a reusable buffer: `quantize` fills it).
    init() {
        codes = storage.pointer.bindMemory(to: Int8.self, capacity: 0)
        scales = storage.pointer.bindMemory(to: Float.self, capacity: 0)
        sums = storage.pointer.bindMemory(to: Int16.self, capacity: 0)
    }

    /// Quantizes new activations into this object's storage, growing it only when they do not fit.
    func quantize(_ x: UnsafeBufferPointer<Float>, n: Int, cols: Int, inC: Bool = KernelISA.floatKernels) {
        precondition(cols % 256 == 0 && x.count >= n * cols, "Q8KActivations: \(cols) columns is not a multiple of 256")
        count = n
        self.cols = cols
        let blocks = n * cols / 256
        let bytes = blocks * (256 + 4 + 32)
        if bytes > storage.count { storage = OwnedBytes(count: max(bytes, 2 * storage.count)) }
        codes = storage.pointer.bindMemory(to: Int8.self, capacity: blocks * 256)
        scales = (storage.pointer + blocks * 256).bindMemory(to: Float.self, capacity: blocks)
        sums = (storage.pointer + blocks * 260).bindMemory(to: Int16.self, capacity: blocks * 16)
        let source = x.baseAddress!, codes = self.codes, scales = self.scales, sums = self.sums
        ThreadPool.shared.parallelFor(blocks, grain: 32) { range in
            let b = range.lowerBound
            if inC { return kujira_q8k_quantize(source + 256 * b, range.count, codes + 256 * b, scales + b, sums + 16 * b) }
            for b in range { Self.quantizeBlock(source + 256 * b, codes: codes + 256 * b, scale: scales + b, sums: sums + 16 * b) }
        }
    }

    /// One block of 256 (the reference of `kujira_q8k_quantize`): codes `round-half-even(x · iscale)` capped at 127; a
    /// non-finite value gives zero codes and a NaN scale, a block whose iscale overflows (all zero, or every magnitude
    /// below 2^-121) zero codes and scale 0. Of two values of the
    /// largest magnitude with opposite signs the positive one sets the sign of iscale.
    static func quantizeBlock(_ x: UnsafePointer<Float>, codes: UnsafeMutablePointer<Int8>, scale: UnsafeMutablePointer<Float>,
                              sums: UnsafeMutablePointer<Int16>) {
        var amax: Float = 0, top = -Float.infinity, finite = true
        for i in 0..<256 {
            finite = finite && x[i].isFinite
            amax = max(amax, abs(x[i]))
            top = max(top, x[i])
        }
        let iscale: Float = -127 / (top == amax ? amax : -amax)
        guard finite, iscale.isFinite else {   // amax 0, or so small (< 2^-121) that 127 / amax overflows
            for i in 0..<256 { codes[i] = 0 }
            for g in 0..<16 { sums[g] = 0 }
            scale.pointee = finite ? 0 : .nan
            return
        }
        for g in 0..<16 {
            var total: Int16 = 0
            for i in (16 * g)..<(16 * g + 16) {
                let code = Int8(min(127, (x[i] * iscale).rounded(.toNearestOrEven)))
                codes[i] = code
                total += Int16(code)
            }
            sums[g] = total
        }
        scale.pointee = 1 / iscale
    }

    /// Token t's values as the dots see them (`scale · code`), for tests.
    public func dequantized(_ t: Int) -> [Float] {
        (0..<cols).map { i in scales[(t * cols + i) / 256] * Float(codes[t * cols + i]) }
    }
}

/// Q4_K / Q5_K / Q6_K rows dotted with `Q8KActivations` (the C kernels `kujira_k_q8k_dot_rows` and this Swift reference give the
/// same bits). Q4_K / Q5_K, per super-block and token: the exact int32 sum Σ_k scale_k · Σ(values of run k · their codes) and
/// the exact min sum Σ_k min_k · Σ codes of run k; then two scalar FMAs, `acc = fma(d·d_x, sum, acc)` and
/// `acc = fma(−(dmin·d_x), minSum, acc)`, so any layout of the integer work (one row, eight rows per register) gives the
/// same bits. Q6_K likewise with one FMA on the exact sum less its −32 offset. The float work is two FMAs (Q6_K one) per 256
/// values (docs/kernels.md).
enum KQuantQ8K {
    /// Formats these dots serve.
    static func handles(_ dtype: DType) -> Bool { dtype == .q4_K || dtype == .q5_K || dtype == .q6_K }

    /// `out (n, rows) = x · Wᵀ` for a Q4_K / Q5_K weight, rows split over the pool.
    static func forward(_ isa: KernelISA, _ w: LinearWeight, _ x: UnsafeBufferPointer<Float>, n: Int, out: UnsafeMutableBufferPointer<Float>, grain: Int) {
        let activations = LinearScratch.current.q8k(x, n: n, cols: w.cols, inC: isa != .swift)
        ThreadPool.shared.parallelFor(w.rows, grain: grain) { range in
            rows(isa, w, range, activations, n: n, out: out)
        }
    }

    /// Rows `range` of `x · Wᵀ` from activations already quantized.
    @inline(__always)
    static func rows(_ isa: KernelISA, _ w: LinearWeight, _ range: Range<Int>, _ x: Q8KActivations, n: Int, out: UnsafeMutableBufferPointer<Float>) {
        let base = w.data.bytes.baseAddress!, rowBytes = w.rowBytes, blocks = w.cols / 256, dtype = w.data.dtype, five = dtype == .q5_K
        if isa != .swift {
            return kujira_k_q8k_dot_rows(isa.rawValue, dtype == .q6_K ? 2 : five ? 1 : 0, base, rowBytes, Int32(range.lowerBound), Int32(range.upperBound), Int32(blocks), x.codes, x.scales, x.sums,
                                         Int32(n), out.baseAddress!, Int32(w.rows))
        }
        for r in range {
            for t in 0..<n {
                let codes = x.codes + t * w.cols, scales = x.scales + t * blocks, sums = x.sums + t * blocks * 16
                out[t * w.rows + r] = dtype == .q6_K ? q6Dot(base + r * rowBytes, codes: codes, scales: scales, sums: sums, blocks: blocks)
                    : dot(five: five, base + r * rowBytes, codes: codes, scales: scales, sums: sums, blocks: blocks)
            }
        }
    }

    /// One row · one token (the reference of the C kernel).
    static func dot(five: Bool, _ row: UnsafeRawPointer, codes: UnsafePointer<Int8>, scales: UnsafePointer<Float>, sums: UnsafePointer<Int16>,
                    blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let block = row + b * (five ? Q5_K.blockBytes : Q4_K.blockBytes)
            let (scale, minimum) = KQuantScaleMin.unpack(block + 4)
            let high = five ? SIMD32<Int16>(truncatingIfNeeded: block.loadUnaligned(fromByteOffset: 16, as: SIMD32<UInt8>.self)) : SIMD32()
            var lanes = SIMD8<Int32>()
            for k in 0..<8 {
                let packed = block.loadUnaligned(fromByteOffset: (five ? 48 : 16) + 32 * (k / 2), as: SIMD32<UInt8>.self)
                var q = SIMD32<Int16>(truncatingIfNeeded: (packed &>> UInt8(4 * (k & 1))) & 0x0F)
                if five { q |= ((high &>> Int16(k)) & 1) &<< 4 }
                let x = SIMD32<Int16>(truncatingIfNeeded: UnsafeRawPointer(codes + 256 * b + 32 * k).loadUnaligned(as: SIMD32<Int8>.self))
                let products = q &* x                                    // |q·x| ≤ 31·127
                let pairs = SIMD16<Int32>(truncatingIfNeeded: products.evenHalf &+ products.oddHalf)
                lanes &+= (pairs.evenHalf &+ pairs.oddHalf) &* scale[k]  // lane j: values 4j…4j+3
            }
            var mins = SIMD8<Int32>()
            for k in 0..<8 { mins[k] = minimum[k] &* (Int32(sums[16 * b + 2 * k]) &+ Int32(sums[16 * b + 2 * k + 1])) }
            let dx = scales[b]
            acc = acc.addingProduct(loadF16(block, 0) * dx, Float(lanes.wrappedSum()))   // exact int32 sums, rounded once
            acc = acc.addingProduct(-(loadF16(block, 2) * dx), Float(mins.wrappedSum()))
        }
        return acc
    }

    /// One Q6_K row · one token (the reference of the C kernel): int32 lane j = Σ_r scale(run r, half j / 4) · (values 4j…4j+3
    /// of run r, 6-bit unsigned, · their codes) − 32 · (lane j of Σ_s scale_s · Σcodes_s paired as `vpmaddwd` pairs them),
    /// then per super-block one FMA on the exact sum of the lanes: `acc = fma(d·d_x, Σ lanes, acc)`.
    static func q6Dot(_ row: UnsafeRawPointer, codes: UnsafePointer<Int8>, scales: UnsafePointer<Float>, sums: UnsafePointer<Int16>,
                      blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let block = row + b * Q6_K.blockBytes
            let scale = { (s: Int) in Int32(block.load(fromByteOffset: 192 + s, as: Int8.self)) }
            var lanes = SIMD8<Int32>()
            for r in 0..<8 {
                let h = r >> 2, j = r & 3
                let ql = block.loadUnaligned(fromByteOffset: 64 * h + 32 * (j & 1), as: SIMD32<UInt8>.self)
                let qh = block.loadUnaligned(fromByteOffset: 128 + 32 * h, as: SIMD32<UInt8>.self)
                let u = SIMD32<Int16>(truncatingIfNeeded: ((ql &>> UInt8(4 * (j >> 1))) & 0x0F) | (((qh &>> UInt8(2 * j)) & 3) &<< 4))
                let x = SIMD32<Int16>(truncatingIfNeeded: UnsafeRawPointer(codes + 256 * b + 32 * r).loadUnaligned(as: SIMD32<Int8>.self))
                let products = u &* x                                    // |u·x| ≤ 63·127
                let pairs = SIMD16<Int32>(truncatingIfNeeded: products.evenHalf &+ products.oddHalf)
                let runScales = SIMD8<Int32>(lowHalf: SIMD4(repeating: scale(2 * r)), highHalf: SIMD4(repeating: scale(2 * r + 1)))
                lanes &+= (pairs.evenHalf &+ pairs.oddHalf) &* runScales
            }
            var offset = SIMD8<Int32>()
            for k in 0..<8 { offset[k] = scale(2 * k) &* Int32(sums[16 * b + 2 * k]) &+ scale(2 * k + 1) &* Int32(sums[16 * b + 2 * k + 1]) }
            lanes &-= offset &<< 5
            acc = acc.addingProduct(loadF16(block, 208) * scales[b], Float(lanes.wrappedSum()))   // exact int32 sum, rounded once
        }
        return acc
    }
}
