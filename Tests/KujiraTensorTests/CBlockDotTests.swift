import CKujiraKernels
import XCTest
@testable import KujiraTensor

/// The C block dots (`CBlockDots`: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K and the IQ types), each instruction set
/// this CPU runs (AVX-512 VNNI and AVX2), against the Swift kernels (bit for bit) and the plain reference.
final class CBlockDotTests: XCTestCase {
    /// The C levels this machine can run.
    var levels: [KernelISA] { KernelISA.runnable.filter { $0 != .swift } }

    override func setUpWithError() throws {
        try XCTSkipIf(KernelISA.supported == .swift, "CPU without AVX2 + FMA + F16C: the C kernels are not used here")
    }

    /// Same bits as the Swift Q8_0 kernels for rows that are and are not multiples of the 16-row chunk, token counts
    /// around the 4-token quads, 1 and 2 threads (random weight bytes include −128; activations have outliers).
    func testMatchesSwiftKernelsBitForBit() {
        for dtype in CBlockDotTests.formats { checkBitEquality(dtype) }
    }

    static let formats: [DType] = [.q2_K, .q3_K, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs, .iq2_xxs, .iq1_s, .iq3_xxs, .iq3_s, .iq2_xs, .iq2_s, .iq1_m]

    func checkBitEquality(_ dtype: DType) {
        var rng = SplitMix64(seed: 41)
        let pool = ThreadPool.shared
        let saved = pool.activeThreads
        defer { pool.setActiveThreads(saved) }
        let superBlock = dtype.blockElements == 256
        for (rows, blocks) in [(1, 1), (3, 5), (17, 2), (40, 7), (33, 18)] {
            let cols = blocks * (superBlock ? 256 : 32)
            let w = KernelTestData.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
            for n in [1, 2, 3, 4, 5, 6, 7, 8, 13, 33] {
                let x = KernelTestData.randomActivations(n * cols, rng: &rng)
                for threads in [1, 2] {
                    pool.setActiveThreads(threads)
                    let swift = Linear.forward(w, x, n: n, isa: .swift)
                    for isa in levels {
                        let c = Linear.forward(w, x, n: n, isa: isa)
                        XCTAssertEqual(c.map(\.bitPattern), swift.map(\.bitPattern), "\(dtype.rawValue) \(isa) rows \(rows) cols \(cols) n \(n) threads \(threads)")
                    }
                }
            }
        }
    }

    /// Within the activation-rounding bound of the plain float reference (the bound of
    /// `testQuantizedFastPathWithinActivationRoundingOfFloatReference`), independently of the Swift kernels.
    func testWithinActivationRoundingOfFloatReference() {
        for dtype in CBlockDotTests.formats { checkReferenceBound(dtype) }
    }

    func checkReferenceBound(_ dtype: DType) {
        var rng = SplitMix64(seed: 42)
        let rows = 21, cols = dtype.blockElements == 256 ? 512 : 96
        let w = KernelTestData.randomWeight(dtype, rows: rows, cols: cols, rng: &rng)
        for n in [1, 5] {
            let x = KernelTestData.randomActivations(n * cols, rng: &rng)
            for isa in levels {
                let fast = Linear.forward(w, x, n: n, isa: isa)
                KernelTestData.assertWithinActivationBound(fast, w, x, n: n)
            }
        }
    }

    /// The activation plane holds q + 128 of value `kujira_vnni_block_order(p)` at byte p of each block.
    func testActivationPlaneFollowsTheCLaneOrder() throws {
        var rng = SplitMix64(seed: 43)
        let n = 3, cols = 64
        let x = KernelTestData.randomActivations(n * cols, rng: &rng)
        let activations = x.withUnsafeBufferPointer { Q8Activations($0, n: n, cols: cols, vnni: true) }
        let plane = try XCTUnwrap(activations.vnniValues)
        for t in 0..<n {
            let row = activations.row(t)
            for b in 0..<(cols / 32) {
                for p in 0..<32 {
                    let v = b * 32 + Int(kujira_vnni_block_order(Int32(p))), g = v / 16, u = v % 16
                    let q = row.lanes[2 * g + u % 2][u / 2]
                    XCTAssertEqual(Int(plane[t * cols + b * 32 + p]) - 128, Int(q), "token \(t) block \(b) byte \(p)")
                }
            }
        }
    }
}
