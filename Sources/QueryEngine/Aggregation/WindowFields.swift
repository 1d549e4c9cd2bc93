/// `$setWindowFields`: per partition, in `sortBy` order, each output field computed over a
/// window of neighbouring documents (`documents` or `range` bounds), or by a rank or gap-filling
/// function. Windows are evaluated directly over the sorted partition, with a checkpoint per
/// document, so `maxTimeMS` and `killOp` stop a large one.
struct WindowFieldsSpecification: Sendable {
    enum Bound: Sendable, Equatable {
        case unbounded
        case current
        case offset(Double)
    }

    enum Function: Sendable {
        /// An accumulator over a window.
        case accumulator(Accumulator, lower: Bound, upper: Bound, range: Bool, unit: DateArithmetic.Unit?)
        case rank, denseRank, documentNumber
        case shift(output: Expression, by: Int, defaultValue: Expression?)
        case locf(Expression)
        case expMovingAverage(input: Expression, alpha: Double)
        case covariance(x: Expression, y: Expression, sample: Bool, lower: Bound, upper: Bound, range: Bool, unit: DateArithmetic.Unit?)
        /// Nulls and missing values between two known ones, linear in the sort field.
        case linearFill(Expression)
        /// `$derivative` (rate between the window's first and last documents) and `$integral`
        /// (trapezoids over the window), against the sort field; `unit` for a date sort field.
        /// The expression's value on the document itself (`$fill`'s `value`, as `$ifNull`).
        case coalesce(Expression)
        case calculus(input: Expression, integral: Bool, unit: DateArithmetic.Unit?, lower: Bound, upper: Bound, range: Bool, windowUnit: DateArithmetic.Unit?)
    }

    let partitionBy: Expression?
    let sortBy: SortSpecification?
    let outputs: [(String, Function)]

    init(partitionBy: Expression?, sortBy: SortSpecification?, outputs: [(String, Function)]) {
        self.partitionBy = partitionBy
        self.sortBy = sortBy
        self.outputs = outputs
    }

    init(_ argument: BSONValue) throws(QueryError) {
        guard case .document(let spec) = argument else { throw QueryError(.failedToParse, "$setWindowFields must be an object") }
        for key in spec.keys where !["partitionBy", "sortBy", "output"].contains(key) {
            throw QueryError(.location(40415), "BSON field '$setWindowFields.\(key)' is an unknown field.")
        }
        partitionBy = try spec["partitionBy"].map { value throws(QueryError) in try Expression(value) }
        if case .document(let sort)? = spec["sortBy"] { sortBy = try SortSpecification(sort) } else { sortBy = nil }
        guard case .document(let output)? = spec["output"] else {
            throw QueryError(.failedToParse, "$setWindowFields requires 'output', an object")
        }
        var outputs: [(String, Function)] = []
        for element in output.elements {
            guard case .document(let definition) = element.value else {
                throw QueryError(.failedToParse, "$setWindowFields output field '\(element.key)' must be an object")
            }
            outputs.append((element.key, try Self.function(definition, sortBy: sortBy)))
        }
        self.outputs = outputs
    }

    private static func bound(_ value: BSONValue, _ range: Bool) throws(QueryError) -> Bound {
        switch value {
        case .string("unbounded"): return .unbounded
        case .string("current"): return .current
        case let number where number.isNumber:
            guard let offset = number.doubleValue, range || offset == offset.rounded() else {
                throw QueryError(.failedToParse, "a 'documents' window bound must be an integer, 'current' or 'unbounded'")
            }
            return .offset(offset)
        default: throw QueryError(.failedToParse, "a window bound must be a number, 'current' or 'unbounded'")
        }
    }

    private static func window(_ spec: BSONDocument) throws(QueryError) -> (Bound, Bound, Bool, DateArithmetic.Unit?) {
        guard case .document(let window)? = spec["window"] else { return (.unbounded, .unbounded, false, nil) }
        let range = window["range"] != nil
        guard case .array(let bounds)? = window[range ? "range" : "documents"], bounds.count == 2 else {
            throw QueryError(.failedToParse, "a window needs 'documents' or 'range': [lower, upper]")
        }
        let unit = try window["unit"].map { value throws(QueryError) in try DateArithmetic.unit(value, "$setWindowFields") }
        return (try bound(bounds[0], range), try bound(bounds[1], range), range, unit)
    }

