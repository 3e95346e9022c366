import CKujiraKernels

/// Float activations rearranged for the fused F16/BF16/FP8 dots: in every chunk of 16 values the
/// `phases` interleaved sub-sequences are stored one after another (2 phases: evens then odds; 4 phases:
/// 0,4,8,12 then 1,5,9,13, ...), matching how those formats' bytes unpack from 32-bit lanes.
struct PhaseSplitActivations {
    let storage: OwnedBytes
    let values: UnsafeMutablePointer<Float>

    /// Rearranges `n` tokens of `cols` values (chunks restart at every token; a tail under 16 stays in order),
    /// into `reusing` when it holds n · cols floats (no allocation), else into a new buffer.
    init(_ x: UnsafeBufferPointer<Float>, n: Int, cols: Int, phases: Int, reusing: OwnedBytes? = nil) {
        storage = reusing.flatMap { $0.count >= n * cols * 4 ? $0 : nil } ?? OwnedBytes(count: n * cols * 4)
        values = storage.pointer.bindMemory(to: Float.self, capacity: n * cols)
        let chunks = cols / 16
        let perPhase = 16 / phases
        for t in 0..<n {
            let source = x.baseAddress! + t * cols, target = values + t * cols
            for c in 0..<chunks {
                for i in 0..<16 {
                    target[16 * c + (i % phases) * perPhase + i / phases] = source[16 * c + i]
                }
            }
            for i in (16 * chunks)..<cols { target[i] = source[i] }
        }
    }
}

/// Fused dots of F32/F16/BF16/FP8 weight rows with Float activations (weights decoded in registers).
enum FloatDots {
    /// F32 row · x: 16 lanes, two accumulators.
    @inline(__always)
    static func f32(_ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        KernelISA.floatKernels ? kujira_row_dot_f32(w, x, count) : swiftF32(w, x, count: count)
    }

