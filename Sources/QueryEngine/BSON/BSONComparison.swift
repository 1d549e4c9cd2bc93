/// MongoDB's total order over BSON values, used by sort, `$min`/`$max`, range queries and indexes.
///
/// Values of different types are ordered by `canonicalRank`. Numbers compare by value across
/// int32, int64, double and decimal128, with NaN below every other number. Strings compare by
/// their UTF-8 bytes (MongoDB's default simple collation). Documents compare field by field
/// (type rank, then name, then value); arrays element by element.
public enum BSONComparison {
    /// Returns a negative number, zero or a positive number as `lhs` is below, equal to or above `rhs`.
    public static func compare(_ lhs: BSONValue, _ rhs: BSONValue) -> Int {
        let lhsRank = lhs.canonicalRank
        let rhsRank = rhs.canonicalRank
        if lhsRank != rhsRank { return lhsRank < rhsRank ? -1 : 1 }
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)), (.symbol(let a), .symbol(let b)), (.string(let a), .symbol(let b)),
            (.symbol(let a), .string(let b)):
            if let collation = Collation.active { return collation.compare(a, b) }
            return compareUTF8(a, b)
        case (.document(let a), .document(let b)): return compareDocuments(a, b)
        case (.array(let a), .array(let b)): return compareArrays(a, b)
        case (.binary(let a), .binary(let b)):
            if a.data.count != b.data.count { return a.data.count < b.data.count ? -1 : 1 }
            if a.subtype != b.subtype { return a.subtype < b.subtype ? -1 : 1 }
            return compareBytes(a.data, b.data)
        case (.objectId(let a), .objectId(let b)): return compareBytes(a.bytes, b.bytes)
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (a ? 1 : -1)
        case (.datetime(let a), .datetime(let b)): return a == b ? 0 : (a < b ? -1 : 1)
        case (.timestamp(let a), .timestamp(let b)): return a == b ? 0 : (a < b ? -1 : 1)
        case (.regex(let a), .regex(let b)):
            let pattern = compareUTF8(a.pattern, b.pattern)
            return pattern != 0 ? pattern : compareUTF8(a.options, b.options)
        case (.dbPointer(let namespaceA, let idA), .dbPointer(let namespaceB, let idB)):
            let namespace = compareUTF8(namespaceA, namespaceB)
            return namespace != 0 ? namespace : compareBytes(idA.bytes, idB.bytes)
        case (.javascript(let a), .javascript(let b)): return compareUTF8(a, b)
        case (.javascriptWithScope(let codeA, let scopeA), .javascriptWithScope(let codeB, let scopeB)):
            let code = compareUTF8(codeA, codeB)
            return code != 0 ? code : compareDocuments(scopeA, scopeB)
        default:
            if lhs.isNumber { return compareNumbers(lhs, rhs) }
            return 0  // minKey, maxKey, null and undefined are each equal to themselves.
        }
    }

    /// Whether two values are equal in MongoDB's sense (1 == 1.0 == NumberLong(1)).
    public static func equal(_ lhs: BSONValue, _ rhs: BSONValue) -> Bool { compare(lhs, rhs) == 0 }

    static func compareUTF8(_ lhs: String, _ rhs: String) -> Int {
        // Bytes, not Swift's `==` (canonical equivalence: NFC "é" equals NFD "e\u{301}" there).
        if lhs.utf8.elementsEqual(rhs.utf8) { return 0 }
        var left = lhs.utf8.makeIterator()
        var right = rhs.utf8.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let a?, let b?): if a != b { return a < b ? -1 : 1 }
            }
        }
    }

    static func compareBytes(_ lhs: [UInt8], _ rhs: [UInt8]) -> Int {
        for index in 0..<min(lhs.count, rhs.count) where lhs[index] != rhs[index] {
            return lhs[index] < rhs[index] ? -1 : 1
        }
        return lhs.count == rhs.count ? 0 : (lhs.count < rhs.count ? -1 : 1)
    }

    static func compareDocuments(_ lhs: BSONDocument, _ rhs: BSONDocument) -> Int {
        for index in 0..<min(lhs.count, rhs.count) {
            let a = lhs[index]
            let b = rhs[index]
            if a.value.canonicalRank != b.value.canonicalRank { return a.value.canonicalRank < b.value.canonicalRank ? -1 : 1 }
            let name = compareUTF8(a.key, b.key)
            if name != 0 { return name }
            let value = compare(a.value, b.value)
            if value != 0 { return value }
        }
        return lhs.count == rhs.count ? 0 : (lhs.count < rhs.count ? -1 : 1)
    }

    static func compareArrays(_ lhs: [BSONValue], _ rhs: [BSONValue]) -> Int {
        for index in 0..<min(lhs.count, rhs.count) {
            let value = compare(lhs[index], rhs[index])
            if value != 0 { return value }
        }
        return lhs.count == rhs.count ? 0 : (lhs.count < rhs.count ? -1 : 1)
    }

    /// Exact numeric comparison across int32, int64, double and decimal128.
    static func compareNumbers(_ lhs: BSONValue, _ rhs: BSONValue) -> Int {
        // A double keeps its exact value (to 34 digits) here: 0.1 as a double is not
        // NumberDecimal("0.1"), as in MongoDB.
        if lhs.isDecimal || rhs.isDecimal, let a = Decimal128(lhs, exactDouble: true), let b = Decimal128(rhs, exactDouble: true) {
            if let order = Decimal128.compare(a, b) { return order }
            return a.isNaN && b.isNaN ? 0 : (a.isNaN ? -1 : 1)
        }
        switch (lhs, rhs) {
        case (.int32(let a), .int32(let b)): return a == b ? 0 : (a < b ? -1 : 1)
        case (.int64, .int64), (.int32, .int64), (.int64, .int32):
            let a = lhs.int64Value ?? 0
            let b = rhs.int64Value ?? 0
            return a == b ? 0 : (a < b ? -1 : 1)
        case (.int32(let a), _) where !rhs.isDecimal: return -compareDoubleToInteger(rhs.doubleValue ?? .nan, Int64(a))
        case (.int64(let a), _) where !rhs.isDecimal: return -compareDoubleToInteger(rhs.doubleValue ?? .nan, a)
        case (_, .int32(let b)) where !lhs.isDecimal: return compareDoubleToInteger(lhs.doubleValue ?? .nan, Int64(b))
        case (_, .int64(let b)) where !lhs.isDecimal: return compareDoubleToInteger(lhs.doubleValue ?? .nan, b)
        default: return compareDoubles(lhs.doubleValue ?? .nan, rhs.doubleValue ?? .nan)
        }
    }

    /// Doubles with NaN below everything and equal to itself, as MongoDB orders them.
    static func compareDoubles(_ a: Double, _ b: Double) -> Int {
        if a.isNaN || b.isNaN { return a.isNaN && b.isNaN ? 0 : (a.isNaN ? -1 : 1) }
        return a == b ? 0 : (a < b ? -1 : 1)
    }

    /// Compares a double with an integer exactly, without rounding the integer to a double.
    static func compareDoubleToInteger(_ double: Double, _ integer: Int64) -> Int {
        if double.isNaN { return -1 }
        if double >= 9_223_372_036_854_775_808.0 { return 1 }
        if double < -9_223_372_036_854_775_808.0 { return -1 }
        let truncated = double.rounded(.towardZero)
        let whole = Int64(truncated)
        if whole != integer { return whole < integer ? -1 : 1 }
        let fraction = double - truncated
        return fraction == 0 ? 0 : (fraction < 0 ? -1 : 1)
    }
}

