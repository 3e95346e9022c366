import Foundation

/// SIMD features of the CPU, detected at run time (Linux: the `flags` line of /proc/cpuinfo).
///
/// Swift has no per-function target attributes, so the Swift kernels are compiled for the build's baseline ISA;
/// these flags are reported by `kujira bench-kernels`; the C kernels' level is chosen by `KernelISA` (docs/kernels.md).
public struct CPUFeatures: Sendable, Equatable, CustomStringConvertible {
    public var avx2 = false
    public var fma = false
    public var f16c = false
    public var avx512f = false
    public var avx512bw = false
    public var avx512vl = false
    public var avx512vnni = false
    public var avx512vbmi = false
    public var avx512bf16 = false
    /// Logical cores available to this process.
    public var coreCount = 1

    /// The features of the machine running this process.
    public static let current = CPUFeatures.detect()

    /// Parses a /proc/cpuinfo text (exposed for tests).
    public static func parse(cpuinfo: String, coreCount: Int) -> CPUFeatures {
        var features = CPUFeatures()
        features.coreCount = max(1, coreCount)
        guard let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return features }
        let flags = Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        features.avx2 = flags.contains("avx2")
        features.fma = flags.contains("fma")
        features.f16c = flags.contains("f16c")
        features.avx512f = flags.contains("avx512f")
        features.avx512bw = flags.contains("avx512bw")
        features.avx512vl = flags.contains("avx512vl")
        features.avx512vnni = flags.contains("avx512_vnni")
        features.avx512vbmi = flags.contains("avx512vbmi")
        features.avx512bf16 = flags.contains("avx512_bf16")
        return features
    }

    static func detect() -> CPUFeatures {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else {
            return CPUFeatures(coreCount: cores)
        }
        return parse(cpuinfo: text, coreCount: cores)
    }

    public var description: String {
        let names: [(Bool, String)] = [(avx2, "AVX2"), (fma, "FMA"), (f16c, "F16C"), (avx512f, "AVX-512F"), (avx512bw, "AVX-512BW"),
                                       (avx512vl, "AVX-512VL"), (avx512vnni, "AVX-512VNNI"),
                                       (avx512vbmi, "AVX-512VBMI"), (avx512bf16, "AVX-512BF16")]
        let present = names.filter(\.0).map(\.1)
        return "\(coreCount) cores; " + (present.isEmpty ? "no AVX" : present.joined(separator: " "))
    }
}
