/// GGML Q6_K: 256 weights per 210-byte super-block, 16 sub-blocks of 16 with signed 8-bit scales.
///
/// Layout: `ql: [128] u8`, `qh: [64] u8`, `scales: [16] i8`, `d: f16`. In half `h` (128 weights),
/// element `r` has low nibble `(ql[h*64 + r%64] >> 4(r/64)) & 15` and high two bits
/// `(qh[h*32 + r%32] >> 2(r/32)) & 3`; `w = (d * scale[e/16]) * (q - 32)`.
public enum Q6_K {
    public static let blockBytes = 210

    /// Reference dequantizer of one super-block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 208)
        for e in 0..<256 {
            let h = e >> 7, r = e & 127
            let low = (block.load(fromByteOffset: h * 64 + (r & 63), as: UInt8.self) >> UInt8(4 * (r >> 6))) & 0x0F
            let high = (block.load(fromByteOffset: 128 + h * 32 + (r & 31), as: UInt8.self) >> UInt8(2 * (r >> 5))) & 0x03
            let scale = block.load(fromByteOffset: 192 + (e >> 4), as: Int8.self)
            out[e] = (d * Float(scale)) * Float(Int(low | high << 4) - 32)
        }
    }
}

extension Q6_K {
    /// Fused dot with Q8 activations: q = u - 32 with u in 0...63, so (q·a) = (u·a) - 32 sum(a) per 16-group.
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let block = row + b * blockBytes
            var sumf: Float = 0
            for h in 0..<2 {
                let high0 = block.loadUnaligned(fromByteOffset: 128 + 32 * h, as: SIMD8<UInt16>.self)
                let high1 = block.loadUnaligned(fromByteOffset: 144 + 32 * h, as: SIMD8<UInt16>.self)
                for j in 0..<4 {
                    let lowOffset = 64 * h + 32 * (j & 1), lowShift = UInt16(4 * (j >> 1)), highShift = UInt16(2 * j)
                    let u0 = ((block.loadUnaligned(fromByteOffset: lowOffset, as: SIMD8<UInt16>.self) &>> lowShift) & 0x0F0F)
                        | (((high0 &>> highShift) & 0x0303) &<< 4)
                    let u1 = ((block.loadUnaligned(fromByteOffset: lowOffset + 16, as: SIMD8<UInt16>.self) &>> lowShift) & 0x0F0F)
                        | (((high1 &>> highShift) & 0x0303) &<< 4)
                    let r = 4 * h + j, g = 16 * b + 2 * r
                    let dot0 = horizontalSum(x.products(unsignedPairs: u0, group: g)) &- 32 &* x.sums[g]
                    let dot1 = horizontalSum(x.products(unsignedPairs: u1, group: g + 1)) &- 32 &* x.sums[g + 1]
                    let s0 = Int32(block.load(fromByteOffset: 192 + 2 * r, as: Int8.self))
                    let s1 = Int32(block.load(fromByteOffset: 193 + 2 * r, as: Int8.self))
                    sumf += x.scales[8 * b + r] * Float(s0 &* dot0 &+ s1 &* dot1)
                }
            }
            acc += x.scaleF16(block, 208) * sumf
        }
        return acc
    }
}

extension Q6_K {
    /// `dot` for four tokens at once (6-bit values and scales unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc = SIMD4<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            var sumf = SIMD4<Float>()
            for h in 0..<2 {
                let high0 = block.loadUnaligned(fromByteOffset: 128 + 32 * h, as: SIMD8<UInt16>.self)
                let high1 = block.loadUnaligned(fromByteOffset: 144 + 32 * h, as: SIMD8<UInt16>.self)
                for j in 0..<4 {
                    let lowOffset = 64 * h + 32 * (j & 1), lowShift = UInt16(4 * (j >> 1)), highShift = UInt16(2 * j)
                    let u0 = ((block.loadUnaligned(fromByteOffset: lowOffset, as: SIMD8<UInt16>.self) &>> lowShift) & 0x0F0F)
                        | (((high0 &>> highShift) & 0x0303) &<< 4)
                    let u1 = ((block.loadUnaligned(fromByteOffset: lowOffset + 16, as: SIMD8<UInt16>.self) &>> lowShift) & 0x0F0F)
                        | (((high1 &>> highShift) & 0x0303) &<< 4)
                    let w0 = (unsafeBitCast(u0 & 0x00FF, to: SIMD8<Int16>.self), unsafeBitCast(u0 &>> 8, to: SIMD8<Int16>.self))
                    let w1 = (unsafeBitCast(u1 & 0x00FF, to: SIMD8<Int16>.self), unsafeBitCast(u1 &>> 8, to: SIMD8<Int16>.self))
                    let r = 4 * h + j, g = 16 * b + 2 * r
                    let s0 = Int32(block.load(fromByteOffset: 192 + 2 * r, as: Int8.self))
                    let s1 = Int32(block.load(fromByteOffset: 193 + 2 * r, as: Int8.self))
                    @inline(__always)
                    func term(_ x: Q8Row) -> Float {
                        let dot0 = horizontalSum(w0.0 &* x.lanes[2 * g] &+ w0.1 &* x.lanes[2 * g + 1]) &- 32 &* x.sums[g]
                        let dot1 = horizontalSum(w1.0 &* x.lanes[2 * g + 2] &+ w1.1 &* x.lanes[2 * g + 3]) &- 32 &* x.sums[g + 1]
                        return x.scales[8 * b + r] * Float(s0 &* dot0 &+ s1 &* dot1)
                    }
                    sumf += SIMD4(term(x.0), term(x.1), term(x.2), term(x.3))
                }
            }
            acc += x.0.scaleF16(block, 208) * sumf
        }
        return acc
    }
}
