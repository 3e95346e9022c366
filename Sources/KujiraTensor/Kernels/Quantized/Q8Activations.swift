import CKujiraKernels

/// Activations quantized to int8 in blocks of 32 (one Float scale per block), laid out for the fused
/// integer dots: every 16 values are stored as two `SIMD8<Int16>` vectors, the even-indexed values and the
/// odd-indexed values, so a weight row's bytes viewed as `SIMD8<Int16>` meet their activations without shuffles.
///
/// Like llama.cpp's q8_0 (symmetric, `d = max|x| / 127`, values rounded with `127 / max|x|`, `d` stored
/// rounded to half precision), with one scale for every 32 values in every format (llama.cpp uses one scale per 256 for K-quants), which keeps the int16 products in range
/// and the error smaller; see docs/kernels.md.
public final class Q8Activations: @unchecked Sendable {
    /// Tokens and values per token.
    public private(set) var count: Int = 0, cols: Int = 0
    private var storage = OwnedBytes(count: 0)
    private var lanes: UnsafeMutablePointer<SIMD8<Int16>>
    private var scales: UnsafeMutablePointer<Float>
    private var sums: UnsafeMutablePointer<Int32>
    private var scaledSums: UnsafeMutablePointer<Float>
    private var scaleVectors: UnsafeMutablePointer<SIMD8<Float>>
    /// With `vnni`: every value as q + 128 (u8), 32 per block in `CKujiraKernels`'s lane order (int32 lane j of
    /// `vpdpbusd` sums the values of `multiplyAddPairs`' lane j: even values 2k at byte 4·(k/2) + k%2 (+2 for the
    /// block's second 16), odd values 2k+1 at 16 bytes further); else nil.
    private(set) var vnniValues: UnsafeMutablePointer<UInt8>?
    private let halves = HalfToFloatTable.shared.values
    /// 1, read at run time (see `Q8Row.opaque`).
    private let unit: Int16 = 1

    /// Quantizes `n` rows of `cols` values (`cols` a multiple of 32).
    public convenience init(_ x: UnsafeBufferPointer<Float>, n: Int, cols: Int) {
        self.init(x, n: n, cols: cols, vnni: false)
    }

    /// Also fills the byte plane of the C block dots (`vnniValues`) when `vnni` is true; `inC` quantizes with
    /// `kujira_q8_quantize_blocks` (tests compare it with the Swift `quantizeBlock`).
    init(_ x: UnsafeBufferPointer<Float>, n: Int, cols: Int, vnni: Bool, inC: Bool = KernelISA.floatKernels) {
        lanes = storage.pointer.bindMemory(to: SIMD8<Int16>.self, capacity: 0)
        scales = storage.pointer.bindMemory(to: Float.self, capacity: 0)
        scaledSums = scales
        sums = storage.pointer.bindMemory(to: Int32.self, capacity: 0)
        scaleVectors = storage.pointer.bindMemory(to: SIMD8<Float>.self, capacity: 0)
        quantize(x, n: n, cols: cols, vnni: vnni, inC: inC)
    }

    /// Quantizes new activations into this object's storage, growing it only when they do not fit (so a caller that
    /// keeps one object, like `Linear`'s per-thread scratch, does not allocate per call).
    public func quantize(_ x: UnsafeBufferPointer<Float>, n: Int, cols: Int) {
        quantize(x, n: n, cols: cols, vnni: false)
    }

