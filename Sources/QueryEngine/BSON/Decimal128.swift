import Foundation

/// An IEEE 754-2008 decimal128 value in the binary integer decimal (BID) encoding BSON uses.
///
/// StratosDB stores and returns the 16 bytes unchanged (exact round-trip); arithmetic,
/// conversions and comparisons go through Intel's decimal library (`Decimal128+Arithmetic`).
public struct Decimal128: Sendable, Hashable, CustomStringConvertible {
    /// The low 64 bits.
    public var low: UInt64
    /// The high 64 bits (sign, combination field, exponent, coefficient high bits).
    public var high: UInt64

    /// Creates a value from its two halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    private static let exponentBias = 6176

    /// Whether the value is a NaN.
    public var isNaN: Bool { high & 0x7C00_0000_0000_0000 == 0x7C00_0000_0000_0000 }
    /// Whether the value is ±infinity.
    public var isInfinite: Bool { high & 0x7C00_0000_0000_0000 == 0x7800_0000_0000_0000 }
    /// Whether the sign bit is set.
    public var isNegative: Bool { high >> 63 == 1 }

    /// The coefficient (up to 113 bits) as high/low parts and the unbiased exponent.
    var parts: (coefficientHigh: UInt64, coefficientLow: UInt64, exponent: Int) {
        if high & 0x6000_0000_0000_0000 == 0x6000_0000_0000_0000 {
            // The "11" combination form: the coefficient would exceed 10^34, so it is non-canonical
            // and treated as zero (IEEE 754-2008 §3.5.2).
            let exponent = Int((high >> 47) & 0x3FFF) - Decimal128.exponentBias
            return (0, 0, exponent)
        }
        let exponent = Int((high >> 49) & 0x3FFF) - Decimal128.exponentBias
        var coefficientHigh = high & 0x0001_FFFF_FFFF_FFFF
        var coefficientLow = low
        // Coefficients above 10^34 - 1 are non-canonical and read as zero.
        if coefficientHigh > 0x0001_ED09_BEAD_87C0 || (coefficientHigh == 0x0001_ED09_BEAD_87C0 && coefficientLow > 0x378D_8E63_FFFF_FFFF) {
            coefficientHigh = 0
            coefficientLow = 0
        }
        return (coefficientHigh, coefficientLow, exponent)
    }

    /// The nearest `Double`, or `nil` never (NaN and infinities map to their Double forms).
    public var doubleValue: Double? { exactDoubleValue }

    /// The double that `_id` keys hold for a decimal (`IndexKey.idKey`): computed by hand, and
    /// within a few units in the last place of the nearest double. It is part of the file and
    /// history format (the documents' `id_key`, the state map and every signed commit hold it),
    /// so it stays as it is. Secondary indexes key decimals exactly (`IndexKey.decimalKey`).
    var keyDoubleValue: Double {
        if isNaN { return .nan }
        if isInfinite { return isNegative ? -.infinity : .infinity }
        let (coefficientHigh, coefficientLow, exponent) = parts
        let coefficient = Double(coefficientHigh) * 18_446_744_073_709_551_616.0 + Double(coefficientLow)
        let magnitude = coefficient == 0 ? 0 : coefficient * pow(10, Double(exponent))
        return isNegative ? -magnitude : magnitude
    }

    /// The decimal string, following the BSON decimal128 specification's to-string rules.
    public var description: String {
        if isNaN { return "NaN" }
        if isInfinite { return isNegative ? "-Infinity" : "Infinity" }
        let (coefficientHigh, coefficientLow, exponent) = parts
        var digits = Decimal128.decimalDigits(high: coefficientHigh, low: coefficientLow)
        let sign = isNegative ? "-" : ""
        let adjustedExponent = exponent + digits.count - 1
        if exponent > 0 || adjustedExponent < -6 {
            // Scientific notation.
            var text = String(digits.removeFirst())
            if !digits.isEmpty { text += "." + digits }
            text += "E" + (adjustedExponent >= 0 ? "+" : "") + String(adjustedExponent)
            return sign + text
        }
        if exponent == 0 { return sign + digits }
        let fractionCount = -exponent
        if digits.count > fractionCount {
            let split = digits.index(digits.endIndex, offsetBy: -fractionCount)
            return sign + digits[..<split] + "." + digits[split...]
        }
        return sign + "0." + String(repeating: "0", count: fractionCount - digits.count) + digits
    }

    /// Decimal digits of a 128-bit unsigned integer.
    static func decimalDigits(high: UInt64, low: UInt64) -> String {
        if high == 0 { return String(low) }
        var words: [UInt32] = [
            UInt32(truncatingIfNeeded: high >> 32), UInt32(truncatingIfNeeded: high),
            UInt32(truncatingIfNeeded: low >> 32), UInt32(truncatingIfNeeded: low),
        ]
        var chunks: [UInt32] = []
        while words.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            for index in words.indices {
                let value = remainder << 32 | UInt64(words[index])
                words[index] = UInt32(value / 1_000_000_000)
                remainder = value % 1_000_000_000
            }
            chunks.append(UInt32(remainder))
        }
        var text = String(chunks.removeLast())
        for chunk in chunks.reversed() {
            let part = String(chunk)
            text += String(repeating: "0", count: 9 - part.count) + part
        }
        return text
    }

    /// Makes a decimal from an integer (exponent 0), for `$sum` and `$avg` over decimals.
    public init(_ value: Int64) {
        let magnitude = value.magnitude
        high = (UInt64(Decimal128.exponentBias) << 49) | (value < 0 ? 1 << 63 : 0)
        low = magnitude
    }
}
