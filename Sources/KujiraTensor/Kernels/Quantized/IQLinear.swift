/// Fused dots of the IQ formats with `Q8Activations`: each 32-value run of a block is unpacked to int16 weights
/// (grid values with their signs applied, IQ4 levels, or IQ1's `8·grid ± 1`) in the `[even | odd]` lane order of
/// `Q8Row.blockLanes`, multiplied exactly with the int8 activations (`multiplyAddPairs`), and scaled in float per run
/// (or per 16 values where the format has a scale per 16). `w = scale · int` holds exactly for every format, so the
/// only differences from "dequantize, then dot" are float roundings of the scale products and the sum.
protocol IQRunFormat: QuantizedDot {
    static var blockBytes: Int { get }
    /// 32-value runs per block (1 for IQ4_NL, 8 for the 256-value formats).
    static var runsPerBlock: Int { get }
    /// Whether values 16..<32 of a run have their own scale (IQ2_XS, IQ2_S, IQ1_M).
    static var scalePer16: Bool { get }
    /// Run `r` of `block`: integer weights (two 16-lane vectors, `blockLanes` order) and the scales of values 0..<16
    /// and 16..<32 (equal unless `scalePer16`).
    static func run(_ block: UnsafeRawPointer, _ r: Int, _ t: IQTables, halves: UnsafePointer<Float>) -> IQRun
}

/// One unpacked 32-value run: `w = s0 · lanes0` for values 0..<16, `s1 · lanes1` for 16..<32.
struct IQRun {
    var lanes0: SIMD16<Int16>, lanes1: SIMD16<Int16>
    var s0: Float, s1: Float
}

/// Two groups of 8 values (memory order) as one 16-lane vector in `[even | odd]` order.
@inline(__always)
func iqEvenOdd(_ a: SIMD8<Int16>, _ b: SIMD8<Int16>) -> SIMD16<Int16> {
    var r = SIMD16<Int16>()
    for k in 0..<4 {
        r[k] = a[2 &* k]; r[8 &+ k] = a[2 &* k &+ 1]
        r[4 &+ k] = b[2 &* k]; r[12 &+ k] = b[2 &* k &+ 1]
    }
    return r
}

/// 8 unsigned grid bytes with sign bits applied (bit j of `signs` set: value j negated).
@inline(__always)
func iqSigned8(_ row: UInt64, _ signs: UInt8) -> SIMD8<Int16> {
    var r = SIMD8<Int16>()
    for j in 0..<8 {
        let g = Int16(truncatingIfNeeded: (row >> UInt64(8 &* j)) & 0xFF)
        let negative = Int16(truncatingIfNeeded: (signs >> UInt8(j)) & 1)
        r[j] = (g ^ (0 &- negative)) &+ negative
    }
    return r
}

/// Two 4-value grid rows with sign bits applied (bits 0–3 for `a`, 4–7 for `b`).
@inline(__always)
func iqSigned8(_ a: UInt32, _ b: UInt32, _ signs: UInt8) -> SIMD8<Int16> {
    iqSigned8(UInt64(a) | UInt64(b) << 32, signs)
}

/// IQ1 grid row (int8 −1/0/1) as `8·g + delta8` (delta8 = ±1).
@inline(__always)
func iqShifted8(_ row: UInt64, _ delta8: Int16) -> SIMD8<Int16> {
    var r = SIMD8<Int16>()
    for j in 0..<8 { r[j] = 8 &* Int16(Int8(truncatingIfNeeded: row >> UInt64(8 &* j))) &+ delta8 }
    return r
}

extension IQRunFormat {
    @inline(__always)
    static func dot(_ row: UnsafeRawPointer, _ x: Q8Row, blocks: Int) -> Float {
        let t = IQTables.shared
        var acc = SIMD8<Float>()
        for b in 0..<blocks {
            let block = row + b &* blockBytes
            for r in 0..<runsPerBlock {
                let u = run(block, r, t, halves: x.halves), xb = b &* runsPerBlock &+ r
                let lanes = x.blockLanes(xb)
                if scalePer16 {
                    acc.addProduct(exactFloat(multiplyAddPairs(u.lanes0, lanes.0)), x.blockScale(xb, times: u.s0))
                    acc.addProduct(exactFloat(multiplyAddPairs(u.lanes1, lanes.1)), x.blockScale(xb, times: u.s1))
                } else {
                    acc.addProduct(exactFloat(multiplyAddPairs(u.lanes0, lanes.0, u.lanes1, lanes.1)), x.blockScale(xb, times: u.s0))
                }
            }
        }
        return treeSum(acc)
    }

