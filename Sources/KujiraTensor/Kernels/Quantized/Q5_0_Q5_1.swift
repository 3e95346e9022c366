/// GGML Q5_0: 32 weights per 22-byte block, `w = d * (q - 16)` with 5-bit `q`.
///
/// Layout: `d: f16`, `qh: u32` (little-endian; bit `j` is the 5th bit of element `j`), `qs: [16] u8`
/// (low nibbles: element `j < 16` low nibble of `qs[j]`, element `j + 16` high nibble).
public enum Q5_0 {
    public static let blockBytes = 22

    /// Reference dequantizer of one block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0)
        let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        let qs = block + 6
        for j in 0..<16 {
            let byte = qs.load(fromByteOffset: j, as: UInt8.self)
            let lo = Int(byte & 0x0F) | Int((qh >> UInt32(j)) & 1) << 4
            let hi = Int(byte >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
            out[j] = d * Float(lo - 16)
            out[j + 16] = d * Float(hi - 16)
        }
    }
}

/// GGML Q5_1: 32 weights per 24-byte block, `w = d * q + m` with unsigned 5-bit `q`.
///
/// Layout: `d: f16`, `m: f16`, `qh: u32`, `qs: [16] u8` (bit order as Q5_0).
public enum Q5_1 {
    public static let blockBytes = 24

    /// Reference dequantizer of one block.
    public static func dequantize(_ block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let d = loadF16(block, 0), m = loadF16(block, 2)
        let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let qs = block + 8
        for j in 0..<16 {
            let byte = qs.load(fromByteOffset: j, as: UInt8.self)
            let lo = UInt32(byte & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
            let hi = UInt32(byte >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
            out[j] = d * Float(lo) + m
            out[j + 16] = d * Float(hi) + m
        }
    }
}

/// A Q5 block's 32 values (low nibbles at `qs`, fifth bits in `qh`) as two 16-lane vectors matching
/// `Q8Row.blockLanes`: `unpackNibbles256` or-ed with the fifth bits (16). The bits are picked in vector lanes
/// from 16 copies of the 16-bit half of `qh` (lane i < 8 is element 2i, lane 8 + i element 2i + 1): masking bit k
/// leaves 0 or 2^k, times 2^(15−k) gives 0 or 2^15, shifted right by 11 gives 0 or 16. (Spreading the bits
/// with a byte table, as the 128-bit kernel did, made LLVM merge its shuffles with the nibbles' into ~50 blends.)
@inline(__always)
func unpackQ5Block256(_ qs: UnsafeRawPointer, qh: UInt32) -> (SIMD16<Int16>, SIMD16<Int16>) {
    let bits = UInt32(littleEndian: qh)
    let mask = SIMD16<UInt16>(1 << 0, 1 << 2, 1 << 4, 1 << 6, 1 << 8, 1 << 10, 1 << 12, 1 << 14,
                              1 << 1, 1 << 3, 1 << 5, 1 << 7, 1 << 9, 1 << 11, 1 << 13, 1 << 15)
    let spread = SIMD16<UInt16>(1 << 15, 1 << 13, 1 << 11, 1 << 9, 1 << 7, 1 << 5, 1 << 3, 1 << 1,
                                1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1 << 0)
    let high0 = ((SIMD16(repeating: UInt16(truncatingIfNeeded: bits)) & mask) &* spread) &>> 11
    let high1 = ((SIMD16(repeating: UInt16(truncatingIfNeeded: bits >> 16)) & mask) &* spread) &>> 11
    let q = unpackNibbles256(qs.loadUnaligned(as: SIMD8<UInt16>.self))
    return (q.0 | unsafeBitCast(high0, to: SIMD16<Int16>.self), q.1 | unsafeBitCast(high1, to: SIMD16<Int16>.self))
}

extension Q5_0 {
    /// Fused dot with Q8 activations: sum_b d_w d_x (q·a) - 16 d_w (d_x sum a) with q in 0...31; 256-bit
    /// block products as Q4_0's.
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        var offset: Float = 0
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let q = x.opaque(unpackQ5Block256(block + 6, qh: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
            let d = x.scaleF16(block, 0)
            acc.addProduct(x.blockDot(q, block: b), x.blockScale(b, times: d))
            offset = offset.addingProduct(d, x.scaledSums[b])
        }
        return treeSum(acc) - 16 * offset
    }

    /// `dot` for four tokens at once (5-bit values unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
        var offset = SIMD4<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let q = x.0.opaque(unpackQ5Block256(block + 6, qh: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
            let d = x.0.scaleF16(block, 0)
            acc0.addProduct(x.0.blockDot(q, block: b), x.0.blockScale(b, times: d))
            acc1.addProduct(x.1.blockDot(q, block: b), x.1.blockScale(b, times: d))
            acc2.addProduct(x.2.blockDot(q, block: b), x.2.blockScale(b, times: d))
            acc3.addProduct(x.3.blockDot(q, block: b), x.3.blockScale(b, times: d))
            offset.addProduct(SIMD4(repeating: d), SIMD4(x.0.scaledSums[b], x.1.scaledSums[b], x.2.scaledSums[b], x.3.scaledSums[b]))
        }
        return SIMD4(treeSum(acc0), treeSum(acc1), treeSum(acc2), treeSum(acc3)) - 16 * offset
    }
}

extension Q5_1 {
    /// Fused dot with Q8 activations: sum_b d_w d_x (q·a) + m_w (d_x sum a); 256-bit block products.
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        var offset: Float = 0
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let q = x.opaque(unpackQ5Block256(block + 8, qh: block.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
            acc.addProduct(x.blockDot(q, block: b), x.blockScale(b, times: x.scaleF16(block, 0)))
            offset = offset.addingProduct(x.scaleF16(block, 2), x.scaledSums[b])
        }
        return treeSum(acc) + offset
    }

    /// `dot` for four tokens at once (5-bit values unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
        var offset = SIMD4<Float>()
        for b in 0..<blocks {
            let block = row + b * blockBytes
            let q = x.0.opaque(unpackQ5Block256(block + 8, qh: block.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
            let d = x.0.scaleF16(block, 0), m = x.0.scaleF16(block, 2)
            acc0.addProduct(x.0.blockDot(q, block: b), x.0.blockScale(b, times: d))
            acc1.addProduct(x.1.blockDot(q, block: b), x.1.blockScale(b, times: d))
            acc2.addProduct(x.2.blockDot(q, block: b), x.2.blockScale(b, times: d))
            acc3.addProduct(x.3.blockDot(q, block: b), x.3.blockScale(b, times: d))
            offset.addProduct(SIMD4(repeating: m), SIMD4(x.0.scaledSums[b], x.1.scaledSums[b], x.2.scaledSums[b], x.3.scaledSums[b]))
        }
        return SIMD4(treeSum(acc0), treeSum(acc1), treeSum(acc2), treeSum(acc3)) + offset
    }
}
