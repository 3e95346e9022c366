/// Lookup tables of the GGUF "IQ" formats; the constants are generated into `IQGrids*.swift` by scripts/gen-iq-grids.py.
enum IQGrids {}

/// The IQ tables copied once into never-freed memory, so kernels index them through plain pointers (a `static let`
/// array read in a loop costs a `swift_once` check and a retain per access).
struct IQTables: @unchecked Sendable {
    static let shared = IQTables()

    /// `ksigns_iq2xs`: sign byte for a 7-bit sign index (bit j set = value j negative).
    let ksigns: UnsafePointer<UInt8>
    /// `kvalues_iq4nl` as int8.
    let iq4nl: UnsafePointer<Int8>
    /// Grids of 8 values per UInt64 (byte j = value j): IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S/IQ1_M (IQ1 values are int8 -1/0/1).
    let iq2xxs: UnsafePointer<UInt64>, iq2xs: UnsafePointer<UInt64>, iq2s: UnsafePointer<UInt64>, iq1s: UnsafePointer<UInt64>
    /// Grids of 4 values per UInt32: IQ3_XXS, IQ3_S.
    let iq3xxs: UnsafePointer<UInt32>, iq3s: UnsafePointer<UInt32>

    private init() {
        func copy<T>(_ a: [T]) -> UnsafePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: a.count)
            p.initialize(from: a, count: a.count)
            return UnsafePointer(p)
        }
        ksigns = copy(IQGrids.ksigns)
        iq4nl = copy(IQGrids.iq4nl.map { Int8(bitPattern: $0) })
        iq2xxs = copy(IQGrids.iq2xxs)
        iq2xs = copy(IQGrids.iq2xs)
        iq2s = copy(IQGrids.iq2s)
        iq1s = copy(IQGrids.iq1s)
        iq3xxs = copy(IQGrids.iq3xxs)
        iq3s = copy(IQGrids.iq3s)
    }

    /// Byte `j` (0..<8) of a grid row.
    @inline(__always)
    static func byte(_ row: UInt64, _ j: Int) -> UInt8 { UInt8(truncatingIfNeeded: row >> UInt64(8 &* j)) }

    /// Byte `j` (0..<4) of a 4-value grid row.
    @inline(__always)
    static func byte(_ row: UInt32, _ j: Int) -> UInt8 { UInt8(truncatingIfNeeded: row >> UInt32(8 &* j)) }
}