    private static func function(_ definition: BSONDocument, sortBy: SortSpecification?) throws(QueryError) -> Function {
        guard let name = definition.firstKey, name.hasPrefix("$") else {
            throw QueryError(.failedToParse, "a $setWindowFields output needs a window function")
        }
        let argument = definition[0].value
        func needsSort() throws(QueryError) {
            guard let sortBy, sortBy.keys.count == 1 || ["$documentNumber", "$shift", "$locf", "$expMovingAvg"].contains(name) else {
                throw QueryError(.location(5371602), "\(name) must be specified with a top level sortBy expression with exactly one element")
            }
        }
        switch name {
        case "$rank", "$denseRank", "$documentNumber":
            try needsSort()
            return name == "$rank" ? .rank : name == "$denseRank" ? .denseRank : .documentNumber
        case "$shift":
            try needsSort()
            guard case .document(let spec) = argument, let output = spec["output"], let by = spec["by"]?.int64Value else {
                throw QueryError(.failedToParse, "$shift requires 'output' and an integer 'by'")
            }
            return .shift(output: try Expression(output), by: Int(max(-1_000_000_000, min(1_000_000_000, by))), defaultValue: try spec["default"].map { value throws(QueryError) in try Expression(value) })
        case "$locf":
            try needsSort()
            return .locf(try Expression(argument))
        case "$expMovingAvg":
            try needsSort()
            guard case .document(let spec) = argument, let input = spec["input"] else { throw QueryError(.failedToParse, "$expMovingAvg requires 'input'") }
            let alpha: Double
            if let n = spec["N"]?.int64Value, n > 0 {
                alpha = 2 / (Double(n) + 1)
            } else if let given = spec["alpha"]?.doubleValue, given > 0, given < 1 {
                alpha = given
            } else {
                throw QueryError(.failedToParse, "$expMovingAvg requires a positive integer 'N' or an 'alpha' between 0 and 1")
            }
            return .expMovingAverage(input: try Expression(input), alpha: alpha)
        case "$linearFill":
            try needsSort()
            return .linearFill(try Expression(argument))
        case "$derivative", "$integral":
            try needsSort()
            guard case .document(let spec) = argument, let input = spec["input"] else {
                throw QueryError(.failedToParse, "\(name) requires 'input'")
            }
            for key in spec.keys where !["input", "unit"].contains(key) {
                throw QueryError(.failedToParse, "\(name) got an unexpected argument: \(key)")
            }
            let unit = try spec["unit"].map { value throws(QueryError) in try DateArithmetic.unit(value, name) }
            if let unit, [.year, .quarter, .month].contains(unit) {
                throw QueryError(.location(5490704), "\(name) 'unit' must be 'week' or smaller: years, quarters and months have no fixed length")
            }
            if name == "$derivative", definition["window"] == nil {
                throw QueryError(.failedToParse, "$derivative requires a window")
            }
            let (lower, upper, range, windowUnit) = try window(definition)
            return .calculus(input: try Expression(input), integral: name == "$integral", unit: unit, lower: lower, upper: upper, range: range, windowUnit: windowUnit)
        case "$covariancePop", "$covarianceSamp":
            guard case .array(let pair) = argument, pair.count == 2 else { throw QueryError(.failedToParse, "\(name) takes [x, y]") }
            let (lower, upper, range, unit) = try window(definition)
            if range { guard let sortBy, sortBy.keys.count == 1 else {
                throw QueryError(.location(5339902), "Range-based bounds require sortBy a single field")
            } }
            return .covariance(
                x: try Expression(pair[0]), y: try Expression(pair[1]), sample: name == "$covarianceSamp", lower: lower, upper: upper, range: range, unit: unit)
        default:
            let (lower, upper, range, unit) = try window(definition)
            if range { guard let sortBy, sortBy.keys.count == 1 else {
                throw QueryError(.location(5339902), "Range-based bounds require sortBy a single field")
            } }
            return .accumulator(try Accumulator(.document([name: argument])), lower: lower, upper: upper, range: range, unit: unit)
        }
    }

