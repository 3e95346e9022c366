import ArgumentParser
import Foundation
import KujiraTensor

/// `kujira bench-kernels`: weight bytes streamed per second by `Linear.forward`, per format (hidden; for docs/kernels.md).
struct BenchKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-kernels",
        abstract: "Measure Linear.forward throughput per weight format (GB/s of weight bytes).",
        discussion: #"Example: kujira bench-kernels --threads 2 --formats q4_k,q8_0"#,
        shouldDisplay: false
    )

    @Option(help: "Comma-separated thread counts.")
    var threads: String = "1,2"

    @Option(help: "Comma-separated shapes rows x cols (out x in).")
    var shapes: String = "576x2048,2048x8192"

    @Option(help: "Comma-separated token counts (1 = matvec).")
    var tokens: String = "1"

    @Option(help: "Comma-separated formats (F32, F16, BF16, F8_E4M3, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, ..., Q6_K).")
    var formats: String = "F32,F16,BF16,F8_E4M3,Q8_0,Q4_0,Q4_1,Q5_0,Q5_1,Q2_K,Q3_K,Q4_K,Q5_K,Q6_K"

    @Option(help: "Seconds to spend per measurement.")
    var seconds: Double = 0.3

    func validate() throws {
        guard parsedThreads.allSatisfy({ $0 >= 1 }), !parsedThreads.isEmpty else { throw ValidationError("--threads: positive integers, e.g. 1,2") }
        guard !parsedShapes.isEmpty else { throw ValidationError("--shapes: e.g. 576x2048,2048x8192") }
        guard parsedTokens.allSatisfy({ $0 >= 1 }), !parsedTokens.isEmpty else { throw ValidationError("--tokens: positive integers") }
        for name in formats.split(separator: ",") where DType(rawValue: String(name)) == nil {
            throw ValidationError("--formats: unknown format \(name)")
        }
    }

    private var parsedThreads: [Int] { threads.split(separator: ",").compactMap { Int($0) } }
    private var parsedTokens: [Int] { tokens.split(separator: ",").compactMap { Int($0) } }
    private var parsedShapes: [(Int, Int)] {
        shapes.split(separator: ",").compactMap { shape in
            let parts = shape.split(separator: "x").compactMap { Int($0) }
            return parts.count == 2 && parts[0] > 0 && parts[1] > 0 ? (parts[0], parts[1]) : nil
        }
    }

    func run() throws {
        let pool = ThreadPool.shared
        print("CPU: \(CPUFeatures.current); kernels: \(KernelISA.selected); pool max threads \(pool.maxThreads)")
        for t in parsedThreads {
            pool.setActiveThreads(t)
            print(String(format: "memory read bandwidth, %d thread(s): %.1f GB/s", pool.activeThreads, MemoryBandwidth.read(pool: pool, seconds: seconds)))
        }
        print("format    shape          tokens threads   ms/call   GB/s  CPU-ms/call  (GB/s = weight bytes / wall time; CPU-ms includes spinning workers)")
        for name in formats.split(separator: ",") {
            let dtype = DType(rawValue: String(name))!
            for (rows, cols) in parsedShapes {
                guard cols % dtype.blockElements == 0 else { continue }
                let weight = BenchData.weight(dtype, rows: rows, cols: cols)
                let bytes = Double(weight.data.bytes.count)
                for n in parsedTokens {
                    let x = (0..<(n * cols)).map { Float(sin(Double($0))) }
                    var out = [Float](repeating: 0, count: n * rows)
                    for t in parsedThreads {
                        pool.setActiveThreads(t)
                        let (perCall, cpuPerCall) = x.withUnsafeBufferPointer { xb in
                            out.withUnsafeMutableBufferPointer { ob in
                                BenchData.timeWithCPU(seconds: seconds) { Linear.forward(weight, xb, n: n, into: ob) }
                            }
                        }
                        print(String(format: "%-9@ %5dx%-8d %6d %7d %9.3f %6.2f %10.3f", dtype.rawValue as NSString, rows, cols, n, pool.activeThreads,
                                     perCall * 1e3, bytes / perCall / 1e9, cpuPerCall * 1e3))
                    }
                }
            }
        }
    }
}

