/// Shared 6-bit scale/min packing of Q4_K and Q5_K (12 bytes for 8 sub-blocks).
///
/// Sub-block `j < 4`: scale `b[j] & 63`, min `b[j+4] & 63`. Sub-block `j >= 4`: scale
/// `(b[j+4] & 15) | ((b[j-4] >> 6) << 4)`, min `(b[j+4] >> 4) | ((b[j] >> 6) << 4)`.
enum KQuantScaleMin {
    @inline(__always)
    static func unpack(_ b: UnsafeRawPointer) -> (scales: SIMD8<Int32>, mins: SIMD8<Int32>) {
        var scales = SIMD8<Int32>(), mins = SIMD8<Int32>()
        for j in 0..<4 {
            scales[j] = Int32(b.load(fromByteOffset: j, as: UInt8.self) & 63)
            mins[j] = Int32(b.load(fromByteOffset: j + 4, as: UInt8.self) & 63)
        }
        for j in 4..<8 {
            let packed = b.load(fromByteOffset: j + 4, as: UInt8.self)
            scales[j] = Int32((packed & 0x0F) | ((b.load(fromByteOffset: j - 4, as: UInt8.self) >> 6) << 4))
            mins[j] = Int32((packed >> 4) | ((b.load(fromByteOffset: j, as: UInt8.self) >> 6) << 4))
        }
        return (scales, mins)
    }
}

/// GGML Q4_K: 256 weights per 144-byte super-block, 8 sub-blocks of 32 with 6-bit scale and min.
///
/// Layout: `d: f16`, `dmin: f16`, `scales: [12] u8` (see `KQuantScaleMin`), `qs: [128] u8`. Element
/// `e = c*64 + s*32 + l` (c < 4, s < 2, l < 32) is `(qs[c*32 + l] >> 4s) & 15` in sub-block `2c + s`;
/// `w = (d * scale) * q - (dmin * min)`.
public enum Q4_K {
    public static let blockBytes = 144

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0), dmin = loadF16(block, 2)
        let (scales, mins) = KQuantScaleMin.unpack(block + 4)
        for e in 0..<256 {
            let c = e >> 6, s = (e >> 5) & 1, l = e & 31, sub = e >> 5
            let q = (block.load(fromByteOffset: 16 + c * 32 + l, as: UInt8.self) >> UInt8(4 * s)) & 0x0F
            out[e] = (d * Float(scales[sub])) * Float(q) - dmin * Float(mins[sub])
        }
    }
}

/// GGML Q5_K: 256 weights per 176-byte super-block; Q4_K plus a fifth bit per weight.
///
/// Layout: `d: f16`, `dmin: f16`, `scales: [12] u8`, `qh: [32] u8`, `qs: [128] u8`. Low nibble as
/// Q4_K; the fifth bit of element `e` is `(qh[e % 32] >> (e / 32)) & 1`.
public enum Q5_K {
    public static let blockBytes = 176

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0), dmin = loadF16(block, 2)
        let (scales, mins) = KQuantScaleMin.unpack(block + 4)
        for e in 0..<256 {
            let c = e >> 6, s = (e >> 5) & 1, l = e & 31, sub = e >> 5
            let low = (block.load(fromByteOffset: 48 + c * 32 + l, as: UInt8.self) >> UInt8(4 * s)) & 0x0F
            let high = (block.load(fromByteOffset: 16 + l, as: UInt8.self) >> UInt8(sub)) & 1
            out[e] = (d * Float(scales[sub])) * Float(low | high << 4) - dmin * Float(mins[sub])
        }
    }
}

extension KQuantScaleMin {
    /// The 8 scales and 8 mins as exact Float lanes (ggml's 32-bit word shuffle, then one variable shift per lane).
    @inline(__always)
    static func unpackFloat(_ b: UnsafeRawPointer) -> (scales: SIMD8<Float>, mins: SIMD8<Float>) {
        let w0 = b.loadUnaligned(as: UInt32.self), w1 = b.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        let w2 = b.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        let scalesLow = w0 & 0x3F3F_3F3F, minsLow = w1 & 0x3F3F_3F3F
        let scalesHigh = (w2 & 0x0F0F_0F0F) | (((w0 >> 6) & 0x0303_0303) << 4)
        let minsHigh = ((w2 >> 4) & 0x0F0F_0F0F) | (((w1 >> 6) & 0x0303_0303) << 4)
        let shifts = SIMD8<UInt32>(0, 8, 16, 24, 0, 8, 16, 24)
        let scales = (SIMD8<UInt32>(lowHalf: SIMD4(repeating: scalesLow), highHalf: SIMD4(repeating: scalesHigh)) &>> shifts) & 0xFF
        let mins = (SIMD8<UInt32>(lowHalf: SIMD4(repeating: minsLow), highHalf: SIMD4(repeating: minsHigh)) &>> shifts) & 0xFF
        return (exactFloat(unsafeBitCast(scales, to: SIMD8<Int32>.self)), exactFloat(unsafeBitCast(mins, to: SIMD8<Int32>.self)))
    }
}

extension Q8Row {
    /// The dequantized sums of super-block `b`'s 8 runs of 32 (K-quants).
    @inline(__always)
    func runScaledSums(superBlock b: Int) -> SIMD8<Float> {
        UnsafeRawPointer(scaledSums + 8 * b).loadUnaligned(as: SIMD8<Float>.self)
    }
}

/// Q4_K and Q5_K: 8 runs of 32 values per super-block with 6-bit scales and mins; the dots differ only in
/// how a pair of runs is unpacked.
protocol KQuantScaledRuns {
    static var blockBytes: Int { get }
    /// Runs `2c` and `2c + 1` as 16-lane vectors matching `Q8Row.blockLanes` (unsigned values, through `x.opaque`).
    static func runPair(_ block: UnsafeRawPointer, _ c: Int, _ x: Q8Row) -> (low: (SIMD16<Int16>, SIMD16<Int16>), high: (SIMD16<Int16>, SIMD16<Int16>))
}

