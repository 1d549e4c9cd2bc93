/// Array operators added for MongoDB 7.0: `$zip`, `$sortArray`, the `N` family, set tests.
/// (`$reduce` binds variables and lives with `$map` and `$filter` in `bind`.)
extension ExpressionOperators {
    static func applyArray(_ op: ExpressionOperator, _ values: [BSONValue?]) throws(QueryError) -> BSONValue? {
        let name = op.rawValue
        switch op {
        case .zip:
            guard case .document(let spec)? = values.first ?? nil else { throw QueryError(.location(34460), "$zip only supports an object as an argument") }
            for key in spec.keys where !["inputs", "useLongestLength", "defaults"].contains(key) {
                throw QueryError(.location(34464), "$zip found an unknown argument: \(key)")
            }
            guard case .array(let inputs)? = spec["inputs"] else { throw QueryError(.location(34461), "inputs must be an array of expressions") }
            var arrays: [[BSONValue]] = []
            for input in inputs {
                if isNullish(input) { return .null }
                guard case .array(let array) = input else {
                    throw QueryError(.location(34468), "$zip found a non-array expression in input: \(input.typeAlias)")
                }
                arrays.append(array)
            }
            let longest = spec["useLongestLength"]?.isTruthy ?? false
            var defaults = [BSONValue](repeating: .null, count: arrays.count)
            if let given = spec["defaults"], !isNullish(given) {
                guard longest else { throw QueryError(.location(34466), "cannot specify defaults unless useLongestLength is true") }
                guard case .array(let items) = given, items.count == arrays.count else {
                    throw QueryError(.location(34467), "defaults and inputs must have the same length")
                }
                defaults = items
            }
            let lengths = arrays.map(\.count)
            let count = arrays.isEmpty ? 0 : (longest ? lengths.max()! : lengths.min()!)
            let zipped = BSONValue.array((0..<count).map { row in
                .array(arrays.indices.map { column in row < arrays[column].count ? arrays[column][row] : defaults[column] })
            })
            try checkSize(zipped, name)
            return zipped
        case .sortArray:
            guard case .document(let spec)? = values.first ?? nil else {
                throw QueryError(.location(2942500), "$sortArray requires an object as an argument, found: \(typeName(values.first ?? nil))")
            }
            for key in spec.keys where key != "input" && key != "sortBy" {
                throw QueryError(.location(2942501), "$sortArray found an unknown argument: \(key)")
            }
            if isNullish(spec["input"]) { return .null }
            guard case .array(let input)? = spec["input"] else {
                throw QueryError(.location(2942504), "The input argument to $sortArray must be an array, but was of type: \(typeName(spec["input"]))")
            }
            switch spec["sortBy"] {
            case let direction? where direction.isNumber && (direction.int64Value == 1 || direction.int64Value == -1):
                let descending = direction.int64Value == -1
                return .array(stableSorted(input) { a, b in
                    let order = BSONComparison.compare(a, b)
                    return descending ? order > 0 : order < 0
                })
            case .document(let pattern)?:
                let specification = try SortSpecification(pattern)
                return .array(specification.sorted(input) { $0.documentValue })
            default:
                throw QueryError(.location(2942505), "$sortArray requires sortBy to be 1, -1 or an object of field directions")
            }
        case .firstN, .lastN, .maxN, .minN:
            guard case .document(let spec)? = values.first ?? nil else {
                throw QueryError(.location(5787801), "specification must be an object; found \(typeName(values.first ?? nil))")
            }
            for key in spec.keys where key != "n" && key != "input" {
                throw QueryError(.location(5787901), "Unknown argument for '\(name)' expression: '\(key)'")
            }
            let n = try countArgument(spec["n"], name)
            if isNullish(spec["input"]) { return .null }
            guard case .array(let input)? = spec["input"] else {
                throw QueryError(.location(5788200), "Input must be an array for '\(name)', found \(typeName(spec["input"]))")
            }
            switch op {
            case .firstN: return .array(Array(input.prefix(n)))
            case .lastN: return .array(Array(input.suffix(n)))
            default:
                let present = input.filter { !isNullish($0) }
                let sorted = stableSorted(present) { a, b in
                    let order = BSONComparison.compare(a, b)
                    return op == .maxN ? order > 0 : order < 0
                }
                return .array(Array(sorted.prefix(n)))
            }
        case .setEquals:
            guard values.count >= 2 else {
                throw QueryError(.location(17045), "$setEquals needs at least two arguments had: \(values.count)")
            }
            var sets: [[BSONValue]] = []
            for value in values {
                guard case .array(let array)? = value else {
                    throw QueryError(.location(17044), "All operands of $setEquals must be arrays. One argument is of type: \(typeName(value))")
                }
                sets.append(array)
            }
            let first = sets[0]
            return .bool(sets.dropFirst().allSatisfy { other in
                first.allSatisfy { item in other.contains { BSONComparison.equal($0, item) } }
                    && other.allSatisfy { item in first.contains { BSONComparison.equal($0, item) } }
            })
        case .setIsSubset:
            guard values.count == 2 else { throw arity(name, 2) }
            guard case .array(let subset)? = values[0] else {
                throw QueryError(.location(17046), "both operands of $setIsSubset must be arrays. First argument is of type: \(typeName(values[0]))")
            }
            guard case .array(let superset)? = values[1] else {
                throw QueryError(.location(17042), "both operands of $setIsSubset must be arrays. Second argument is of type: \(typeName(values[1]))")
            }
            return .bool(subset.allSatisfy { item in superset.contains { BSONComparison.equal($0, item) } })
        default:
            throw QueryError(.invalidPipelineOperator, "Unrecognized expression '\(name)'")
        }
    }

    /// The `n` of the N operators and accumulators: a positive integral number.
    static func countArgument(_ value: BSONValue?, _ name: String) throws(QueryError) -> Int {
        guard let value, value.isNumber, let n = value.int64Value else {
            throw QueryError(.location(5787902), "Value for 'n' must be of integral type, but found \(typeName(value))")
        }
        guard n > 0 else { throw QueryError(.location(5787908), "'n' must be greater than 0, found \(n)") }
        // No array holds more than this; the bound keeps `2 * n` arithmetic from overflowing.
        return Int(min(n, 1 << 40))
    }

    /// A stable sort (equal elements keep their order, as MongoDB's sorts do).
    static func stableSorted(_ items: [BSONValue], by less: (BSONValue, BSONValue) -> Bool) -> [BSONValue] {
        items.enumerated().sorted { a, b in
            if less(a.element, b.element) { return true }
            if less(b.element, a.element) { return false }
            return a.offset < b.offset
        }.map(\.element)
    }
}
