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

/// Spreads the 32 fifth bits of a Q5 block over 32 bytes (0x10 where the bit is set), 8 bits per table entry.
enum FifthBits {
    static let table: [UInt64] = (0..<256).map { (bits: Int) -> UInt64 in
        var spread: UInt64 = 0
        for k in 0..<8 where (bits >> k) & 1 == 1 { spread |= UInt64(0x10) << UInt64(8 * k) }
        return spread
    }

    /// Bytes for elements 0..<16 and 16..<32.
    @inline(__always)
    static func expand(_ qh: UInt32, _ table: UnsafePointer<UInt64>) -> (SIMD8<UInt16>, SIMD8<UInt16>) {
        let low = SIMD2<UInt64>(table[Int(qh & 0xFF)], table[Int((qh >> 8) & 0xFF)])
        let high = SIMD2<UInt64>(table[Int((qh >> 16) & 0xFF)], table[Int(qh >> 24)])
        return (unsafeBitCast(low, to: SIMD8<UInt16>.self), unsafeBitCast(high, to: SIMD8<UInt16>.self))
    }
}

extension Q5_0 {
    /// Fused dot with Q8 activations: sum_b d_w d_x (q·a) - 16 d_w (d_x sum a) with q in 0...31 (pair sums < 2^16).
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        FifthBits.table.withUnsafeBufferPointer { table in
            var acc = SIMD4<Float>()
            var offset: Float = 0
            for b in 0..<blocks {
                let block = row + b * blockBytes
                let (h0, h1) = FifthBits.expand(UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self)), table.baseAddress!)
                let packed = block.loadUnaligned(fromByteOffset: 6, as: SIMD8<UInt16>.self)
                let p = x.products(unsignedPairs: (packed & 0x0F0F) | h0, group: 2 * b)
                    &+ x.products(unsignedPairs: ((packed &>> 4) & 0x0F0F) | h1, group: 2 * b + 1)
                let d = x.scaleF16(block, 0)
                acc += pairSumsAsFloat(p) * (d * x.scales[b])
                offset += d * x.scaledSums[b]
            }
            return acc.sum() - 16 * offset
        }
    }
}

extension Q5_1 {
    /// Fused dot with Q8 activations: sum_b d_w d_x (q·a) + m_w (d_x sum a).
    @inline(__always)
    public static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        FifthBits.table.withUnsafeBufferPointer { table in
            var acc = SIMD4<Float>()
            var offset: Float = 0
            for b in 0..<blocks {
                let block = row + b * blockBytes
                let (h0, h1) = FifthBits.expand(UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4, as: UInt32.self)), table.baseAddress!)
                let packed = block.loadUnaligned(fromByteOffset: 8, as: SIMD8<UInt16>.self)
                let p = x.products(unsignedPairs: (packed & 0x0F0F) | h0, group: 2 * b)
                    &+ x.products(unsignedPairs: ((packed &>> 4) & 0x0F0F) | h1, group: 2 * b + 1)
                acc += pairSumsAsFloat(p) * (x.scaleF16(block, 0) * x.scales[b])
                offset += x.scaleF16(block, 2) * x.scaledSums[b]
            }
            return acc.sum() + offset
        }
    }
}

extension Q5_0 {
    /// `dot` for four tokens at once (5-bit values unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        FifthBits.table.withUnsafeBufferPointer { table in
            var acc0 = SIMD4<Float>(), acc1 = SIMD4<Float>(), acc2 = SIMD4<Float>(), acc3 = SIMD4<Float>()
            var offset = SIMD4<Float>()
            for b in 0..<blocks {
                let block = row + b * blockBytes
                let (h0, h1) = FifthBits.expand(UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self)), table.baseAddress!)
                let packed = block.loadUnaligned(fromByteOffset: 6, as: SIMD8<UInt16>.self)
                let low = splitPairs((packed & 0x0F0F) | h0), high = splitPairs(((packed &>> 4) & 0x0F0F) | h1)
                let d = x.0.scaleF16(block, 0)
                acc0 += pairSumsAsFloat(x.0.products(split: low, group: 2 * b) &+ x.0.products(split: high, group: 2 * b + 1)) * (d * x.0.scales[b])
                acc1 += pairSumsAsFloat(x.1.products(split: low, group: 2 * b) &+ x.1.products(split: high, group: 2 * b + 1)) * (d * x.1.scales[b])
                acc2 += pairSumsAsFloat(x.2.products(split: low, group: 2 * b) &+ x.2.products(split: high, group: 2 * b + 1)) * (d * x.2.scales[b])
                acc3 += pairSumsAsFloat(x.3.products(split: low, group: 2 * b) &+ x.3.products(split: high, group: 2 * b + 1)) * (d * x.3.scales[b])
                offset += d * SIMD4(x.0.scaledSums[b], x.1.scaledSums[b], x.2.scaledSums[b], x.3.scaledSums[b])
            }
            return SIMD4(acc0.sum(), acc1.sum(), acc2.sum(), acc3.sum()) - 16 * offset
        }
    }
}

extension Q5_1 {
    /// `dot` for four tokens at once (5-bit values unpacked once), bit for bit the same per token.
    @inline(__always)
    public static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        FifthBits.table.withUnsafeBufferPointer { table in
            var acc0 = SIMD4<Float>(), acc1 = SIMD4<Float>(), acc2 = SIMD4<Float>(), acc3 = SIMD4<Float>()
            var offset = SIMD4<Float>()
            for b in 0..<blocks {
                let block = row + b * blockBytes
                let (h0, h1) = FifthBits.expand(UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4, as: UInt32.self)), table.baseAddress!)
                let packed = block.loadUnaligned(fromByteOffset: 8, as: SIMD8<UInt16>.self)
                let low = splitPairs((packed & 0x0F0F) | h0), high = splitPairs(((packed &>> 4) & 0x0F0F) | h1)
                let d = x.0.scaleF16(block, 0), m = x.0.scaleF16(block, 2)
                acc0 += pairSumsAsFloat(x.0.products(split: low, group: 2 * b) &+ x.0.products(split: high, group: 2 * b + 1)) * (d * x.0.scales[b])
                acc1 += pairSumsAsFloat(x.1.products(split: low, group: 2 * b) &+ x.1.products(split: high, group: 2 * b + 1)) * (d * x.1.scales[b])
                acc2 += pairSumsAsFloat(x.2.products(split: low, group: 2 * b) &+ x.2.products(split: high, group: 2 * b + 1)) * (d * x.2.scales[b])
                acc3 += pairSumsAsFloat(x.3.products(split: low, group: 2 * b) &+ x.3.products(split: high, group: 2 * b + 1)) * (d * x.3.scales[b])
                offset += m * SIMD4(x.0.scaledSums[b], x.1.scaledSums[b], x.2.scaledSums[b], x.3.scaledSums[b])
            }
            return SIMD4(acc0.sum(), acc1.sum(), acc2.sum(), acc3.sum()) + offset
        }
    }
}
