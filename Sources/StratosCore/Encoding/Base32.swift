/// Lower-case base32 with the RFC 4648 §6 alphabet and no padding: space identifiers use it
/// because every character is valid in a MongoDB database name and in a file name.
public enum Base32 {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    /// Encodes bytes without padding.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | Int(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[(buffer >> (bits - 5)) & 31])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[(buffer << (5 - bits)) & 31]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether every character of `text` is in the lower-case alphabet.
    public static func isEncoded(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { alphabet.contains($0) }
    }
}

/// Base64url without padding (RFC 4648 §5), for tokens that travel inside URIs.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (index, character) in alphabet.enumerated() { table[Int(character)] = Int8(index) }
        return table
    }()

    /// Encodes bytes without padding.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var buffer = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | Int(byte)
            bits += 8
            while bits >= 6 {
                out.append(alphabet[(buffer >> (bits - 6)) & 63])
                bits -= 6
            }
            buffer &= (1 << bits) - 1
        }
        if bits > 0 { out.append(alphabet[(buffer << (6 - bits)) & 63]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes unpadded base64url, rejecting other characters, impossible lengths and non-zero
    /// trailing bits (one text per byte string, so a token has exactly one spelling).
    public static func decode(_ text: String, maxCount: Int) throws(StratosError) -> [UInt8] {
        let utf8 = Array(text.utf8)
        guard utf8.count <= maxCount else {
            throw StratosError(.limitExceeded, "base64url text longer than \(maxCount) characters")
        }
        guard utf8.count % 4 != 1 else { throw StratosError(.invalidEncoding, "base64url text has an impossible length") }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count * 3 / 4)
        var buffer = 0
        var bits = 0
        for character in utf8 {
            guard character < 128, values[Int(character)] >= 0 else {
                throw StratosError(.invalidEncoding, "base64url text contains a character outside the alphabet")
            }
            buffer = (buffer << 6) | Int(values[Int(character)])
            bits += 6
            if bits >= 8 {
                out.append(UInt8((buffer >> (bits - 8)) & 0xff))
                bits -= 8
            }
            buffer &= (1 << bits) - 1
        }
        guard buffer == 0 else { throw StratosError(.invalidEncoding, "base64url text has non-zero trailing bits") }
        return out
    }
}