    /// `quantize`, also filling the VNNI plane when `vnni` is true (same values, in the same pass).
    func quantize(_ x: UnsafeBufferPointer<Float>, n: Int, cols: Int, vnni: Bool, inC: Bool = KernelISA.floatKernels) {
        precondition(cols % 32 == 0 && x.count >= n * cols, "Q8Activations: \(cols) columns is not a multiple of 32")
        count = n
        self.cols = cols
        let groups = n * cols / 16, blocks = n * cols / 32
        let planeOffset = groups * 32 + blocks * 32 + blocks * 8 + groups * 4
        let bytes = planeOffset + (vnni ? blocks * 32 : 0)
        if bytes > storage.count { storage = OwnedBytes(count: max(bytes, 2 * storage.count)) }
        lanes = storage.pointer.bindMemory(to: SIMD8<Int16>.self, capacity: groups * 2)
        let vectors = storage.pointer + groups * 32, floats = vectors + blocks * 32
        scaleVectors = vectors.bindMemory(to: SIMD8<Float>.self, capacity: blocks)
        scales = floats.bindMemory(to: Float.self, capacity: blocks)
        scaledSums = (floats + blocks * 4).bindMemory(to: Float.self, capacity: blocks)
        sums = (floats + blocks * 8).bindMemory(to: Int32.self, capacity: groups)
        vnniValues = vnni ? (storage.pointer + planeOffset).bindMemory(to: UInt8.self, capacity: blocks * 32) : nil
        let plane = vnniValues, source = x.baseAddress!
        let lanes = self.lanes, scales = self.scales, scaledSums = self.scaledSums, sums = self.sums, scaleVectors = self.scaleVectors
        // Blocks are independent: a prefill's activations (thousands of blocks) are split over the pool; a decode
        // step's (tens of blocks) stay on the caller.
        ThreadPool.shared.parallelFor(blocks, grain: 256) { range in
            if inC {
                let b = range.lowerBound
                let lanesOut = UnsafeMutableRawPointer(lanes + 4 * b).assumingMemoryBound(to: Int16.self)
                let vectorsOut = UnsafeMutableRawPointer(scaleVectors + b).assumingMemoryBound(to: Float.self)
                return kujira_q8_quantize_blocks(source + b * 32, range.count, lanesOut, scales + b, scaledSums + b, sums + 2 * b, vectorsOut,
                                                 plane.map { $0 + 32 * b })
            }
            for b in range {
                Self.quantizeBlock(source + b * 32, lanes: lanes + 4 * b, scale: scales + b, scaledSum: scaledSums + b, sums: sums + 2 * b,
                                   scaleVector: scaleVectors + b, plane: plane.map { $0 + 32 * b })
            }
        }
    }

