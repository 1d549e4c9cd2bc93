/// Chooses an access path for a filter and sort over one collection.
///
/// The rule that keeps results identical to a full scan: index ranges are always a superset of
/// the matching documents and every fetched document is re-checked against the whole filter;
/// sort order and limits are pushed into the scan only when the index order provably equals the
/// requested order (non-multikey index, one range or ranges in key order).
public enum QueryPlanner {
    /// Plans a query.
    public static func plan(filter: Filter, sort: SortSpecification?, collection: CollectionDescriptor) -> QueryPlan {
        // `$text` has one access path: the collection's text index (FTS5), then the filter.
        if let query = (try? filter.textQuery()) ?? nil {
            return QueryPlan(
                access: .text(collection.indexes.first { $0.text != nil && !$0.isHidden }, query), descending: false, providesSort: false, isExact: false,
                needsDeduplication: false)
        }
        // `{$natural: 1}` / `{$natural: -1}`: the documents in insertion order (row ids grow), or
        // the reverse, whatever the filter.
        if let sort, sort.keys.count == 1, sort.keys[0].path.dotted == "$natural" {
            return QueryPlan(access: .collectionScan, descending: !sort.keys[0].ascending, providesSort: true, isExact: false, needsDeduplication: false)
        }
        let conjuncts = conjunctsByPath(filter)
        let residualFree = isConjunctionOfFields(filter)
        var best: (score: Int, plan: QueryPlan)?

        // The _id index.
        let collated = Collation.active != nil
        if let operators = conjuncts["_id"], let ranges = ranges(for: operators, ascending: true, multikey: false, decimals: collection.idHoldsDecimals, legacyDecimals: true) {
            let exact = residualFree && conjuncts.count == 1 && ranges.exact
            var plan = QueryPlan(
                access: .idIndex(ranges.intervals), descending: false, providesSort: false, isExact: exact,
                needsDeduplication: false)
            if !collection.idHoldsDecimals && !collated {
                applySort(sort, fields: [(try! FieldPath("_id"), true)], equalityPrefix: 0, intervals: ranges.intervals, multikey: false, to: &plan)
            }
            best = (ranges.isPoint ? 1000 : 50, plan)
        }

        // Sparse and partial indexes leave documents out, so a plan on them could miss matches
        // (for example `{field: null}` must find documents without the field).
        for index in collection.indexes where index.partialFilter == nil && !index.sparse && !index.isHidden {
            guard let candidate = planIndex(index, conjuncts: conjuncts, residualFree: residualFree, sort: sort) else { continue }
            if best == nil || candidate.score > best!.score { best = candidate }
        }

        if best == nil, let sort {
            // No predicate uses an index, but one may still deliver the sort order.
            if sort.keys.count == 1, sort.keys[0].path.dotted == "_id", !collection.idHoldsDecimals, !collated {
                best = (1, QueryPlan(access: .idIndex([.everything]), descending: !sort.keys[0].ascending, providesSort: true, isExact: false, needsDeduplication: false))
            }
            for index in collection.indexes
            where index.partialFilter == nil && !index.sparse && !index.isHidden && !index.isMultikey && !index.holdsInexactKeys && index.collation == Collation.active {
                var plan = QueryPlan(access: .index(index, [.everything]), descending: false, providesSort: false, isExact: false, needsDeduplication: false)
                applySort(sort, fields: index.fields, equalityPrefix: 0, intervals: [.everything], multikey: false, to: &plan)
                if plan.providesSort && best == nil { best = (1, plan) }
            }
        }
        return best?.plan ?? QueryPlan(access: .collectionScan, descending: false, providesSort: false, isExact: false, needsDeduplication: false)
    }

