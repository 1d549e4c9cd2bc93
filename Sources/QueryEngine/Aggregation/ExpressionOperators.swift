import Foundation

/// The implementations of aggregation expression operators.
enum ExpressionOperators {
    static func call(_ op: ExpressionOperator, _ arguments: [Expression], _ context: ExpressionContext) throws(QueryError)
        -> BSONValue?
    {
        let name = op.rawValue
        // Short-circuiting operators evaluate their arguments lazily.
        switch op {
        case .cond:
            guard arguments.count == 3 else { throw arity(name, 3) }
            return try (arguments[0].evaluate(context)?.isTruthy ?? false)
                ? arguments[1].evaluate(context) : arguments[2].evaluate(context)
        case .ifNull:
            guard arguments.count >= 2 else { throw arity(name, 2) }
            for argument in arguments.dropLast() {
                if let value = try argument.evaluate(context), value != .null, value != .undefined { return value }
            }
            return try arguments[arguments.count - 1].evaluate(context)
        case .`switch`:
            var index = 0
            while index + 1 < arguments.count {
                if try arguments[index].evaluate(context)?.isTruthy ?? false { return try arguments[index + 1].evaluate(context) }
                index += 2
            }
            if index < arguments.count { return try arguments[index].evaluate(context) }
            throw QueryError(.location(40066), "$switch could not find a matching branch for an input, and no default was specified.")
        case .and:
            for argument in arguments where !(try argument.evaluate(context)?.isTruthy ?? false) { return .bool(false) }
            return .bool(true)
        case .or:
            for argument in arguments where try argument.evaluate(context)?.isTruthy ?? false { return .bool(true) }
            return .bool(false)
        default: break
        }
        var values: [BSONValue?] = []
        values.reserveCapacity(arguments.count)
        for argument in arguments { values.append(try argument.evaluate(context)) }
        return try apply(op, values)
    }

    /// A date's milliseconds from the result of date arithmetic: a fractional result rounds
    /// half away from zero, as MongoDB's `llround`; one outside the 64-bit range fails.
    static func dateMilliseconds(_ total: BSONValue, _ name: String) throws(QueryError) -> Int64 {
        switch total {
        case .int32(let value): return Int64(value)
        case .int64(let value): return value
        default:
            guard let double = total.doubleValue, double.isFinite, let rounded = Int64(exactly: double.rounded()) else {
                throw QueryError(.overflow, "date overflow in \(name)")
            }
            return rounded
        }
    }

    /// A value an expression builds may not exceed a document's 16 MiB; `used` adds up the
    /// parts of one result (checked part by part, so a value of shared parts is never walked
    /// whole).
    static func checkSize(_ value: BSONValue, _ name: String, used: inout Int) throws(QueryError) {
        let limit = QueryEngineLimits.documentSizeBytesMax - used
        guard limit > 0, !value.exceedsSize(limit) else {
            throw QueryError(.exceededMemoryLimit, "\(name) would build a value larger than the 16 MB document limit")
        }
        switch value {
        case .string(let text): used += text.utf8.count
        case .array, .document: used += min(limit, value.encodedSize)
        default: used += 8
        }
    }

    static func checkSize(_ value: BSONValue, _ name: String) throws(QueryError) {
        var used = 0
        try checkSize(value, name, used: &used)
    }

    static func arity(_ name: String, _ count: Int) -> QueryError {
        QueryError(.location(16020), "Expression \(name) takes exactly \(count) arguments.")
    }

