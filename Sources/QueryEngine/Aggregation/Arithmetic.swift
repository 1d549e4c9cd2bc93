import Foundation

/// MongoDB's numeric type promotion: int32 → int64 on overflow → double; any double makes a
/// double; any decimal128 makes a decimal128, computed exactly (`Decimal128+Arithmetic`).
enum Arithmetic {
    /// Both operands as decimals when either is one, as MongoDB coerces them for arithmetic.
    static func decimals(_ a: BSONValue, _ b: BSONValue) -> (Decimal128, Decimal128)? {
        guard a.isDecimal || b.isDecimal, let x = Decimal128(a, exactDouble: false), let y = Decimal128(b, exactDouble: false) else { return nil }
        return (x, y)
    }

    static func add(_ a: BSONValue, _ b: BSONValue) throws(QueryError) -> BSONValue {
        if let (x, y) = decimals(a, b) { return .decimal128(x + y) }
        switch (a, b) {
        case (.int32(let x), .int32(let y)):
            let (sum, overflow) = x.addingReportingOverflow(y)
            return overflow ? .int64(Int64(x) + Int64(y)) : .int32(sum)
        case (.int32, .int64), (.int64, .int32), (.int64, .int64):
            let (sum, overflow) = (a.int64Value ?? 0).addingReportingOverflow(b.int64Value ?? 0)
            return overflow ? .double((a.doubleValue ?? 0) + (b.doubleValue ?? 0)) : .int64(sum)
        default:
            return .double((a.doubleValue ?? 0) + (b.doubleValue ?? 0))
        }
    }

    static func subtract(_ a: BSONValue, _ b: BSONValue) throws(QueryError) -> BSONValue {
        if let (x, y) = decimals(a, b) { return .decimal128(x - y) }
        switch (a, b) {
        case (.int32(let x), .int32(let y)):
            let (difference, overflow) = x.subtractingReportingOverflow(y)
            return overflow ? .int64(Int64(x) - Int64(y)) : .int32(difference)
        case (.int32, .int64), (.int64, .int32), (.int64, .int64):
            let (difference, overflow) = (a.int64Value ?? 0).subtractingReportingOverflow(b.int64Value ?? 0)
            return overflow ? .double((a.doubleValue ?? 0) - (b.doubleValue ?? 0)) : .int64(difference)
        default:
            return .double((a.doubleValue ?? 0) - (b.doubleValue ?? 0))
        }
    }

    static func multiply(_ a: BSONValue, _ b: BSONValue) throws(QueryError) -> BSONValue {
        if let (x, y) = decimals(a, b) { return .decimal128(x * y) }
        switch (a, b) {
        case (.int32(let x), .int32(let y)):
            let (product, overflow) = x.multipliedReportingOverflow(by: y)
            return overflow ? .int64(Int64(x) * Int64(y)) : .int32(product)
        case (.int32, .int64), (.int64, .int32), (.int64, .int64):
            let (product, overflow) = (a.int64Value ?? 0).multipliedReportingOverflow(by: b.int64Value ?? 0)
            return overflow ? .double((a.doubleValue ?? 0) * (b.doubleValue ?? 0)) : .int64(product)
        default:
            return .double((a.doubleValue ?? 0) * (b.doubleValue ?? 0))
        }
    }

    static func divide(_ a: BSONValue, _ b: BSONValue) throws(QueryError) -> BSONValue {
        if let (x, y) = decimals(a, b) {
            guard !y.isZero else { throw QueryError(.location(2_000_006), "can't $divide by zero") }
            return .decimal128(x / y)
        }
        guard b.doubleValue != 0 else { throw QueryError(.location(2_000_006), "can't $divide by zero") }
        return .double((a.doubleValue ?? 0) / (b.doubleValue ?? 1))
    }

    static func modulo(_ a: BSONValue, _ b: BSONValue) throws(QueryError) -> BSONValue {
        if let (x, y) = decimals(a, b) {
            guard !y.isZero else { throw QueryError(.location(16610), "can't $mod by zero") }
            return .decimal128(x.remainder(dividingBy: y))
        }
        switch (a, b) {
        case (.int32(let x), .int32(let y)):
            guard y != 0 else { throw QueryError(.location(16610), "can't $mod by zero") }
            return .int32(x.remainderReportingOverflow(dividingBy: y).partialValue)
        case (.int32, .int64), (.int64, .int32), (.int64, .int64):
            let y = b.int64Value ?? 0
            guard y != 0 else { throw QueryError(.location(16610), "can't $mod by zero") }
            return .int64((a.int64Value ?? 0).remainderReportingOverflow(dividingBy: y).partialValue)
        default:
            let y = b.doubleValue ?? 0
            guard y != 0 else { throw QueryError(.location(16610), "can't $mod by zero") }
            return .double(fmod(a.doubleValue ?? 0, y))
        }
    }

    /// An integer to tens, hundreds, … (`places` < 0): an int stays an int when it fits, else a
    /// long (2147483647 to -1 place is 2147483650), and a long past its range becomes a double.
    static func roundInteger(_ integer: Int64, places: Int, towardZero: Bool, wasInt32: Bool) -> BSONValue {
        guard -places <= 18 else { return wasInt32 ? .int32(0) : .int64(0) }
        var scale: Int64 = 1
        for _ in 0..<(-places) { scale *= 10 }
        var quotient = integer / scale
        let remainder = integer % scale
        if !towardZero {
            let twice = remainder.magnitude * 2
            if twice > scale.magnitude || (twice == scale.magnitude && quotient % 2 != 0) { quotient += integer < 0 ? -1 : 1 }
        }
        let (result, overflow) = quotient.multipliedReportingOverflow(by: scale)
        if overflow { return .double(Double(quotient) * Double(scale)) }
        if wasInt32, let small = Int32(exactly: result) { return .int32(small) }
        return .int64(result)
    }

