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

    /// Scale and min of sub-block `j` as scalars (the fused dots use these: no vector built lane by lane).
    @inline(__always)
    static func pair(_ b: UnsafeRawPointer, _ j: Int) -> (scale: Int32, min: Int32) {
        if j < 4 {
            return (Int32(b.load(fromByteOffset: j, as: UInt8.self) & 63), Int32(b.load(fromByteOffset: j + 4, as: UInt8.self) & 63))
        }
        let packed = b.load(fromByteOffset: j + 4, as: UInt8.self)
        return (Int32((packed & 0x0F) | ((b.load(fromByteOffset: j - 4, as: UInt8.self) >> 6) << 4)),
                Int32((packed >> 4) | ((b.load(fromByteOffset: j, as: UInt8.self) >> 6) << 4)))
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

extension Q4_K {
    /// Fused dot with Q8 activations: sum_r d_x[r] (d scale_r (q·a)_r - dmin min_r sum(a)_r) over the 8 runs of 32.
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let d = x.scaleF16(block, 0), dmin = x.scaleF16(block, 2)
            var sumf: Float = 0
            for c in 0..<4 {
                let p0 = block.loadUnaligned(fromByteOffset: 16 + 32 * c, as: SIMD8<UInt16>.self)
                let p1 = block.loadUnaligned(fromByteOffset: 32 + 32 * c, as: SIMD8<UInt16>.self)
                let g = 16 * b + 4 * c, r = 2 * c
                let lowDot = horizontalSum(x.products(lowNibbles: p0, group: g) &+ x.products(lowNibbles: p1, group: g + 1))
                let highDot = horizontalSum(x.products(highNibbles: p0, group: g + 2) &+ x.products(highNibbles: p1, group: g + 3))
                let (s0, m0) = KQuantScaleMin.pair(block + 4, r), (s1, m1) = KQuantScaleMin.pair(block + 4, r + 1)
                sumf += x.scales[8 * b + r] * (d * Float(s0 &* lowDot) - dmin * Float(m0 &* (x.sums[g] &+ x.sums[g + 1])))
                sumf += x.scales[8 * b + r + 1] * (d * Float(s1 &* highDot) - dmin * Float(m1 &* (x.sums[g + 2] &+ x.sums[g + 3])))
            }
            acc += sumf
        }
        return acc
    }
}

extension Q5_K {
    /// Fused dot with Q8 activations; as Q4_K with q = low nibble | fifth bit << 4.
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let d = x.scaleF16(block, 0), dmin = x.scaleF16(block, 2)
            let h0 = block.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt16>.self)
            let h1 = block.loadUnaligned(fromByteOffset: 32, as: SIMD8<UInt16>.self)
            var sumf: Float = 0
            for c in 0..<4 {
                let p0 = block.loadUnaligned(fromByteOffset: 48 + 32 * c, as: SIMD8<UInt16>.self)
                let p1 = block.loadUnaligned(fromByteOffset: 64 + 32 * c, as: SIMD8<UInt16>.self)
                let g = 16 * b + 4 * c, r = 2 * c
                let lowBit = UInt16(r), highBit = UInt16(r + 1)
                let lowDot = horizontalSum(x.products(unsignedPairs: (p0 & 0x0F0F) | (((h0 &>> lowBit) & 0x0101) &<< 4), group: g)
                    &+ x.products(unsignedPairs: (p1 & 0x0F0F) | (((h1 &>> lowBit) & 0x0101) &<< 4), group: g + 1))
                let highDot = horizontalSum(x.products(unsignedPairs: ((p0 &>> 4) & 0x0F0F) | (((h0 &>> highBit) & 0x0101) &<< 4), group: g + 2)
                    &+ x.products(unsignedPairs: ((p1 &>> 4) & 0x0F0F) | (((h1 &>> highBit) & 0x0101) &<< 4), group: g + 3))
                let (s0, m0) = KQuantScaleMin.pair(block + 4, r), (s1, m1) = KQuantScaleMin.pair(block + 4, r + 1)
                sumf += x.scales[8 * b + r] * (d * Float(s0 &* lowDot) - dmin * Float(m0 &* (x.sums[g] &+ x.sums[g + 1])))
                sumf += x.scales[8 * b + r + 1] * (d * Float(s1 &* highDot) - dmin * Float(m1 &* (x.sums[g + 2] &+ x.sums[g + 3])))
            }
            acc += sumf
        }
        return acc
    }
}

