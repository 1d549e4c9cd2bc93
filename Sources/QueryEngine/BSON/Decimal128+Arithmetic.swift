import CDecimal
import Foundation

/// Exact decimal arithmetic through Intel's decimal library (`CDecimal`), the one MongoDB uses:
/// every result has decimal128's 34 digits, rounded to nearest with ties to even, exactly as
/// MongoDB computes it.
extension Decimal128 {
    init(_ bid: stratos_decimal) { self.init(high: bid.w.1, low: bid.w.0) }

    var bid: stratos_decimal {
        var value = stratos_decimal()
        value.w = (low, high)
        return value
    }

    public static let zero = Decimal128(Int64(0))
    public static let one = Decimal128(Int64(1))
    public static let nan = Decimal128(high: 0x7C00_0000_0000_0000, low: 0)

    /// A double as MongoDB converts it in arithmetic and `$toDecimal`: rounded to 15
    /// significant digits (so 0.1 becomes 0.100000000000000, not the double's binary expansion).
    public init(roundingToFifteenDigits double: Double) {
        if double.isNaN {
            self = .nan
        } else if double.isInfinite {
            self.init(high: double < 0 ? 0xF800_0000_0000_0000 : 0x7800_0000_0000_0000, low: 0)
        } else {
            self = Decimal128(parsing: String(format: "%.14e", double)) ?? .nan
        }
    }

    /// A number as a decimal (nil for other values): integers exactly; a double rounded to 15
    /// significant digits, as MongoDB's arithmetic and `$toDecimal` take it, or with
    /// `exactDouble` to 34 (its own value, for comparing).
    public init?(_ value: BSONValue, exactDouble: Bool) {
        switch value {
        case .decimal128(let x): self = x
        case .int32(let x): self.init(Int64(x))
        case .int64(let x): self.init(x)
        case .double(let x): self = exactDouble ? Decimal128(exactly: x) : Decimal128(roundingToFifteenDigits: x)
        default: return nil
        }
    }

    /// The double's value to 34 significant digits (for comparing, not for arithmetic).
    public init(exactly double: Double) {
        var flags: UInt32 = 0
        self.init(stratos_dec_from_double(double, &flags))
    }

