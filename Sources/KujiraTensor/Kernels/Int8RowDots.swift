import CKujiraKernels

/// Dot products and scaled accumulation over int8 rows with one Float scale per group of values — the inner loops
/// of the 8-bit KV cache (`--kv-bits 8`): the C kernels with AVX2 (`vpmovsxbd` + `vcvtdq2ps` + FMA), else the Swift
/// ones below (their references).
public enum Int8RowDots {
    /// Σ_g scales[g] · Σ_{i in group g} q[i] · codes[i], over `count` values (a multiple of `groupSize`).
    public static func dot(_ q: UnsafePointer<Float>, _ codes: UnsafePointer<Int8>, scales: UnsafePointer<Float>,
                           groupSize: Int, count: Int) -> Float {
        if KernelISA.floatKernels { return kujira_int8_dot(q, codes, scales, groupSize, count) }
        return swiftDot(q, codes, scales: scales, groupSize: groupSize, count: count)
    }

    /// out[i] += weight · scales[i / groupSize] · codes[i] for i < count (a multiple of `groupSize`).
    public static func addScaled(_ codes: UnsafePointer<Int8>, scales: UnsafePointer<Float>, groupSize: Int, count: Int,
                                 weight: Float, into out: UnsafeMutablePointer<Float>) {
        if KernelISA.floatKernels { return kujira_int8_add_scaled(codes, scales, groupSize, count, weight, out) }
        swiftAddScaled(codes, scales: scales, groupSize: groupSize, count: count, weight: weight, into: out)
    }

    /// `dot` in Swift SIMD code (reference of `kujira_int8_dot`).
    @inline(never)
    static func swiftDot(_ q: UnsafePointer<Float>, _ codes: UnsafePointer<Int8>, scales: UnsafePointer<Float>,
                           groupSize: Int, count: Int) -> Float {
        var total: Float = 0
        var start = 0, g = 0
        let qr = UnsafeRawPointer(q), cr = UnsafeRawPointer(codes)
        while start < count {
            var acc = SIMD8<Float>()
            var i = start
            let end = start + groupSize
            while i + 8 <= end {
                let c = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: cr.loadUnaligned(fromByteOffset: i, as: SIMD8<Int8>.self)))
                acc.addProduct(c, qr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self))
                i += 8
            }
            var sum = acc.sum()
            while i < end { sum += q[i] * Float(codes[i]); i += 1 }
            total += sum * scales[g]
            start = end
            g += 1
        }
        return total
    }

    /// `addScaled` in Swift SIMD code (reference of `kujira_int8_add_scaled`).
    @inline(never)
    static func swiftAddScaled(_ codes: UnsafePointer<Int8>, scales: UnsafePointer<Float>, groupSize: Int, count: Int,
                                 weight: Float, into out: UnsafeMutablePointer<Float>) {
        var start = 0, g = 0
        let cr = UnsafeRawPointer(codes), or = UnsafeMutableRawPointer(out)
        while start < count {
            let a = weight * scales[g]
            let factor = SIMD8<Float>(repeating: a)
            var i = start
            let end = start + groupSize
            while i + 8 <= end {
                let c = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: cr.loadUnaligned(fromByteOffset: i, as: SIMD8<Int8>.self)))
                var o = or.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                o.addProduct(c, factor)
                or.storeBytes(of: o, toByteOffset: 4 * i, as: SIMD8<Float>.self)
                i += 8
            }
            while i < end { out[i] += a * Float(codes[i]); i += 1 }
            start = end
            g += 1
        }
    }
}