extension KQuantScaledRuns {
    /// Per super-block: Σ_r (d·scale_r)·d_x[r]·(q·a)_r (256-bit block products, scaled in float lanes) and
    /// −dmin·min_r·(d_x Σa)_r (one 8-lane FMA into the same accumulator, first), reduced as a tree at the end.
    @inline(__always)
    static func runsDot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let (scales, mins) = KQuantScaleMin.unpackFloat(block + 4)
            let weightScales = scales * x.scaleF16(block, 0)
            acc.addProduct(mins * -x.scaleF16(block, 2), x.runScaledSums(superBlock: b))
            for c in 0..<4 {
                let q = runPair(block, c, x), r = 8 * b + 2 * c
                acc.addProduct(x.blockDot(q.low, block: r), x.blockScale(r, times: weightScales[2 * c]))
                acc.addProduct(x.blockDot(q.high, block: r + 1), x.blockScale(r + 1, times: weightScales[2 * c + 1]))
            }
        }
        return treeSum(acc)
    }

    /// `runsDot` for four tokens at once, bit for bit the same per token.
    @inline(__always)
    static func runsDot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let (scales, mins) = KQuantScaleMin.unpackFloat(block + 4)
            let weightScales = scales * x.0.scaleF16(block, 0), weightMins = mins * -x.0.scaleF16(block, 2)
            acc0.addProduct(weightMins, x.0.runScaledSums(superBlock: b))
            acc1.addProduct(weightMins, x.1.runScaledSums(superBlock: b))
            acc2.addProduct(weightMins, x.2.runScaledSums(superBlock: b))
            acc3.addProduct(weightMins, x.3.runScaledSums(superBlock: b))
            for c in 0..<4 {
                let q = runPair(block, c, x.0), r = 8 * b + 2 * c
                let lowScale = SIMD8(repeating: weightScales[2 * c]), highScale = SIMD8(repeating: weightScales[2 * c + 1])
                @inline(__always)
                func token(_ x: Q8Row, _ acc: inout SIMD8<Float>) {
                    acc.addProduct(x.blockDot(q.low, block: r), lowScale * x.scaleVectors[r])
                    acc.addProduct(x.blockDot(q.high, block: r + 1), highScale * x.scaleVectors[r + 1])
                }
                token(x.0, &acc0)
                token(x.1, &acc1)
                token(x.2, &acc2)
                token(x.3, &acc3)
            }
        }
        return SIMD4(treeSum(acc0), treeSum(acc1), treeSum(acc2), treeSum(acc3))
    }
}

extension Q4_K: KQuantScaledRuns {
    @inline(__always)
    static func runPair(_ block: UnsafeRawPointer, _ c: Int, _ x: Q8Row) -> (low: (SIMD16<Int16>, SIMD16<Int16>), high: (SIMD16<Int16>, SIMD16<Int16>)) {
        let q0 = unpackNibbles256(block.loadUnaligned(fromByteOffset: 16 + 32 * c, as: SIMD8<UInt16>.self))
        let q1 = unpackNibbles256(block.loadUnaligned(fromByteOffset: 32 + 32 * c, as: SIMD8<UInt16>.self))
        return (x.opaque((q0.0, q1.0)), x.opaque((q0.1, q1.1)))
    }

    /// Fused dot with Q8 activations (see `KQuantScaledRuns.runsDot`).
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float { runsDot(row, x, blocks: blocks) }

    /// `dot` for four tokens at once (nibbles and scales unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> { runsDot4(row, x, blocks: blocks) }
}

extension Q5_K: KQuantScaledRuns {
    /// Runs `2c`, `2c + 1`: low nibbles as Q4_K or-ed with the fifth bits (bit `run` of qh[value]) times 16.
    @inline(__always)
    static func runPair(_ block: UnsafeRawPointer, _ c: Int, _ x: Q8Row) -> (low: (SIMD16<Int16>, SIMD16<Int16>), high: (SIMD16<Int16>, SIMD16<Int16>)) {
        let q0 = unpackNibbles256(block.loadUnaligned(fromByteOffset: 48 + 32 * c, as: SIMD8<UInt16>.self))
        let q1 = unpackNibbles256(block.loadUnaligned(fromByteOffset: 64 + 32 * c, as: SIMD8<UInt16>.self))
        // qh bytes of values 0..<16 and 16..<32, split into even/odd elements like the nibbles.
        let h0 = block.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt16>.self), h1 = block.loadUnaligned(fromByteOffset: 32, as: SIMD8<UInt16>.self)
        let fifth0 = SIMD16(lowHalf: h0, highHalf: h0 &>> 8), fifth1 = SIMD16(lowHalf: h1, highHalf: h1 &>> 8)
        @inline(__always)
        func bit(_ h: SIMD16<UInt16>, _ run: Int) -> SIMD16<Int16> {
            unsafeBitCast(((h &>> UInt16(run)) & 1) &<< 4, to: SIMD16<Int16>.self)
        }
        return (x.opaque((q0.0 | bit(fifth0, 2 * c), q1.0 | bit(fifth1, 2 * c))), x.opaque((q0.1 | bit(fifth0, 2 * c + 1), q1.1 | bit(fifth1, 2 * c + 1))))
    }

    /// Fused dot with Q8 activations; as Q4_K with q = low nibble | fifth bit << 4.
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float { runsDot(row, x, blocks: blocks) }

    /// `dot` for four tokens at once (5-bit values and scales unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> { runsDot4(row, x, blocks: blocks) }
}
