extension Filter {
    /// Whether `document` satisfies the filter.
    public func matches(_ document: BSONDocument) -> Bool {
        var position: Int?
        return matches(document, position: &position)
    }

    /// Whether `document` satisfies the filter, recording the array index that matched first
    /// (for the positional `$` update and projection operators).
    public func matches(_ document: BSONDocument, position: inout Int?) -> Bool {
        switch self {
        case .alwaysTrue: return true
        case .and(let clauses):
            for clause in clauses where !clause.matches(document, position: &position) { return false }
            return true
        case .or(let clauses):
            for clause in clauses where clause.matches(document, position: &position) { return true }
            return false
        case .nor(let clauses):
            var ignored: Int?
            for clause in clauses where clause.matches(document, position: &ignored) { return false }
            return true
        case .field(let path, let operators):
            if path.components.isEmpty {
                // `$all` with `$elemMatch` evaluates operators against an element itself.
                return operators.allSatisfy { Filter.evaluate($0, on: [PathCandidate(value: .document(document), isArrayElement: false, firstArrayIndex: nil)], position: &position) }
            }
            let candidates = path.candidates(in: document)
            for fieldOperator in operators where !Filter.evaluate(fieldOperator, on: candidates, position: &position) {
                return false
            }
            return true
        case .expression(let expression):
            return ((try? expression.evaluate(ExpressionContext(root: document))) ?? nil)?.isTruthy ?? false
        case .text:
            // Only the text index's matches reach here (the planner makes $text its access path).
            return document[TextQuery.scoreField] != nil
        case .jsonSchema(let schema):
            // A text search's score rides in the document; the schema sees the document as stored.
            guard document[TextQuery.scoreField] != nil else { return schema.accepts(.document(document)) }
            var stored = document
            stored.removeValue(forKey: TextQuery.scoreField)
            return schema.accepts(.document(stored))
        }
    }

    /// Applies one operator to every candidate value of a path.
    static func evaluate(_ fieldOperator: FieldOperator, on candidates: [PathCandidate], position: inout Int?) -> Bool {
        switch fieldOperator {
        case .equal(let operand):
            return firstMatch(candidates, position: &position) { matchesEquality($0, operand) }
        case .notEqual(let operand):
            var ignored: Int?
            return !firstMatch(candidates, position: &ignored) { matchesEquality($0, operand) }
        case .greaterThan(let operand):
            return firstMatch(candidates, position: &position) { compares($0, operand) { $0 > 0 } }
        case .greaterThanOrEqual(let operand):
            return firstMatch(candidates, position: &position) { compares($0, operand) { $0 >= 0 } }
        case .lessThan(let operand):
            return firstMatch(candidates, position: &position) { compares($0, operand) { $0 < 0 } }
        case .lessThanOrEqual(let operand):
            return firstMatch(candidates, position: &position) { compares($0, operand) { $0 <= 0 } }
        case .in(let values, let regexes):
            return firstMatch(candidates, position: &position) { candidate in
                values.contains { matchesEquality(candidate, $0) } || regexes.contains { matchesRegex(candidate, $0) }
            }
        case .notIn(let values, let regexes):
            var ignored: Int?
            return !firstMatch(candidates, position: &ignored) { candidate in
                values.contains { matchesEquality(candidate, $0) } || regexes.contains { matchesRegex(candidate, $0) }
            }
        case .exists(let wanted):
            let present = candidates.contains { $0.value != nil }
            return present == wanted
        case .type(let selectors):
            return firstMatch(candidates, position: &position) { candidate in
                guard let value = candidate.value else { return false }
                return selectors.contains { selector in
                    switch selector {
                    case .number: value.isNumber
                    case .typeByte(let byte): value.typeByte == byte
                    }
                }
            }
        case .regex(let regex):
            return firstMatch(candidates, position: &position) { matchesRegex($0, regex) }
        case .not(let inner):
            var ignored: Int?
            return !inner.allSatisfy { evaluate($0, on: candidates, position: &ignored) }
        case .elemMatchDocument(let filter):
            return firstArrayMatch(candidates, position: &position) { element in
                guard case .document(let document) = element else { return false }
                return filter.matches(document)
            }
        case .elemMatchValue(let operators):
            return firstArrayMatch(candidates, position: &position) { element in
                let elementCandidates = [PathCandidate(value: element, isArrayElement: false, firstArrayIndex: nil)]
                var ignored: Int?
                return operators.allSatisfy { evaluate($0, on: elementCandidates, position: &ignored) }
            }
        case .size(let count):
            return candidates.contains { candidate in
                guard !candidate.isArrayElement, case .array(let elements) = candidate.value else { return false }
                return elements.count == count
            }
        case .all(let values):
            if values.isEmpty { return false }
            return values.allSatisfy { value in
                if case .regex(let regex) = value, let compiled = try? CompiledRegex(regex) {
                    return candidates.contains { matchesRegex($0, compiled) }
                }
                return candidates.contains { matchesEquality($0, value) }
            }
        case .allElemMatch(let filters):
            return filters.allSatisfy { filter in
                guard case .field(_, let operators) = filter else { return false }
                var ignored: Int?
                return operators.allSatisfy { evaluate($0, on: candidates, position: &ignored) }
            }
        case .mod(let divisor, let remainder):
            return firstMatch(candidates, position: &position) { candidate in
                guard let number = candidate.value, number.isNumber, let double = number.doubleValue, double.isFinite
                else { return false }
                guard let whole = Int64(exactly: double.rounded(.towardZero)) else { return false }
                return whole % divisor == remainder
            }
        case .bits(let test, let mask):
            return firstMatch(candidates, position: &position) { candidate in
                guard let value = candidate.value else { return false }
                return Self.bitsMatch(value, test, mask)
            }
        case .geoWithin(let region):
            // `$box`, `$polygon` and `$center` are grids of legacy pairs: GeoJSON is not on them.
            return candidates.contains { candidate in
                guard let value = candidate.value else { return false }
                if region.isFlat { return GeoShape.legacyPoint(value).map(region.contains) ?? false }
                return GeoShape.read(value).map(region.contains) ?? false
            }
        case .geoIntersects(let shape):
            return candidates.contains { candidate in candidate.value.flatMap(GeoShape.read).map { GeoShape.intersects($0, shape) } ?? false }
        case .near(let near):
            return near.distance(to: candidates.compactMap(\.value)).map(near.accepts) ?? false
        }
    }

