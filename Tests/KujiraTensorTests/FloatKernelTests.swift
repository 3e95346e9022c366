import CKujiraKernels
import XCTest
@testable import KujiraTensor

/// The C float kernels (AVX2 + FMA + F16C) against their Swift references, bit for bit: the same operations in the same
/// order, whichever compiles them. Lengths cover the vector bodies and every tail; values include outliers, and for the
/// half/FP8 formats subnormals, infinities and NaN codes (the scalar paths).
final class FloatKernelTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipIf(KernelISA.supported == .swift, "CPU without AVX2 + FMA + F16C: the C kernels are not used here")
    }

    static let lengths = [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 64, 100, 576, 1027]

    func floats(_ count: Int, _ rng: inout SplitMix64) -> [Float] { KernelTestData.randomActivations(count, rng: &rng) }

    func bits(_ x: Float) -> UInt32 { x.bitPattern }

    func testDotsOfFloatRows() {
        var rng = SplitMix64(seed: 7)
        for n in Self.lengths where n > 0 {
            let a = floats(n, &rng), b = floats(n, &rng)
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                XCTAssertEqual(bits(kujira_dot_f32(ap.baseAddress!, bp.baseAddress!, n)), bits(Linear.swiftDot(ap, bp)), "dot n \(n)")
                XCTAssertEqual(bits(kujira_row_dot_f32(ap.baseAddress!, bp.baseAddress!, n)), bits(FloatDots.swiftF32(ap.baseAddress!, bp.baseAddress!, count: n)),
                               "f32 row n \(n)")
                XCTAssertEqual(bits(kujira_split_decoded_dot(ap.baseAddress!, bp.baseAddress!, n)),
                               bits(FloatDots.swiftSplitDecoded(ap.baseAddress!, bp.baseAddress!, count: n)), "split n \(n)")
            } }
        }
    }

    /// Half words with every kind of value: normal, subnormal, zero, ±inf and NaN (F16), and BF16 patterns.
    func halfWords(_ n: Int, _ rng: inout SplitMix64) -> [UInt16] {
        (0..<n).map { i in
            switch i % 23 {
            case 3: 0x0001 | UInt16(rng.next() % 0x3FF)  // subnormal
            case 5: 0x7C00  // inf
            case 11: 0xFE01  // NaN
            case 13: 0x8000  // -0
            default: Float16(Float.random(in: -4...4, using: &rng)).bitPattern
            }
        }
    }

    func testHalfAndBFloat16RowDotsAndDecode() {
        var rng = SplitMix64(seed: 8)
        for n in Self.lengths where n > 0 {
            let w = halfWords(n, &rng), x = floats(n, &rng)
            w.withUnsafeBytes { wp in x.withUnsafeBufferPointer { xp in
                let raw = wp.baseAddress!, xs = xp.baseAddress!
                XCTAssertEqual(bits(kujira_row_dot_half(1, raw, xs, n)), bits(FloatDots.swiftF16(raw, xs, count: n)), "f16 n \(n)")
                XCTAssertEqual(bits(kujira_row_dot_half(0, raw, xs, n)), bits(FloatDots.swiftBF16(raw, xs, count: n)), "bf16 n \(n)")
                for isF16 in [true, false] {
                    var c = [Float](repeating: 1, count: n), swift = [Float](repeating: 2, count: n)
                    c.withUnsafeMutableBufferPointer { kujira_decode_half_row(isF16 ? 1 : 0, raw, n, $0.baseAddress!) }
                    swift.withUnsafeMutableBufferPointer { FloatDots.swiftDecodeHalfRow(raw, isF16: isF16, count: n, into: $0.baseAddress!) }
                    XCTAssertEqual(c.map(\.bitPattern), swift.map(\.bitPattern), "decode f16 \(isF16) n \(n)")
                }
            } }
        }
    }

    func testFP8Dots() {
        var rng = SplitMix64(seed: 9)
        for n in Self.lengths where n > 0 {
            // Mostly normal codes; one chunk in three gets a NaN code or a subnormal (the scalar path).
            var codes = (0..<n).map { _ in UInt8(truncatingIfNeeded: 0x08 + rng.next() % 0x70) | (rng.next() % 2 == 0 ? 0x80 : 0) }
            for c in stride(from: 0, to: n, by: 48) { codes[c] = c % 96 == 0 ? 0x7F : 0x03 }
            let x = floats(n, &rng)
            var decoded = [Float](repeating: 0, count: n), special = [Bool](repeating: false, count: n / 16 + 1)
            codes.withUnsafeBytes { cp in x.withUnsafeBufferPointer { xp in
                var decodedSwift = decoded, specialSwift = special
                decoded.withUnsafeMutableBufferPointer { d in special.withUnsafeMutableBufferPointer { s in
                    FloatConversion.f8e4m3Table.withUnsafeBufferPointer { table in
                        kujira_decode_e4m3_row(cp.baseAddress!, n, table.baseAddress!, d.baseAddress!,
                                               UnsafeMutableRawPointer(s.baseAddress!).assumingMemoryBound(to: UInt8.self))
                    }
                } }
                decodedSwift.withUnsafeMutableBufferPointer { d in specialSwift.withUnsafeMutableBufferPointer { s in
                    FloatDots.swiftDecodeE4M3Row(cp.baseAddress!, count: n, into: d.baseAddress!, special: s.baseAddress!)
                } }
                XCTAssertEqual(decoded.map(\.bitPattern), decodedSwift.map(\.bitPattern), "e4m3 decode n \(n)")
                XCTAssertEqual(special, specialSwift, "e4m3 special chunks n \(n)")
                for (start, end) in [(0, n), (0, n / 16 * 16), (n / 32 * 16, n)] where start < end {
                    let c = FloatConversion.f8e4m3Table.withUnsafeBufferPointer { kujira_e4m3_dot(cp.baseAddress!, xp.baseAddress!, start, end, $0.baseAddress!) }
                    XCTAssertEqual(bits(c), bits(FloatDots.swiftE4M3(cp.baseAddress!, xp.baseAddress!, start: start, end: end)), "e4m3 n \(n) \(start)..<\(end)")
                    decoded.withUnsafeBufferPointer { d in special.withUnsafeBufferPointer { s in
                        let cd = kujira_e4m3_decoded_dot(d.baseAddress!, UnsafeRawPointer(s.baseAddress!).assumingMemoryBound(to: UInt8.self), xp.baseAddress!, start, end)
                        XCTAssertEqual(bits(cd), bits(FloatDots.swiftE4M3Decoded(d.baseAddress!, s.baseAddress!, xp.baseAddress!, start: start, end: end)),
                                       "e4m3 decoded n \(n)")
                    } }
                }
            } }
        }
    }

    func testAddScaledAndTheKVCacheRows() {
        var rng = SplitMix64(seed: 10)
        for n in Self.lengths where n > 0 {
            let x = floats(n, &rng), start = floats(n, &rng), weight = Float.random(in: -2...2, using: &rng)
            var c = start, swift = start
            x.withUnsafeBufferPointer { xp in
                c.withUnsafeMutableBufferPointer { kujira_add_scaled(xp.baseAddress!, weight, $0.baseAddress!, n) }
                swift.withUnsafeMutableBufferPointer { Elementwise.swiftAddScaled(xp, weight, into: $0) }
            }
            XCTAssertEqual(c.map(\.bitPattern), swift.map(\.bitPattern), "addScaled n \(n)")

            // Half rows: store (with values beyond the half range), dot, addScaled.
            let wide = x.map { $0 * 5000 }
            var halvesC = [Float16](repeating: 0, count: n), halvesSwift = [Float16](repeating: 1, count: n)
            wide.withUnsafeBufferPointer { wp in
                halvesC.withUnsafeMutableBytes { kujira_half_store(wp.baseAddress!, n, $0.baseAddress!.assumingMemoryBound(to: UInt16.self)) }
                halvesSwift.withUnsafeMutableBufferPointer { HalfRows.swiftStore(wp.baseAddress!, count: n, into: $0.baseAddress!) }
            }
            XCTAssertEqual(halvesC.map(\.bitPattern), halvesSwift.map(\.bitPattern), "half store n \(n)")
            let halves = x.map { Float16($0) }
            var accC = start, accSwift = start
            halves.withUnsafeBufferPointer { hp in x.withUnsafeBufferPointer { qp in
                let words = UnsafeRawPointer(hp.baseAddress!).assumingMemoryBound(to: UInt16.self)
                XCTAssertEqual(bits(kujira_half_dot(qp.baseAddress!, words, n)), bits(HalfRows.swiftDot(qp.baseAddress!, hp.baseAddress!, count: n)), "half dot n \(n)")
                accC.withUnsafeMutableBufferPointer { kujira_half_add_scaled(words, n, weight, $0.baseAddress!) }
                accSwift.withUnsafeMutableBufferPointer { HalfRows.swiftAddScaled(hp.baseAddress!, count: n, weight: weight, into: $0.baseAddress!) }
            } }
            XCTAssertEqual(accC.map(\.bitPattern), accSwift.map(\.bitPattern), "half addScaled n \(n)")
        }
        for (groupSize, groups) in [(32, 1), (32, 5), (64, 3), (8, 2)] {
            let n = groupSize * groups
            let q = floats(n, &rng), start = floats(n, &rng), scales = floats(groups, &rng)
            let codes = (0..<n).map { _ in Int8(truncatingIfNeeded: rng.next()) }
            var c = start, swift = start
            q.withUnsafeBufferPointer { qp in codes.withUnsafeBufferPointer { cp in scales.withUnsafeBufferPointer { sp in
                XCTAssertEqual(bits(kujira_int8_dot(qp.baseAddress!, cp.baseAddress!, sp.baseAddress!, groupSize, n)),
                               bits(Int8RowDots.swiftDot(qp.baseAddress!, cp.baseAddress!, scales: sp.baseAddress!, groupSize: groupSize, count: n)),
                               "int8 dot \(groupSize)x\(groups)")
                c.withUnsafeMutableBufferPointer { kujira_int8_add_scaled(cp.baseAddress!, sp.baseAddress!, groupSize, n, 0.75, $0.baseAddress!) }
                swift.withUnsafeMutableBufferPointer {
                    Int8RowDots.swiftAddScaled(cp.baseAddress!, scales: sp.baseAddress!, groupSize: groupSize, count: n, weight: 0.75, into: $0.baseAddress!)
                }
            } } }
            XCTAssertEqual(c.map(\.bitPattern), swift.map(\.bitPattern), "int8 addScaled \(groupSize)x\(groups)")
        }
    }

    /// The row kernels of attention (`kujira_dot_f32_rows`, `kujira_add_scaled_rows` and their half-row forms): the bits of
    /// one `dot` / `addScaled` per row, for row counts around the 4-row group and lengths around the 8-, 16- and 64-value
    /// bodies, rows with a stride.
    func testAttentionRowKernelsEqualOneCallPerRow() {
        var rng = SplitMix64(seed: 11)
        for n in Self.lengths where n > 0 {
            for count in [0, 1, 3, 4, 5, 9] {
                let stride = n + 3
                let rows = floats(max(count * stride, 1), &rng), q = floats(n, &rng), weights = floats(max(count, 1), &rng), start = floats(n, &rng)
                rows.withUnsafeBufferPointer { rp in q.withUnsafeBufferPointer { qp in weights.withUnsafeBufferPointer { wp in
                    for adding in [false, true] {
                        var c = floats(max(count, 1), &rng)
                        var swift = c
                        c.withUnsafeMutableBufferPointer { kujira_dot_f32_rows(qp.baseAddress!, rp.baseAddress!, stride, count, n, $0.baseAddress!, adding ? 1 : 0) }
                        for i in 0..<count {
                            let dot = Linear.swiftDot(qp, UnsafeBufferPointer(start: rp.baseAddress! + i * stride, count: n))
                            swift[i] = adding ? swift[i] + dot : dot
                        }
                        XCTAssertEqual(c.map(\.bitPattern), swift.map(\.bitPattern), "dot rows n \(n) count \(count) adding \(adding)")
                    }
                    var c = start, swift = start
                    c.withUnsafeMutableBufferPointer { kujira_add_scaled_rows(rp.baseAddress!, stride, wp.baseAddress!, count, n, $0.baseAddress!) }
                    swift.withUnsafeMutableBufferPointer { out in
                        for i in 0..<count {
                            Elementwise.swiftAddScaled(UnsafeBufferPointer(start: rp.baseAddress! + i * stride, count: n), wp[i], into: out)
                        }
                    }
                    XCTAssertEqual(c.map(\.bitPattern), swift.map(\.bitPattern), "addScaled rows n \(n) count \(count)")
                    // The same over half rows (the 16-bit KV cache).
                    let halves = rows.map { Float16($0) }
                    halves.withUnsafeBufferPointer { hp in
                        let words = UnsafeRawPointer(hp.baseAddress!).assumingMemoryBound(to: UInt16.self)
                        for adding in [false, true] {
                            var hc = floats(max(count, 1), &rng)
                            var hs = hc
                            hc.withUnsafeMutableBufferPointer { kujira_half_dot_rows(qp.baseAddress!, words, stride, count, n, $0.baseAddress!, adding ? 1 : 0) }
                            for i in 0..<count {
                                let dot = HalfRows.swiftDot(qp.baseAddress!, hp.baseAddress! + i * stride, count: n)
                                hs[i] = adding ? hs[i] + dot : dot
                            }
                            XCTAssertEqual(hc.map(\.bitPattern), hs.map(\.bitPattern), "half dot rows n \(n) count \(count) adding \(adding)")
                        }
                        var hc = start, hs = start
                        hc.withUnsafeMutableBufferPointer { kujira_half_add_scaled_rows(words, stride, wp.baseAddress!, count, n, $0.baseAddress!) }
                        hs.withUnsafeMutableBufferPointer { out in
                            for i in 0..<count { HalfRows.swiftAddScaled(hp.baseAddress! + i * stride, count: n, weight: wp[i], into: out.baseAddress!) }
                        }
                        XCTAssertEqual(hc.map(\.bitPattern), hs.map(\.bitPattern), "half addScaled rows n \(n) count \(count)")
                    }
                } } }
            }
        }
    }

    func testIndexerBlockScores() {
        var rng = SplitMix64(seed: 11)
        for (heads, dim) in [(1, 8), (4, 64), (7, 128), (64, 128)] {
            let q = floats(heads * dim, &rng), weights = floats(heads, &rng), tile = floats(dim * 8, &rng)
            q.withUnsafeBufferPointer { qp in weights.withUnsafeBufferPointer { wp in tile.withUnsafeBufferPointer { tp in
                let vectors = UnsafeRawPointer(tp.baseAddress!).assumingMemoryBound(to: SIMD8<Float>.self)
                let c = IndexerScores.blockScores(q: qp.baseAddress!, heads: heads, dim: dim, weights: wp.baseAddress!, scale: 0.3, tile: vectors)
                let swift = IndexerScores.swiftBlockScores(q: qp.baseAddress!, heads: heads, dim: dim, weights: wp.baseAddress!, scale: 0.3, tile: vectors)
                for i in 0..<8 { XCTAssertEqual(bits(c[i]), bits(swift[i]), "heads \(heads) dim \(dim) lane \(i)") }
            } } }
        }
    }

    /// Codes, scales, sums, scale vectors and the byte plane of `kujira_q8_quantize_blocks` equal `quantizeBlock`'s, for
    /// ordinary blocks, an all-zero block, tiny and huge magnitudes (the half-scale cut-offs) and a non-finite block.
    func testActivationQuantization() {
        var rng = SplitMix64(seed: 12)
        let cols = 32 * 7, n = 3
        var x = floats(n * cols, &rng)
        for i in 32..<64 { x[i] = 0 }
        for i in 64..<96 { x[i] *= 1e-7 }
        for i in 96..<128 { x[i] *= 1e6 }
        x[130] = .infinity
        x[200] = .nan
        let c = x.withUnsafeBufferPointer { Q8Activations($0, n: n, cols: cols, vnni: true, inC: true) }
        let swift = x.withUnsafeBufferPointer { Q8Activations($0, n: n, cols: cols, vnni: true, inC: false) }
        for t in 0..<n {
            let a = c.row(t), b = swift.row(t)
            for g in 0..<(cols / 16) {
                XCTAssertEqual(a.lanes[2 * g], b.lanes[2 * g], "token \(t) group \(g) even")
                XCTAssertEqual(a.lanes[2 * g + 1], b.lanes[2 * g + 1], "token \(t) group \(g) odd")
                XCTAssertEqual(a.sums[g], b.sums[g], "token \(t) group \(g) sum")
            }
            for block in 0..<(cols / 32) {
                XCTAssertEqual(bits(a.scales[block]), bits(b.scales[block]), "token \(t) block \(block) scale")
                XCTAssertEqual(bits(a.scaledSums[block]), bits(b.scaledSums[block]), "token \(t) block \(block) scaled sum")
                XCTAssertEqual(a.scaleVectors[block].map(\.bitPattern), b.scaleVectors[block].map(\.bitPattern), "token \(t) block \(block) vector")
            }
        }
        let planeC = UnsafeBufferPointer(start: c.vnniValues!, count: n * cols), planeSwift = UnsafeBufferPointer(start: swift.vnniValues!, count: n * cols)
        XCTAssertEqual(Array(planeC), Array(planeSwift), "byte plane")
    }

    /// The llama.cpp-numerics row dots (`GGMLLinear.q4_1Dot` / `q8_0Dot`) against `kujira_ggml_q4_1_dot` / `kujira_ggml_q8_0_dot`.
    func testLlamaCppNumericsDots() {
        var rng = SplitMix64(seed: 13)
        for blocks in [1, 3, 18, 64] {
            let cols = 32 * blocks
            let codes = (0..<cols).map { _ in Int16(Int(rng.next() % 255) - 127) }
            let d = floats(blocks, &rng).map { abs($0) * 0.01 }, s = floats(blocks, &rng)
            for dtype in [DType.q4_1, .q8_0] {
                let w = KernelTestData.randomWeight(dtype, rows: 2, cols: cols, rng: &rng)
                let row = w.data.bytes.baseAddress!
                codes.withUnsafeBufferPointer { q in d.withUnsafeBufferPointer { dp in s.withUnsafeBufferPointer { sp in
                    let c = dtype == .q4_1 ? kujira_ggml_q4_1_dot(row, q.baseAddress!, dp.baseAddress!, sp.baseAddress!, blocks)
                        : kujira_ggml_q8_0_dot(row, q.baseAddress!, dp.baseAddress!, blocks)
                    let swift = dtype == .q4_1 ? GGMLLinear.q4_1Dot(row, q.baseAddress!, dp.baseAddress!, sp.baseAddress!, blocks: blocks)
                        : GGMLLinear.q8_0Dot(row, q.baseAddress!, dp.baseAddress!, blocks: blocks)
                    XCTAssertEqual(bits(c), bits(swift), "\(dtype.rawValue) blocks \(blocks)")
                } } }
            }
        }
    }

    /// llama.cpp's f16 dots and the attention's value step (`GGMLMath`) against their C forms.
    func testLlamaCppNumericsHalfDots() {
        var rng = SplitMix64(seed: 14)
        for count in [16, 64, 80, 128, 200] {
            let a = floats(count, &rng).map { Float(Float16($0)) }, b = halfWords(count, &rng).map { $0 & 0x7C00 == 0x7C00 ? 0x3C00 : $0 }
            let halves = b.map { Float16(bitPattern: $0) }
            a.withUnsafeBufferPointer { ap in halves.withUnsafeBufferPointer { hp in b.withUnsafeBufferPointer { bp in
                XCTAssertEqual(bits(kujira_ggml_vector_dot_f16(ap.baseAddress!, bp.baseAddress!, count)),
                               bits(GGMLMath.swiftVectorDot(ap.baseAddress!, halves: hp.baseAddress!, count: count)), "vectorDot \(count)")
                if count % 16 == 0 {
                    XCTAssertEqual(bits(kujira_ggml_dot_f16(ap.baseAddress!, bp.baseAddress!, count)),
                                   bits(GGMLMath.swiftDot(ap.baseAddress!, halves: hp.baseAddress!, count: count)), "dot \(count)")
                }
                var c = floats(16 * count, &rng)
                var swift = c
                c.withUnsafeMutableBufferPointer { kujira_ggml_accumulate_f16($0.baseAddress!, bp.baseAddress!, count, 0.37) }
                for d in 0..<count { swift[16 * d] = swift[16 * d].addingProduct(0.37, Float(halves[d])) }
                XCTAssertEqual(c.map(\.bitPattern), swift.map(\.bitPattern), "accumulate \(count)")
            } } }
        }
    }
}

private extension SIMD8 where Scalar == Float {
    func map<T>(_ f: (Float) -> T) -> [T] { (0..<8).map { f(self[$0]) } }
}
