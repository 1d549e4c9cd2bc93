/// A parsed query filter, MongoDB's query language compiled into a tree once per query.
public indirect enum Filter: Sendable {
    case alwaysTrue
    case and([Filter])
    case or([Filter])
    case nor([Filter])
    case field(FieldPath, [FieldOperator])
    case expression(Expression)
    /// `$text`: answered by the collection's text index (`QueryScan`), true for every document
    /// the index returns.
    case text(TextQuery)
    /// `$jsonSchema`: the document matches the schema (the one validators use).
    case jsonSchema(JSONSchema)

    /// One operator applied to the values at a path.
    public enum FieldOperator: Sendable {
        case equal(BSONValue)
        case notEqual(BSONValue)
        case greaterThan(BSONValue)
        case greaterThanOrEqual(BSONValue)
        case lessThan(BSONValue)
        case lessThanOrEqual(BSONValue)
        case `in`([BSONValue], [CompiledRegex])
        case notIn([BSONValue], [CompiledRegex])
        case exists(Bool)
        case type([TypeSelector])
        case regex(CompiledRegex)
        case not([FieldOperator])
        case elemMatchDocument(Filter)
        case elemMatchValue([FieldOperator])
        case size(Int)
        case all([BSONValue])
        case allElemMatch([Filter])
        case mod(divisor: Int64, remainder: Int64)
        /// `$bitsAllSet`, `$bitsAnySet`, `$bitsAllClear`, `$bitsAnyClear`: the mask's bits, least
        /// significant first (bit 0 is the low bit of byte 0).
        case bits(BitTest, mask: [UInt8])
        /// `$geoWithin`: every vertex of a geometry at the path lies in the region.
        case geoWithin(GeoRegion)
        /// `$geoIntersects`: a geometry at the path shares a point with the shape.
        case geoIntersects(GeoShape)
        /// `$near`, `$nearSphere`: a geometry at the path within the distance bounds; a `find`
        /// returns the matches nearest first (`FindQuery`).
        case near(GeoNear)
    }

    /// Which bits of a value a bitwise query operator asks about.
    public enum BitTest: Sendable {
        case allSet, anySet, allClear, anyClear
    }

    /// Whether the filter matches every document (`{}`).
    public var isTrivial: Bool {
        if case .alwaysTrue = self { return true }
        if case .and(let clauses) = self { return clauses.allSatisfy(\.isTrivial) }
        return false
    }

    /// A `$type` argument: a BSON type byte or the `number` alias.
    public enum TypeSelector: Sendable, Hashable {
        case typeByte(UInt8)
        case number
    }

    /// Parses a filter document.
    public init(_ document: BSONDocument) throws(QueryError) {
        var clauses: [Filter] = []
        for element in document.elements {
            clauses.append(try Filter.parseClause(key: element.key, value: element.value))
        }
        self = clauses.count == 1 ? clauses[0] : (clauses.isEmpty ? .alwaysTrue : .and(clauses))
    }

    private static func parseClause(key: String, value: BSONValue) throws(QueryError) -> Filter {
        if key.hasPrefix("$") {
            switch key {
            case "$and", "$or", "$nor":
                guard case .array(let items) = value, !items.isEmpty else {
                    throw QueryError(.badValue, "\(key) must be a nonempty array")
                }
                var parsed: [Filter] = []
                for item in items {
                    guard case .document(let document) = item else {
                        throw QueryError(.badValue, "\(key) argument's entries must be objects")
                    }
                    parsed.append(try Filter(document))
                }
                return key == "$and" ? .and(parsed) : (key == "$or" ? .or(parsed) : .nor(parsed))
            case "$expr":
                return .expression(try Expression(value))
            case "$comment":
                return .alwaysTrue
            case "$sampleRate":
                // Each document matches with this probability: `$expr: {$lt: [{$rand: {}}, rate]}`.
                guard value.isNumber, let rate = value.doubleValue, (0...1).contains(rate) else {
                    throw QueryError(.badValue, "numeric argument to $sampleRate must be in [0, 1]")
                }
                return .expression(.call(.lt, [.call(.rand, []), .literal(.double(rate))]))
            case "$text":
                return .text(try TextQuery(value))
            case "$jsonSchema":
                guard case .document(let schema) = value else { throw QueryError(.typeMismatch, "$jsonSchema must be an object") }
                return .jsonSchema(try JSONSchema(schema))
            case "$where":
                throw QueryError(.badValue, "$where is not supported by StratosDB (it runs JavaScript)")
            default:
                throw QueryError(.badValue, "unknown top level operator: \(key)")
            }
        }
        let path = try FieldPath(key)
        if case .document(let operand) = value, let first = operand.firstKey, first.hasPrefix("$") {
            return .field(path, try parseOperators(operand))
        }
        if case .regex(let regex) = value {
            return .field(path, [.regex(try CompiledRegex(regex))])
        }
        return .field(path, [.equal(value)])
    }

    static func parseOperators(_ document: BSONDocument) throws(QueryError) -> [FieldOperator] {
        var operators: [FieldOperator] = []
        var regexOptions: String?
        var regexPattern: BSONValue?
        for element in document.elements {
            let value = element.value
            switch element.key {
            case "$eq": operators.append(.equal(value))
            case "$ne": operators.append(.notEqual(value))
            case "$gt": operators.append(.greaterThan(value))
            case "$gte": operators.append(.greaterThanOrEqual(value))
            case "$lt": operators.append(.lessThan(value))
            case "$lte": operators.append(.lessThanOrEqual(value))
            case "$in", "$nin":
                guard case .array(let items) = value else { throw QueryError(.badValue, "\(element.key) needs an array") }
                var plain: [BSONValue] = []
                var regexes: [CompiledRegex] = []
                for item in items {
                    if case .regex(let regex) = item {
                        regexes.append(try CompiledRegex(regex))
                    } else if case .document(let inner) = item, inner.firstKey?.hasPrefix("$") == true {
                        throw QueryError(.badValue, "cannot nest $ under \(element.key)")
                    } else {
                        plain.append(item)
                    }
                }
                operators.append(element.key == "$in" ? .in(plain, regexes) : .notIn(plain, regexes))
            case "$exists": operators.append(.exists(value.isTruthy))
            case "$type": operators.append(.type(try parseTypes(value)))
            case "$regex": regexPattern = value
            case "$options":
                guard case .string(let options) = value else { throw QueryError(.badValue, "$options has to be a string") }
                regexOptions = options
            case "$not":
                switch value {
                case .regex(let regex): operators.append(.not([.regex(try CompiledRegex(regex))]))
                case .document(let inner) where inner.firstKey?.hasPrefix("$") == true:
                    operators.append(.not(try parseOperators(inner)))
                case .document(let inner) where inner.isEmpty:
                    throw QueryError(.badValue, "$not cannot be empty")
                default: throw QueryError(.badValue, "$not needs a regex or a document")
                }
            case "$elemMatch":
                guard case .document(let inner) = value else { throw QueryError(.badValue, "$elemMatch needs an Object") }
                if let first = inner.firstKey, first.hasPrefix("$"), !["$and", "$or", "$nor", "$expr"].contains(first) {
                    operators.append(.elemMatchValue(try parseOperators(inner)))
                } else {
                    operators.append(.elemMatchDocument(try Filter(inner)))
                }
            case "$size":
                guard let size = value.int64Value, value.isNumber else {
                    throw QueryError(.badValue, "$size needs a number")
                }
                guard size >= 0, let count = Int(exactly: size) else {
                    throw QueryError(.badValue, "$size may not be negative")
                }
                operators.append(.size(count))
            case "$all":
                guard case .array(let items) = value else { throw QueryError(.badValue, "$all needs an array") }
                let elemMatches = items.compactMap { item -> BSONDocument? in
                    if case .document(let inner) = item, inner.firstKey == "$elemMatch" { return inner }
                    return nil
                }
                if !elemMatches.isEmpty {
                    guard elemMatches.count == items.count else {
                        throw QueryError(.badValue, "$all/$elemMatch has to be consistent")
                    }
                    var filters: [Filter] = []
                    for inner in elemMatches {
                        filters.append(.field(FieldPath(components: []), try parseOperators(inner)))
                    }
                    operators.append(.allElemMatch(filters))
                } else {
                    operators.append(.all(items))
                }
            case "$mod":
                // MongoDB's messages, one per way the argument can be wrong.
                guard case .array(let items) = value else { throw QueryError(.badValue, "malformed mod, needs to be an array") }
                guard items.count >= 2 else { throw QueryError(.badValue, "malformed mod, not enough elements") }
                guard items.count == 2 else { throw QueryError(.badValue, "malformed mod, too many elements") }
                func integral(_ item: BSONValue, _ role: String) throws(QueryError) -> Int64 {
                    guard item.isNumber, let double = item.doubleValue else { throw QueryError(.badValue, "malformed mod, \(role) not a number") }
                    if let exact = item.int64Value { return exact }
                    guard double.isFinite else {
                        throw QueryError(.badValue, "malformed mod, \(role) value is invalid :: caused by :: Unable to coerce NaN/Inf to integral type")
                    }
                    guard let truncated = Int64(exactly: double.rounded(.towardZero)) else {
                        throw QueryError(.badValue, "malformed mod, \(role) value is invalid :: caused by :: Out of bounds coercing to integral value")
                    }
                    return truncated
                }
                let divisor = try integral(items[0], "divisor")
                let remainder = try integral(items[1], "remainder")
                guard divisor != 0 else { throw QueryError(.badValue, "divisor cannot be 0") }
                operators.append(.mod(divisor: divisor, remainder: remainder))
            case "$bitsAllSet": operators.append(.bits(.allSet, mask: try parseBitMask(element.key, value)))
            case "$bitsAnySet": operators.append(.bits(.anySet, mask: try parseBitMask(element.key, value)))
            case "$bitsAllClear": operators.append(.bits(.allClear, mask: try parseBitMask(element.key, value)))
            case "$bitsAnyClear": operators.append(.bits(.anyClear, mask: try parseBitMask(element.key, value)))
            case "$geoWithin", "$within": operators.append(.geoWithin(try GeoRegion.parse(value)))
            case "$geoIntersects":
                guard case .document(let spec) = value, case .document(let geometry)? = spec["$geometry"] else {
                    throw QueryError(.badValue, "$geoIntersects requires a $geometry: a GeoJSON object")
                }
                operators.append(.geoIntersects(try GeoShape.geoJSON(geometry)))
            case "$near", "$nearSphere":
                operators.append(.near(try GeoNear.parse(element.key, value, minDistance: document["$minDistance"], maxDistance: document["$maxDistance"])))
            case "$minDistance", "$maxDistance":
                guard document["$near"] != nil || document["$nearSphere"] != nil else {
                    throw QueryError(.badValue, "\(element.key) may only be given with $near or $nearSphere")
                }
            case "$comment": break
            default:
                throw QueryError(.badValue, "unknown operator: \(element.key)")
            }
        }
        if let regexPattern {
            let regex: BSONRegex
            switch regexPattern {
            case .string(let pattern): regex = BSONRegex(pattern: pattern, options: regexOptions ?? "")
            case .regex(let existing):
                if regexOptions != nil && !existing.options.isEmpty {
                    throw QueryError(.badValue, "options set in both $regex and $options")
                }
                regex = BSONRegex(pattern: existing.pattern, options: regexOptions ?? existing.options)
            default: throw QueryError(.badValue, "$regex has to be a string")
            }
            operators.append(.regex(try CompiledRegex(regex)))
        } else if regexOptions != nil {
            throw QueryError(.badValue, "$options needs a $regex")
        }
        return operators
    }

    private static let typeAliases: [String: UInt8] = [
        "double": 0x01, "string": 0x02, "object": 0x03, "array": 0x04, "binData": 0x05, "undefined": 0x06,
        "objectId": 0x07, "bool": 0x08, "date": 0x09, "null": 0x0A, "regex": 0x0B, "dbPointer": 0x0C,
        "javascript": 0x0D, "symbol": 0x0E, "javascriptWithScope": 0x0F, "int": 0x10, "timestamp": 0x11,
        "long": 0x12, "decimal": 0x13, "minKey": 0xFF, "maxKey": 0x7F,
    ]

    private static func parseTypes(_ value: BSONValue) throws(QueryError) -> [TypeSelector] {
        if case .array(let items) = value {
            var selectors: [TypeSelector] = []
            for item in items { selectors.append(contentsOf: try parseTypes(item)) }
            return selectors
        }
        switch value {
        case .string("number"): return [.number]
        case .string(let alias):
            guard let byte = typeAliases[alias] else { throw QueryError(.badValue, "Unknown type name alias: \(alias)") }
            return [.typeByte(byte)]
        default:
            guard let code = value.int64Value, value.isNumber else {
                throw QueryError(.typeMismatch, "type must be represented as a number or a string")
            }
            switch code {
            case -1: return [.typeByte(0xFF)]
            case 127: return [.typeByte(0x7F)]
            case 1...19: return [.typeByte(UInt8(code))]
            default: throw QueryError(.badValue, "Invalid numerical type code: \(code)")
            }
        }
    }

    /// A bitwise operator's mask: a non-negative integer, an array of bit positions, or BinData
    /// (its bytes, bit 0 first), as MongoDB reads them.
    private static func parseBitMask(_ name: String, _ value: BSONValue) throws(QueryError) -> [UInt8] {
        switch value {
        case .int32, .int64, .double, .decimal128:
            guard let mask = value.int64Value else {
                throw QueryError(.failedToParse, "Expected an integer that fits in 64 bits as the bitmask of \(name)")
            }
            guard mask >= 0 else { throw QueryError(.failedToParse, "Expected a non-negative number as the bitmask of \(name)") }
            return withUnsafeBytes(of: UInt64(mask).littleEndian, Array.init)
        case .array(let positions):
            var mask: [UInt8] = []
            for position in positions {
                guard position.isNumber, let number = position.int64Value, Double(number) == position.doubleValue else {
                    throw QueryError(.failedToParse, "bit positions must be an integer but got: \(position.typeAlias)")
                }
                guard number >= 0 else { throw QueryError(.failedToParse, "bit positions must be >= 0 but got: \(number)") }
                guard number < 1 << 20 else { throw QueryError(.failedToParse, "bit position \(number) is too large") }
                let byte = Int(number / 8)
                if mask.count <= byte { mask += [UInt8](repeating: 0, count: byte + 1 - mask.count) }
                mask[byte] |= 1 << UInt8(number % 8)
            }
            return mask
        case .binary(let binary): return binary.data
        default:
            throw QueryError(.badValue, "\(name) takes an Array, a number, or a BinData but received: \(value.typeAlias)")
        }
    }
}