    /// `dot` for four tokens, each run unpacked once; per token the same float operations in the same order.
    @inline(__always)
    static func dot4(_ row: UnsafeRawPointer, _ x: Q8Rows4, blocks: Int) -> SIMD4<Float> {
        let t = IQTables.shared
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
        for b in 0..<blocks {
            let block = row + b &* blockBytes
            for r in 0..<runsPerBlock {
                let u = run(block, r, t, halves: x.0.halves), xb = b &* runsPerBlock &+ r
                @inline(__always)
                func step(_ acc: inout SIMD8<Float>, _ x: Q8Row) {
                    let lanes = x.blockLanes(xb)
                    if scalePer16 {
                        acc.addProduct(exactFloat(multiplyAddPairs(u.lanes0, lanes.0)), x.blockScale(xb, times: u.s0))
                        acc.addProduct(exactFloat(multiplyAddPairs(u.lanes1, lanes.1)), x.blockScale(xb, times: u.s1))
                    } else {
                        acc.addProduct(exactFloat(multiplyAddPairs(u.lanes0, lanes.0, u.lanes1, lanes.1)), x.blockScale(xb, times: u.s0))
                    }
                }
                step(&acc0, x.0); step(&acc1, x.1); step(&acc2, x.2); step(&acc3, x.3)
            }
        }
        return SIMD4(treeSum(acc0), treeSum(acc1), treeSum(acc2), treeSum(acc3))
    }
}

/// Half at `p + offset` through the exact table the dots carry.
@inline(__always)
private func half(_ halves: UnsafePointer<Float>, _ p: UnsafeRawPointer, _ offset: Int) -> Float {
    halves[Int(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))]
}

/// 16 packed IQ4 nibble bytes as levels: low nibbles (values 0..<16) and high nibbles (16..<32), `[even | odd]` order.
@inline(__always)
private func iq4Lanes(_ qs: UnsafeRawPointer, _ levels: UnsafePointer<Int8>) -> (SIMD16<Int16>, SIMD16<Int16>) {
    var low = SIMD16<Int16>(), high = SIMD16<Int16>()
    for k in 0..<8 {
        let even = qs.load(fromByteOffset: 2 &* k, as: UInt8.self), odd = qs.load(fromByteOffset: 2 &* k &+ 1, as: UInt8.self)
        low[k] = Int16(levels[Int(even & 0x0F)]); low[8 &+ k] = Int16(levels[Int(odd & 0x0F)])
        high[k] = Int16(levels[Int(even >> 4)]); high[8 &+ k] = Int16(levels[Int(odd >> 4)])
    }
    return (low, high)
}

extension IQ4_NL: IQRunFormat {
    static var runsPerBlock: Int { 1 }
    static var scalePer16: Bool { false }
    @inline(__always)
    static func run(_ block: UnsafeRawPointer, _ r: Int, _ t: IQTables, halves: UnsafePointer<Float>) -> IQRun {
        let (low, high) = iq4Lanes(block + 2, t.iq4nl)
        let d = half(halves, block, 0)
        return IQRun(lanes0: low, lanes1: high, s0: d, s1: d)
    }
}

extension IQ4_XS: IQRunFormat {
    static var runsPerBlock: Int { 8 }
    static var scalePer16: Bool { false }
    @inline(__always)
    static func run(_ block: UnsafeRawPointer, _ r: Int, _ t: IQTables, halves: UnsafePointer<Float>) -> IQRun {
        let (low, high) = iq4Lanes(block + 8 + 16 * r, t.iq4nl)
        let dl = half(halves, block, 0) * Float(scale(block, r))
        return IQRun(lanes0: low, lanes1: high, s0: dl, s1: dl)
    }
}

