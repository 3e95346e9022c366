import XCTest
@testable import KujiraTensor

enum KernelTestData {
    /// Byte offsets of the f16 scale fields in one block, and whether the field is a (non-negative) min scale.
    static func halfFields(_ dtype: DType) -> [(offset: Int, isMin: Bool)] {
        switch dtype {
        case .q4_0, .q5_0, .q8_0, .iq4_nl, .iq4_xs, .iq2_xxs, .iq1_s, .iq3_xxs, .iq3_s, .iq2_xs, .iq2_s: return [(0, false)]
        case .q4_1, .q5_1: return [(0, false), (2, false)]
        case .q2_K: return [(80, false), (82, true)]
        case .q3_K: return [(108, false)]
        case .q4_K, .q5_K: return [(0, false), (2, true)]
        case .q6_K: return [(208, false)]
        default: return []
        }
    }

    /// A weight of random blocks: every quant bit random, f16 scales small and finite.
    static func randomWeight(_ dtype: DType, rows: Int, cols: Int, rng: inout SplitMix64) -> LinearWeight {
        let count = dtype.byteCount(elements: rows * cols)!
        let storage = OwnedBytes(count: count)
        for i in 0..<count { storage.pointer.storeBytes(of: UInt8.random(in: 0...255, using: &rng), toByteOffset: i, as: UInt8.self) }
        if dtype.isQuantized {
            for b in 0..<(count / dtype.blockBytes) {
                for field in halfFields(dtype) {
                    let value = Float.random(in: field.isMin ? 0...0.02 : -0.05...0.05, using: &rng)
                    storage.pointer.storeBytes(of: Float16(value).bitPattern, toByteOffset: b * dtype.blockBytes + field.offset, as: UInt16.self)
                }
                if dtype == .iq1_m {
                    // IQ1_M's f16 scale is the top nibbles of its four scale words (bytes 48..<56).
                    let bits = Float16(Float.random(in: -0.05...0.05, using: &rng)).bitPattern
                    for i in 0..<4 {
                        let offset = b * dtype.blockBytes + 48 + 2 * i
                        let word = storage.pointer.load(fromByteOffset: offset, as: UInt16.self) & 0x0FFF | ((bits >> UInt16(4 * i)) & 0xF) << 12
                        storage.pointer.storeBytes(of: word, toByteOffset: offset, as: UInt16.self)
                    }
                }
            }
        } else if dtype == .f32 || dtype == .f16 || dtype == .bf16 {
            for i in 0..<(rows * cols) {
                let v = Float.random(in: -1...1, using: &rng)
                switch dtype {
                case .f32: storage.pointer.storeBytes(of: v, toByteOffset: 4 * i, as: Float.self)
                case .f16: storage.pointer.storeBytes(of: FloatConversion.floatToF16(v), toByteOffset: 2 * i, as: UInt16.self)
                default: storage.pointer.storeBytes(of: FloatConversion.floatToBF16(v), toByteOffset: 2 * i, as: UInt16.self)
                }
            }
        } else if dtype == .f8e4m3 {
            // Random bytes except the NaN codes 0x7F / 0xFF.
            for i in 0..<count where storage.pointer.load(fromByteOffset: i, as: UInt8.self) & 0x7F == 0x7F {
                storage.pointer.storeBytes(of: UInt8(0x3F), toByteOffset: i, as: UInt8.self)
            }
        }
        let data = TensorData(dtype: dtype, shape: [rows, cols], bytes: UnsafeRawBufferPointer(start: storage.pointer, count: count), owner: storage)
        return LinearWeight(data: data)
    }

    /// Activations with a spread of magnitudes (and an outlier per 50 values, as real hidden states have).
    static func randomActivations(_ count: Int, rng: inout SplitMix64) -> [Float] {
        (0..<count).map { i in Float.random(in: -1...1, using: &rng) * (i % 50 == 7 ? 20 : 1) }
    }
}

