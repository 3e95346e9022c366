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

/// A Q8_0 block's 32 signed bytes as two 16-lane vectors matching `Q8Row.blockLanes`: [even | odd] values
/// of 0..<16 and of 16..<32. Each 16-byte half is first paired with itself shifted by a byte (one
/// `vinserti128`) and then sign-extended in place, like the nibbles of `unpackNibbles256`: regrouping after
/// the sign extension instead made LLVM fold the shuffle into `multiplyAddPairs`' operands and miss `vpmaddwd`.
@inline(__always)
func unpackSignedBytes256(_ block: UnsafeRawPointer) -> (SIMD16<Int16>, SIMD16<Int16>) {
    let v0 = block.loadUnaligned(as: SIMD8<UInt16>.self), v1 = block.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt16>.self)
    let q0 = unsafeBitCast(SIMD16<UInt16>(lowHalf: v0, highHalf: v0 &>> 8), to: SIMD16<Int16>.self)
    let q1 = unsafeBitCast(SIMD16<UInt16>(lowHalf: v1, highHalf: v1 &>> 8), to: SIMD16<Int16>.self)
    return ((q0 &<< 8) &>> 8, (q1 &<< 8) &>> 8)
}

extension Q8_0 {
    /// Fused dot with Q8 activations: sum_b d_w d_x (q·a). Each int32 lane of the block product (`vpmaddwd`)
    /// sums four products (|·| ≤ 4·128·127 < 2^17), so the float conversion is exact.
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let w = x.opaque(unpackSignedBytes256(block + 2))
            acc.addProduct(x.blockDot(w, block: b), x.blockScale(b, times: x.scaleF16(block, 0)))
        }
        return treeSum(acc)
    }

    /// `dot` for four tokens at once, bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let w = x.0.opaque(unpackSignedBytes256(block + 2))
            let d = x.0.scaleF16(block, 0)
            acc0.addProduct(x.0.blockDot(w, block: b), x.0.blockScale(b, times: d))
            acc1.addProduct(x.1.blockDot(w, block: b), x.1.blockScale(b, times: d))
            acc2.addProduct(x.2.blockDot(w, block: b), x.2.blockScale(b, times: d))
            acc3.addProduct(x.3.blockDot(w, block: b), x.3.blockScale(b, times: d))
        }
        return SIMD4(treeSum(acc0), treeSum(acc1), treeSum(acc2), treeSum(acc3))
    }
}