    /// Parses a decimal string (`"19.99"`, `"-1.5E+3"`, `"NaN"`, `"Infinity"`); nil when it is not one.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.utf8.count <= 200, Self.isDecimalLiteral(trimmed) else { return nil }
        var flags: UInt32 = 0
        let value = Decimal128(stratos_dec_from_string(trimmed, &flags))
        // The library reads garbage as NaN: only an explicit NaN may parse to one.
        if value.isNaN && !trimmed.lowercased().hasSuffix("nan") { return nil }
        self = value
    }

    /// `[+-]` then digits with at most one point (at least one digit), then an optional
    /// `e[+-]digits`; or NaN, Inf, Infinity (any case, with a sign). The library is lenient
    /// ("1e5e5", "."), MongoDB is not.
    static func isDecimalLiteral(_ text: String) -> Bool {
        var bytes = Array(text.utf8)[...]
        if let first = bytes.first, first == 0x2B || first == 0x2D { bytes = bytes.dropFirst() }
        if ["nan", "inf", "infinity"].contains(String(decoding: bytes, as: UTF8.self).lowercased()) { return true }
        var digits = 0
        var sawPoint = false
        while let byte = bytes.first, (0x30...0x39).contains(byte) || (byte == 0x2E && !sawPoint) {
            if byte == 0x2E { sawPoint = true } else { digits += 1 }
            bytes = bytes.dropFirst()
        }
        guard digits > 0 else { return false }
        guard let marker = bytes.first else { return true }
        guard marker == 0x45 || marker == 0x65 else { return false }
        bytes = bytes.dropFirst()
        if let sign = bytes.first, sign == 0x2B || sign == 0x2D { bytes = bytes.dropFirst() }
        return !bytes.isEmpty && bytes.allSatisfy { (0x30...0x39).contains($0) }
    }

    /// The nearest double (NaN and infinities map to theirs).
    public var exactDoubleValue: Double { stratos_dec_to_double(bid) }

    /// Toward zero; nil for NaN, infinities and values outside Int64.
    public var truncatedInt64: Int64? {
        var flags: UInt32 = 0
        let result = stratos_dec_to_int64_truncating(bid, &flags)
        return flags & stratos_dec_flag_invalid() != 0 ? nil : Int64(result)
    }

    public var isZero: Bool { stratos_dec_is_zero(bid) != 0 }

    public static func + (a: Decimal128, b: Decimal128) -> Decimal128 { var f: UInt32 = 0; return Decimal128(stratos_dec_add(a.bid, b.bid, &f)) }
    public static func - (a: Decimal128, b: Decimal128) -> Decimal128 { var f: UInt32 = 0; return Decimal128(stratos_dec_sub(a.bid, b.bid, &f)) }
    public static func * (a: Decimal128, b: Decimal128) -> Decimal128 { var f: UInt32 = 0; return Decimal128(stratos_dec_mul(a.bid, b.bid, &f)) }
    public static func / (a: Decimal128, b: Decimal128) -> Decimal128 { var f: UInt32 = 0; return Decimal128(stratos_dec_div(a.bid, b.bid, &f)) }

    public func remainder(dividingBy divisor: Decimal128) -> Decimal128 { var f: UInt32 = 0; return Decimal128(stratos_dec_fmod(bid, divisor.bid, &f)) }
    public func power(_ exponent: Decimal128) -> Decimal128 { var f: UInt32 = 0; return Decimal128(stratos_dec_pow(bid, exponent.bid, &f)) }
    public var magnitude: Decimal128 { Decimal128(stratos_dec_abs(bid)) }
    public var negated: Decimal128 { Decimal128(stratos_dec_negate(bid)) }
    public var squareRoot: Decimal128 { var f: UInt32 = 0; return Decimal128(stratos_dec_sqrt(bid, &f)) }
    public var exponential: Decimal128 { var f: UInt32 = 0; return Decimal128(stratos_dec_exp(bid, &f)) }
    public var naturalLogarithm: Decimal128 { var f: UInt32 = 0; return Decimal128(stratos_dec_log(bid, &f)) }
    public var logarithm10: Decimal128 { var f: UInt32 = 0; return Decimal128(stratos_dec_log10(bid, &f)) }

    /// Trigonometric and hyperbolic functions in decimal (`$sin` … `$atanh` of a decimal).
    public enum Trigonometric: Sendable {
        case sin, cos, tan, asin, acos, atan, sinh, cosh, tanh, asinh, acosh, atanh
    }

    public func apply(_ function: Trigonometric) -> Decimal128 {
        var f: UInt32 = 0
        let result: stratos_decimal = switch function {
        case .sin: stratos_dec_sin(bid, &f)
        case .cos: stratos_dec_cos(bid, &f)
        case .tan: stratos_dec_tan(bid, &f)
        case .asin: stratos_dec_asin(bid, &f)
        case .acos: stratos_dec_acos(bid, &f)
        case .atan: stratos_dec_atan(bid, &f)
        case .sinh: stratos_dec_sinh(bid, &f)
        case .cosh: stratos_dec_cosh(bid, &f)
        case .tanh: stratos_dec_tanh(bid, &f)
        case .asinh: stratos_dec_asinh(bid, &f)
        case .acosh: stratos_dec_acosh(bid, &f)
        case .atanh: stratos_dec_atanh(bid, &f)
        }
        return Decimal128(result)
    }

    /// The angle of the point (x: `x`, y: `self`), as `$atan2`.
    public func arcTangent(over x: Decimal128) -> Decimal128 { var f: UInt32 = 0; return Decimal128(stratos_dec_atan2(bid, x.bid, &f)) }

    /// π to 34 digits.
    public static let pi = Decimal128(parsing: "3.141592653589793238462643383279503")!

    public enum Rounding { case floor, ceiling, towardZero, nearestEven }

    /// Rounds to a whole number.
    public func rounded(_ rule: Rounding) -> Decimal128 {
        var f: UInt32 = 0
        let mode: Int32 = switch rule {
        case .floor: 1
        case .ceiling: 2
        case .towardZero: 3
        case .nearestEven: 0
        }
        return Decimal128(stratos_dec_round_integral(bid, mode, &f))
    }

    /// Rounds to `places` decimal places (negative: to tens, hundreds…), as `$round`/`$trunc` do.
    public func rounded(places: Int, towardZero: Bool) -> Decimal128 {
        guard !isNaN, !isInfinite else { return self }
        if places <= 0 {
            // Whole tens, hundreds, …: scale down, round to an integer, scale back.
            let scale = Decimal128(parsing: "1E\(-places)") ?? .one
            let whole = (self / scale).rounded(towardZero ? .towardZero : .nearestEven)
            return places == 0 ? whole : whole * scale
        }
        // MongoDB quantizes: the result has exactly `places` places (2.5 to 2 places is 2.50),
        // but never more than decimal128's 34 digits.
        let (high, low, exponent) = parts
        let digits = high == 0 && low == 0 ? 1 : Decimal128.decimalDigits(high: high, low: low).count
        let adjusted = exponent + digits - 1
        let target = max(-places, adjusted - 33)
        guard let quantum = Decimal128(parsing: "1E\(target)") else { return self }
        var f: UInt32 = 0
        let result = Decimal128(stratos_dec_quantize_rounding(bid, quantum.bid, towardZero ? 1 : 0, &f))
        return result.isNaN ? self : result
    }

    /// IEEE comparison: nil when either is NaN.
    public static func compare(_ a: Decimal128, _ b: Decimal128) -> Int? {
        if a.isNaN || b.isNaN { return nil }
        if stratos_dec_equal(a.bid, b.bid) != 0 { return 0 }
        return stratos_dec_less(a.bid, b.bid) != 0 ? -1 : 1
    }
}