    /// `f32` in Swift (reference of `kujira_row_dot_f32`).
    @inline(__always)
    static func swiftF32(_ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        let xp = UnsafeRawPointer(x)
        var i = 0
        while i + 32 <= count {
            acc0.addProduct(w.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self), xp.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self))
            acc1.addProduct(w.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<Float>.self), xp.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<Float>.self))
            i += 32
        }
        if i + 16 <= count {
            acc0.addProduct(w.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self), xp.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self))
            i += 16
        }
        var sum = (acc0 + acc1).sum()
        while i < count {
            sum += w.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) * x[i]
            i += 1
        }
        return sum
    }

    /// Two IEEE halves per 32-bit lane → Float bit patterns (exact, including subnormals, inf and NaN).
    @inline(__always)
    static func halfToFloat(_ h: SIMD8<UInt32>) -> SIMD8<Float> {
        let magnitude = unsafeBitCast((h & 0x7FFF) &<< 13, to: SIMD8<Float>.self) * 0x1p112
        // Exponent all ones (inf/NaN): force the Float exponent to all ones.
        let special = (((~h) & 0x7C00) &- 1) &>> 31
        let bits = magnitude.bitPattern(as: SIMD8<UInt32>.self) | ((h & 0x8000) &<< 16) | (0 &- special) & 0x7F80_0000
        return unsafeBitCast(bits, to: SIMD8<Float>.self)
    }

    /// F16 row · x, with x split in 2 phases per 16 values (`PhaseSplitActivations`).
    @inline(__always)
    static func f16(_ w: UnsafeRawPointer, _ xs: UnsafePointer<Float>, count: Int) -> Float {
        KernelISA.floatKernels ? kujira_row_dot_half(1, w, xs, count) : swiftF16(w, xs, count: count)
    }

    /// `f16` in Swift (reference of `kujira_row_dot_half`).
    @inline(__always)
    static func swiftF16(_ w: UnsafeRawPointer, _ xs: UnsafePointer<Float>, count: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        let xp = UnsafeRawPointer(xs)
        let chunks = count / 16
        for c in 0..<chunks {
            let v = w.loadUnaligned(fromByteOffset: 32 * c, as: SIMD8<UInt32>.self)
            acc0 += halfToFloat(v & 0xFFFF) * xp.loadUnaligned(fromByteOffset: 64 * c, as: SIMD8<Float>.self)
            acc1 += halfToFloat(v &>> 16) * xp.loadUnaligned(fromByteOffset: 64 * c + 32, as: SIMD8<Float>.self)
        }
        var sum = (acc0 + acc1).sum()
        for i in (16 * chunks)..<count {
            sum += FloatConversion.f16ToFloat(w.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) * xs[i]
        }
        return sum
    }

    /// Decodes an F16 or BF16 row into Floats in the 2-phase order of `PhaseSplitActivations` (exact).
    @inline(__always)
    static func decodeHalfRow(_ w: UnsafeRawPointer, isF16: Bool, count: Int, into out: UnsafeMutablePointer<Float>) {
        if KernelISA.floatKernels { return kujira_decode_half_row(isF16 ? 1 : 0, w, count, out) }
        swiftDecodeHalfRow(w, isF16: isF16, count: count, into: out)
    }

    /// `decodeHalfRow` in Swift (reference of `kujira_decode_half_row`).
    @inline(__always)
    static func swiftDecodeHalfRow(_ w: UnsafeRawPointer, isF16: Bool, count: Int, into out: UnsafeMutablePointer<Float>) {
        let raw = UnsafeMutableRawPointer(out)
        let chunks = count / 16
        for c in 0..<chunks {
            let v = w.loadUnaligned(fromByteOffset: 32 * c, as: SIMD8<UInt32>.self)
            let even = isF16 ? halfToFloat(v & 0xFFFF) : unsafeBitCast(v &<< 16, to: SIMD8<Float>.self)
            let odd = isF16 ? halfToFloat(v &>> 16) : unsafeBitCast(v & 0xFFFF_0000, to: SIMD8<Float>.self)
            raw.storeBytes(of: even, toByteOffset: 64 * c, as: SIMD8<Float>.self)
            raw.storeBytes(of: odd, toByteOffset: 64 * c + 32, as: SIMD8<Float>.self)
        }
        for i in (16 * chunks)..<count {
            let bits = w.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
            out[i] = isF16 ? FloatConversion.f16ToFloat(bits) : FloatConversion.bf16ToFloat(bits)
        }
    }

    /// A decoded (phase-split) row · x, accumulated exactly as `f16`/`bf16` do, so results match them bit for bit.
    @inline(__always)
    static func splitDecoded(_ w: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, count: Int) -> Float {
        KernelISA.floatKernels ? kujira_split_decoded_dot(w, xs, count) : swiftSplitDecoded(w, xs, count: count)
    }

    /// `splitDecoded` in Swift (reference of `kujira_split_decoded_dot`).
    @inline(__always)
    static func swiftSplitDecoded(_ w: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, count: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        let wp = UnsafeRawPointer(w), xp = UnsafeRawPointer(xs)
        let chunks = count / 16
        for c in 0..<chunks {
            acc0 += wp.loadUnaligned(fromByteOffset: 64 * c, as: SIMD8<Float>.self) * xp.loadUnaligned(fromByteOffset: 64 * c, as: SIMD8<Float>.self)
            acc1 += wp.loadUnaligned(fromByteOffset: 64 * c + 32, as: SIMD8<Float>.self) * xp.loadUnaligned(fromByteOffset: 64 * c + 32, as: SIMD8<Float>.self)
        }
        var sum = (acc0 + acc1).sum()
        for i in (16 * chunks)..<count { sum += w[i] * xs[i] }
        return sum
    }

    /// BF16 row · x, x split in 2 phases per 16 values.
    @inline(__always)
    static func bf16(_ w: UnsafeRawPointer, _ xs: UnsafePointer<Float>, count: Int) -> Float {
        KernelISA.floatKernels ? kujira_row_dot_half(0, w, xs, count) : swiftBF16(w, xs, count: count)
    }

    /// `bf16` in Swift (reference of `kujira_row_dot_half`).
    @inline(__always)
    static func swiftBF16(_ w: UnsafeRawPointer, _ xs: UnsafePointer<Float>, count: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        let xp = UnsafeRawPointer(xs)
        let chunks = count / 16
        for c in 0..<chunks {
            let v = w.loadUnaligned(fromByteOffset: 32 * c, as: SIMD8<UInt32>.self)
            acc0 += unsafeBitCast(v &<< 16, to: SIMD8<Float>.self) * xp.loadUnaligned(fromByteOffset: 64 * c, as: SIMD8<Float>.self)
            acc1 += unsafeBitCast(v & 0xFFFF_0000, to: SIMD8<Float>.self) * xp.loadUnaligned(fromByteOffset: 64 * c + 32, as: SIMD8<Float>.self)
        }
        var sum = (acc0 + acc1).sum()
        for i in (16 * chunks)..<count {
            sum += FloatConversion.bf16ToFloat(w.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) * xs[i]
        }
        return sum
    }

    /// FP8 (e4m3) values `start..<end` of a row · x (x split in 4 phases per 16; start, end multiples of 16
    /// except a final tail), without the block scale.
    ///
    /// Byte k of each 32-bit lane is element 4i+k; its sign and 7 magnitude bits are moved into a Float's sign
    /// and exponent/mantissa fields and scaled by 2^120 (exact). Chunks holding a NaN code (0x7F/0xFF) or a
    /// subnormal (exponent 0, which would make a subnormal Float operand) take the scalar path.
    @inline(__always)
    static func e4m3(_ w: UnsafeRawPointer, _ xs: UnsafePointer<Float>, start: Int, end: Int) -> Float {
        if KernelISA.floatKernels {
            return FloatConversion.f8e4m3Table.withUnsafeBufferPointer { kujira_e4m3_dot(w, xs, start, end, $0.baseAddress!) }
        }
        return swiftE4M3(w, xs, start: start, end: end)
    }

    /// `e4m3` in Swift (reference of `kujira_e4m3_dot`).
    @inline(__always)
    static func swiftE4M3(_ w: UnsafeRawPointer, _ xs: UnsafePointer<Float>, start: Int, end: Int) -> Float {
        var acc0 = SIMD4<Float>(), acc1 = SIMD4<Float>(), acc2 = SIMD4<Float>(), acc3 = SIMD4<Float>()
        let xp = UnsafeRawPointer(xs)
        var sum: Float = 0
        var i = start
        while i + 16 <= end {
            let v = w.loadUnaligned(fromByteOffset: i, as: SIMD4<UInt32>.self)
            // Zero-byte tests: `inverted` has a 0 byte where a NaN code was, `exponent` where a subnormal
            // (exponent 0) was; subnormal Float operands are slow on x86, and real weights rarely have them.
            let inverted = ~(v | 0x8080_8080), exponent = v & 0x7878_7878
            let special = ((inverted &- 0x0101_0101) & ~inverted | (exponent &- 0x0101_0101) & ~exponent) & 0x8080_8080
            if (special[0] | special[1] | special[2] | special[3]) != 0 {
                for k in 0..<16 { sum += FloatConversion.decodeF8E4M3(w.load(fromByteOffset: i + k, as: UInt8.self)) * xs[i + (k % 4) * 4 + k / 4] }
                i += 16
                continue
            }
            let f0 = unsafeBitCast(((v &<< 24) & 0x8000_0000) | ((v &<< 20) & 0x07F0_0000), to: SIMD4<Float>.self)
            let f1 = unsafeBitCast(((v &<< 16) & 0x8000_0000) | ((v &<< 12) & 0x07F0_0000), to: SIMD4<Float>.self)
            let f2 = unsafeBitCast(((v &<< 8) & 0x8000_0000) | ((v &<< 4) & 0x07F0_0000), to: SIMD4<Float>.self)
            let f3 = unsafeBitCast((v & 0x8000_0000) | ((v &>> 4) & 0x07F0_0000), to: SIMD4<Float>.self)
            acc0.addProduct((f0 * 0x1p120), xp.loadUnaligned(fromByteOffset: 4 * i, as: SIMD4<Float>.self))
            acc1.addProduct((f1 * 0x1p120), xp.loadUnaligned(fromByteOffset: 4 * i + 16, as: SIMD4<Float>.self))
            acc2.addProduct((f2 * 0x1p120), xp.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD4<Float>.self))
            acc3.addProduct((f3 * 0x1p120), xp.loadUnaligned(fromByteOffset: 4 * i + 48, as: SIMD4<Float>.self))
            i += 16
        }
        sum += ((acc0 + acc1) + (acc2 + acc3)).sum()
        while i < end {
            sum += FloatConversion.decodeF8E4M3(w.load(fromByteOffset: i, as: UInt8.self)) * xs[i]
            i += 1
        }
        return sum
    }
}

