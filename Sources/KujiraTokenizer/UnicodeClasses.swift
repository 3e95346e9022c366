/// Bit flags for the Unicode classes the pre-tokenizer patterns test (`\p{L}`, `\p{M}`, `\p{N}`, `\p{P}`,
/// `\p{S}`, `\s` = White_Space); one byte per scalar.
enum ScalarClass {
    static let letter: UInt8 = 1
    static let mark: UInt8 = 2
    static let number: UInt8 = 4
    static let punctuation: UInt8 = 8
    static let symbol: UInt8 = 16
    static let whitespace: UInt8 = 32
    static let separator: UInt8 = 64
    static let other: UInt8 = 128

    /// Classes of every scalar of the Basic Multilingual Plane, computed once from the stdlib's Unicode tables.
    static let bmpTable: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 0x10000)
        for value in 0..<0x10000 {
            table[value] = compute(UInt32(value))
        }
        return table
    }()

    @inline(__always)
    static func of(_ value: UInt32) -> UInt8 {
        value < 0x10000 ? bmpTable[Int(value)] : compute(value)
    }

    static func compute(_ value: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(value) else { return other }
        let properties = scalar.properties
        var flags: UInt8 = properties.isWhitespace ? whitespace : 0
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            flags |= letter
        case .nonspacingMark, .spacingMark, .enclosingMark:
            flags |= mark
        case .decimalNumber, .letterNumber, .otherNumber:
            flags |= number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            flags |= punctuation
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            flags |= symbol
        case .spaceSeparator, .lineSeparator, .paragraphSeparator:
            flags |= separator
        default:
            flags |= other
        }
        return flags
    }

    /// Maps a `\p{...}` property name to its flag, or nil when the name is not one of the supported classes.
    static func flag(forProperty name: String) -> UInt8? {
        switch name {
        case "L", "Letter": return letter
        case "M", "Mark": return mark
        case "N", "Number": return number
        case "P", "Punctuation": return punctuation
        case "S", "Symbol": return symbol
        case "Z", "Separator": return separator
        case "C", "Other": return other
        default: return nil
        }
    }
}

/// Text decoded once into unicode scalars with their classes and UTF-8 byte offsets; the pre-tokenizers
/// work on scalar indices, BPE on the UTF-8 bytes.
struct ScalarText {
    var bytes: [UInt8]
    var scalars: [UInt32]
    var classes: [UInt8]
    /// byteOffsets[i] is where scalar i starts in `bytes`; byteOffsets[scalars.count] == bytes.count.
    var byteOffsets: [Int32]

    init(_ string: String) {
        self.init(utf8: Array(string.utf8))
    }

    /// Expects valid UTF-8 (Swift strings always are).
    init(utf8 bytes: [UInt8]) {
        self.bytes = bytes
        var scalars = [UInt32]()
        var classes = [UInt8]()
        var offsets = [Int32]()
        scalars.reserveCapacity(bytes.count)
        classes.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        let table = ScalarClass.bmpTable
        bytes.withUnsafeBufferPointer { buffer in
            table.withUnsafeBufferPointer { table in
                var index = 0
                let count = buffer.count
                while index < count {
                    let lead = buffer[index]
                    var value: UInt32
                    var length: Int
                    if lead < 0x80 {
                        value = UInt32(lead); length = 1
                    } else if lead < 0xE0 {
                        value = UInt32(lead & 0x1F); length = 2
                    } else if lead < 0xF0 {
                        value = UInt32(lead & 0x0F); length = 3
                    } else {
                        value = UInt32(lead & 0x07); length = 4
                    }
                    if index + length > count { length = count - index }
                    var k = 1
                    while k < length {
                        value = (value << 6) | UInt32(buffer[index + k] & 0x3F)
                        k += 1
                    }
                    offsets.append(Int32(index))
                    scalars.append(value)
                    classes.append(value < 0x10000 ? table[Int(value)] : ScalarClass.compute(value))
                    index += length
                }
            }
        }
        offsets.append(Int32(bytes.count))
        self.scalars = scalars
        self.classes = classes
        self.byteOffsets = offsets
    }

    var count: Int { scalars.count }
}
