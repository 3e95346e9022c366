import CKujiraKernels

/// Rows of IEEE half floats — the 16-bit KV cache (`--kv-bits 16`, llama.cpp's default cache type): store, dot and
/// scaled accumulation, converted 8 values at a time (the C kernels' `vcvtps2ph` / `vcvtph2ps` with AVX2, else the Swift
/// ones below). Each has a plain reference below for the tests.
public enum HalfRows {
    /// out[i] = half(row[i]) (round to nearest even; beyond ±65504 becomes ±inf, as any f16 cache does).
    public static func store(_ row: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float16>) {
        if KernelISA.floatKernels {
            return kujira_half_store(row, count, UnsafeMutableRawPointer(out).assumingMemoryBound(to: UInt16.self))
        }
        swiftStore(row, count: count, into: out)
    }

    /// q (count,) · row (count,) with the half row widened to Float: 8 lanes with FMA, then the lane sum.
    public static func dot(_ q: UnsafePointer<Float>, _ row: UnsafePointer<Float16>, count: Int) -> Float {
        if KernelISA.floatKernels { return kujira_half_dot(q, UnsafeRawPointer(row).assumingMemoryBound(to: UInt16.self), count) }
        return swiftDot(q, row, count: count)
    }

    /// out (count,) += weight · row (count,).
    public static func addScaled(_ row: UnsafePointer<Float16>, count: Int, weight: Float, into out: UnsafeMutablePointer<Float>) {
        if KernelISA.floatKernels {
            return kujira_half_add_scaled(UnsafeRawPointer(row).assumingMemoryBound(to: UInt16.self), count, weight, out)
        }
        swiftAddScaled(row, count: count, weight: weight, into: out)
    }

    /// out[i] (+)= `dot`(q, row i) for `count` half rows of `n` values, `stride` halves apart (an attention row's scores):
    /// the bits of one `dot` per row; with AVX2 four rows at a time (`kujira_half_dot_rows`).
    public static func dots(_ q: UnsafePointer<Float>, rows: UnsafePointer<Float16>, stride: Int, count: Int, n: Int, into out: UnsafeMutablePointer<Float>,
                            adding: Bool) {
        if KernelISA.floatKernels {
            return kujira_half_dot_rows(q, UnsafeRawPointer(rows).assumingMemoryBound(to: UInt16.self), stride, count, n, out, adding ? 1 : 0)
        }
        for i in 0..<count {
            let value = swiftDot(q, rows + i * stride, count: n)
            out[i] = adding ? out[i] + value : value
        }
    }

    /// out (n,) += weights[i] · half row i for `count` rows `stride` halves apart, in order: the bits of one `addScaled` per
    /// row; with AVX2 `out` stays in registers across the rows (`kujira_half_add_scaled_rows`).
    public static func addScaledRows(_ rows: UnsafePointer<Float16>, stride: Int, weights: UnsafePointer<Float>, count: Int, n: Int,
                                     into out: UnsafeMutablePointer<Float>) {
        if KernelISA.floatKernels {
            return kujira_half_add_scaled_rows(UnsafeRawPointer(rows).assumingMemoryBound(to: UInt16.self), stride, weights, count, n, out)
        }
        for i in 0..<count { swiftAddScaled(rows + i * stride, count: n, weight: weights[i], into: out) }
    }

    /// `store` in Swift SIMD code (reference of `kujira_half_store`; the path without AVX2).
    @inline(never)
    static func swiftStore(_ row: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float16>) {
        let r = UnsafeRawPointer(row), o = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 8 <= count {
            o.storeBytes(of: SIMD8<Float16>(r.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)), toByteOffset: 2 * i, as: SIMD8<Float16>.self)
            i += 8
        }
        while i < count { out[i] = Float16(row[i]); i += 1 }
    }

    /// `dot` in Swift SIMD code (reference of `kujira_half_dot`).
    @inline(never)
    static func swiftDot(_ q: UnsafePointer<Float>, _ row: UnsafePointer<Float16>, count: Int) -> Float {
        let qr = UnsafeRawPointer(q), hr = UnsafeRawPointer(row)
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            acc.addProduct(SIMD8<Float>(hr.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<Float16>.self)),
                           qr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self))
            i += 8
        }
        var sum = acc.sum()
        while i < count { sum += q[i] * Float(row[i]); i += 1 }
        return sum
    }

    /// `addScaled` in Swift SIMD code (reference of `kujira_half_add_scaled`).
    @inline(never)
    static func swiftAddScaled(_ row: UnsafePointer<Float16>, count: Int, weight: Float, into out: UnsafeMutablePointer<Float>) {
        let hr = UnsafeRawPointer(row), or = UnsafeMutableRawPointer(out)
        let factor = SIMD8<Float>(repeating: weight)
        var i = 0
        while i + 8 <= count {
            var o = or.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            o.addProduct(SIMD8<Float>(hr.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<Float16>.self)), factor)
            or.storeBytes(of: o, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { out[i] += weight * Float(row[i]); i += 1 }
    }

    /// Plain `dot`: one scalar product at a time (what the fast one must equal within float reassociation).
    public static func referenceDot(_ q: UnsafePointer<Float>, _ row: UnsafePointer<Float16>, count: Int) -> Float {
        var sum: Float = 0
        for i in 0..<count { sum += q[i] * Float(row[i]) }
        return sum
    }

    /// Plain `addScaled`.
    public static func referenceAddScaled(_ row: UnsafePointer<Float16>, count: Int, weight: Float, into out: UnsafeMutablePointer<Float>) {
        for i in 0..<count { out[i] += weight * Float(row[i]) }
    }
}