extension KernelTestData {
    /// Checks fused integer dots `fast` (n, rows) against "dequantize weights, quantize-dequantize activations, exact
    /// dot": the integer block sums are exact, so only float roundings remain — a handful per block (scale products)
    /// plus the accumulation over blocks; a sum of m terms is within m·ε·Σ|terms|, so cols/16 + 8 terms' worth of ε
    /// relative to Σ|w·xq| bounds it.
    static func assertMatchesDequantizedReference(_ fast: [Float], _ w: LinearWeight, _ x: [Float], n: Int,
                                                  file: StaticString = #filePath, line: UInt = #line) {
        let rows = w.rows, cols = w.cols, weights = w.toFloatArray()
        let activations = x.withUnsafeBufferPointer { Q8Activations($0, n: n, cols: cols) }
        let kActivations = KQuantQ8K.handles(w.data.dtype) ? x.withUnsafeBufferPointer { Q8KActivations($0, n: n, cols: cols) } : nil
        for t in 0..<n {
            let xq = kActivations?.dequantized(t) ?? activations.dequantized(t)
            for r in 0..<rows {
                var exact = 0.0, magnitude = 0.0
                for c in 0..<cols {
                    let term = Double(weights[r * cols + c]) * Double(xq[c])
                    exact += term
                    magnitude += abs(term)
                }
                let tolerance = Double(cols / 16 + 8) * Double(Float.ulpOfOne) * magnitude + 1e-30
                XCTAssertLessThanOrEqual(abs(Double(fast[t * rows + r]) - exact), tolerance,
                                         "\(w.data.dtype.rawValue) rows \(rows) cols \(cols) n \(n) token \(t) row \(r)", file: file, line: line)
            }
        }
    }

    /// Checks `fast` (n, rows) against the plain float product of `w` and `x` within the rigorous bound of 8-bit
    /// activations: per element |w|·amax_block·(1/254 + 2⁻¹¹) (rounding to int8 plus the f16 scale), plus float
    /// accumulation over `cols` terms. Q4_K / Q5_K read Q8_K activations: blocks of 256 with a Float scale
    /// d = fl(1/iscale), so |x − d·q| ≤ amax/254 (the code rounding) + amax·2⁻²⁴ (the product x·iscale) + 127·d·2⁻²⁴
    /// (the scale) ≤ amax·(1/254 + 2⁻²²).
    static func assertWithinActivationBound(_ fast: [Float], _ w: LinearWeight, _ x: [Float], n: Int,
                                            file: StaticString = #filePath, line: UInt = #line) {
        let rows = w.rows, cols = w.cols
        let weights = w.toFloatArray()
        var reference = [Float](repeating: 0, count: n * rows)
        x.withUnsafeBufferPointer { xb in reference.withUnsafeMutableBufferPointer { Linear.referenceForward(w, xb, n: n, into: $0) } }
        let block = KQuantQ8K.handles(w.data.dtype) ? 256 : 32, scaleError = block == 256 ? 0x1p-22 : 0x1p-11
        for t in 0..<n {
            for r in 0..<rows {
                var bound = 0.0, magnitude = 0.0
                for c in 0..<cols {
                    let blockStart = t * cols + c / block * block
                    let amax = x[blockStart..<(blockStart + block)].map { abs($0) }.max()!
                    bound += Double(abs(weights[r * cols + c])) * Double(amax) * (1.0 / 254 + scaleError)
                    magnitude += Double(abs(weights[r * cols + c] * x[t * cols + c]))
                }
                bound += Double(cols) * Double(Float.ulpOfOne) * (magnitude + bound)
                XCTAssertLessThanOrEqual(abs(Double(fast[t * rows + r]) - Double(reference[t * rows + r])), bound,
                                         "\(w.data.dtype.rawValue) n \(n) token \(t) row \(r)", file: file, line: line)
            }
        }
    }
}
