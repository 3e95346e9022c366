/// Element types Kujira reads from model files (safetensors names; GGUF block types join in a later issue).
public enum DType: String, Sendable, CaseIterable, Codable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case f8e4m3 = "F8_E4M3"
    case i32 = "I32"
    case i64 = "I64"

    /// Bytes one element takes in the file.
    public var byteSize: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .f8e4m3: return 1
        case .i64: return 8
        }
    }

    /// Whether the element decodes to a floating-point value.
    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f8e4m3: return true
        case .i32, .i64: return false
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