    /// One block of 32 values: scale, int8 codes as [even | odd] int16 lanes per 16, their sums, and the VNNI plane
    /// bytes (q + 128 in `CKujiraKernels`'s order) when `plane` is given. 16-lane vector code: max, round, convert.
    @inline(__always)
    static func quantizeBlock(_ values: UnsafePointer<Float>, lanes: UnsafeMutablePointer<SIMD8<Int16>>, scale: UnsafeMutablePointer<Float>,
                              scaledSum: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Int32>,
                              scaleVector: UnsafeMutablePointer<SIMD8<Float>>, plane: UnsafeMutablePointer<UInt8>?) {
        let raw = UnsafeRawPointer(values)
        let v0 = raw.loadUnaligned(as: SIMD16<Float>.self), v1 = raw.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
        let magnitude0 = unsafeBitCast(unsafeBitCast(v0, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: SIMD16<Float>.self)
        let magnitude1 = unsafeBitCast(unsafeBitCast(v1, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: SIMD16<Float>.self)
        // A NaN/inf activation makes the block's scale NaN, so the outputs it touches are NaN too. x − x is 0 for
        // finite x and NaN otherwise; the tree reductions (halves) stay vector instructions, unlike `max()`/`all()`.
        let nonFinite = (v0 - v0) + (v1 - v1)
        let zeros = (nonFinite.lowHalf + nonFinite.highHalf).lowHalf + (nonFinite.lowHalf + nonFinite.highHalf).highHalf
        let finite = (zeros[0] + zeros[1]) + (zeros[2] + zeros[3]) == 0
        let m16 = lanewiseMax(magnitude0, magnitude1)
        let m8 = lanewiseMax(m16.lowHalf, m16.highHalf), m4 = lanewiseMax(m8.lowHalf, m8.highHalf)
        let amax = finite ? max(max(m4[0], m4[1]), max(m4[2], m4[3])) : 0
        let d = finite ? amax / 127 : .nan
        let inverse: Float = finite && amax > 0 ? 127 / amax : 0
        // The scale is rounded to half precision, as llama.cpp stores it (q8_0/q8_1 `d`), while the values
        // are rounded with the exact 127/amax: the products then match llama.cpp's (SmolLM2 Q4_1 greedy
        // continuations: 3 of 4 golden prompts equal for 16 tokens, 1 of 4 with a Float scale). Outside the
        // normal half range the Float scale is kept (no inf, no flush to zero).
        let half = Float(Float16(d))
        let blockScale = d >= Float(Float16.leastNormalMagnitude) && half <= Float(Float16.greatestFiniteMagnitude) ? half : d
        scale.pointee = blockScale
        let c0 = roundToInt16(v0 * inverse), c1 = roundToInt16(v1 * inverse)
        var e0 = SIMD8<Int16>(), o0 = SIMD8<Int16>(), e1 = SIMD8<Int16>(), o1 = SIMD8<Int16>()
        for k in 0..<8 {
            e0[k] = c0[2 &* k]; o0[k] = c0[2 &* k &+ 1]
            e1[k] = c1[2 &* k]; o1[k] = c1[2 &* k &+ 1]
        }
        lanes[0] = e0; lanes[1] = o0; lanes[2] = e1; lanes[3] = o1
        let sum0 = Int32(truncatingIfNeeded: (e0 &+ o0).wrappedSum()), sum1 = Int32(truncatingIfNeeded: (e1 &+ o1).wrappedSum())
        sums[0] = sum0
        sums[1] = sum1
        scaledSum.pointee = blockScale * Float(sum0 + sum1)
        scaleVector.pointee = SIMD8(repeating: blockScale)
        if let plane {
            // Byte 4m + i of the plane's first half holds even value 2(2m + i) of group 0 (i < 2) or of group 1 (i ≥ 2);
            // the second half the odd values (`kujira_vnni_block_order`).
            var bytes = SIMD32<UInt8>()
            for m in 0..<4 {
                for i in 0..<2 {
                    bytes[4 &* m &+ i] = UInt8(truncatingIfNeeded: e0[2 &* m &+ i] &+ 128)
                    bytes[4 &* m &+ 2 &+ i] = UInt8(truncatingIfNeeded: e1[2 &* m &+ i] &+ 128)
                    bytes[16 &+ 4 &* m &+ i] = UInt8(truncatingIfNeeded: o0[2 &* m &+ i] &+ 128)
                    bytes[16 &+ 4 &* m &+ 2 &+ i] = UInt8(truncatingIfNeeded: o1[2 &* m &+ i] &+ 128)
                }
            }
            UnsafeMutableRawPointer(plane).storeBytes(of: bytes, as: SIMD32<UInt8>.self)
        }
    }

    /// Lane-wise maximum of non-negative values as a lane loop (`vmaxps`): the stdlib's `pointwiseMax` stays a
    /// scalar loop through memory here (measured: 15% of a Q8_0 prefill).
    @inline(__always)
    static func lanewiseMax<V: SIMD>(_ a: V, _ b: V) -> V where V.Scalar == Float {
        var r = a
        for i in 0..<V.scalarCount where b[i] > a[i] { r[i] = b[i] }
        return r
    }

    /// Round to nearest (ties to even) for |v| ≤ 127 without a libm call, 16 lanes; never traps (NaN/inf inputs,
    /// which only come from NaN/inf activations, give meaningless values instead of a crash).
    @inline(__always)
    static func roundToInt16(_ v: SIMD16<Float>) -> SIMD16<Int16> {
        let shifted = unsafeBitCast(v + SIMD16(repeating: 12_582_912), to: SIMD16<Int32>.self) &- 0x4B40_0000
        var r = SIMD16<Int16>()
        for i in 0..<16 { r[i] = Int16(truncatingIfNeeded: shifted[i]) }
        return r
    }

    /// The quantized values of token `t`, as pointers for the dot kernels.
    @inline(__always)
    public func row(_ t: Int) -> Q8Row {
        let groups = cols / 16
        return Q8Row(lanes: lanes + t * groups * 2, scales: scales + t * cols / 32, scaleVectors: scaleVectors + t * cols / 32, scaledSums: scaledSums + t * cols / 32, sums: sums + t * groups,
                     halves: halves, unit: unit)
    }

    /// Token `t` dequantized (`q * d`): what the fused dots effectively multiply with (tests compare against it).
    public func dequantized(_ t: Int) -> [Float] {
        let r = row(t)
        var out = [Float](repeating: 0, count: cols)
        for g in 0..<(cols / 16) {
            let d = r.scales[g / 2]
            for k in 0..<8 {
                out[g * 16 + 2 * k] = Float(r.lanes[2 * g][k]) * d
                out[g * 16 + 2 * k + 1] = Float(r.lanes[2 * g + 1][k]) * d
            }
        }
        return out
    }
}

/// One token of `Q8Activations`: group `g` (values 16g..<16g+16) is `lanes[2g]` (even) and `lanes[2g+1]` (odd),
/// block `b` (32 values) has scale `scales[b]`, `sums[g]` is the sum of group `g`'s int8 values and
/// `scaledSums[b]` is block `b`'s dequantized sum (`scales[b] * (sums[2b] + sums[2b+1])`).
public struct Q8Row {
    public let lanes: UnsafePointer<SIMD8<Int16>>
    public let scales: UnsafePointer<Float>
    /// `scales[b]` in all 8 lanes (a loaded vector is not known to be a splat, so `d_w·d_x` stays one `vmulps`
    /// with a memory operand instead of a scalar multiply and a register broadcast).
    let scaleVectors: UnsafePointer<SIMD8<Float>>
    public let scaledSums: UnsafePointer<Float>
    public let sums: UnsafePointer<Int32>
    /// `HalfToFloatTable` (carried here so the dot loops index it without a lazy-global check per block).
    let halves: UnsafePointer<Float>
    /// 1, loaded from the activations object so the compiler cannot see its value (see `opaque`).
    let unit: Int16

    /// Half-precision block scale at `p + offset` to Float (exact): one load from `HalfToFloatTable`.
    /// Measured 25–35% faster for Q4_1 than converting with integer ops.
    @inline(__always)
    func scaleF16(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        halves[Int(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))]
    }

    /// Products of 16 unsigned weights (< 128) with group `g`, the 16 bytes viewed as 8 little-endian 16-bit lanes
    /// (byte 2k low, 2k+1 high), paired into int16 lanes.
    @inline(__always)
    func products(unsignedPairs v: SIMD8<UInt16>, group g: Int) -> SIMD8<Int16> {
        unsafeBitCast(v & 0x00FF, to: SIMD8<Int16>.self) &* lanes[2 * g] &+ unsafeBitCast(v &>> 8, to: SIMD8<Int16>.self) &* lanes[2 * g + 1]
    }
}

/// 16 unsigned bytes (< 128, viewed as 8 little-endian 16-bit lanes) split into even and odd bytes as int16 lanes.
@inline(__always)
func splitPairs(_ v: SIMD8<UInt16>) -> (SIMD8<Int16>, SIMD8<Int16>) {
    (unsafeBitCast(v & 0x00FF, to: SIMD8<Int16>.self), unsafeBitCast(v &>> 8, to: SIMD8<Int16>.self))
}

extension Q8Row {
    /// Products of split weight bytes (see `splitPairs`) with group `g`; same integers as `products(unsignedPairs:)`.
    @inline(__always)
    func products(split w: (SIMD8<Int16>, SIMD8<Int16>), group g: Int) -> SIMD8<Int16> {
        w.0 &* lanes[2 * g] &+ w.1 &* lanes[2 * g + 1]
    }
}

/// Sum of the int16 lanes, widened to Int32 first (pairs, then across).
@inline(__always)
func horizontalSum(_ p: SIMD8<Int16>) -> Int32 {
    let v = unsafeBitCast(p, to: SIMD4<Int32>.self)
    return (((v &<< 16) &>> 16) &+ (v &>> 16)).wrappedSum()
}

/// Every IEEE half code decoded to Float (256 KB, built once on first use, read-only afterwards, never freed).
struct HalfToFloatTable: @unchecked Sendable {
    static let shared = HalfToFloatTable()
    let values: UnsafePointer<Float>