/// Synthetic weights and timing for the kernel benchmark.
enum BenchData {
    /// Random bytes in the stored format, with finite, small f16 block scales.
    static func weight(_ dtype: DType, rows: Int, cols: Int) -> LinearWeight {
        let count = dtype.byteCount(elements: rows * cols)!
        let storage = OwnedBytes(count: count)
        var state: UInt64 = 0x1234_5678
        for i in stride(from: 0, to: count - 7, by: 8) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            storage.pointer.storeBytes(of: state, toByteOffset: i, as: UInt64.self)
        }
        let half = Float16(0.01).bitPattern
        let fields: [Int]
        switch dtype {
        case .q4_0, .q5_0, .q8_0: fields = [0]
        case .q4_1, .q5_1, .q4_K, .q5_K: fields = [0, 2]
        case .q2_K: fields = [80, 82]
        case .q3_K: fields = [108]
        case .q6_K: fields = [208]
        case .iq4_nl, .iq4_xs, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s: fields = [0]
        default: fields = []
        }
        if dtype.isQuantized {
            for b in 0..<(count / dtype.blockBytes) {
                for f in fields { storage.pointer.storeBytes(of: half, toByteOffset: b * dtype.blockBytes + f, as: UInt16.self) }
            }
        } else if dtype == .f32 {
            for i in 0..<(rows * cols) { storage.pointer.storeBytes(of: Float(i % 7) * 0.1, toByteOffset: 4 * i, as: Float.self) }
        } else if dtype == .f8e4m3 {
            // Real FP8 checkpoints (values scaled up to ±448 per block) hold no NaN codes and almost no
            // subnormals; both take the kernel's scalar path, so keep every byte a normal number.
            for i in 0..<count {
                let byte = storage.pointer.load(fromByteOffset: i, as: UInt8.self)
                var exponent = (byte >> 3) & 0x0F
                if exponent == 0 { exponent = 1 }
                var code = (byte & 0x80) | exponent << 3 | (byte & 0x07)
                if code & 0x7F == 0x7F { code &= 0xFE }
                storage.pointer.storeBytes(of: code, toByteOffset: i, as: UInt8.self)
            }
        } else if dtype == .f16 || dtype == .bf16 {
            // Realistic magnitudes: random bit patterns would make subnormal products, which are slow on x86.
            for i in 0..<(rows * cols) {
                let value = Float(i % 13) * 0.01 - 0.06
                let bits = dtype == .f16 ? FloatConversion.floatToF16(value) : FloatConversion.floatToBF16(value)
                storage.pointer.storeBytes(of: bits, toByteOffset: 2 * i, as: UInt16.self)
            }
        }
        let data = TensorData(dtype: dtype, shape: [rows, cols], bytes: UnsafeRawBufferPointer(start: storage.pointer, count: count), owner: storage)
        if dtype == .f8e4m3 {
            let grid = [(rows + 127) / 128, (cols + 127) / 128]
            return LinearWeight(data: data, blockScales: BlockScales(values: [Float](repeating: 0.01, count: grid[0] * grid[1]), gridCols: grid[1], blockRows: 128, blockCols: 128))
        }
        return LinearWeight(data: data)
    }

    /// Mean wall seconds and process CPU seconds per call (CPU time is robust to other processes sharing the cores).
    static func timeWithCPU(seconds: Double, _ body: () -> Void) -> (wall: Double, cpu: Double) {
        func cpuNow() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
        body()
        var calls = 0
        let cpuStart = cpuNow()
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed = 0.0
        repeat {
            body()
            calls += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < seconds
        return (elapsed / Double(calls), (cpuNow() - cpuStart) / Double(calls))
    }

    /// Mean seconds per call over at least `seconds` (after one warm-up call).
    static func time(seconds: Double, _ body: () -> Void) -> Double {
        body()
        var calls = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed = 0.0
        repeat {
            body()
            calls += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < seconds
        return elapsed / Double(calls)
    }
}