    /// A bitwise test of a number representable as a 64-bit integer (two's complement: bits
    /// past 63 repeat the sign) or of BinData (bits past its end are clear); other values,
    /// fractional numbers and decimals never match, as in MongoDB.
    private static func bitsMatch(_ value: BSONValue, _ test: BitTest, _ mask: [UInt8]) -> Bool {
        let bytes: [UInt8]
        var fill: UInt8 = 0
        switch value {
        case .int32, .int64, .double:
            guard let number = value.int64Value else { return false }
            bytes = withUnsafeBytes(of: number.littleEndian, Array.init)
            if number < 0 { fill = 0xFF }
        case .binary(let binary): bytes = binary.data
        default: return false
        }
        var allSet = true, anySet = false, allClear = true, anyClear = false
        for (index, wanted) in mask.enumerated() where wanted != 0 {
            let have = index < bytes.count ? bytes[index] : fill
            if have & wanted != wanted { allSet = false }
            if have & wanted != 0 { anySet = true; allClear = false }
            if ~have & wanted != 0 { anyClear = true }
        }
        switch test {
        case .allSet: return allSet
        case .anySet: return anySet
        case .allClear: return allClear
        case .anyClear: return anyClear
        }
    }

    private static func firstMatch(
        _ candidates: [PathCandidate], position: inout Int?, _ predicate: (PathCandidate) -> Bool
    ) -> Bool {
        for candidate in candidates where predicate(candidate) {
            if position == nil { position = candidate.firstArrayIndex }
            return true
        }
        return false
    }

    /// `$elemMatch` looks only at arrays reached by the path (not at their expanded elements).
    private static func firstArrayMatch(
        _ candidates: [PathCandidate], position: inout Int?, _ predicate: (BSONValue) -> Bool
    ) -> Bool {
        for candidate in candidates where !candidate.isArrayElement {
            guard case .array(let elements) = candidate.value else { continue }
            for (index, element) in elements.enumerated() where predicate(element) {
                if position == nil { position = candidate.firstArrayIndex ?? index }
                return true
            }
        }
        return false
    }

    /// Equality as the matcher applies it: `null` also matches a missing field.
    static func matchesEquality(_ candidate: PathCandidate, _ operand: BSONValue) -> Bool {
        guard let value = candidate.value else {
            if case .null = operand { return true }
            return false
        }
        if case .null = operand, case .undefined = value { return true }
        return value.canonicalRank == operand.canonicalRank && BSONComparison.compare(value, operand) == 0
    }

    /// Ordered comparison with MongoDB's type bracketing: values of another type never match,
    /// except that `null` bounds include missing fields and MinKey/MaxKey bound everything.
    static func compares(_ candidate: PathCandidate, _ operand: BSONValue, _ accept: (Int) -> Bool) -> Bool {
        let value = candidate.value ?? .null
        switch operand {
        case .minKey, .maxKey:
            return accept(BSONComparison.compare(value, operand))
        default:
            if candidate.value == nil, case .null = operand { return accept(0) }
            guard value.canonicalRank == operand.canonicalRank else { return false }
            if case .array = operand, candidate.isArrayElement == false, case .array = value {
                return accept(BSONComparison.compare(value, operand))
            }
            if value.isNumber, let double = value.doubleValue, double.isNaN {
                // NaN is equal only to NaN and is not greater or less than anything.
                if let other = operand.doubleValue, other.isNaN { return accept(0) }
                return false
            }
            if operand.isNumber, let other = operand.doubleValue, other.isNaN { return false }
            return accept(BSONComparison.compare(value, operand))
        }
    }

    static func matchesRegex(_ candidate: PathCandidate, _ regex: CompiledRegex) -> Bool {
        switch candidate.value {
        case .string(let text), .symbol(let text): regex.matches(text)
        case .regex(let stored): stored == regex.source
        default: false
        }
    }
}
