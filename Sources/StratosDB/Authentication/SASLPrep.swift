import Foundation
import QueryEngine

/// SASLprep (RFC 4013), the string preparation SCRAM-SHA-256 applies to passwords (RFC 7677).
///
/// Implemented here because neither libsodium nor swift-crypto offers it; it is small: map
/// non-ASCII spaces to U+0020 and drop the characters "commonly mapped to nothing" (RFC 3454
/// B.1, C.1.2), normalize with NFKC, then refuse the prohibited output of RFC 4013 §2.3.
enum SASLPrep {
    static func prepare(_ text: String) throws(QueryError) -> String {
        // Fast path: printable ASCII is unchanged by every step.
        if text.utf8.allSatisfy({ (0x20...0x7e).contains($0) }) { return text }
        var mapped = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isNonASCIISpace(scalar) {
                mapped.append(" ")
            } else if !isMappedToNothing(scalar) {
                mapped.append(scalar)
            }
        }
        let normalized = String(mapped).precomposedStringWithCompatibilityMapping
        for scalar in normalized.unicodeScalars where isProhibited(scalar) {
            throw QueryError(.authenticationFailed, "password contains a character SASLprep prohibits")
        }
        return normalized
    }

    private static func isNonASCIISpace(_ scalar: Unicode.Scalar) -> Bool {
        [0x00A0, 0x1680, 0x202F, 0x205F, 0x3000].contains(scalar.value) || (0x2000...0x200B).contains(scalar.value)
    }

    private static func isMappedToNothing(_ scalar: Unicode.Scalar) -> Bool {
        [0x00AD, 0x034F, 0x1806, 0x180B, 0x180C, 0x180D, 0x200C, 0x200D, 0x2060, 0xFEFF].contains(scalar.value)
            || (0xFE00...0xFE0F).contains(scalar.value)
    }

    private static func isProhibited(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || value == 0x7F || (0x80...0x9F).contains(value)  // control characters
            || (0xE000...0xF8FF).contains(value) || (0xF0000...0x10FFFF).contains(value)  // private use
            || (0xFDD0...0xFDEF).contains(value) || value & 0xFFFE == 0xFFFE  // non-characters
            || (0xD800...0xDFFF).contains(value)  // surrogates
            || (0x2FF0...0x2FFB).contains(value) || [0x0340, 0x0341, 0x200E, 0x200F].contains(value)
            || (0x202A...0x202E).contains(value) || (0x206A...0x206F).contains(value) || value == 0xE0001
            || (0xE0020...0xE007F).contains(value) || [0xFFF9, 0xFFFA, 0xFFFB, 0xFFFC, 0xFFFD].contains(value)
    }
}
