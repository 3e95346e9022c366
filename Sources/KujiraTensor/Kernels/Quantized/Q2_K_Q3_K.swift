/// GGML Q2_K: 256 weights per 84-byte super-block, 16 sub-blocks of 16 with 4-bit scale and min.
///
/// Layout: `scales: [16] u8` (low nibble scale, high nibble min of sub-block `k`), `qs: [64] u8`,
/// `d: f16`, `dmin: f16`. Element `e = h*128 + j*32 + l` (h < 2, j < 4, l < 32) is
/// `(qs[h*32 + l] >> 2j) & 3`; `w = (d * scale[e/16]) * q - (dmin * min[e/16])`.
public enum Q2_K {
    public static let blockBytes = 84

    /// Reference dequantizer of one super-block (float operation order as gguf-py).
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 80), dmin = loadF16(block, 82)
        for e in 0..<256 {
            let h = e >> 7, j = (e >> 5) & 3, l = e & 31
            let sc = block.load(fromByteOffset: e >> 4, as: UInt8.self)
            let q = (block.load(fromByteOffset: 16 + h * 32 + l, as: UInt8.self) >> UInt8(2 * j)) & 3
            out[e] = (d * Float(sc & 0x0F)) * Float(q) - dmin * Float(sc >> 4)
        }
    }
}

/// GGML Q3_K: 256 weights per 110-byte super-block, 16 sub-blocks of 16 with signed 6-bit scales.
///
/// Layout: `hmask: [32] u8`, `qs: [64] u8`, `scales: [12] u8`, `d: f16`. Element `e = h*128 + j*32 + l`
/// has low bits `(qs[h*32 + l] >> 2j) & 3` and high bit `(hmask[l] >> (4h + j)) & 1`; the value is
/// `low - 4` when the high bit is 0 and `low` when it is 1. Scale `k` (6 bits, minus 32) is the nibble
/// `(scales[k % 8] >> 4(k/8)) & 15` plus two high bits `(scales[8 + k % 4] >> 2(k/4)) & 3`.
public enum Q3_K {
    public static let blockBytes = 110

    /// Signed scales of the 16 sub-blocks.
    @inline(__always)
    static func scales(_ block: UnsafeRawPointer) -> SIMD16<Int32> {
        var result = SIMD16<Int32>()
        for k in 0..<16 {
            let low = (block.load(fromByteOffset: 96 + (k & 7), as: UInt8.self) >> UInt8(4 * (k >> 3))) & 0x0F
            let high = (block.load(fromByteOffset: 104 + (k & 3), as: UInt8.self) >> UInt8(2 * (k >> 2))) & 0x03
            result[k] = Int32(low | high << 4) - 32
        }
        return result
    }

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 108)
        let sc = scales(block)
        for e in 0..<256 {
            let h = e >> 7, j = (e >> 5) & 3, l = e & 31
            let low = Int32((block.load(fromByteOffset: 32 + h * 32 + l, as: UInt8.self) >> UInt8(2 * j)) & 3)
            let high = (block.load(fromByteOffset: l, as: UInt8.self) >> UInt8(4 * h + j)) & 1
            let q = high == 1 ? low : low - 4
            out[e] = (d * Float(sc[e >> 4])) * Float(q)
        }
    }
}

extension Q2_K {
    /// Fused dot with Q8 activations (8 activation blocks of 32 per super-block):
    /// sum_r d_x[r] (d sum_k scale_k (q·a)_k - dmin sum_k min_k sum(a)_k) over the two 16-groups k of run r.
    /// Bits are extracted in 16-bit lanes (x86 has no byte shifts); masks keep each byte's own bits.
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let d = x.scaleF16(block, 80), dmin = x.scaleF16(block, 82)
            var sumf: Float = 0
            for h in 0..<2 {
                let q0 = block.loadUnaligned(fromByteOffset: 16 + 32 * h, as: SIMD8<UInt16>.self)
                let q1 = block.loadUnaligned(fromByteOffset: 32 + 32 * h, as: SIMD8<UInt16>.self)
                for j in 0..<4 {
                    let r = 4 * h + j, g = 16 * b + 2 * r
                    let shift = UInt16(2 * j)
                    let s0 = Int32(block.load(fromByteOffset: 2 * r, as: UInt8.self))
                    let s1 = Int32(block.load(fromByteOffset: 2 * r + 1, as: UInt8.self))
                    let dot0 = horizontalSum(x.products(unsignedPairs: (q0 &>> shift) & 0x0303, group: g))
                    let dot1 = horizontalSum(x.products(unsignedPairs: (q1 &>> shift) & 0x0303, group: g + 1))
                    let isum = (s0 & 0x0F) &* dot0 &+ (s1 & 0x0F) &* dot1
                    let msum = (s0 >> 4) &* x.sums[g] &+ (s1 >> 4) &* x.sums[g + 1]
                    sumf += x.scales[8 * b + r] * (d * Float(isum) - dmin * Float(msum))
                }
            }
            acc += sumf
        }
        return acc
    }
}

extension Q3_K {
    /// Signed scale of sub-block `k` (scalar unpacking; see the layout above).
    @inline(__always)
    static func scale(_ block: UnsafeRawPointer, _ k: Int) -> Int32 {
        let low = (block.load(fromByteOffset: 96 + (k & 7), as: UInt8.self) >> UInt8(4 * (k >> 3))) & 0x0F
        let high = (block.load(fromByteOffset: 104 + (k & 3), as: UInt8.self) >> UInt8(2 * (k >> 2))) & 0x03
        return Int32(low | high << 4) - 32
    }

