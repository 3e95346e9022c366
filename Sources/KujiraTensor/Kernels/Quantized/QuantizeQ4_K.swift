/// Q4_K quantization, a transcription of llama.cpp's `quantize_row_q4_K_ref` and `make_qkx2_quants` (ggml-quants.c)
/// with the same parameters and the same float operation order, so the bytes match llama.cpp's reference quantizer.
extension Quantize {
    /// One 256-element super-block: 8 sub-blocks of 32, each with a 6-bit scale and min, 4-bit values.
    /// Layout (144 bytes): d (f16), dmin (f16), scales[12], qs[128].
    static func q4_KBlock(_ x: UnsafePointer<Float>, into out: UnsafeMutableRawPointer) {
        // Fixed-size scratch on the stack (tuples), not per-block heap arrays: a model has millions of blocks.
        var levelStorage = (SIMD64<UInt8>(), SIMD64<UInt8>(), SIMD64<UInt8>(), SIMD64<UInt8>())
        var scratchStorage = SIMD32<UInt8>()
        var weightStorage = SIMD32<Float>()
        withUnsafeMutableBytes(of: &levelStorage) { levelBytes in
            withUnsafeMutableBytes(of: &scratchStorage) { scratchBytes in
                withUnsafeMutableBytes(of: &weightStorage) { weightBytes in
                    q4_KBlock(x, into: out, levels: levelBytes.bindMemory(to: UInt8.self).baseAddress!,
                              scratch: scratchBytes.bindMemory(to: UInt8.self).baseAddress!,
                              weights: weightBytes.bindMemory(to: Float.self).baseAddress!)
                }
            }
        }
    }

    private static func q4_KBlock(_ x: UnsafePointer<Float>, into out: UnsafeMutableRawPointer, levels: UnsafeMutablePointer<UInt8>,
                                  scratch: UnsafeMutablePointer<UInt8>, weights: UnsafeMutablePointer<Float>) {
        var scales = SIMD8<Float>(), mins = SIMD8<Float>()
        var maxScale: Float = 0, maxMin: Float = 0
        for j in 0..<8 {
            let sub = x + 32 * j
            var sumX2: Float = 0
            for l in 0..<32 { sumX2 += sub[l] * sub[l] }
            let averageX = (sumX2 / 32).squareRoot()
            for l in 0..<32 { weights[l] = averageX + abs(sub[l]) }
            var subMin: Float = 0
            scales[j] = makeQKX2Quants(n: 32, nmax: 15, x: sub, weights: weights, levels: levels + 32 * j, min: &subMin,
                                       scratch: scratch, rmin: -1, rdelta: 0.1, steps: 20)
            mins[j] = subMin
            if scales[j] > maxScale { maxScale = scales[j] }  // as in C: a -0.0 min must not replace +0.0
            if mins[j] > maxMin { maxMin = mins[j] }
        }
        let inverseScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let inverseMin: Float = maxMin > 0 ? 63 / maxMin : 0
        var packed = SIMD16<UInt8>()
        for j in 0..<8 {
            let ls = UInt8(truncatingIfNeeded: min(63, nearestInt(inverseScale * scales[j])))
            let lm = UInt8(truncatingIfNeeded: min(63, nearestInt(inverseMin * mins[j])))
            if j < 4 {
                packed[j] = ls
                packed[j + 4] = lm
            } else {
                packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
                packed[j - 4] |= (ls >> 4) << 6
                packed[j] |= (lm >> 4) << 6
            }
        }
        let d = Float16(maxScale / 63), dmin = Float16(maxMin / 63)
        out.storeBytes(of: d.bitPattern.littleEndian, toByteOffset: 0, as: UInt16.self)
        out.storeBytes(of: dmin.bitPattern.littleEndian, toByteOffset: 2, as: UInt16.self)
        for i in 0..<12 { out.storeBytes(of: packed[i], toByteOffset: 4 + i, as: UInt8.self) }

        for j in 0..<8 {
            let (sc, m): (UInt8, UInt8) = j < 4
                ? (packed[j] & 63, packed[j + 4] & 63)
                : ((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4), (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4))
            let dj = Float(d) * Float(sc)
            if dj == 0 { continue }
            let dm = Float(dmin) * Float(m)
            for i in 0..<32 {
                levels[32 * j + i] = UInt8(max(0, min(15, nearestInt((x[32 * j + i] + dm) / dj))))
            }
        }
        for chunk in 0..<4 {
            let j = 64 * chunk
            for l in 0..<32 {
                out.storeBytes(of: levels[j + l] | (levels[j + l + 32] << 4), toByteOffset: 16 + 32 * chunk + l, as: UInt8.self)
            }
        }
    }

