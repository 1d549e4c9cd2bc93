/// `$group` accumulators (`$sum`, `$avg`, `$min`, `$max`, `$first`, `$last`, `$push`,
/// `$addToSet`, `$count`), also used by the array forms of `$sum`/`$avg`/`$min`/`$max`.
public struct Accumulator: Sendable {
    /// The accumulator's operator name.
    public let name: String
    /// Its argument expression.
    public let argument: Expression

    static let supported: Set<String> = ["$sum", "$avg", "$min", "$max", "$first", "$last", "$push", "$addToSet", "$count"]

    /// Parses `{$sum: <expression>}`.
    public init(_ specification: BSONValue) throws(QueryError) {
        guard case .document(let document) = specification, document.count == 1, let name = document.firstKey else {
            throw QueryError(.location(40234), "The field must specify one accumulator")
        }
        guard Accumulator.supported.contains(name) else {
            throw QueryError(.unknownGroupAccumulator, "unknown group operator '\(name)'")
        }
        self.name = name
        if name == "$count" {
            argument = .literal(.int32(1))
        } else {
            argument = try Expression(document[0].value)
        }
    }

    /// Running state for one group.
    struct State: Sendable {
        let name: String
        var sum: BSONValue = .int32(0)
        var count = 0
        var extreme: BSONValue?
        var first: BSONValue??
        var last: BSONValue?
        var items: [BSONValue] = []
        var sizeBytes = 0

        init(_ name: String) { self.name = name }

        mutating func add(_ value: BSONValue?) throws(QueryError) {
            switch name {
            case "$sum", "$count", "$avg":
                guard let value, value.isNumber else { return }
                sum = try Arithmetic.add(sum, value)
                count += 1
            case "$min", "$max":
                guard let value, value != .null, value != .undefined else { return }
                if let current = extreme {
                    let order = BSONComparison.compare(value, current)
                    if (name == "$min" && order < 0) || (name == "$max" && order > 0) { extreme = value }
                } else {
                    extreme = value
                }
            case "$first":
                if first == nil { first = .some(value) }
            case "$last":
                last = value
            case "$push":
                guard let value else { return }
                try append(value)
            case "$addToSet":
                guard let value, !items.contains(where: { BSONComparison.equal($0, value) }) else { return }
                try append(value)
            default: break
            }
        }

        private mutating func append(_ value: BSONValue) throws(QueryError) {
            sizeBytes += value.encodedSize
            guard sizeBytes <= QueryEngineLimits.aggregationStageBytesMax else {
                throw QueryError(.exceededMemoryLimit, "\(name) used too much memory and cannot spill to disk")
            }
            items.append(value)
        }

        var result: BSONValue {
            switch name {
            case "$sum", "$count": return sum
            case "$avg": return count == 0 ? .null : .double((sum.doubleValue ?? 0) / Double(count))
            case "$min", "$max": return extreme ?? .null
            case "$first": return (first ?? nil) ?? .null
            case "$last": return last ?? .null
            default: return .array(items)
            }
        }
    }
}
