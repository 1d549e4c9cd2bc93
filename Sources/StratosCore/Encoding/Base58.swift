/// Base58 with the Bitcoin alphabet ("base58btc"), the encoding `did:key` uses behind its
/// multibase prefix `z` (draft-msporny-base58, W3C did:key method).
public enum Base58 {
    private static let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".utf8)
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (index, character) in alphabet.enumerated() { table[Int(character)] = Int8(index) }
        return table
    }()

    /// Encodes bytes; each leading zero byte becomes a leading `1`.
    public static func encode(_ bytes: [UInt8]) -> String {
        let zeros = bytes.prefix { $0 == 0 }.count
        // Base-256 to base-58 by repeated division; inputs here are keys and ids (< 100 bytes),
        // so the quadratic cost does not matter.
        var digits: [UInt8] = []
        for byte in bytes.dropFirst(zeros) {
            var carry = Int(byte)
            for index in digits.indices {
                carry += Int(digits[index]) << 8
                digits[index] = UInt8(carry % 58)
                carry /= 58
            }
            while carry > 0 {
                digits.append(UInt8(carry % 58))
                carry /= 58
            }
        }
        let text = [UInt8](repeating: alphabet[0], count: zeros) + digits.reversed().map { alphabet[Int($0)] }
        return String(decoding: text, as: UTF8.self)
    }

    /// Decodes base58btc text, rejecting characters outside the alphabet and inputs longer than
    /// `maxCount` characters (the caller's bound, checked before any work).
    public static func decode(_ text: String, maxCount: Int = 256) throws(StratosError) -> [UInt8] {
        let utf8 = Array(text.utf8)
        guard utf8.count <= maxCount else {
            throw StratosError(.limitExceeded, "base58 text longer than \(maxCount) characters")
        }
        let zeros = utf8.prefix { $0 == alphabet[0] }.count
        var bytes: [UInt8] = []
        for character in utf8.dropFirst(zeros) {
            guard character < 128, values[Int(character)] >= 0 else {
                throw StratosError(.invalidEncoding, "base58 text contains a character outside the alphabet")
            }
            var carry = Int(values[Int(character)])
            for index in bytes.indices {
                carry += Int(bytes[index]) * 58
                bytes[index] = UInt8(carry & 0xff)
                carry >>= 8
            }
            while carry > 0 {
                bytes.append(UInt8(carry & 0xff))
                carry >>= 8
            }
        }
        return [UInt8](repeating: 0, count: zeros) + bytes.reversed()
    }
}
