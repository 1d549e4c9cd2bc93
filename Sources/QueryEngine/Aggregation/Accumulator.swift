/// A `$group` accumulator, resolved once when the stage is parsed: adding a document switches
/// on this enum, never on the operator's name.
public enum AccumulatorOperator: String, Sendable, CaseIterable {
    case sum = "$sum"
    case avg = "$avg"
    case min = "$min"
    case max = "$max"
    case first = "$first"
    case last = "$last"
    case push = "$push"
    case addToSet = "$addToSet"
    case count = "$count"
    case stdDevPop = "$stdDevPop"
    case stdDevSamp = "$stdDevSamp"
    case mergeObjects = "$mergeObjects"
    case firstN = "$firstN"
    case lastN = "$lastN"
    case maxN = "$maxN"
    case minN = "$minN"
    case top = "$top"
    case bottom = "$bottom"
    case topN = "$topN"
    case bottomN = "$bottomN"
    case median = "$median"
    case percentile = "$percentile"
}

/// `$group` accumulators (`$sum`, `$avg`, `$min`, `$max`, `$first`, `$last`, `$push`,
/// `$addToSet`, `$count`, `$stdDevPop`, `$stdDevSamp`, `$mergeObjects`, the `N` family,
/// `$top`/`$bottom`, `$median`, `$percentile`), also used by the array forms of
/// `$sum`/`$avg`/`$min`/`$max` and the other operators that are both.
public struct Accumulator: Sendable {
    /// The accumulator's operator.
    public let op: AccumulatorOperator
    /// Its name (`$sum`, …).
    public var name: String { op.rawValue }
    /// Its argument expression.
    public let argument: Expression

    /// `n` of `$firstN`, `$lastN`, `$maxN`, `$minN`, `$topN` and `$bottomN`, evaluated per group.
    let count: Expression?
    /// `sortBy` of `$top`, `$bottom`, `$topN` and `$bottomN`.
    let sortBy: SortSpecification?
    /// `p` of `$percentile` (0.5 for `$median`).
    let percentiles: [Double]

    /// Parses `{$sum: <expression>}`.
    public init(_ specification: BSONValue) throws(QueryError) {
        guard case .document(let document) = specification, document.count == 1, let name = document.firstKey else {
            throw QueryError(.location(40234), "The field must specify one accumulator")
        }
        guard let op = AccumulatorOperator(rawValue: name) else {
            throw QueryError(.unknownGroupAccumulator, "unknown group operator '\(name)'")
        }
        self.op = op
        var count: Expression?
        var sortBy: SortSpecification?
        var percentiles: [Double] = []
        switch op {
        case .count:
            argument = .literal(.int32(1))
        case .firstN, .lastN, .maxN, .minN:
            let spec = try Self.spec(document[0].value, name, allowed: ["input", "n"])
            guard let input = spec["input"], let n = spec["n"] else {
                throw QueryError(.location(5787906), "Missing value for '\(spec["input"] == nil ? "input" : "n")'")
            }
            argument = try Expression(input)
            count = try Expression(n)
        case .top, .bottom, .topN, .bottomN:
            let takesN = name.hasSuffix("N")
            let spec = try Self.spec(document[0].value, name, allowed: takesN ? ["output", "sortBy", "n"] : ["output", "sortBy"])
            guard let output = spec["output"] else { throw QueryError(.location(5788001), "Missing value for 'output'") }
            guard case .document(let pattern)? = spec["sortBy"] else { throw QueryError(.location(5788002), "Missing value for 'sortBy'") }
            sortBy = try SortSpecification(pattern)
            // Each input carries its output and the document its sort key is read from.
            argument = .array([try Expression(output), .variable("CURRENT", nil)])
            if takesN {
                guard let n = spec["n"] else { throw QueryError(.location(5787906), "Missing value for 'n'") }
                count = try Expression(n)
            }
        case .median, .percentile:
            let spec = try Self.spec(document[0].value, name, allowed: op == .median ? ["input", "method"] : ["input", "p", "method"])
            guard let input = spec["input"] else { throw QueryError(.location(7436100), "\(name) requires 'input'") }
            percentiles = try Self.percentiles(spec, name, median: op == .median)
            argument = try Expression(input)
        default:
            argument = try Expression(document[0].value)
        }
        self.count = count
        self.sortBy = sortBy
        self.percentiles = percentiles
    }

