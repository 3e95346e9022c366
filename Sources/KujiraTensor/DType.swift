/// Element types Kujira reads from model files: safetensors names, plus llama.cpp's GGUF block formats.
///
/// Plain types store one element in `byteSize` bytes. Block-quantized types (`isQuantized`) store
/// `blockElements` elements in `blockBytes` bytes; a row's length must be a multiple of `blockElements`.
public enum DType: String, Sendable, CaseIterable, Codable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case f8e4m3 = "F8_E4M3"
    case i32 = "I32"
    case i64 = "I64"
    // GGML block formats (names as llama.cpp prints them).
    case q4_0 = "Q4_0"
    case q4_1 = "Q4_1"
    case q5_0 = "Q5_0"
    case q5_1 = "Q5_1"
    case q8_0 = "Q8_0"
    case q2_K = "Q2_K"
    case q3_K = "Q3_K"
    case q4_K = "Q4_K"
    case q5_K = "Q5_K"
    case q6_K = "Q6_K"
    // GGML "IQ" (importance / lattice) formats: non-linear 4-bit codebooks and E8/D4 lattice grids with sign bits.
    case iq4_nl = "IQ4_NL"
    case iq4_xs = "IQ4_XS"
    case iq2_xxs = "IQ2_XXS"
    case iq2_xs = "IQ2_XS"
    case iq2_s = "IQ2_S"
    case iq3_xxs = "IQ3_XXS"
    case iq3_s = "IQ3_S"
    case iq1_s = "IQ1_S"
    case iq1_m = "IQ1_M"

    /// Bytes one element takes in the file; for block formats, the bytes of one block (`blockBytes`).
    public var byteSize: Int { blockBytes }

    /// Elements per storage block (1 for plain types, 32 or 256 for GGML block formats).
    public var blockElements: Int {
        switch self {
        case .f32, .f16, .bf16, .f8e4m3, .i32, .i64: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl: return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: return 256
        case .iq4_xs, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m: return 256
        }
    }

    /// Bytes of one storage block.
    public var blockBytes: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .f8e4m3: return 1
        case .i64: return 8
        case .q4_0: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q8_0: return 34
        case .q2_K: return 84
        case .q3_K: return 110
        case .q4_K: return 144
        case .q5_K: return 176
        case .q6_K: return 210
        case .iq4_nl: return 18
        case .iq4_xs: return 136
        case .iq2_xxs: return 66
        case .iq2_xs: return 74
        case .iq2_s: return 82
        case .iq3_xxs: return 98
        case .iq3_s: return 110
        case .iq1_s: return 50
        case .iq1_m: return 56
        }
    }

    /// Whether elements are stored in quantized blocks with shared scales.
    public var isQuantized: Bool { blockElements > 1 }

    /// Bytes needed for `elements` elements, or nil when `elements` is not a whole number of blocks.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockElements == 0 else { return nil }
        let (bytes, overflow) = (elements / blockElements).multipliedReportingOverflow(by: blockBytes)
        return overflow ? nil : bytes
    }

    /// Whether the element decodes to a floating-point value (all block formats do).
    public var isFloatingPoint: Bool {
        switch self {
        case .i32, .i64: return false
        default: return true
        }
    }
}

/// Scalar conversions between the stored formats and Float.
public enum FloatConversion {
    /// bfloat16 bits → Float (exact: BF16 is the top half of an IEEE float).
    @inline(__always)
    public static func bf16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Float → bfloat16 bits, round to nearest even (NaN stays NaN).
    @inline(__always)
    public static func floatToBF16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x40 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    /// IEEE half bits → Float (exact; handles subnormals, inf and NaN).
    @inline(__always)
    public static func f16ToFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            // Subnormal half: mantissa * 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 31 {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
    }

    /// Float → IEEE half bits, round to nearest even.
    @inline(__always)
    public static func floatToF16(_ value: Float) -> UInt16 {
        #if arch(x86_64) || arch(arm64)
        return Float16(value).bitPattern
        #else
        fatalError("Float16 unavailable on this architecture")
        #endif
    }

    /// Lookup table for float8 e4m3fn (no infinities; 0x7F/0xFF are NaN), as DeepSeek-V3 stores weights.
    public static let f8e4m3Table: [Float] = (0..<256).map { decodeF8E4M3(UInt8($0)) }

    /// float8 e4m3fn bits → Float.
    public static func decodeF8E4M3(_ byte: UInt8) -> Float {
        let sign: Float = (byte & 0x80) != 0 ? -1 : 1
        let exponent = Int((byte >> 3) & 0x0F)
        let mantissa = Float(byte & 0x07)
        if exponent == 0x0F && (byte & 0x07) == 0x07 { return .nan }
        if exponent == 0 { return sign * mantissa / 8 * Float(sign: .plus, exponent: -6, significand: 1) }
        return sign * (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
    }
}