    private static func planIndex(
        _ index: IndexDescriptor, conjuncts: [String: [Filter.FieldOperator]], residualFree: Bool, sort: SortSpecification?
    ) -> (score: Int, plan: QueryPlan)? {
        var prefixes: [[UInt8]] = [[]]
        var intervals: [KeyInterval]?
        var usedFields = 0
        var equalityFields = 0
        var exact = residualFree && !index.sparse
        for field in index.fields {
            guard let operators = conjuncts[field.path.dotted],
                let ranges = ranges(
                    for: operators, ascending: field.ascending, multikey: index.isMultikey, decimals: index.holdsInexactKeys,
                    legacyDecimals: index.legacyDecimalKeys, collation: index.collation)
            else { break }
            usedFields += 1
            exact = exact && ranges.exact
            if ranges.isPoint || ranges.intervals.allSatisfy({ IndexKey.prefixSuccessor($0.lower) == $0.upper }) {
                let points = ranges.intervals.map(\.lower)
                guard prefixes.count * points.count <= 256 else { exact = false; break }
                prefixes = prefixes.flatMap { prefix in points.map { prefix + $0 } }
                equalityFields += 1
                continue
            }
            intervals = prefixes.flatMap { prefix in
                ranges.intervals.map { KeyInterval(lower: prefix + $0.lower, upper: prefix + $0.upper) }
            }
            break
        }
        guard usedFields > 0 else { return nil }
        let scanIntervals = intervals ?? prefixes.map { KeyInterval.prefix($0) }
        let usedPaths = Set(index.fields.prefix(usedFields).map(\.path.dotted))
        exact = exact && Set(conjuncts.keys) == usedPaths
        var plan = QueryPlan(
            access: .index(index, scanIntervals), descending: false, providesSort: false, isExact: exact,
            needsDeduplication: index.isMultikey || scanIntervals.count > 1)
        if !index.holdsInexactKeys && index.collation == Collation.active {
            applySort(sort, fields: index.fields, equalityPrefix: equalityFields, intervals: scanIntervals, multikey: index.isMultikey, to: &plan)
        }
        var score = equalityFields * 10 + (usedFields - equalityFields) * 5
        if index.unique && equalityFields == index.fields.count { score += 100 }
        if plan.providesSort { score += 2 }
        return (score, plan)
    }

    /// Marks the plan as providing `sort` when the scan order equals it.
    private static func applySort(
        _ sort: SortSpecification?, fields: [(path: FieldPath, ascending: Bool)], equalityPrefix: Int,
        intervals: [KeyInterval], multikey: Bool, to plan: inout QueryPlan
    ) {
        guard let sort, !multikey else { return }
        let start = intervals.count > 1 ? 0 : equalityPrefix
        for offset in [start, 0] {
            guard offset + sort.keys.count <= fields.count else { continue }
            var sameDirection = true
            var reversedDirection = true
            var pathsMatch = true
            for (position, key) in sort.keys.enumerated() {
                let field = fields[offset + position]
                if field.path != key.path { pathsMatch = false }
                if field.ascending != key.ascending { sameDirection = false } else { reversedDirection = false }
            }
            if pathsMatch && (sameDirection || reversedDirection) {
                if offset > 0 && intervals.count > 1 { continue }
                plan.providesSort = true
                plan.descending = reversedDirection && !sameDirection
                return
            }
        }
    }

    // MARK: - Filter analysis

    /// Field predicates that must all hold (top-level fields and `$and` of fields).
    static func conjunctsByPath(_ filter: Filter) -> [String: [Filter.FieldOperator]] {
        var result: [String: [Filter.FieldOperator]] = [:]
        func visit(_ node: Filter) {
            switch node {
            case .field(let path, let operators): result[path.dotted, default: []].append(contentsOf: operators)
            case .and(let clauses): clauses.forEach(visit)
            default: break
            }
        }
        visit(filter)
        return result
    }

    private static func isConjunctionOfFields(_ filter: Filter) -> Bool {
        switch filter {
        case .alwaysTrue, .field: true
        case .and(let clauses): clauses.allSatisfy(isConjunctionOfFields)
        default: false
        }
    }

    struct Ranges {
        var intervals: [KeyInterval]
        var exact: Bool
        var isPoint: Bool
    }

