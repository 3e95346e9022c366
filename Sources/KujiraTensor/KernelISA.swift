import CKujiraKernels

/// The instruction set Kujira's C kernels (`CKujiraKernels`) run with, chosen once from the CPU and `KUJIRA_ISA`.
///
/// Swift compiles a module for one target CPU, and Kujira's modules are built for baseline x86-64 (no `unsafeFlags`), so the
/// hot kernels are C functions with their own target attributes; the Swift SIMD kernels are their references and serve
/// CPUs without AVX2 and other architectures. Results are bit for bit the same whichever runs.
public enum KernelISA: Int32, Sendable, Comparable, CustomStringConvertible {
    /// No C kernels: the Swift kernels (CPUs without AVX2 + FMA + F16C, other architectures, or `KUJIRA_ISA=swift`).
    case swift = 0
    /// AVX2 + FMA + F16C (Haswell on; Zen 1–3; Intel cores without AVX-512).
    case avx2 = 1
    /// AVX-512 F/BW/VL/VNNI/VBMI: the block dots use `vpdpbusd`.
    case avx512vnni = 2

    /// The best the CPU and this build support (ignores `KUJIRA_ISA`; tests compare every level up to it).
    public static let supported = KernelISA(rawValue: kujira_isa_supported()) ?? .swift

    /// What runs: `supported`, capped by `KUJIRA_ISA` (`swift` or `avx2`; anything else leaves it), chosen by the C library
    /// when it loads (`kujira_selected_isa`).
    public static var selected: KernelISA { KernelISA(rawValue: kujira_selected_isa()) ?? .swift }

    /// The cap `KUJIRA_ISA` sets (read by the C library when it loads).
    static var environmentCap: KernelISA { KernelISA(rawValue: kujira_isa_cap()) ?? .avx512vnni }

    /// Whether the float kernels (dots, F16/BF16/FP8 rows, the KV-cache rows, activation quantization, the training GEMM's
    /// AVX2 tile) run in C: `selected` is AVX2 or better.
    @inline(__always)
    public static var floatKernels: Bool { kujira_selected_isa() >= KernelISA.avx2.rawValue }

    /// Every level this machine can run, lowest first (tests).
    static var runnable: [KernelISA] { [.swift, .avx2, .avx512vnni].filter { $0 <= supported } }

    /// Levels order by what they need of the CPU.
    public static func < (a: KernelISA, b: KernelISA) -> Bool { a.rawValue < b.rawValue }

    /// The name `KUJIRA_ISA` and `kujira bench-kernels` use.
    public var description: String {
        switch self {
        case .swift: "swift"
        case .avx2: "avx2"
        case .avx512vnni: "avx512-vnni"
        }
    }
}
