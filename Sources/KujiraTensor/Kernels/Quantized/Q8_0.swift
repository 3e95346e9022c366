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