    static func isNullish(_ value: BSONValue?) -> Bool {
        switch value {
        case nil, .null?, .undefined?: true
        default: false
        }
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    static func apply(_ op: ExpressionOperator, _ values: [BSONValue?]) throws(QueryError) -> BSONValue? {
        let name = op.rawValue
        switch op {
        case .add:
            var total: BSONValue = .int32(0)
            var dateResult = false
            for value in values {
                if isNullish(value) { return .null }
                if case .datetime(let milliseconds)? = value {
                    guard !dateResult else { throw QueryError(.location(16612), "only one date allowed in an $add expression") }
                    dateResult = true
                    total = try Arithmetic.add(total, .int64(milliseconds))
                    continue
                }
                guard let number = value, number.isNumber else {
                    throw QueryError(.typeMismatch, "$add only supports numeric or date types")
                }
                total = try Arithmetic.add(total, number)
            }
            if dateResult { return .datetime(try dateMilliseconds(total, name)) }
            return total
        case .multiply:
            var total: BSONValue = .int32(1)
            for value in values {
                if isNullish(value) { return .null }
                guard let number = value, number.isNumber else {
                    throw QueryError(.typeMismatch, "$multiply only supports numeric types")
                }
                total = try Arithmetic.multiply(total, number)
            }
            return total
        case .subtract:
            guard values.count == 2 else { throw arity(name, 2) }
            if isNullish(values[0]) || isNullish(values[1]) { return .null }
            switch (values[0]!, values[1]!) {
            case (.datetime(let a), .datetime(let b)): return .int64(a &- b)
            case (.datetime(let a), let b) where b.isNumber:
                return .datetime(try dateMilliseconds(try Arithmetic.subtract(.int64(a), b), name))
            case (let a, let b) where a.isNumber && b.isNumber: return try Arithmetic.subtract(a, b)
            default: throw QueryError(.typeMismatch, "cant $subtract a non-number from a number")
            }
        case .divide, .mod:
            guard values.count == 2 else { throw arity(name, 2) }
            if isNullish(values[0]) || isNullish(values[1]) { return .null }
            guard let a = values[0], let b = values[1], a.isNumber, b.isNumber else {
                throw QueryError(.typeMismatch, "\(name) only supports numeric types")
            }
            return op == .divide ? try Arithmetic.divide(a, b) : try Arithmetic.modulo(a, b)
        case .abs, .ceil, .floor, .sqrt, .exp, .ln, .log10, .trunc, .round:
            guard let first = values.first else { throw arity(name, 1) }
            if isNullish(first) { return .null }
            guard let number = first, number.isNumber else { throw QueryError(.typeMismatch, "\(name) only supports numeric types") }
            var places = 0
            if values.count > 1, op == .trunc || op == .round {
                // MongoDB's rules for the place: an integral number from -20 to 100.
                guard let given = values[1], given.isNumber, let whole = given.int64Value else {
                    throw QueryError(.location(51082), "precision argument to \(name) must be a integral value")
                }
                guard (-20...100).contains(whole) else {
                    throw QueryError(.location(51083), "cannot apply \(name) with precision value \(whole) value must be in [-20, 100]")
                }
                places = Int(whole)
            }
            return Arithmetic.unary(name, number, places: places)
        case .pow:
            guard values.count == 2 else { throw arity(name, 2) }
            if isNullish(values[0]) || isNullish(values[1]) { return .null }
            guard let base = values[0]?.doubleValue, let exponent = values[1]?.doubleValue else {
                throw QueryError(.typeMismatch, "$pow only supports numeric types")
            }
            if let (x, y) = Arithmetic.decimals(values[0]!, values[1]!) {
                guard !(x.isZero && Decimal128.compare(y, .zero) == -1) else {
                    throw QueryError(.location(28764), "$pow cannot take a base of 0 and a negative exponent")
                }
                return .decimal128(x.power(y))
            }
            let result = pow(base, exponent)
            if let a = values[0], let b = values[1], a.int64Value != nil, b.int64Value != nil, !(a.isDouble || b.isDouble),
                let exact = Int64(exactly: result)
            {
                if case .int32 = a, case .int32 = b, let small = Int32(exactly: exact) { return .int32(small) }
                return .int64(exact)
            }
            return .double(result)
        case .concat:
            var text = ""
            for value in values {
                if isNullish(value) { return .null }
                guard case .string(let part)? = value else {
                    throw QueryError(.location(16702), "$concat only supports strings, not \(value?.typeAlias ?? "missing")")
                }
                text += part
                if text.utf8.count > QueryEngineLimits.documentSizeBytesMax { try checkSize(.string(text), name) }
            }
            return .string(text)
        case .toUpper, .toLower:
            let text = try stringArgument(values.first ?? nil, name)
            return .string(op == .toUpper ? text.uppercased() : text.lowercased())
        case .strLenBytes, .strLenCP:
            guard case .string(let text)? = values.first ?? nil else {
                throw QueryError(.location(34471), "\(name) requires a string argument")
            }
            return .int32(Int32(op == .strLenBytes ? text.utf8.count : text.unicodeScalars.count))
        case .trim, .ltrim, .rtrim:
            guard case .document(let spec)? = values.first ?? nil else { throw QueryError(.location(50696), "\(name) requires an object") }
            if isNullish(spec["input"]) { return .null }
            let text = try stringArgument(spec["input"], name)
            let characters = spec["chars"]?.stringValue.map { CharacterSet(charactersIn: $0) } ?? .whitespacesAndNewlines
            var scalars = Substring(text).unicodeScalars[...]
            if op != .rtrim { while let first = scalars.first, characters.contains(first) { scalars.removeFirst() } }
            if op != .ltrim { while let last = scalars.last, characters.contains(last) { scalars.removeLast() } }
            return .string(String(String.UnicodeScalarView(scalars)))
        case .strcasecmp:
            guard values.count == 2 else { throw arity(name, 2) }
            let a = (values[0]?.stringValue ?? "").uppercased()
            let b = (values[1]?.stringValue ?? "").uppercased()
            return .int32(Int32(BSONComparison.compareUTF8(a, b)))
        case .regexMatch:
            guard case .document(let spec)? = values.first ?? nil else { throw QueryError(.location(51103), "$regexMatch expects an object") }
            guard case .string(let input)? = spec["input"] else { return .bool(false) }
            let regex: BSONRegex
            switch spec["regex"] {
            case .string(let pattern)?: regex = BSONRegex(pattern: pattern, options: spec["options"]?.stringValue ?? "")
            case .regex(let value)?: regex = value
            default: throw QueryError(.location(51105), "$regexMatch needs 'regex' to be of type string or regex")
            }
            RegexFailure.reset()
            let matched = try CompiledRegex(regex).matches(input)
            try RegexFailure.check()
            return .bool(matched)
        case .eq, .ne, .gt, .gte, .lt, .lte, .cmp:
            guard values.count == 2 else { throw arity(name, 2) }
            let order = BSONComparison.compare(values[0] ?? .undefined, values[1] ?? .undefined)
            switch op {
            case .eq: return .bool(order == 0)
            case .ne: return .bool(order != 0)
            case .gt: return .bool(order > 0)
            case .gte: return .bool(order >= 0)
            case .lt: return .bool(order < 0)
            case .lte: return .bool(order <= 0)
            default: return .int32(Int32(order.signum()))
            }
        case .not:
            return .bool(!((values.first ?? nil)?.isTruthy ?? false))
        case .size:
            guard case .array(let array)? = values.first ?? nil else {
                throw QueryError(.location(17124), "The argument to $size must be an array. Type of argument is: \((values.first ?? nil)?.typeAlias ?? "missing")")
            }
            return .int32(Int32(array.count))
        case .isArray:
            if case .array? = values.first ?? nil { return .bool(true) }
            return .bool(false)
        case .arrayElemAt:
            guard values.count == 2 else { throw arity(name, 2) }
            if isNullish(values[0]) || isNullish(values[1]) { return .null }
            guard case .array(let array)? = values[0] else { throw QueryError(.location(28689), "$arrayElemAt's first argument must be an array") }
            guard let index = values[1]?.int64Value.flatMap({ Int(exactly: $0) }) else {
                throw QueryError(.location(28690), "$arrayElemAt's second argument must be a numeric value")
            }
            let resolved = index < 0 ? array.count + index : index
            return resolved >= 0 && resolved < array.count ? array[resolved] : nil
        case .first, .last:
            if isNullish(values.first ?? nil) { return .null }
            guard case .array(let array)? = values.first ?? nil else {
                throw QueryError(.location(28689), "\(name)'s argument must be an array")
            }
            return op == .first ? array.first : array.last
        case .`in`:
            guard values.count == 2 else { throw arity(name, 2) }
            guard case .array(let array)? = values[1] else { throw QueryError(.location(40081), "$in requires an array as a second argument") }
            let needle = values[0] ?? .undefined
            return .bool(array.contains { BSONComparison.equal($0, needle) })
        case .indexOfArray:
            guard (2...4).contains(values.count) else {
                throw QueryError(.location(28667), "Expression $indexOfArray takes at least 2 arguments, and at most 4, but \(values.count) were passed in.")
            }
            if isNullish(values[0]) { return .null }
            guard case .array(let array)? = values[0] else {
                throw QueryError(.location(40090), "$indexOfArray requires an array as a first argument, found: \(typeName(values[0]))")
            }
            let needle = values[1] ?? .undefined
            let start = values.count > 2 ? try indexArgument(values[2], name, "starting") : 0
            let end = min(array.count, values.count > 3 ? try indexArgument(values[3], name, "ending") : array.count)
            guard start < end else { return .int32(-1) }
            return .int32(Int32((start..<end).first { BSONComparison.equal(array[$0], needle) } ?? -1))
        case .concatArrays:
            var result: [BSONValue] = []
            for value in values {
                if isNullish(value) { return .null }
                guard case .array(let array)? = value else { throw QueryError(.location(28664), "$concatArrays only supports arrays") }
                result.append(contentsOf: array)
            }
            try checkSize(.array(result), name)
            return .array(result)
        case .reverseArray:
            if isNullish(values.first ?? nil) { return .null }
            guard case .array(let array)? = values.first ?? nil else { throw QueryError(.location(34435), "The argument to $reverseArray must be an array") }
            return .array(array.reversed())
        case .slice:
            guard values.count >= 2 else { throw arity(name, 2) }
            if isNullish(values[0]) { return .null }
            guard case .array(let array)? = values[0] else { throw QueryError(.location(28724), "First argument to $slice must be an array") }
            let first = Int(values[1]?.int64Value ?? 0)
            if values.count == 2 {
                return .array(first >= 0 ? Array(array.prefix(first)) : Array(array.suffix(-first)))
            }
            let start = first < 0 ? max(0, array.count + first) : min(first, array.count)
            let count = max(0, Int(values[2]?.int64Value ?? 0))
            return .array(Array(array[start..<min(array.count, start + count)]))
        case .range:
            guard (2...3).contains(values.count) else { throw QueryError(.location(28667), "Expression $range takes at least 2 arguments, and at most 3") }
            // MongoDB's rule: 32-bit integral values (which also keeps the arithmetic below in range).
            func int32(_ value: BSONValue?, _ role: String, _ code: Int32) throws(QueryError) -> Int64 {
                guard let value, value.isNumber, let exact = integral32(value) else {
                    throw QueryError(.location(code), "$range requires a \(role) that can be represented as a 32-bit integer, found value: \(typeName(value))")
                }
                return Int64(exact)
            }
            let start = try int32(values[0], "starting value", 34444)
            let end = try int32(values[1], "ending value", 34446)
            let step = values.count > 2 ? try int32(values[2], "step value", 34448) : 1
            guard step != 0 else { throw QueryError(.location(34449), "$range requires a non-zero step value") }
            let count = max(0, (end - start + step + (step > 0 ? -1 : 1)) / step)
            guard count <= 1_000_000 else { throw QueryError(.exceededMemoryLimit, "$range would produce too many elements") }
            return .array(stride(from: start, to: end, by: Int(step)).map { .int32(Int32(truncatingIfNeeded: $0)) })
        case .`type`:
            return .string((values.first ?? nil)?.typeAlias ?? "missing")
        case .isNumber:
            return .bool((values.first ?? nil)?.isNumber ?? false)
        case .toString, .toInt, .toLong, .toDouble, .toBool, .toDecimal, .toObjectId, .toDate:
            return try Conversions.convert(name, values.first ?? nil)
        case .mergeObjects:
            var merged = BSONDocument()
            for value in values {
                guard let value, !isNullish(value) else { continue }
                guard case .document(let document) = value else { throw QueryError(.location(40400), "$mergeObjects requires object inputs") }
                for element in document.elements { merged[element.key] = element.value }
            }
            return .document(merged)
        case .objectToArray:
            if isNullish(values.first ?? nil) { return .null }
            guard case .document(let document)? = values.first ?? nil else { throw QueryError(.location(40390), "$objectToArray requires a document input") }
            return .array(document.elements.map { .document(["k": .string($0.key), "v": $0.value]) })
        case .arrayToObject:
            if isNullish(values.first ?? nil) { return .null }
            guard case .array(let pairs)? = values.first ?? nil else { throw QueryError(.location(40386), "$arrayToObject requires an array input") }
            var document = BSONDocument()
            for pair in pairs {
                switch pair {
                case .document(let kv): if case .string(let key)? = kv["k"], let value = kv["v"] { document[key] = value }
                case .array(let kv) where kv.count == 2: if case .string(let key) = kv[0] { document[key] = kv[1] }
                default: throw QueryError(.location(40398), "Unrecognised input type format for $arrayToObject")
                }
            }
            return .document(document)
        case .sum, .avg, .min, .max, .stdDevPop, .stdDevSamp:
            let inputs: [BSONValue]
            if values.count == 1, case .array(let array)? = values[0] { inputs = array } else { inputs = values.compactMap { $0 } }
            var accumulator = Accumulator.State(AccumulatorOperator(rawValue: name)!)  // $sum … $stdDevSamp: both.
            for input in inputs { try accumulator.add(input) }
            return accumulator.result
        case .median, .percentile:
            // `{input, p, method}`: the numbers of `input` (an array, or one value).
            guard values.count == 1, case .document(var spec)? = values[0] else {
                throw QueryError(.location(7436200), "\(name) requires an object with 'input'\(op == .percentile ? ", 'p'" : "") and 'method'")
            }
            // An `input` naming a missing field is absent once evaluated: no numbers.
            if spec["input"] == nil { spec["input"] = .null }
            var accumulator = Accumulator.State(AccumulatorOperator(rawValue: name)!)
            accumulator.percentiles = try Accumulator.percentiles(spec, name, median: op == .median)
            let inputs: [BSONValue] = if case .array(let array)? = spec["input"] { array } else { spec["input"].map { [$0] } ?? [] }
            for input in inputs { try accumulator.add(input) }
            return accumulator.result
        case .tsSecond, .tsIncrement:
            guard values.count == 1 else { throw arity(name, 1) }
            if isNullish(values[0]) { return .null }
            guard case .timestamp(let timestamp)? = values[0] else {
                throw QueryError(.location(5687301), "Argument to \(name) must be a Timestamp, but is \(typeName(values[0]))")
            }
            return .int64(Int64(op == .tsSecond ? timestamp.seconds : timestamp.increment))
        case .setUnion, .setIntersection, .setDifference:
            var sets: [[BSONValue]] = []
            for value in values {
                if isNullish(value) { return .null }
                guard case .array(let array)? = value else { throw QueryError(.location(17044), "All operands of \(name) must be arrays.") }
                sets.append(array)
            }
            func unique(_ items: [BSONValue]) -> [BSONValue] {
                var out: [BSONValue] = []
                for item in items where !out.contains(where: { BSONComparison.equal($0, item) }) { out.append(item) }
                return out
            }
            switch op {
            case .setUnion: return .array(unique(sets.flatMap { $0 }))
            case .setIntersection:
                guard var result = sets.first.map(unique) else { return .array([]) }
                for set in sets.dropFirst() { result = result.filter { item in set.contains { BSONComparison.equal($0, item) } } }
                return .array(result)
            default:
                guard sets.count == 2 else { throw arity(name, 2) }
                return .array(unique(sets[0]).filter { item in !sets[1].contains { BSONComparison.equal($0, item) } })
            }
        case .allElementsTrue, .anyElementTrue:
            guard case .array(let array)? = values.first ?? nil else { throw QueryError(.location(17040), "\(name)'s argument must be an array") }
            return .bool(op == .allElementsTrue ? array.allSatisfy(\.isTruthy) : array.contains(where: \.isTruthy))
        default:
            switch op.family {
            case .string: return try applyString(op, values)
            case .array: return try applyArray(op, values)
            case .math: return try applyMath(op, values)
            case .object: return try applyObject(op, values)
            case .date: return try applyDate(op, values)
            case .core, .binding: throw QueryError(.invalidPipelineOperator, "Unrecognized expression '\(name)'")
            }
        }
    }

    static func bind(
        _ op: ExpressionOperator, _ input: Expression, _ variable: String, _ body: Expression, _ extra: Expression?,
        _ context: ExpressionContext
    ) throws(QueryError) -> BSONValue? {
        let name = op.rawValue
        if op == .`let` {
            guard case .object(let bindings) = input else { return nil }
            var inner = context
            for (key, expression) in bindings { inner.variables[key] = try expression.evaluate(context) ?? .null }
            return try body.evaluate(inner)
        }
        let source = try input.evaluate(context)
        if isNullish(source) { return .null }
        if op == .reduce {
            guard case .array(let elements)? = source else {
                throw QueryError(.location(40080), "$reduce requires that 'input' be an array, found: \(typeName(source))")
            }
            var inner = context
            var accumulated = try extra?.evaluate(context) ?? .null
            for element in elements {
                try OperationContext.checkpoint()
                inner.variables["value"] = accumulated
                inner.variables["this"] = element
                accumulated = try body.evaluate(inner) ?? .null
                try checkSize(accumulated, name)
            }
            return accumulated
        }
        guard case .array(let elements)? = source else {
            throw QueryError(.location(op == .map ? 16883 : 28651), "input to \(name) must be an array")
        }
        var inner = context
        var output: [BSONValue] = []
        let limit = try extra?.evaluate(context)?.int64Value
        var bytes = 0
        for element in elements {
            inner.variables[variable] = element
            if op == .map {
                let mapped = try body.evaluate(inner) ?? .null
                try checkSize(mapped, name, used: &bytes)
                output.append(mapped)
            } else if try body.evaluate(inner)?.isTruthy ?? false {
                output.append(element)
                if let limit, output.count >= limit { break }
            }
        }
        return .array(output)
    }
}

extension BSONValue {
    var isDouble: Bool {
        if case .double = self { return true }
        return false
    }
}
