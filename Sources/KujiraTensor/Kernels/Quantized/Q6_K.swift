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
    /// Run `r` (values 32r..<32r+32) of a super-block as two 16-lane vectors matching `Q8Row.blockLanes`,
    /// with the offset and the two 16-value scales applied in int16: `(u - 32)·scale`, |·| ≤ 32·128.
    /// Each 16-byte half is paired with itself shifted by a byte before the bits are extracted (see
    /// `unpackSignedBytes256` for why the regrouping comes first).
    @inline(__always)
    static func scaledRun(_ block: UnsafeRawPointer, _ r: Int) -> (SIMD16<Int16>, SIMD16<Int16>) {
        let h = r >> 2, j = r & 3
        let lowShift = UInt16(4 * (j >> 1)), highShift = UInt16(2 * j)
        @inline(__always)
        func group(_ half: Int) -> SIMD16<Int16> {
            let low = block.loadUnaligned(fromByteOffset: 64 * h + 32 * (j & 1) + 16 * half, as: SIMD8<UInt16>.self)
            let high = block.loadUnaligned(fromByteOffset: 128 + 32 * h + 16 * half, as: SIMD8<UInt16>.self)
            let lowPairs = SIMD16<UInt16>(lowHalf: low, highHalf: low &>> 8), highPairs = SIMD16<UInt16>(lowHalf: high, highHalf: high &>> 8)
            let u = ((lowPairs &>> lowShift) & 0x000F) | (((highPairs &>> highShift) & 0x0003) &<< 4)
            let scale = Int16(block.load(fromByteOffset: 192 + 2 * r + half, as: Int8.self))
            return (unsafeBitCast(u, to: SIMD16<Int16>.self) &- 32) &* SIMD16(repeating: scale)
        }
        return (group(0), group(1))
    }

    /// Fused dot with Q8 activations: per run of 32, (d·d_x) times the exact integer Σ scale·(u − 32)·a
    /// (256-bit products; every int32 lane ≤ 4·4096·127 < 2^22, so the float conversion is exact).
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let d = x.scaleF16(block, 208)
            for r in 0..<8 {
                acc.addProduct(x.blockDot(scaledRun(block, r), block: 8 * b + r), x.blockScale(8 * b + r, times: d))
            }
        }
        return treeSum(acc)
    }

    /// `dot` for four tokens at once (6-bit values and scales unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let d = x.0.scaleF16(block, 208)
            let dw = SIMD8(repeating: d)
            for r in 0..<8 {
                let w = scaledRun(block, r), a = 8 * b + r
                acc0.addProduct(x.0.blockDot(w, block: a), dw * x.0.scaleVectors[a])
                acc1.addProduct(x.1.blockDot(w, block: a), dw * x.1.scaleVectors[a])
                acc2.addProduct(x.2.blockDot(w, block: a), dw * x.2.scaleVectors[a])
                acc3.addProduct(x.3.blockDot(w, block: a), dw * x.3.scaleVectors[a])
            }
        }
        return SIMD4(treeSum(acc0), treeSum(acc1), treeSum(acc2), treeSum(acc3))
    }
}