    /// The percentiles `{input, p, method}` asks `$percentile` for (`[0.5]` for `$median`),
    /// checked as MongoDB checks them; the accumulator and the expression share it.
    static func percentiles(_ spec: BSONDocument, _ name: String, median: Bool) throws(QueryError) -> [Double] {
        for key in spec.keys where !(median ? ["input", "method"] : ["input", "p", "method"]).contains(key) {
            throw QueryError(.location(40415), "\(name) found an unknown argument: \(key)")
        }
        guard spec["input"] != nil else { throw QueryError(.location(7436100), "\(name) requires 'input'") }
        guard case .string(let method)? = spec["method"], ["approximate", "discrete"].contains(method) else {
            throw QueryError(.location(7436101), "\(name) requires 'method' to be 'approximate'")
        }
        if median { return [0.5] }
        guard case .array(let values)? = spec["p"], !values.isEmpty else {
            throw QueryError(.location(7750301), "$percentile requires 'p' to be a non-empty array of numbers between 0.0 and 1.0")
        }
        var percentiles: [Double] = []
        for value in values {
            guard let p = value.doubleValue, value.isNumber, (0...1).contains(p) else {
                throw QueryError(.location(7750302), "$percentile requires 'p' to be an array of numbers between 0.0 and 1.0, found \(value)")
            }
            percentiles.append(p)
        }
        return percentiles
    }

    private static func spec(_ value: BSONValue, _ name: String, allowed: [String]) throws(QueryError) -> BSONDocument {
        guard case .document(let spec) = value else {
            throw QueryError(.location(5787801), "specification of \(name) must be an object; found \(value.typeAlias)")
        }
        for key in spec.keys where !allowed.contains(key) {
            throw QueryError(.location(5787901), "Unknown argument for '\(name)': '\(key)'")
        }
        return spec
    }

    /// A fresh state for a group whose first document is evaluated in `context` (`n` may
    /// depend on the group).
    func makeState(_ context: ExpressionContext) throws(QueryError) -> State {
        var state = State(op)
        if let count {
            state.limit = try ExpressionOperators.countArgument(try count.evaluate(context), name)
        }
        state.sortBy = sortBy
        state.percentiles = percentiles
        return state
    }

    /// Running state for one group.
    struct State: Sendable {
        let op: AccumulatorOperator
        var name: String { op.rawValue }
        var sum: BSONValue = .int32(0)
        var count = 0
        var extreme: BSONValue?
        var first: BSONValue??
        var last: BSONValue?
        var items: [BSONValue] = []
        var sizeBytes = 0
        var limit = 1
        var sortBy: SortSpecification?
        var percentiles: [Double] = []
        /// `$top`/`$bottom`: each input's sort key and output.
        var ranked: [(key: [BSONValue], output: BSONValue)] = []
        /// `$stdDev…`: Welford's running mean and sum of squared deviations.
        var mean = 0.0
        var squares = 0.0
        var merged = BSONDocument()

        init(_ op: AccumulatorOperator) { self.op = op }

        mutating func add(_ value: BSONValue?) throws(QueryError) {
            switch op {
            case .sum, .count, .avg:
                guard let value, value.isNumber else { return }
                sum = try Arithmetic.add(sum, value)
                count += 1
            case .min, .max:
                guard let value, value != .null, value != .undefined else { return }
                if let current = extreme {
                    let order = BSONComparison.compare(value, current)
                    if (op == .min && order < 0) || (op == .max && order > 0) { extreme = value }
                } else {
                    extreme = value
                }
            case .first:
                if first == nil { first = .some(value) }
            case .last:
                last = value
            case .push:
                guard let value else { return }
                try append(value)
            case .addToSet:
                guard let value, !items.contains(where: { BSONComparison.equal($0, value) }) else { return }
                try append(value)
            case .stdDevPop, .stdDevSamp:
                guard let number = value?.doubleValue, value?.isNumber == true else { return }
                count += 1
                let delta = number - mean
                mean += delta / Double(count)
                squares += delta * (number - mean)
            case .mergeObjects:
                switch value {
                case nil, .null?, .undefined?: return
                case .document(let document)?:
                    for element in document.elements { merged[element.key] = element.value }
                    sizeBytes = merged.encodedSize
                    guard sizeBytes <= QueryEngineLimits.aggregationStageBytesMax else {
                        throw QueryError(.exceededMemoryLimit, "$mergeObjects used too much memory and cannot spill to disk")
                    }
                default:
                    throw QueryError(.location(40400), "$mergeObjects requires object inputs, but input \(value!) is of type \(value!.typeAlias)")
                }
            case .firstN:
                guard items.count < limit else { return }
                try append(value ?? .null)
            case .lastN:
                try append(value ?? .null)
                if items.count > limit { sizeBytes -= items.removeFirst().encodedSize }
            case .maxN, .minN:
                guard let value, value != .null, value != .undefined else { return }
                try append(value)
                if items.count > 2 * limit + 16 { keepExtremes() }
            case .top, .bottom, .topN, .bottomN:
                guard case .array(let pair)? = value, pair.count == 2, let sortBy else { return }
                let key = pair[1].documentValue.map(sortBy.sortKey(for:)) ?? sortBy.keys.map { _ in BSONValue.null }
                sizeBytes += pair[0].encodedSize
                guard sizeBytes <= QueryEngineLimits.aggregationStageBytesMax else {
                    throw QueryError(.exceededMemoryLimit, "\(name) used too much memory and cannot spill to disk")
                }
                ranked.append((key, pair[0]))
                if ranked.count > 2 * max(limit, 1) + 16 { keepRanked() }
            case .median, .percentile:
                guard let value, value.isNumber, let number = value.doubleValue, !number.isNaN else { return }
                try append(.double(number))
            }
        }