extension IQ2_XXS: IQRunFormat {
    static var runsPerBlock: Int { 8 }
    static var scalePer16: Bool { false }
    @inline(__always)
    static func run(_ block: UnsafeRawPointer, _ r: Int, _ t: IQTables, halves: UnsafePointer<Float>) -> IQRun {
        let a0 = block.loadUnaligned(fromByteOffset: 2 + 8 * r, as: UInt32.self)
        let a1 = block.loadUnaligned(fromByteOffset: 6 + 8 * r, as: UInt32.self)
        @inline(__always) func group(_ l: Int) -> SIMD8<Int16> {
            iqSigned8(t.iq2xxs[Int((a0 >> UInt32(8 * l)) & 0xFF)], t.ksigns[Int((a1 >> UInt32(7 * l)) & 127)])
        }
        let db = half(halves, block, 0) * (0.5 + Float(a1 >> 28)) * 0.25
        return IQRun(lanes0: iqEvenOdd(group(0), group(1)), lanes1: iqEvenOdd(group(2), group(3)), s0: db, s1: db)
    }
}

extension IQ2_XS: IQRunFormat {
    static var runsPerBlock: Int { 8 }
    static var scalePer16: Bool { true }
    @inline(__always)
    static func run(_ block: UnsafeRawPointer, _ r: Int, _ t: IQTables, halves: UnsafePointer<Float>) -> IQRun {
        @inline(__always) func group(_ k: Int) -> SIMD8<Int16> {
            let q = block.loadUnaligned(fromByteOffset: 2 + 2 * k, as: UInt16.self)
            return iqSigned8(t.iq2xs[Int(q & 511)], t.ksigns[Int(q >> 9)])
        }
        let d = half(halves, block, 0), s = block.load(fromByteOffset: 66 + r, as: UInt8.self)
        return IQRun(lanes0: iqEvenOdd(group(4 * r), group(4 * r + 1)), lanes1: iqEvenOdd(group(4 * r + 2), group(4 * r + 3)),
                     s0: d * (0.5 + Float(s & 0x0F)) * 0.25, s1: d * (0.5 + Float(s >> 4)) * 0.25)
    }
}

extension IQ2_S: IQRunFormat {
    static var runsPerBlock: Int { 8 }
    static var scalePer16: Bool { true }
    @inline(__always)
    static func run(_ block: UnsafeRawPointer, _ r: Int, _ t: IQTables, halves: UnsafePointer<Float>) -> IQRun {
        let qh = block.load(fromByteOffset: 66 + r, as: UInt8.self)
        @inline(__always) func group(_ l: Int) -> SIMD8<Int16> {
            let index = Int(block.load(fromByteOffset: 2 + 4 * r + l, as: UInt8.self)) | Int((qh >> UInt8(2 * l)) & 3) << 8
            return iqSigned8(t.iq2s[index], block.load(fromByteOffset: 34 + 4 * r + l, as: UInt8.self))
        }
        let d = half(halves, block, 0), s = block.load(fromByteOffset: 74 + r, as: UInt8.self)
        return IQRun(lanes0: iqEvenOdd(group(0), group(1)), lanes1: iqEvenOdd(group(2), group(3)),
                     s0: d * (0.5 + Float(s & 0x0F)) * 0.25, s1: d * (0.5 + Float(s >> 4)) * 0.25)
    }
}

extension IQ3_XXS: IQRunFormat {
    static var runsPerBlock: Int { 8 }
    static var scalePer16: Bool { false }
    @inline(__always)
    static func run(_ block: UnsafeRawPointer, _ r: Int, _ t: IQTables, halves: UnsafePointer<Float>) -> IQRun {
        let a = block.loadUnaligned(fromByteOffset: 66 + 4 * r, as: UInt32.self)
        @inline(__always) func group(_ l: Int) -> SIMD8<Int16> {
            let g0 = t.iq3xxs[Int(block.load(fromByteOffset: 2 + 8 * r + 2 * l, as: UInt8.self))]
            let g1 = t.iq3xxs[Int(block.load(fromByteOffset: 3 + 8 * r + 2 * l, as: UInt8.self))]
            return iqSigned8(g0, g1, t.ksigns[Int((a >> UInt32(7 * l)) & 127)])
        }
        let db = half(halves, block, 0) * (0.5 + Float(a >> 28)) * 0.5
        return IQRun(lanes0: iqEvenOdd(group(0), group(1)), lanes1: iqEvenOdd(group(2), group(3)), s0: db, s1: db)
    }
}

