import Foundation

/// Logarithms, trigonometry, bitwise operators and `$rand`.
extension ExpressionOperators {
    static func applyMath(_ op: ExpressionOperator, _ values: [BSONValue?]) throws(QueryError) -> BSONValue? {
        let name = op.rawValue
        switch op {
        case .log:
            guard values.count == 2 else { throw arity(name, 2) }
            if isNullish(values[0]) || isNullish(values[1]) { return .null }
            guard let x = values[0]?.doubleValue, values[0]?.isNumber == true else {
                throw QueryError(.location(28756), "$log's argument must be numeric, not \(typeName(values[0]))")
            }
            guard let base = values[1]?.doubleValue, values[1]?.isNumber == true else {
                throw QueryError(.location(28757), "$log's base must be numeric, not \(typeName(values[1]))")
            }
            guard x > 0 else { throw QueryError(.location(28758), "$log's argument must be a positive number, but is \(Conversions.formatDouble(x))") }
            guard base > 0, base != 1 else {
                throw QueryError(.location(28759), "$log's base must be a positive number not equal to 1, but is \(Conversions.formatDouble(base))")
            }
            // A decimal operand makes the logarithm a decimal, as in MongoDB.
            if case .decimal128 = values[0], let number = Decimal128(values[0]!, exactDouble: false), let radix = Decimal128(values[1]!, exactDouble: false) {
                return .decimal128(number.naturalLogarithm / radix.naturalLogarithm)
            }
            if case .decimal128 = values[1], let number = Decimal128(values[0]!, exactDouble: false), let radix = Decimal128(values[1]!, exactDouble: false) {
                return .decimal128(number.naturalLogarithm / radix.naturalLogarithm)
            }
            return .double(Foundation.log(x) / Foundation.log(base))
        case .atan2:
            guard values.count == 2 else { throw arity(name, 2) }
            if isNullish(values[0]) || isNullish(values[1]) { return .null }
            guard let y = values[0]?.doubleValue, let x = values[1]?.doubleValue else {
                throw QueryError(.location(51044), "$atan2 only supports numeric types, not \(typeName(values[0])) and \(typeName(values[1]))")
            }
            if values.contains(where: { if case .decimal128? = $0 { true } else { false } }),
                let decimalY = Decimal128(values[0]!, exactDouble: false), let decimalX = Decimal128(values[1]!, exactDouble: false)
            {
                return .decimal128(decimalY.arcTangent(over: decimalX))
            }
            return .double(Foundation.atan2(y, x))
        case .bitAnd, .bitOr, .bitXor:
            var result: Int64 = op == .bitAnd ? -1 : 0
            var isLong = false
            for value in values {
                if isNullish(value) { return .null }
                switch value {
                case .int32(let x)?: result = combine(op, result, Int64(x))
                case .int64(let x)?:
                    isLong = true
                    result = combine(op, result, x)
                default:
                    throw QueryError(.location(28765), "\(name) only supports int and long operands, not \(typeName(value))")
                }
            }
            return isLong ? .int64(result) : .int32(Int32(truncatingIfNeeded: result))
        case .bitNot:
            guard values.count == 1 else { throw arity(name, 1) }
            switch values[0] {
            case .int32(let x)?: return .int32(~x)
            case .int64(let x)?: return .int64(~x)
            case nil, .null?, .undefined?: return .null
            default: throw QueryError(.location(28765), "$bitNot only supports int and long, not: \(typeName(values[0]))")
            }
        case .rand:
            guard values.isEmpty || (values.count == 1 && values[0] == .document([:])) else {
                throw QueryError(.location(3040501), "$rand does not currently accept arguments")
            }
            return .double(Double.random(in: 0..<1))
        default:
            guard values.count == 1 else { throw arity(name, 1) }
            if isNullish(values[0]) { return .null }
            guard let value = values[0], value.isNumber, let x = value.doubleValue else {
                throw QueryError(.location(28765), "\(name) only supports numeric types, not \(typeName(values[0]))")
            }
            let bounded: (ClosedRange<Double>, Bool)? = switch op {
            case .asin, .acos, .atanh: (-1...1, false)
            case .acosh: (1...Double.infinity, false)
            case .sin, .cos, .tan: (-Double.infinity...Double.infinity, true)
            default: nil
            }
            if let (range, finiteOnly) = bounded, !x.isNaN, finiteOnly ? x.isInfinite : !range.contains(x) {
                let shown = range.upperBound.isInfinite && !finiteOnly ? "[1,inf]" : finiteOnly ? "(-inf,inf)" : "[-1,1]"
                throw QueryError(.location(50989), "cannot apply \(name) to \(Conversions.formatDouble(x)), value must be in \(shown)")
            }
            if case .decimal128(let decimal) = value {
                // A decimal stays a decimal (Intel's library, as MongoDB computes it).
                let function: Decimal128.Trigonometric? = switch op {
                case .sin: .sin
                case .cos: .cos
                case .tan: .tan
                case .asin: .asin
                case .acos: .acos
                case .atan: .atan
                case .sinh: .sinh
                case .cosh: .cosh
                case .tanh: .tanh
                case .asinh: .asinh
                case .acosh: .acosh
                case .atanh: .atanh
                default: nil
                }
                if let function { return .decimal128(decimal.apply(function)) }
                let degrees = Decimal128(Int64(180))
                return .decimal128(op == .degreesToRadians ? decimal * Decimal128.pi / degrees : decimal * degrees / Decimal128.pi)
            }
            let result: Double = switch op {
            case .sin: sin(x)
            case .cos: cos(x)
            case .tan: tan(x)
            case .asin: asin(x)
            case .acos: acos(x)
            case .atan: atan(x)
            case .sinh: sinh(x)
            case .cosh: cosh(x)
            case .tanh: tanh(x)
            case .asinh: asinh(x)
            case .acosh: acosh(x)
            case .atanh: atanh(x)
            case .degreesToRadians: x * Double.pi / 180
            default: x * 180 / Double.pi
            }
            return .double(result)
        }
    }

    private static func combine(_ op: ExpressionOperator, _ a: Int64, _ b: Int64) -> Int64 {
        switch op {
        case .bitAnd: a & b
        case .bitOr: a | b
        default: a ^ b
        }
    }
}
