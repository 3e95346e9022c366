import CKujiraKernels
import XCTest
@testable import KujiraTensor

/// Q8_K activations (`Q8KActivations`, `kujira_q8k_quantize`) and the Q4_K / Q5_K dots that read them. The dots' bit
/// equality with the Swift reference, prefill against decode and the activation-rounding bound are in CBlockDotTests and
/// LinearKernelTests with the other formats.
final class KQuantQ8KTests: XCTestCase {
    /// Blocks that stress the quantizer: random with outliers, all zero, one NaN, one infinity, a tie between +m and −m,
    /// exact halves (x·iscale = k + 0.5), a single nonzero value, subnormals (127 / amax overflows: a zero block).
    func blocks() -> [[Float]] {
        var rng = SplitMix64(seed: 71)
        var out = (0..<6).map { _ in KernelTestData.randomActivations(256, rng: &rng) }
        out.append([Float](repeating: 0, count: 256))
        var nan = KernelTestData.randomActivations(256, rng: &rng)
        nan[100] = .nan
        out.append(nan)
        var inf = KernelTestData.randomActivations(256, rng: &rng)
        inf[3] = -.infinity
        out.append(inf)
        var tie = KernelTestData.randomActivations(256, rng: &rng).map { $0 / 40 }
        tie[10] = -2
        tie[200] = 2
        out.append(tie)
        // max −127 → iscale 1: values k + 0.5 round to even.
        out.append((0..<256).map { i in i == 0 ? -127 : Float(i % 100) - 50 + 0.5 })
        var single = [Float](repeating: 0, count: 256)
        single[77] = 0.25
        out.append(single)
        out.append((0..<256).map { i in Float(bitPattern: UInt32(i + 1)) })
        return out
    }

    func testCQuantizerMatchesSwiftBitForBit() throws {
        try XCTSkipIf(!KernelISA.floatKernels, "no AVX2: the C quantizer is not used here")
        let x = blocks().flatMap { $0 }
        let n = x.count / 256
        let c = x.withUnsafeBufferPointer { Q8KActivations($0, n: n, cols: 256, inC: true) }
        let swift = x.withUnsafeBufferPointer { Q8KActivations($0, n: n, cols: 256, inC: false) }
        for b in 0..<(x.count / 256) {
            XCTAssertEqual(c.scales[b].bitPattern, swift.scales[b].bitPattern, "scale of block \(b)")
            XCTAssertEqual(Array(UnsafeBufferPointer(start: c.codes + 256 * b, count: 256)),
                           Array(UnsafeBufferPointer(start: swift.codes + 256 * b, count: 256)), "codes of block \(b)")
            XCTAssertEqual(Array(UnsafeBufferPointer(start: c.sums + 16 * b, count: 16)),
                           Array(UnsafeBufferPointer(start: swift.sums + 16 * b, count: 16)), "sums of block \(b)")
        }
    }

    /// The Swift quantizer against its definition: codes are the nearest integers (ties to even) of x·iscale, within 127
    /// in magnitude, the value of largest magnitude maps to −127, sums add the codes, and d·q is within amax/254 of x.
    func testQuantizerFollowsTheDefinition() {
        for (index, block) in blocks().enumerated() {
            let q = block.withUnsafeBufferPointer { Q8KActivations($0, n: 1, cols: 256, inC: false) }
            let codes = (0..<256).map { Int(q.codes[$0]) }
            let amax = block.map { abs($0) }.max()!
            if !block.allSatisfy(\.isFinite) {
                XCTAssertTrue(q.scales[0].isNaN, "block \(index)")
                XCTAssertEqual(codes, [Int](repeating: 0, count: 256), "block \(index)")
                continue
            }
            if amax == 0 || !(127 / amax).isFinite {
                XCTAssertEqual(q.scales[0], 0)
                XCTAssertEqual(codes, [Int](repeating: 0, count: 256), "block \(index)")
                continue
            }
            let m = block.contains(amax) ? amax : -amax
            let iscale: Float = -127 / m
            for i in 0..<256 {
                XCTAssertEqual(codes[i], Int(min(127, (block[i] * iscale).rounded(.toNearestOrEven))), "block \(index) value \(i)")
                XCTAssertLessThanOrEqual(abs(codes[i]), 127)
                XCTAssertLessThanOrEqual(abs(Double(q.scales[0]) * Double(codes[i]) - Double(block[i])), Double(amax) * (1.0 / 254 + 0x1p-22),
                                         "block \(index) value \(i)")
            }
            XCTAssertEqual(codes[block.firstIndex(of: m)!], -127, "block \(index)")
            for g in 0..<16 { XCTAssertEqual(Int(q.sums[g]), codes[(16 * g)..<(16 * g + 16)].reduce(0, +), "block \(index) group \(g)") }
        }
        // Exact halves (iscale = 1 in this block) round to even.
        let halves = blocks()[10]
        let q = halves.withUnsafeBufferPointer { Q8KActivations($0, n: 1, cols: 256, inC: false) }
        XCTAssertEqual(q.codes[1], -48)   // 1 − 50 + 0.5 = −48.5 → −48
        XCTAssertEqual(q.codes[2], -48)   // −47.5 → −48
    }

    /// NaN activations give NaN outputs (not a trap, not a silent number), in C and in Swift.
    func testNonFiniteActivationsPropagate() {
        var rng = SplitMix64(seed: 72)
        for dtype in [DType.q4_K, .q5_K] {
            let w = KernelTestData.randomWeight(dtype, rows: 5, cols: 512, rng: &rng)
            var x = KernelTestData.randomActivations(1024, rng: &rng)
            x[600] = .nan
            for isa in KernelISA.runnable {
                let out = Linear.forward(w, x, n: 2, isa: isa)
                XCTAssertTrue(out[0..<5].allSatisfy(\.isFinite), "\(dtype) \(isa)")
                XCTAssertTrue(out[5..<10].allSatisfy(\.isNaN), "\(dtype) \(isa)")
            }
        }
    }
}