    /// Fused dot with Q8 activations: q = u - 4 with u = low | high << 2, so (q·a) = (u·a) - 4 sum(a) per 16-group.
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let m0 = block.loadUnaligned(fromByteOffset: 0, as: SIMD8<UInt16>.self)
            let m1 = block.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt16>.self)
            var sumf: Float = 0
            for h in 0..<2 {
                let q0 = block.loadUnaligned(fromByteOffset: 32 + 32 * h, as: SIMD8<UInt16>.self)
                let q1 = block.loadUnaligned(fromByteOffset: 48 + 32 * h, as: SIMD8<UInt16>.self)
                for j in 0..<4 {
                    let r = 4 * h + j, g = 16 * b + 2 * r
                    let shift = UInt16(2 * j), bit = UInt16(4 * h + j)
                    let u0 = ((q0 &>> shift) & 0x0303) | (((m0 &>> bit) & 0x0101) &<< 2)
                    let u1 = ((q1 &>> shift) & 0x0303) | (((m1 &>> bit) & 0x0101) &<< 2)
                    let dot0 = horizontalSum(x.products(unsignedPairs: u0, group: g)) &- 4 &* x.sums[g]
                    let dot1 = horizontalSum(x.products(unsignedPairs: u1, group: g + 1)) &- 4 &* x.sums[g + 1]
                    sumf += x.scales[8 * b + r] * Float(scale(block, 2 * r) &* dot0 &+ scale(block, 2 * r + 1) &* dot1)
                }
            }
            acc += x.scaleF16(block, 108) * sumf
        }
        return acc
    }
}

extension Q2_K {
    /// `dot` for four tokens at once (2-bit values unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc = SIMD4<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let d = x.0.scaleF16(block, 80), dmin = x.0.scaleF16(block, 82)
            var sumf = SIMD4<Float>()
            for h in 0..<2 {
                let q0 = block.loadUnaligned(fromByteOffset: 16 + 32 * h, as: SIMD8<UInt16>.self)
                let q1 = block.loadUnaligned(fromByteOffset: 32 + 32 * h, as: SIMD8<UInt16>.self)
                for j in 0..<4 {
                    let r = 4 * h + j, g = 16 * b + 2 * r
                    let shift = UInt16(2 * j)
                    let w0 = splitPairs((q0 &>> shift) & 0x0303), w1 = splitPairs((q1 &>> shift) & 0x0303)
                    let s0 = Int32(block.load(fromByteOffset: 2 * r, as: UInt8.self))
                    let s1 = Int32(block.load(fromByteOffset: 2 * r + 1, as: UInt8.self))
                    @inline(__always)
                    func term(_ x: Q8Row) -> Float {
                        let isum = (s0 & 0x0F) &* horizontalSum(x.products(split: w0, group: g)) &+ (s1 & 0x0F) &* horizontalSum(x.products(split: w1, group: g + 1))
                        let msum = (s0 >> 4) &* x.sums[g] &+ (s1 >> 4) &* x.sums[g + 1]
                        return x.scales[8 * b + r] * (d * Float(isum) - dmin * Float(msum))
                    }
                    sumf += SIMD4(term(x.0), term(x.1), term(x.2), term(x.3))
                }
            }
            acc += sumf
        }
        return acc
    }
}

extension Q3_K {
    /// `dot` for four tokens at once (3-bit values and scales unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc = SIMD4<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let m0 = block.loadUnaligned(fromByteOffset: 0, as: SIMD8<UInt16>.self)
            let m1 = block.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt16>.self)
            var sumf = SIMD4<Float>()
            for h in 0..<2 {
                let q0 = block.loadUnaligned(fromByteOffset: 32 + 32 * h, as: SIMD8<UInt16>.self)
                let q1 = block.loadUnaligned(fromByteOffset: 48 + 32 * h, as: SIMD8<UInt16>.self)
                for j in 0..<4 {
                    let r = 4 * h + j, g = 16 * b + 2 * r
                    let shift = UInt16(2 * j), bit = UInt16(4 * h + j)
                    let w0 = splitPairs(((q0 &>> shift) & 0x0303) | (((m0 &>> bit) & 0x0101) &<< 2))
                    let w1 = splitPairs(((q1 &>> shift) & 0x0303) | (((m1 &>> bit) & 0x0101) &<< 2))
                    let sc0 = scale(block, 2 * r), sc1 = scale(block, 2 * r + 1)
                    @inline(__always)
                    func term(_ x: Q8Row) -> Float {
                        let dot0 = horizontalSum(x.products(split: w0, group: g)) &- 4 &* x.sums[g]
                        let dot1 = horizontalSum(x.products(split: w1, group: g + 1)) &- 4 &* x.sums[g + 1]
                        return x.scales[8 * b + r] * Float(sc0 &* dot0 &+ sc1 &* dot1)
                    }
                    sumf += SIMD4(term(x.0), term(x.1), term(x.2), term(x.3))
                }
            }
            acc += x.0.scaleF16(block, 108) * sumf
        }
        return acc
    }
}