    /// Weighted least-squares search for an affine (scale, min) grid of `nmax + 1` levels (use_mad = false).
    /// Returns the scale; `min` receives the negated offset, as in ggml.
    static func makeQKX2Quants(n: Int, nmax: Int, x: UnsafePointer<Float>, weights: UnsafeMutablePointer<Float>, levels L: UnsafeMutablePointer<UInt8>,
                               min theMin: inout Float, scratch: UnsafeMutablePointer<UInt8>, rmin: Float, rdelta: Float, steps: Int) -> Float {
        var minimum = x[0], maximum = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < minimum { minimum = x[i] }
            if x[i] > maximum { maximum = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if minimum > 0 { minimum = 0 }
        if maximum == minimum {
            for i in 0..<n { L[i] = 0 }
            theMin = -minimum
            return 0
        }
        let levelCount = Float(nmax)
        var iscale = levelCount / (maximum - minimum)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = nearestInt(iscale * (x[i] - minimum))
            L[i] = UInt8(max(0, min(nmax, l)))
            let diff = scale * Float(L[i]) + minimum - x[i]
            bestError += weights[i] * (diff * diff)
        }
        if steps < 1 {
            theMin = -minimum
            return scale
        }
        for step in 0...steps {
            iscale = (rmin + rdelta * Float(step) + levelCount) / (maximum - minimum)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let l = max(0, min(nmax, nearestInt(iscale * (x[i] - minimum))))
                scratch[i] = UInt8(l)
                let w = weights[i], lf = Float(l)
                sumL += w * lf
                sumL2 += w * lf * lf
                sumXL += w * lf * x[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            if D > 0 {
                var thisScale = (sumW * sumXL - sumX * sumL) / D
                var thisMin = (sumL2 * sumX - sumL * sumXL) / D
                if thisMin > 0 {
                    thisMin = 0
                    thisScale = sumXL / sumL2
                }
                var error: Float = 0
                for i in 0..<n {
                    let diff = thisScale * Float(scratch[i]) + thisMin - x[i]
                    error += weights[i] * (diff * diff)
                }
                if error < bestError {
                    for i in 0..<n { L[i] = scratch[i] }
                    bestError = error
                    scale = thisScale
                    minimum = thisMin
                }
            }
        }
        theMin = -minimum
        return scale
    }
}

/// Q6_K quantization, a transcription of llama.cpp's `quantize_row_q6_K_ref` and `make_qx_quants` (rmse_type 1, no
/// importance weights) — the type llama.cpp's Q4_K_S/M mixes give `output.weight`.
extension Quantize {
    /// One 256-element super-block: 16 sub-blocks of 16 with int8 scales, 6-bit values.
    /// Layout (210 bytes): ql[128], qh[64], scales[16] (int8), d (f16).
    static func q6_KBlock(_ x: UnsafePointer<Float>, into out: UnsafeMutableRawPointer) {
        var levelStorage = (SIMD64<Int8>(), SIMD64<Int8>(), SIMD64<Int8>(), SIMD64<Int8>())
        withUnsafeMutableBytes(of: &levelStorage) { raw in
            let L = raw.bindMemory(to: Int8.self).baseAddress!
            var scales = SIMD16<Float>()
            var maxScale: Float = 0, maxAbsScale: Float = 0
            for ib in 0..<16 {
                let scale = makeQXQuants(n: 16, nmax: 32, x: x + 16 * ib, levels: L + 16 * ib)
                scales[ib] = scale
                if abs(scale) > maxAbsScale {
                    maxAbsScale = abs(scale)
                    maxScale = scale
                }
            }
            out.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
            if maxAbsScale < 1e-15 { return }
            let iscale = -128 / maxScale
            let d = Float16(1 / iscale)
            out.storeBytes(of: d.bitPattern.littleEndian, toByteOffset: 208, as: UInt16.self)
            var scaleBytes = SIMD16<Int8>()
            for ib in 0..<16 {
                scaleBytes[ib] = Int8(truncatingIfNeeded: min(127, nearestInt(iscale * scales[ib])))
                out.storeBytes(of: scaleBytes[ib], toByteOffset: 192 + ib, as: Int8.self)
            }
            for j in 0..<16 {
                let dj = Float(d) * Float(scaleBytes[j])
                if dj == 0 { continue }
                for ii in 0..<16 {
                    let l = max(-32, min(31, nearestInt(x[16 * j + ii] / dj)))
                    L[16 * j + ii] = Int8(l + 32)
                }
            }
            for half in 0..<2 {
                let j = 128 * half
                for l in 0..<32 {
                    let q1 = UInt8(L[j + l]) & 0xF, q2 = UInt8(L[j + l + 32]) & 0xF
                    let q3 = UInt8(L[j + l + 64]) & 0xF, q4 = UInt8(L[j + l + 96]) & 0xF
                    out.storeBytes(of: q1 | (q3 << 4), toByteOffset: 64 * half + l, as: UInt8.self)
                    out.storeBytes(of: q2 | (q4 << 4), toByteOffset: 64 * half + l + 32, as: UInt8.self)
                    let h = (UInt8(L[j + l]) >> 4) | ((UInt8(L[j + l + 32]) >> 4) << 2) | ((UInt8(L[j + l + 64]) >> 4) << 4) | ((UInt8(L[j + l + 96]) >> 4) << 6)
                    out.storeBytes(of: h, toByteOffset: 128 + 32 * half + l, as: UInt8.self)
                }
            }
        }
    }

