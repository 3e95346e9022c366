/// GPT-2's reversible byte ↔ printable-character mapping used by byte-level BPE vocabularies.
enum ByteLevel {
    /// The character each byte is written as in the vocabulary.
    static let scalarOfByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
            if printable {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = next
                next += 1
            }
        }
        return table
    }()

    /// Inverse of `scalarOfByte`: index by scalar value (< 324), -1 where no byte maps there.
    static let byteOfScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (byte, scalar) in scalarOfByte.enumerated() { table[Int(scalar)] = Int16(byte) }
        return table
    }()

    /// Decodes a vocabulary string to raw bytes; nil if some character is not in the byte alphabet.
    static func decode(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.utf8.count)
        for scalar in token.unicodeScalars {
            guard scalar.value < 324 else { return nil }
            let byte = byteOfScalar[Int(scalar.value)]
            guard byte >= 0 else { return nil }
            bytes.append(UInt8(byte))
        }
        return bytes
    }

    /// Encodes raw bytes as the vocabulary's printable string.
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var view = String.UnicodeScalarView()
        for byte in bytes {
            if let scalar = Unicode.Scalar(scalarOfByte[Int(byte)]) { view.append(scalar) }
        }
        return String(view)
    }
}