    private init() {
        let table = UnsafeMutablePointer<Float>.allocate(capacity: 65536)
        for code in 0..<65536 { table[code] = FloatConversion.f16ToFloat(UInt16(code)) }
        values = UnsafePointer(table)
    }
}

// MARK: 256-bit helpers (one 32-value block per pair of SIMD16<Int16> multiplies)

extension Q8Row {
    /// Block `b`'s activations as two 16-lane vectors in memory order: [even₀ | odd₀] and [even₁ | odd₁]
    /// (group 0 = values 0..<16, group 1 = values 16..<32).
    @inline(__always)
    func blockLanes(_ b: Int) -> (SIMD16<Int16>, SIMD16<Int16>) {
        let p = UnsafeRawPointer(lanes + 4 * b)
        return (p.loadUnaligned(as: SIMD16<Int16>.self), p.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int16>.self))
    }
}

extension Q8Row {
    /// Unpacked weights multiplied by 1 (`vpmullw` with a value the compiler does not know). Without this
    /// the optimizer tracks that the weights are bytes or nibbles, rewrites their even/odd extraction into
    /// byte shuffles and widens `multiplyAddPairs` into four one-product `vpmaddwd` plus ~20 shuffles per
    /// block instead of two `vpmaddwd` (measured in the Q4_0/Q8_0 kernels' assembly). Costs 2
    /// instructions per unpacked block, shared by every token of a tile.
    @inline(__always)
    func opaque(_ w: (SIMD16<Int16>, SIMD16<Int16>)) -> (SIMD16<Int16>, SIMD16<Int16>) {
        let one = SIMD16<Int16>(repeating: unit)
        return (w.0 &* one, w.1 &* one)
    }
}