        /// Keeps the `limit` best of `$maxN`/`$minN`'s candidates.
        private mutating func keepExtremes() {
            items = ExpressionOperators.stableSorted(items) { a, b in
                let order = BSONComparison.compare(a, b)
                return op == .maxN ? order > 0 : order < 0
            }
            items.removeSubrange(min(limit, items.count)...)
            sizeBytes = items.reduce(0) { $0 + $1.encodedSize }
        }

        /// Keeps the `limit` first (`$top…`) or last (`$bottom…`) of the ranked inputs, in order.
        private mutating func keepRanked() {
            guard let sortBy else { return }
            let sorted = ranked.enumerated().sorted { a, b in
                let order = sortBy.compare(a.element.key, b.element.key)
                return order != 0 ? order < 0 : a.offset < b.offset
            }.map(\.element)
            let wanted = op == .topN || op == .bottomN ? limit : 1
            ranked = op == .top || op == .topN ? Array(sorted.prefix(wanted)) : Array(sorted.suffix(wanted))
            sizeBytes = ranked.reduce(0) { $0 + $1.output.encodedSize }
        }

        private mutating func append(_ value: BSONValue) throws(QueryError) {
            sizeBytes += value.encodedSize
            guard sizeBytes <= QueryEngineLimits.aggregationStageBytesMax else {
                throw QueryError(.exceededMemoryLimit, "\(name) used too much memory and cannot spill to disk")
            }
            items.append(value)
        }

        var result: BSONValue {
            switch op {
            case .stdDevPop: return count == 0 ? .null : .double((squares / Double(count)).squareRoot())
            case .stdDevSamp: return count < 2 ? .null : .double((squares / Double(count - 1)).squareRoot())
            case .mergeObjects: return .document(merged)
            case .maxN, .minN:
                var kept = self
                kept.keepExtremes()
                return .array(kept.items)
            case .top, .bottom, .topN, .bottomN:
                var kept = self
                kept.keepRanked()
                return op == .topN || op == .bottomN ? .array(kept.ranked.map(\.output)) : kept.ranked.first?.output ?? .null
            case .median, .percentile:
                // Nearest rank over the numeric inputs (MongoDB's 'approximate' is exact on inputs this size).
                guard !items.isEmpty else { return op == .median ? .null : .array(percentiles.map { _ in .null }) }
                let sorted = items.compactMap(\.doubleValue).sorted()
                let values = percentiles.map { p -> BSONValue in
                    let rank = Int((p * Double(sorted.count)).rounded(.up)) - 1
                    return .double(sorted[min(max(rank, 0), sorted.count - 1)])
                }
                return op == .median ? values[0] : .array(values)
            default: break
            }
            switch op {
            case .sum, .count: return sum
            case .avg:
                if count == 0 { return .null }
                if case .decimal128(let total) = sum { return .decimal128(total / Decimal128(Int64(count))) }
                return .double((sum.doubleValue ?? 0) / Double(count))
            case .min, .max: return extreme ?? .null
            case .first: return (first ?? nil) ?? .null
            case .last: return last ?? .null
            default: return .array(items)
            }
        }
    }
}