extension Q4_K {
    /// `dot` for four tokens at once (nibbles and scales unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc = SIMD4<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let d = x.0.scaleF16(block, 0), dmin = x.0.scaleF16(block, 2)
            var sumf = SIMD4<Float>()
            for c in 0..<4 {
                let q0 = unpackNibbles(block.loadUnaligned(fromByteOffset: 16 + 32 * c, as: SIMD8<UInt16>.self))
                let q1 = unpackNibbles(block.loadUnaligned(fromByteOffset: 32 + 32 * c, as: SIMD8<UInt16>.self))
                let g = 16 * b + 4 * c, r = 2 * c
                let (s0, m0) = KQuantScaleMin.pair(block + 4, r), (s1, m1) = KQuantScaleMin.pair(block + 4, r + 1)
                // The two run terms of one token, added to its sum in the same order as `dot`.
                @inline(__always)
                func terms(_ x: Q8Row) -> (Float, Float) {
                    let lowDot = horizontalSum(q0.0 &* x.lanes[2 * g] &+ q0.1 &* x.lanes[2 * g + 1] &+ q1.0 &* x.lanes[2 * g + 2] &+ q1.1 &* x.lanes[2 * g + 3])
                    let highDot = horizontalSum(q0.2 &* x.lanes[2 * g + 4] &+ q0.3 &* x.lanes[2 * g + 5] &+ q1.2 &* x.lanes[2 * g + 6] &+ q1.3 &* x.lanes[2 * g + 7])
                    return (x.scales[8 * b + r] * (d * Float(s0 &* lowDot) - dmin * Float(m0 &* (x.sums[g] &+ x.sums[g + 1]))),
                            x.scales[8 * b + r + 1] * (d * Float(s1 &* highDot) - dmin * Float(m1 &* (x.sums[g + 2] &+ x.sums[g + 3]))))
                }
                let t0 = terms(x.0), t1 = terms(x.1), t2 = terms(x.2), t3 = terms(x.3)
                sumf += SIMD4(t0.0, t1.0, t2.0, t3.0)
                sumf += SIMD4(t0.1, t1.1, t2.1, t3.1)
            }
            acc += sumf
        }
        return acc
    }
}

extension Q5_K {
    /// `dot` for four tokens at once (5-bit values and scales unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc = SIMD4<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let d = x.0.scaleF16(block, 0), dmin = x.0.scaleF16(block, 2)
            let h0 = block.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt16>.self)
            let h1 = block.loadUnaligned(fromByteOffset: 32, as: SIMD8<UInt16>.self)
            var sumf = SIMD4<Float>()
            for c in 0..<4 {
                let p0 = block.loadUnaligned(fromByteOffset: 48 + 32 * c, as: SIMD8<UInt16>.self)
                let p1 = block.loadUnaligned(fromByteOffset: 64 + 32 * c, as: SIMD8<UInt16>.self)
                let g = 16 * b + 4 * c, r = 2 * c
                let lowBit = UInt16(r), highBit = UInt16(r + 1)
                let w0 = splitPairs((p0 & 0x0F0F) | (((h0 &>> lowBit) & 0x0101) &<< 4))
                let w1 = splitPairs((p1 & 0x0F0F) | (((h1 &>> lowBit) & 0x0101) &<< 4))
                let w2 = splitPairs(((p0 &>> 4) & 0x0F0F) | (((h0 &>> highBit) & 0x0101) &<< 4))
                let w3 = splitPairs(((p1 &>> 4) & 0x0F0F) | (((h1 &>> highBit) & 0x0101) &<< 4))
                let (s0, m0) = KQuantScaleMin.pair(block + 4, r), (s1, m1) = KQuantScaleMin.pair(block + 4, r + 1)
                @inline(__always)
                func terms(_ x: Q8Row) -> (Float, Float) {
                    let lowDot = horizontalSum(x.products(split: w0, group: g) &+ x.products(split: w1, group: g + 1))
                    let highDot = horizontalSum(x.products(split: w2, group: g + 2) &+ x.products(split: w3, group: g + 3))
                    return (x.scales[8 * b + r] * (d * Float(s0 &* lowDot) - dmin * Float(m0 &* (x.sums[g] &+ x.sums[g + 1]))),
                            x.scales[8 * b + r + 1] * (d * Float(s1 &* highDot) - dmin * Float(m1 &* (x.sums[g + 2] &+ x.sums[g + 3]))))
                }
                let t0 = terms(x.0), t1 = terms(x.1), t2 = terms(x.2), t3 = terms(x.3)
                sumf += SIMD4(t0.0, t1.0, t2.0, t3.0)
                sumf += SIMD4(t0.1, t1.1, t2.1, t3.1)
            }
            acc += sumf
        }
        return acc
    }
}