/// Exact products of two pairs of 16-lane vectors summed per adjacent lane pair: lane j of the result is
/// `a0[2j]·b0[2j] + a0[2j+1]·b0[2j+1] + a1[2j]·b1[2j] + a1[2j+1]·b1[2j+1]` (two `vpmaddwd` and a `vpaddd`).
/// The previous kernels computed the same integers with two 16-bit multiplies, an add and a 4-instruction pair
/// sum (and a 2^15 limit on the int16 intermediate).
@inline(__always)
func multiplyAddPairs(_ a0: SIMD16<Int16>, _ b0: SIMD16<Int16>, _ a1: SIMD16<Int16>, _ b1: SIMD16<Int16>) -> SIMD8<Int32> {
    multiplyAddPairs(a0, b0) &+ multiplyAddPairs(a1, b1)
}

/// `a[2j]·b[2j] + a[2j+1]·b[2j+1]` for the 8 lane pairs: LLVM turns the unrolled lane loop into one `vpmaddwd`.
/// Written with lane subscripts (transparent builtins) on purpose: the stdlib's generic widening conversion
/// (`SIMD8<Int32>(truncatingIfNeeded:)`) stayed an out-of-line call inside the large kernels.
@inline(__always)
func multiplyAddPairs(_ a: SIMD16<Int16>, _ b: SIMD16<Int16>) -> SIMD8<Int32> {
    var r = SIMD8<Int32>()
    for i in 0..<8 { r[i] = Int32(a[2 &* i]) &* Int32(b[2 &* i]) &+ Int32(a[2 &* i &+ 1]) &* Int32(b[2 &* i &+ 1]) }
    return r
}

/// Int32 lanes to Float (`vcvtdq2ps`; exact for |v| < 2^24, which every block sum here is). A lane loop,
/// like `multiplyAddPairs`, so no generic conversion call is left in the kernels.
@inline(__always)
func exactFloat(_ v: SIMD8<Int32>) -> SIMD8<Float> {
    var r = SIMD8<Float>()
    for i in 0..<8 { r[i] = Float(v[i]) }
    return r
}

extension Q8Row {
    /// `w · scales[b]` in 8 lanes (the float scale of block `b`'s products; the same product in every lane).
    @inline(__always)
    func blockScale(_ b: Int, times w: Float) -> SIMD8<Float> {
        SIMD8(repeating: w) * scaleVectors[b]
    }

    /// Block `b`'s products with weights unpacked to match `blockLanes`, as 8 exact Float lanes (adjacent
    /// lanes of both halves summed, exact).
    @inline(__always)
    func blockDot(_ w: (SIMD16<Int16>, SIMD16<Int16>), block b: Int) -> SIMD8<Float> {
        let x = blockLanes(b)
        return exactFloat(multiplyAddPairs(w.0, x.0, w.1, x.1))
    }
}

/// A packed 16-byte Q4 block as two 16-lane vectors matching `Q8Row.blockLanes`: [low nibbles of even
/// bytes | low nibbles of odd bytes] (values 0..<16) and the same for the high nibbles (values 16..<32).
@inline(__always)
func unpackNibbles256(_ packed: SIMD8<UInt16>) -> (SIMD16<Int16>, SIMD16<Int16>) {
    let q = SIMD16<UInt16>(lowHalf: packed, highHalf: packed &>> 8)
    return (unsafeBitCast(q & 0x000F, to: SIMD16<Int16>.self), unsafeBitCast((q &>> 4) & 0x000F, to: SIMD16<Int16>.self))
}

/// Sum of 8 float lanes as a tree (halves, then quarters): 3 dependent adds instead of the 7 of `sum()`.
@inline(__always)
func treeSum(_ v: SIMD8<Float>) -> Float {
    let h = v.lowHalf + v.highHalf
    let q = h.lowHalf + h.highHalf
    return q[0] + q[1]
}