    /// Key ranges implied by the operators on one field, or `nil` when none helps.
    /// `decimals`: the index holds a number whose key is not exact (`IndexKey.decimalKey`), so
    /// every numeric bound becomes a window around it and the plan is never exact. A decimal
    /// bound that has no exact key becomes a window too.
    ///
    /// `legacyDecimals`: the index keys decimals by a double near them (`IndexKey.idKey`): the
    /// `_id` index, and an index written that way that could not be rebuilt
    /// (`IndexDescriptor.legacyDecimalKeys`); decimal bounds are windows there.
    ///
    /// `collation`: the index's. Its string keys answer only a query under the same collation
    /// (the one active on this thread); other string bounds cannot use it.
    static func ranges(
        for operators: [Filter.FieldOperator], ascending: Bool, multikey: Bool, decimals: Bool = false, legacyDecimals: Bool = false,
        collation: Collation? = nil
    ) -> Ranges? {
        let sameCollation = collation == Collation.active
        func encode(_ value: BSONValue) -> [UInt8] { IndexKey.encode(value, collation: collation, legacyDecimals: legacyDecimals) }
        func needsWindow(_ value: BSONValue) -> Bool {
            guard value.isNumber else { return false }
            guard case .decimal128(let decimal) = value else { return decimals }
            return decimals || legacyDecimals || !IndexKey.decimalKey(decimal).exact
        }
        var points: [[UInt8]]?
        var lower: (key: [UInt8], tag: UInt8)?
        var upper: (key: [UInt8], tag: UInt8)?
        var exact = true
        for fieldOperator in operators {
            switch fieldOperator {
            case .equal(let value) where needsWindow(value) && !(value.doubleValue?.isNaN ?? true):
                exact = false
                guard lower == nil, upper == nil, points == nil else { continue }
                let window = numericWindow(value, legacyDecimals: legacyDecimals)
                lower = (window.low, IndexKey.numberTag)
                upper = (window.high, IndexKey.numberTag)
            case .equal(let value):
                // A document or array holding a decimal has no one key where decimals are keyed
                // by a nearby double (equal decimals written differently get different doubles).
                guard isIndexable(value), sameCollation || !value.containsString, !(legacyDecimals && !value.isNumber && value.containsDecimal) else {
                    exact = false
                    continue
                }
                if case .null = value {
                    exact = false
                    let found = [IndexKey.encode(.undefined), IndexKey.encode(.null)]
                    points = points.map { $0.filter(found.contains) } ?? found
                    continue
                }
                let key = encode(value)
                if !isExactlyEncoded(value, legacyDecimals: legacyDecimals) { exact = false }
                points = points.map { $0.filter { $0 == key } } ?? [key]
            case .in(let values, let regexes):
                guard regexes.isEmpty, values.allSatisfy(isIndexable), !values.contains(where: needsWindow),
                    !(legacyDecimals && values.contains { !$0.isNumber && $0.containsDecimal }),
                    sameCollation || !values.contains(where: \.containsString)
                else {
                    exact = false
                    continue
                }
                var keys: [[UInt8]] = []
                for value in values {
                    if case .null = value {
                        exact = false
                        keys.append(IndexKey.encode(.undefined))
                    }
                    if !isExactlyEncoded(value, legacyDecimals: legacyDecimals) { exact = false }
                    keys.append(encode(value))
                }
                let sorted = Array(Set(keys)).sorted { $0.lexicographicallyPrecedes($1) }
                points = points.map { existing in existing.filter(sorted.contains) } ?? sorted
            case .greaterThan(let value), .greaterThanOrEqual(let value):
                guard isRangeOperand(value), lower == nil, !(multikey && upper != nil), sameCollation || !value.containsString else { exact = false; continue }
                let key = encode(value)
                if needsWindow(value) {
                    exact = false
                    lower = (numericWindow(value, legacyDecimals: legacyDecimals).low, value.canonicalRank)
                } else if case .greaterThan = fieldOperator {
                    lower = (IndexKey.prefixSuccessor(key) ?? key, value.canonicalRank)
                } else {
                    lower = (key, value.canonicalRank)
                }
                if !isExactlyEncoded(value, legacyDecimals: legacyDecimals) { exact = false }
            case .lessThan(let value), .lessThanOrEqual(let value):
                guard isRangeOperand(value), upper == nil, !(multikey && lower != nil), sameCollation || !value.containsString else { exact = false; continue }
                let key = encode(value)
                if needsWindow(value) {
                    exact = false
                    upper = (numericWindow(value, legacyDecimals: legacyDecimals).high, value.canonicalRank)
                } else if case .lessThanOrEqual = fieldOperator {
                    upper = (IndexKey.prefixSuccessor(key) ?? key, value.canonicalRank)
                } else {
                    upper = (key, value.canonicalRank)
                }
                if !isExactlyEncoded(value, legacyDecimals: legacyDecimals) { exact = false }
            default:
                exact = false
            }
        }
        if multikey { exact = exact && points != nil && lower == nil && upper == nil }
        if let points {
            if lower != nil || upper != nil { exact = false }
            let intervals = points.map { KeyInterval.prefix(ascending ? $0 : $0.map { ~$0 }) }
            let ordered = ascending ? intervals : intervals.reversed()
            return Ranges(intervals: ordered, exact: exact, isPoint: points.count == 1)
        }
        guard lower != nil || upper != nil else { return nil }
        if let lower, let upper, lower.tag != upper.tag { return Ranges(intervals: [], exact: exact, isPoint: false) }
        let tag = lower?.tag ?? upper?.tag ?? 0
        let low = lower?.key ?? (tag == IndexKey.numberTag ? IndexKey.lowestNonNaNNumber : [tag])
        let high = upper?.key ?? [tag + 1]
        guard low.lexicographicallyPrecedes(high) else { return Ranges(intervals: [], exact: exact, isPoint: false) }
        if ascending { return Ranges(intervals: [KeyInterval(lower: low, upper: high)], exact: exact, isPoint: false) }
        // Descending fields store inverted bytes: the range flips, and bounds become a superset.
        let invertedLow = high.map { ~$0 }
        let invertedHigh = IndexKey.prefixSuccessor(low.map { ~$0 }) ?? [0xFF, 0xFF]
        return Ranges(intervals: [KeyInterval(lower: invertedLow, upper: invertedHigh)], exact: false, isPoint: false)
    }

