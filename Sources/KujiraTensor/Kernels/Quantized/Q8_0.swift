/// GGML Q8_0: 32 weights per 34-byte block, `w = d * q`.
///
/// Layout: `d: f16`, `qs: [32] i8`.
public enum Q8_0 {
    public static let blockBytes = 34

    /// Reference dequantizer of one block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0)
        for j in 0..<32 {
            out[j] = Float(block.load(fromByteOffset: 2 + j, as: Int8.self)) * d
        }
    }
}

extension Q8_0 {
    /// Fused dot with Q8 activations: sum_b d_w d_x (q·a); each int16 lane holds two products (≤ 32512),
    /// pair sums of the two halves stay below 2^17, so the float conversion is exact.
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc = SIMD4<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let low = x.products(signed: block.loadUnaligned(fromByteOffset: 2, as: SIMD16<Int8>.self), group: 2 * b)
            let high = x.products(signed: block.loadUnaligned(fromByteOffset: 18, as: SIMD16<Int8>.self), group: 2 * b + 1)
            acc += (pairSumsAsFloat(low) + pairSumsAsFloat(high)) * (scaleF16(block, 0) * x.scales[b])
        }
        return acc.sum()
    }
}

extension Q8_0 {
    /// `dot` for four tokens at once, bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc0 = SIMD4<Float>(), acc1 = SIMD4<Float>(), acc2 = SIMD4<Float>(), acc3 = SIMD4<Float>()
        @inline(__always)
        func products(_ x: Q8Row, _ w: (SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>), _ b: Int) -> SIMD4<Float> {
            pairSumsAsFloat(w.0 &* x.lanes[4 * b] &+ w.1 &* x.lanes[4 * b + 1])
                + pairSumsAsFloat(w.2 &* x.lanes[4 * b + 2] &+ w.3 &* x.lanes[4 * b + 3])
        }
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let low = block.loadUnaligned(fromByteOffset: 2, as: SIMD8<Int16>.self)
            let high = block.loadUnaligned(fromByteOffset: 18, as: SIMD8<Int16>.self)
            let w = ((low &<< 8) &>> 8, low &>> 8, (high &<< 8) &>> 8, high &>> 8)
            let d = scaleF16(block, 0)
            acc0 += products(x.0, w, b) * (d * x.0.scales[b])
            acc1 += products(x.1, w, b) * (d * x.1.scales[b])
            acc2 += products(x.2, w, b) * (d * x.2.scales[b])
            acc3 += products(x.3, w, b) * (d * x.3.scales[b])
        }
        return SIMD4(acc0.sum(), acc1.sum(), acc2.sum(), acc3.sum())
    }
}