extension BSONValue {
    var isDecimal: Bool {
        if case .decimal128 = self { return true }
        return false
    }

    /// Whether this is a string (or symbol), or a document or array with one inside: what a
    /// collation changes the order of.
    var containsString: Bool {
        switch self {
        case .string, .symbol: true
        case .document(let document): document.elements.contains { $0.value.containsString }
        case .array(let elements): elements.contains(where: \.containsString)
        default: false
        }
    }

    /// Whether this is a decimal, or a document or array with one inside.
    var containsDecimal: Bool {
        switch self {
        case .decimal128: true
        case .document(let document): document.elements.contains { $0.value.containsDecimal }
        case .array(let elements): elements.contains(where: \.containsDecimal)
        default: false
        }
    }
}

/// A `BSONValue` wrapper whose `Comparable` conformance is MongoDB's order.
public struct OrderedBSON: Comparable, Hashable, Sendable {
    /// The wrapped value.
    public var value: BSONValue
    /// Wraps a value.
    public init(_ value: BSONValue) { self.value = value }
    public static func < (lhs: OrderedBSON, rhs: OrderedBSON) -> Bool { BSONComparison.compare(lhs.value, rhs.value) < 0 }
    public static func == (lhs: OrderedBSON, rhs: OrderedBSON) -> Bool { BSONComparison.compare(lhs.value, rhs.value) == 0 }
    public func hash(into hasher: inout Hasher) { value.hashForComparison(into: &hasher) }
}

extension BSONValue {
    /// A hash that values equal under `BSONComparison` share: every number by its nearest
    /// double (3, 3.0 and NumberDecimal("3.00") alike), documents and arrays element by
    /// element, other values by their index key.
    public func hashForComparison(into hasher: inout Hasher) {
        switch self {
        case .int32, .int64, .double, .decimal128:
            hasher.combine(UInt8(10))
            let double = doubleValue ?? .nan
            hasher.combine(double.isNaN ? Double.nan.bitPattern : (double == 0 ? 0 : double.bitPattern))
        case .document(let document):
            hasher.combine(UInt8(3))
            for element in document.elements {
                hasher.combine(element.key)
                element.value.hashForComparison(into: &hasher)
            }
        case .array(let elements):
            hasher.combine(UInt8(4))
            for element in elements { element.hashForComparison(into: &hasher) }
        case .string(let text), .symbol(let text):
            // Under a collation, strings equal by it ("abc", "ABC" at strength 2) share a sort key.
            hasher.combine(IndexKey.encode(.string(text), collation: Collation.active))
        default:
            hasher.combine(IndexKey.encode(self))
        }
    }
}
