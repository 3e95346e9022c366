import Synchronization
import XCTest
@testable import KujiraTensor

final class ThreadPoolTests: XCTestCase {
    func testEveryIndexRunsExactlyOnce() {
        for threads in [1, 2, 3, 5] {
            let pool = ThreadPool(threadCount: threads)
            for n in [1, 2, 3, 7, 64, 1001] {
                for grain in [1, 10] {
                    var hits = [Int](repeating: 0, count: n)
                    hits.withUnsafeMutableBufferPointer { buffer in
                        pool.parallelFor(n, grain: grain) { range in
                            for i in range { buffer[i] += 1 }
                        }
                    }
                    XCTAssertEqual(hits, [Int](repeating: 1, count: n), "threads \(threads) n \(n) grain \(grain)")
                }
            }
        }
    }

    func testChunksCoverTheRangeAndNestedCallsRunInline() {
        let pool = ThreadPool(threadCount: 2)
        let ranges = Mutex<[Range<Int>]>([])
        let nestedTotal = Atomic<Int>(0)
        pool.parallelFor(100) { range in
            ranges.withLock { $0.append(range) }
            pool.parallelFor(10) { inner in nestedTotal.add(inner.count, ordering: .relaxed) }
        }
        // 2 threads → 4 chunks per thread, contiguous and in order once sorted.
        let sorted = ranges.withLock { $0.sorted { $0.lowerBound < $1.lowerBound } }
        XCTAssertEqual(sorted.count, 8)
        XCTAssertEqual(sorted.first?.lowerBound, 0)
        XCTAssertEqual(sorted.last?.upperBound, 100)
        XCTAssertTrue(zip(sorted, sorted.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        XCTAssertEqual(nestedTotal.load(ordering: .relaxed), 80)
        // A grain larger than half the range keeps everything on the caller, in one piece.
        ranges.withLock { $0.removeAll() }
        pool.parallelFor(100, grain: 60) { range in ranges.withLock { $0.append(range) } }
        XCTAssertEqual(ranges.withLock { $0 }, [0..<100])
        pool.setActiveThreads(1)
        ranges.withLock { $0.removeAll() }
        pool.parallelFor(100) { range in ranges.withLock { $0.append(range) } }
        XCTAssertEqual(ranges.withLock { $0 }, [0..<100])
    }

    func testManyBackToBackJobs() {
        let pool = ThreadPool(threadCount: 2)
        let total = Atomic<Int>(0)
        for _ in 0..<20000 {
            pool.parallelFor(4) { range in total.add(range.count, ordering: .relaxed) }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 80000)
    }

    func testCPUFeatureParsing() {
        let text = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16\n"
        let features = CPUFeatures.parse(cpuinfo: text, coreCount: 2)
        XCTAssertTrue(features.avx2 && features.fma && features.avx512bw && features.avx512vnni && features.avx512bf16)
        let old = CPUFeatures.parse(cpuinfo: "flags : fpu sse2 avx2\n", coreCount: 0)
        XCTAssertTrue(old.avx2)
        XCTAssertFalse(old.fma || old.avx512f)
        XCTAssertEqual(old.coreCount, 1)
    }
}