extension IQ3_S: IQRunFormat {
    static var runsPerBlock: Int { 8 }
    static var scalePer16: Bool { false }
    @inline(__always)
    static func run(_ block: UnsafeRawPointer, _ r: Int, _ t: IQTables, halves: UnsafePointer<Float>) -> IQRun {
        let qh = block.load(fromByteOffset: 66 + r, as: UInt8.self)
        @inline(__always) func entry(_ i: Int) -> UInt32 {
            t.iq3s[Int(block.load(fromByteOffset: 2 + 8 * r + i, as: UInt8.self)) | Int((qh >> UInt8(i)) & 1) << 8]
        }
        @inline(__always) func group(_ l: Int) -> SIMD8<Int16> {
            iqSigned8(entry(2 * l), entry(2 * l + 1), block.load(fromByteOffset: 74 + 4 * r + l, as: UInt8.self))
        }
        let s = (block.load(fromByteOffset: 106 + r / 2, as: UInt8.self) >> UInt8(4 * (r & 1))) & 0x0F
        let db = half(halves, block, 0) * Float(1 + 2 * Int(s))
        return IQRun(lanes0: iqEvenOdd(group(0), group(1)), lanes1: iqEvenOdd(group(2), group(3)), s0: db, s1: db)
    }
}

extension IQ1_S: IQRunFormat {
    static var runsPerBlock: Int { 8 }
    static var scalePer16: Bool { false }
    @inline(__always)
    static func run(_ block: UnsafeRawPointer, _ r: Int, _ t: IQTables, halves: UnsafePointer<Float>) -> IQRun {
        let h = block.loadUnaligned(fromByteOffset: 34 + 2 * r, as: UInt16.self)
        let delta8: Int16 = h & 0x8000 != 0 ? -1 : 1
        @inline(__always) func group(_ l: Int) -> SIMD8<Int16> {
            let index = Int(block.load(fromByteOffset: 2 + 4 * r + l, as: UInt8.self)) | Int((h >> UInt16(3 * l)) & 7) << 8
            return iqShifted8(t.iq1s[index], delta8)
        }
        let dl = half(halves, block, 0) * Float(2 * Int((h >> 12) & 7) + 1) * 0.125
        return IQRun(lanes0: iqEvenOdd(group(0), group(1)), lanes1: iqEvenOdd(group(2), group(3)), s0: dl, s1: dl)
    }
}

extension IQ1_M: IQRunFormat {
    static var runsPerBlock: Int { 8 }
    static var scalePer16: Bool { true }
    @inline(__always)
    static func run(_ block: UnsafeRawPointer, _ r: Int, _ t: IQTables, halves: UnsafePointer<Float>) -> IQRun {
        @inline(__always) func group(_ k: Int) -> SIMD8<Int16> {
            let nibble = (block.load(fromByteOffset: 32 + k / 2, as: UInt8.self) >> UInt8(4 * (k % 2))) & 0x0F
            let index = Int(block.load(fromByteOffset: k, as: UInt8.self)) | Int(nibble & 7) << 8
            return iqShifted8(t.iq1s[index], nibble & 8 != 0 ? -1 : 1)
        }
        let d = superScale(block)
        let word = block.loadUnaligned(fromByteOffset: 48 + 2 * (r / 2), as: UInt16.self), shift = UInt16(6 * (r % 2))
        let s0 = d * Float(2 * Int((word >> shift) & 7) + 1) * 0.125
        let s1 = d * Float(2 * Int((word >> (shift + 3)) & 7) + 1) * 0.125
        return IQRun(lanes0: iqEvenOdd(group(4 * r), group(4 * r + 1)), lanes1: iqEvenOdd(group(4 * r + 2), group(4 * r + 3)), s0: s0, s1: s1)
    }
}