    /// The documents with the output fields added, partitions in order of first appearance,
    /// each sorted by `sortBy`.
    func apply(_ documents: [BSONDocument], context: (BSONDocument) -> ExpressionContext) throws(QueryError) -> [BSONDocument] {
        var order: [GroupKey] = []
        var partitions: [GroupKey: [BSONDocument]] = [:]
        for document in documents {
            let key = GroupKey(try partitionBy?.evaluate(context(document)) ?? .null)
            if partitions[key] == nil { order.append(key) }
            partitions[key, default: []].append(document)
        }
        var output: [BSONDocument] = []
        output.reserveCapacity(documents.count)
        for key in order {
            var partition = partitions[key] ?? []
            if let sortBy { partition = sortBy.sort(partition) }
            let sortKeys = sortBy.map { spec in partition.map { spec.sortKey(for: $0) } }
            var results = partition
            for (field, function) in outputs {
                let values = try evaluate(function, partition, sortKeys: sortKeys, context: context)
                for index in results.indices {
                    var root = BSONValue.document(results[index])
                    if let value = values[index] {
                        try UpdatePaths.set(field.split(separator: ".").map(String.init), value, in: &root)
                    } else {
                        UpdatePaths.unset(field.split(separator: ".").map(String.init), in: &root)
                    }
                    results[index] = root.documentValue ?? results[index]
                }
            }
            output.append(contentsOf: results)
        }
        return output
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    private func evaluate(
        _ function: Function, _ partition: [BSONDocument], sortKeys: [[BSONValue]]?, context: (BSONDocument) -> ExpressionContext
    ) throws(QueryError) -> [BSONValue?] {
        let count = partition.count
        switch function {
        case .documentNumber:
            return (0..<count).map { .int64(Int64($0 + 1)) }
        case .rank, .denseRank:
            guard let sortKeys, let sortBy else { return Array(repeating: nil, count: count) }
            var values: [BSONValue?] = []
            var rank = 0
            var dense = 0
            for index in 0..<count {
                if index == 0 || sortBy.compare(sortKeys[index - 1], sortKeys[index]) != 0 {
                    rank = index + 1
                    dense += 1
                }
                values.append(.int64(Int64(function.isDense ? dense : rank)))
            }
            return values
        case .shift(let expression, let by, let defaultValue):
            var values: [BSONValue?] = []
            for index in 0..<count {
                let target = index + by
                if target >= 0 && target < count {
                    values.append(try expression.evaluate(context(partition[target])) ?? .null)
                } else {
                    values.append(try defaultValue?.evaluate(context(partition[index])) ?? .null)
                }
            }
            return values
        case .locf(let expression):
            var last: BSONValue = .null
            var values: [BSONValue?] = []
            for document in partition {
                if let value = try expression.evaluate(context(document)), value != .null, value != .undefined { last = value }
                values.append(last)
            }
            return values
        case .expMovingAverage(let input, let alpha):
            var average: Double?
            var values: [BSONValue?] = []
            for document in partition {
                if let x = try input.evaluate(context(document))?.doubleValue {
                    average = average.map { alpha * x + (1 - alpha) * $0 } ?? x
                }
                values.append(average.map { .double($0) } ?? .null)
            }
            return values
        case .covariance(let xExpression, let yExpression, let sample, let lower, let upper, let range, let unit):
            let keys = sortKeys?.map { $0[0] } ?? []
            var pairs: [(Double, Double)?] = []
            for document in partition {
                let ctx = context(document)
                if let x = try xExpression.evaluate(ctx)?.doubleValue, let y = try yExpression.evaluate(ctx)?.doubleValue { pairs.append((x, y)) } else { pairs.append(nil) }
            }
            var values: [BSONValue?] = []
            for index in 0..<count {
                try OperationContext.checkpoint()
                let (low, high) = range ? try rangeWindow(index, keys, lower, upper, unit) : documentWindow(index, count, lower, upper)
                let window = low <= high ? pairs[low...high].compactMap { $0 } : []
                let n = Double(window.count)
                guard n >= (sample ? 2 : 1) else { values.append(.null); continue }
                let meanX = window.map(\.0).reduce(0, +) / n
                let meanY = window.map(\.1).reduce(0, +) / n
                let sum = window.reduce(0) { $0 + ($1.0 - meanX) * ($1.1 - meanY) }
                values.append(.double(sum / (sample ? n - 1 : n)))
            }
            return values
        case .coalesce(let expression):
            var values: [BSONValue?] = []
            for document in partition { values.append(try expression.evaluate(context(document))) }
            return values
        case .linearFill(let expression):
            return try linearFill(expression, partition, keys: sortKeys?.map { $0[0] } ?? [], context: context)
        case .calculus(let input, let integral, let unit, let lower, let upper, let range, let windowUnit):
            let keys = sortKeys?.map { $0[0] } ?? []
            var points: [(x: Double, y: Double)?] = []
            for (index, document) in partition.enumerated() {
                let y = try input.evaluate(context(document))
                points.append(try Self.point(keys[index], y, unit: unit, integral ? "$integral" : "$derivative"))
            }
            var values: [BSONValue?] = []
            for index in 0..<count {
                try OperationContext.checkpoint()
                let (low, high) = range ? try rangeWindow(index, keys, lower, upper, windowUnit) : documentWindow(index, count, lower, upper)
                let window = low <= high ? points[low...high].compactMap { $0 } : []
                guard window.count >= 2 else {
                    values.append(integral && window.count == 1 ? .double(0) : .null)
                    continue
                }
                if integral {
                    var area = 0.0
                    for (a, b) in zip(window, window.dropFirst()) { area += (b.x - a.x) * (a.y + b.y) / 2 }
                    values.append(.double(area))
                } else {
                    let (first, last) = (window[0], window[window.count - 1])
                    values.append(last.x == first.x ? .null : .double((last.y - first.y) / (last.x - first.x)))
                }
            }
            return values
        case .accumulator(let accumulator, let lower, let upper, let range, let unit):
            var values: [BSONValue?] = []
            var inputs: [BSONValue?] = []
            for document in partition { inputs.append(try accumulator.argument.evaluate(context(document))) }
            let keys = sortKeys?.map { $0[0] } ?? []
            var bytes = 0
            for index in 0..<count {
                try OperationContext.checkpoint()
                let (low, high) = range
                    ? try rangeWindow(index, keys, lower, upper, unit)
                    : documentWindow(index, count, lower, upper)
                var state = try accumulator.makeState(context(partition[index]))
                if low <= high { for position in low...high { try state.add(inputs[position]) } }
                let value = state.result
                // Every document gets its own result (a $push window is a copy per document):
                // bounded like any blocking stage, checked as the results are made.
                let budget = QueryEngineLimits.aggregationStageBytesMax - bytes
                guard budget > 0, !value.exceedsSize(budget) else {
                    throw QueryError(.exceededMemoryLimit, "$setWindowFields used more than \(QueryEngineLimits.aggregationStageBytesMax / (1024 * 1024)) MB for its results")
                }
                bytes += min(budget, value.encodedSize)
                values.append(value)
            }
            return values
        }
    }

    /// A document's point for `$derivative`/`$integral`: x from the sort field (a date counts in
    /// `unit`s, which it then needs), y from the input; nil when the input is not a number.
    private static func point(_ key: BSONValue, _ y: BSONValue?, unit: DateArithmetic.Unit?, _ name: String) throws(QueryError) -> (x: Double, y: Double)? {
        let x: Double
        switch key {
        case .datetime(let milliseconds):
            guard let unit else {
                throw QueryError(.location(5429513), "\(name) with a date sortBy field needs 'unit'")
            }
            // Days and weeks are fixed lengths here (UTC), as MongoDB counts them for these.
            let size: Int64 = switch unit {
            case .week: 604_800_000
            case .day: 86_400_000
            default: unit.fixedMilliseconds ?? 1
            }
            x = Double(milliseconds) / Double(size)
        case let number where number.isNumber:
            guard unit == nil else { throw QueryError(.location(5429513), "\(name) with 'unit' needs dates in its sortBy field") }
            x = number.doubleValue ?? .nan
        default:
            throw QueryError(.location(5429513), "\(name) needs numbers or dates in its sortBy field")
        }
        guard let y, y.isNumber, let value = y.doubleValue else { return nil }
        return (x, value)
    }

    /// `$linearFill`: each null or missing value between two known ones gets the value on the
    /// line between them, measured along the sort field (numbers or dates).
    private func linearFill(
        _ expression: Expression, _ partition: [BSONDocument], keys: [BSONValue], context: (BSONDocument) -> ExpressionContext
    ) throws(QueryError) -> [BSONValue?] {
        var known: [(index: Int, x: Double, y: BSONValue)] = []
        var values: [BSONValue?] = []
        var xs: [Double] = []
        for (index, document) in partition.enumerated() {
            let value = try expression.evaluate(context(document))
            let x: Double
            switch keys[index] {
            case .datetime(let milliseconds): x = Double(milliseconds)
            case let number where number.isNumber: x = number.doubleValue ?? .nan
            default: throw QueryError(.location(6050106), "$linearFill needs numbers or dates in its sortBy field")
            }
            xs.append(x)
            if let value, value != .null, value != .undefined {
                guard value.isNumber else { throw QueryError(.location(6050105), "$linearFill only fills numbers, not \(value.typeAlias)") }
                if let previous = known.last, previous.x == x {
                    throw QueryError(.location(6050107), "$linearFill found two known values at the same sortBy value")
                }
                known.append((index, x, value))
                values.append(value)
            } else {
                values.append(nil)
            }
        }
        for (left, right) in zip(known, known.dropFirst()) where right.index > left.index + 1 {
            let y0 = left.y.doubleValue ?? 0
            let y1 = right.y.doubleValue ?? 0
            for index in (left.index + 1)..<right.index {
                values[index] = .double(y0 + (y1 - y0) * (xs[index] - left.x) / (right.x - left.x))
            }
        }
        return values.map { $0 ?? .null }
    }

    /// The positions a `documents` window covers for the document at `index` (empty when low > high).
    private func documentWindow(_ index: Int, _ count: Int, _ lower: Bound, _ upper: Bound) -> (Int, Int) {
        func position(_ bound: Bound, unbounded: Int) -> Int {
            switch bound {
            case .unbounded: return unbounded
            case .current: return index
            case .offset(let offset): return index + Int(max(-1e9, min(1e9, offset)))
            }
        }
        return (max(0, position(lower, unbounded: 0)), min(count - 1, position(upper, unbounded: count - 1)))
    }

    /// The positions whose sort value lies within `range` bounds of the current document's: a
    /// contiguous run of the sorted partition, ascending or descending.
    private func rangeWindow(
        _ index: Int, _ keys: [BSONValue], _ lower: Bound, _ upper: Bound, _ unit: DateArithmetic.Unit?
    ) throws(QueryError) -> (Int, Int) {
        guard index < keys.count else { return (index, index) }
        let current = keys[index]
        func edge(_ bound: Bound) throws(QueryError) -> BSONValue? {
            switch bound {
            case .unbounded: return nil
            case .current: return current
            case .offset(let offset):
                if let unit {
                    guard case .datetime(let at) = current, let amount = Int64(exactly: offset.rounded()) else {
                        throw QueryError(.location(5429513), "a range window with 'unit' needs dates in its sortBy field and integer bounds")
                    }
                    guard let moved = DateArithmetic.add(at, unit, amount, zone: .utc) else { throw QueryError(.overflow, "date overflow in a range window") }
                    return .datetime(moved)
                }
                guard let value = current.doubleValue, current.isNumber else {
                    throw QueryError(.location(5429414), "a range window needs numbers in its sortBy field (or dates with 'unit')")
                }
                return .double(value + offset)
            }
        }
        let low = try edge(lower)
        let high = try edge(upper)
        func inside(_ key: BSONValue) -> Bool {
            if let low, BSONComparison.compare(key, low) < 0 { return false }
            if let high, BSONComparison.compare(key, high) > 0 { return false }
            return true
        }
        // The run is contiguous in either sort direction.
        guard let first = keys.firstIndex(where: inside), let last = keys.lastIndex(where: inside) else { return (1, 0) }
        return (first, last)
    }
}

extension WindowFieldsSpecification.Function {
    var isDense: Bool {
        if case .denseRank = self { return true }
        return false
    }
}