    /// Symmetric grid search (rmse_type 1: weights x²); levels are stored offset by `nmax`. Returns the scale.
    static func makeQXQuants(n: Int, nmax: Int, x: UnsafePointer<Float>, levels L: UnsafeMutablePointer<Int8>) -> Float {
        var maximum: Float = 0, amax: Float = 0
        for i in 0..<n where abs(x[i]) > amax {
            amax = abs(x[i])
            maximum = x[i]
        }
        if amax < 1e-15 {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let levelCount = Float(nmax)
        var iscale = -levelCount / maximum
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = max(-nmax, min(nmax - 1, nearestInt(iscale * x[i])))
            L[i] = Int8(l + nmax)
            let w = x[i] * x[i], lf = Float(l)
            sumLX += w * x[i] * lf
            sumL2 += w * lf * lf
        }
        var scale: Float = sumL2 != 0 ? sumLX / sumL2 : 0
        var best = scale * sumLX
        for step in -9...9 where step != 0 {
            iscale = -(levelCount + 0.1 * Float(step)) / maximum
            sumLX = 0
            sumL2 = 0
            for i in 0..<n {
                let l = max(-nmax, min(nmax - 1, nearestInt(iscale * x[i])))
                let w = x[i] * x[i], lf = Float(l)
                sumLX += w * x[i] * lf
                sumL2 += w * lf * lf
            }
            if sumL2 > 0 && sumLX * sumLX > best * sumL2 {
                for i in 0..<n { L[i] = Int8(nmax + max(-nmax, min(nmax - 1, nearestInt(iscale * x[i])))) }
                scale = sumLX / sumL2
                best = scale * sumLX
            }
        }
        return scale
    }
}