extension FloatDots {
    /// Whether a 16-byte FP8 chunk holds a NaN code or a subnormal, i.e. takes `e4m3`'s scalar path.
    @inline(__always)
    static func e4m3ChunkIsSpecial(_ w: UnsafeRawPointer, _ i: Int) -> Bool {
        for k in 0..<16 {
            let b = w.load(fromByteOffset: i + k, as: UInt8.self)
            if b & 0x7F == 0x7F || b & 0x78 == 0 { return true }
        }
        return false
    }

    /// Decodes an FP8 row into Floats in 4-phase order (tail in natural order) and marks the chunks `e4m3`
    /// would take its scalar path for.
    static func decodeE4M3Row(_ w: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>, special: UnsafeMutablePointer<Bool>) {
        guard KernelISA.floatKernels else { return swiftDecodeE4M3Row(w, count: count, into: out, special: special) }
        FloatConversion.f8e4m3Table.withUnsafeBufferPointer { table in
            kujira_decode_e4m3_row(w, count, table.baseAddress!, out, UnsafeMutableRawPointer(special).assumingMemoryBound(to: UInt8.self))
        }
    }

    /// `decodeE4M3Row` in Swift (reference of `kujira_decode_e4m3_row`).
    static func swiftDecodeE4M3Row(_ w: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>, special: UnsafeMutablePointer<Bool>) {
        FloatConversion.f8e4m3Table.withUnsafeBufferPointer { table in
            let chunks = count / 16
            for c in 0..<chunks {
                special[c] = e4m3ChunkIsSpecial(w, 16 * c)
                for k in 0..<16 { out[16 * c + (k % 4) * 4 + k / 4] = table[Int(w.load(fromByteOffset: 16 * c + k, as: UInt8.self))] }
            }
            for i in (16 * chunks)..<count { out[i] = table[Int(w.load(fromByteOffset: i, as: UInt8.self))] }
        }
    }