    static func unary(_ name: String, _ value: BSONValue, places: Int) -> BSONValue {
        if case .decimal128(let x) = value {
            switch name {
            case "$abs": return .decimal128(x.magnitude)
            case "$ceil": return .decimal128(x.rounded(.ceiling))
            case "$floor": return .decimal128(x.rounded(.floor))
            case "$sqrt": return .decimal128(x.squareRoot)
            case "$exp": return .decimal128(x.exponential)
            case "$ln": return .decimal128(x.naturalLogarithm)
            case "$log10": return .decimal128(x.logarithm10)
            case "$trunc", "$round": return .decimal128(x.rounded(places: places, towardZero: name == "$trunc"))
            default: return .null
            }
        }
        if name == "$abs" {
            switch value {
            case .int32(let x): return x == .min ? .int64(-Int64(x)) : .int32(abs(x))
            case .int64(let x): return x == .min ? .double(-Double(x)) : .int64(abs(x))
            default: return .double(abs(value.doubleValue ?? 0))
            }
        }
        if ["$ceil", "$floor", "$trunc", "$round"].contains(name), let integer = value.int64Value, !value.isDouble {
            guard places < 0 else { return value }  // Integers are already whole.
            return roundInteger(integer, places: places, towardZero: name == "$trunc", wasInt32: { if case .int32 = value { true } else { false } }())
        }
        let x = value.doubleValue ?? 0
        switch name {
        case "$ceil": return .double(x.rounded(.up))
        case "$floor": return .double(x.rounded(.down))
        case "$sqrt": return .double(x.squareRoot())
        case "$exp": return .double(exp(x))
        case "$ln": return .double(log(x))
        case "$log10": return .double(log10(x))
        case "$trunc", "$round":
            let scale = pow(10, Double(places))
            let rule: FloatingPointRoundingRule = name == "$trunc" ? .towardZero : .toNearestOrEven
            return .double((x * scale).rounded(rule) / scale)
        default: return .null
        }
    }
}

/// `$toString`, `$toInt` and friends, and reading a date's milliseconds.
enum Conversions {
    static func formatDouble(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    static func convert(_ name: String, _ value: BSONValue?) throws(QueryError) -> BSONValue? {
        guard let value, value != .null, value != .undefined else { return .null }
        let failure = QueryError(.conversionFailure, "Failed to parse value for \(name)")
        switch name {
        case "$toString":
            switch value {
            case .string: return value
            case .int32(let x): return .string(String(x))
            case .int64(let x): return .string(String(x))
            case .double(let x): return .string(formatDouble(x))
            case .decimal128(let x): return .string(x.description)
            case .bool(let x): return .string(x ? "true" : "false")
            case .objectId(let id): return .string(id.description)
            case .datetime(let milliseconds): return .string(try ExpressionOperators.formatDate(milliseconds, format: "%Y-%m-%dT%H:%M:%S.%LZ", zone: .utc))
            default: throw failure
            }
        case "$toInt", "$toLong":
            let integer: Int64
            switch value {
            case .string(let text): guard let parsed = Int64(text) else { throw failure }; integer = parsed
            case .bool(let flag): integer = flag ? 1 : 0
            case .datetime(let milliseconds): integer = milliseconds
            case .decimal128(let decimal):
                guard let whole = decimal.truncatedInt64 else { throw failure }
                integer = whole
            default:
                guard let double = value.doubleValue, double.isFinite, let whole = Int64(exactly: double.rounded(.towardZero)) else {
                    throw failure
                }
                integer = whole
            }
            if name == "$toInt" {
                guard let small = Int32(exactly: integer) else { throw failure }
                return .int32(small)
            }
            return .int64(integer)
        case "$toDecimal":
            switch value {
            case .decimal128: return value
            case .string(let text): guard let parsed = Decimal128(parsing: text) else { throw failure }; return .decimal128(parsed)
            case .bool(let flag): return .decimal128(flag ? .one : .zero)
            case .datetime(let milliseconds): return .decimal128(Decimal128(milliseconds))
            default: guard let decimal = Decimal128(value, exactDouble: false) else { throw failure }; return .decimal128(decimal)
            }
        case "$toDouble":
            switch value {
            case .string(let text): guard let parsed = Double(text) else { throw failure }; return .double(parsed)
            case .bool(let flag): return .double(flag ? 1 : 0)
            case .datetime(let milliseconds): return .double(Double(milliseconds))
            default: guard let double = value.doubleValue else { throw failure }; return .double(double)
            }
        case "$toBool":
            return .bool(value.isTruthy)
        case "$toObjectId":
            guard case .string(let text) = value, let id = try? ObjectId(hex: text) else {
                if case .objectId = value { return value }
                throw failure
            }
            return .objectId(id)
        case "$toDate":
            guard let milliseconds = dateMilliseconds(value) else { throw failure }
            return .datetime(milliseconds)
        default:
            throw failure
        }
    }

    static func dateMilliseconds(_ value: BSONValue?) -> Int64? {
        switch value {
        case .datetime(let milliseconds)?: milliseconds
        case .timestamp(let timestamp)?: Int64(timestamp.seconds) * 1000
        case .objectId(let id)?: Int64(id.seconds) * 1000
        case .int64(let milliseconds)?: milliseconds
        case .double(let milliseconds)?: Int64(exactly: milliseconds.rounded())
        default: nil
        }
    }
}
