/// One BSON value (bsonspec.org, version 1.1): every type the specification defines.
public enum BSONValue: Sendable, Hashable {
    case double(Double)
    case string(String)
    case document(BSONDocument)
    case array([BSONValue])
    case binary(BSONBinary)
    /// Deprecated type 0x06, kept so old data round-trips.
    case undefined
    case objectId(ObjectId)
    case bool(Bool)
    /// Milliseconds since the Unix epoch (UTC datetime, type 0x09).
    case datetime(Int64)
    case null
    case regex(BSONRegex)
    /// Deprecated type 0x0C.
    case dbPointer(namespace: String, id: ObjectId)
    case javascript(String)
    /// Deprecated type 0x0E.
    case symbol(String)
    case javascriptWithScope(code: String, scope: BSONDocument)
    case int32(Int32)
    case timestamp(BSONTimestamp)
    case int64(Int64)
    case decimal128(Decimal128)
    case minKey
    case maxKey

    /// The BSON element type byte.
    public var typeByte: UInt8 {
        switch self {
        case .double: 0x01
        case .string: 0x02
        case .document: 0x03
        case .array: 0x04
        case .binary: 0x05
        case .undefined: 0x06
        case .objectId: 0x07
        case .bool: 0x08
        case .datetime: 0x09
        case .null: 0x0A
        case .regex: 0x0B
        case .dbPointer: 0x0C
        case .javascript: 0x0D
        case .symbol: 0x0E
        case .javascriptWithScope: 0x0F
        case .int32: 0x10
        case .timestamp: 0x11
        case .int64: 0x12
        case .decimal128: 0x13
        case .minKey: 0xFF
        case .maxKey: 0x7F
        }
    }

    /// MongoDB's canonical type rank, which orders values of different types
    /// (MinKey < null < numbers < strings < objects < arrays < binData < ObjectId < bool < date <
    /// timestamp < regex < dbPointer < code < code with scope < MaxKey).
    public var canonicalRank: UInt8 {
        switch self {
        case .minKey: 1
        case .undefined: 2
        case .null: 3
        case .double, .int32, .int64, .decimal128: 10
        case .string, .symbol: 15
        case .document: 20
        case .array: 25
        case .binary: 30
        case .objectId: 35
        case .bool: 40
        case .datetime: 45
        case .timestamp: 47
        case .regex: 50
        case .dbPointer: 55
        case .javascript: 60
        case .javascriptWithScope: 65
        case .maxKey: 127
        }
    }

    /// The `$type` alias MongoDB uses for this value ("double", "string", "object", …).
    public var typeAlias: String {
        switch self {
        case .double: "double"
        case .string: "string"
        case .document: "object"
        case .array: "array"
        case .binary: "binData"
        case .undefined: "undefined"
        case .objectId: "objectId"
        case .bool: "bool"
        case .datetime: "date"
        case .null: "null"
        case .regex: "regex"
        case .dbPointer: "dbPointer"
        case .javascript: "javascript"
        case .symbol: "symbol"
        case .javascriptWithScope: "javascriptWithScope"
        case .int32: "int"
        case .timestamp: "timestamp"
        case .int64: "long"
        case .decimal128: "decimal"
        case .minKey: "minKey"
        case .maxKey: "maxKey"
        }
    }

    /// Whether this is one of the four numeric types.
    public var isNumber: Bool { canonicalRank == 10 }

    /// The value as a `Double` when it is numeric.
    public var doubleValue: Double? {
        switch self {
        case .double(let value): value
        case .int32(let value): Double(value)
        case .int64(let value): Double(value)
        case .decimal128(let value): value.doubleValue
        default: nil
        }
    }

    /// The value as an `Int64` when it is an integer, or a double/decimal with an exact integer value.
    public var int64Value: Int64? {
        switch self {
        case .int32(let value): Int64(value)
        case .int64(let value): value
        case .double(let value): Int64(exactly: value)
        case .decimal128(let value): value.doubleValue.flatMap { Int64(exactly: $0) }
        default: nil
        }
    }

    /// The document payload, when this is a document.
    public var documentValue: BSONDocument? {
        if case .document(let document) = self { return document }
        return nil
    }

    /// The array payload, when this is an array.
    public var arrayValue: [BSONValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    /// The string payload, when this is a string.
    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// MongoDB's truthiness for expressions: false, null, undefined, missing and numeric zero are false.
    public var isTruthy: Bool {
        switch self {
        case .bool(let value): value
        case .null, .undefined: false
        case .int32(let value): value != 0
        case .int64(let value): value != 0
        case .double(let value): value != 0
        case .decimal128(let value): (value.doubleValue ?? 1) != 0
        default: true
        }
    }
}

/// BSON binary data (type 0x05) with its subtype.
public struct BSONBinary: Sendable, Hashable {
    /// The subtype byte (0 generic, 4 UUID, 0x80+ user defined, …).
    public var subtype: UInt8
    /// The payload.
    public var data: [UInt8]

    /// Creates binary data.
    public init(subtype: UInt8, data: [UInt8]) {
        self.subtype = subtype
        self.data = data
    }
}

/// A BSON regular expression (type 0x0B): a pattern and option letters.
public struct BSONRegex: Sendable, Hashable {
    /// The pattern.
    public var pattern: String
    /// The options, stored sorted as the BSON specification requires.
    public var options: String

    /// Creates a regular expression value.
    public init(pattern: String, options: String) {
        self.pattern = pattern
        self.options = options
    }
}

/// A BSON timestamp (type 0x11): seconds and an increment, compared as one unsigned 64-bit number.
public struct BSONTimestamp: Sendable, Hashable, Comparable {
    /// Seconds since the epoch.
    public var seconds: UInt32
    /// Ordinal within the second.
    public var increment: UInt32

    /// Creates a timestamp.
    public init(seconds: UInt32, increment: UInt32) {
        self.seconds = seconds
        self.increment = increment
    }

    /// The packed 64-bit form: seconds in the high half.
    public var packed: UInt64 { UInt64(seconds) << 32 | UInt64(increment) }

    public static func < (lhs: BSONTimestamp, rhs: BSONTimestamp) -> Bool { lhs.packed < rhs.packed }
}