    /// `e4m3` on a row decoded by `decodeE4M3Row`: the same products added in the same order, so the result
    /// is bit for bit the same.
    @inline(__always)
    static func e4m3Decoded(_ w: UnsafePointer<Float>, _ special: UnsafePointer<Bool>, _ xs: UnsafePointer<Float>, start: Int, end: Int) -> Float {
        if KernelISA.floatKernels {
            return kujira_e4m3_decoded_dot(w, UnsafeRawPointer(special).assumingMemoryBound(to: UInt8.self), xs, start, end)
        }
        return swiftE4M3Decoded(w, special, xs, start: start, end: end)
    }

    /// `e4m3Decoded` in Swift (reference of `kujira_e4m3_decoded_dot`).
    @inline(__always)
    static func swiftE4M3Decoded(_ w: UnsafePointer<Float>, _ special: UnsafePointer<Bool>, _ xs: UnsafePointer<Float>, start: Int, end: Int) -> Float {
        var acc0 = SIMD4<Float>(), acc1 = SIMD4<Float>(), acc2 = SIMD4<Float>(), acc3 = SIMD4<Float>()
        let wp = UnsafeRawPointer(w), xp = UnsafeRawPointer(xs)
        var sum: Float = 0
        var i = start
        while i + 16 <= end {
            if special[i / 16] {
                for k in 0..<16 {
                    let position = i + (k % 4) * 4 + k / 4
                    sum += w[position] * xs[position]
                }
                i += 16
                continue
            }
            acc0.addProduct(wp.loadUnaligned(fromByteOffset: 4 * i, as: SIMD4<Float>.self), xp.loadUnaligned(fromByteOffset: 4 * i, as: SIMD4<Float>.self))
            acc1.addProduct(wp.loadUnaligned(fromByteOffset: 4 * i + 16, as: SIMD4<Float>.self), xp.loadUnaligned(fromByteOffset: 4 * i + 16, as: SIMD4<Float>.self))
            acc2.addProduct(wp.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD4<Float>.self), xp.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD4<Float>.self))
            acc3.addProduct(wp.loadUnaligned(fromByteOffset: 4 * i + 48, as: SIMD4<Float>.self), xp.loadUnaligned(fromByteOffset: 4 * i + 48, as: SIMD4<Float>.self))
            i += 16
        }
        sum += ((acc0 + acc1) + (acc2 + acc3)).sum()
        while i < end {
            sum += w[i] * xs[i]
            i += 1
        }
        return sum
    }
}

private extension SIMD8 where Scalar == Float {
    @inline(__always)
    func bitPattern(as _: SIMD8<UInt32>.Type) -> SIMD8<UInt32> { unsafeBitCast(self, to: SIMD8<UInt32>.self) }
}