    /// Keys around a number wide enough for every number keyed near its value: an `_id` key
    /// holds a double computed by hand for a decimal, within a few units in the last place of
    /// its value (`Decimal128.keyDoubleValue`), and below about 1e-270 that double loses its
    /// precision altogether; an inexact key of an index (`IndexKey.decimalKey`) holds the
    /// nearest double with a residual. The filter then decides exactly.
    static func numericWindow(_ value: BSONValue, legacyDecimals: Bool) -> (low: [UInt8], high: [UInt8]) {
        let center: Double =
            if case .decimal128(let decimal) = value { legacyDecimals ? decimal.keyDoubleValue : decimal.exactDoubleValue } else { value.doubleValue ?? 0 }
        var low = center
        var high = center
        for _ in 0..<8 {
            low = low.nextDown
            high = high.nextUp
        }
        if abs(center) < 1e-270 {
            low = min(low, -1e-270)
            high = max(high, 1e-270)
        }
        let lowKey = IndexKey.encode(.double(low))
        let highKey = IndexKey.encode(.double(high))
        return (lowKey, IndexKey.prefixSuccessor(highKey) ?? highKey)
    }

    private static func isIndexable(_ value: BSONValue) -> Bool {
        switch value {
        case .array, .regex, .minKey, .maxKey, .undefined: false
        default: true
        }
    }

    private static func isRangeOperand(_ value: BSONValue) -> Bool {
        switch value {
        case .array, .regex, .minKey, .maxKey, .undefined, .null, .document: false
        case .double(let number): !number.isNaN
        case .decimal128(let decimal): !decimal.isNaN
        default: true
        }
    }

    /// Whether equal keys imply equal values (decimals round through double; documents hold
    /// nested numbers whose types the key does not keep apart).
    private static func isExactlyEncoded(_ value: BSONValue, legacyDecimals: Bool) -> Bool {
        switch value {
        case .decimal128: !legacyDecimals && IndexKey.isExact(value)
        case .document, .null: false
        case .double(let number): !number.isNaN
        default: true
        }
    }
}
