/// An order-preserving binary encoding of BSON values: comparing two encodings with `memcmp`
/// gives MongoDB's BSON order. Index tables store these keys, so SQLite's BLOB ordering is the
/// query engine's ordering and range scans are exact (not JSON text, FerretDB's #3966).
///
/// Layout: a type tag equal to the value's canonical rank, then a body. Numbers are a
/// sign-adjusted IEEE double plus an 8-byte residual that places the value exactly among the
/// numbers sharing that double (`appendNumber`); strings escape NUL as `00 FF` and end with
/// `00 00`; documents and arrays list their elements and end with `00`. Every encoding is
/// prefix-free, so inverting all bytes reverses the order (descending index fields).
///
/// Two forms differ only for decimal128: `encode` keys a decimal exactly (secondary indexes,
/// query bounds, hashing), `idKey` keys it by the double the first versions computed (the `_id`
/// key, which signed commits and the state map hold, so it cannot change).
public enum IndexKey {
    static let numberTag: UInt8 = 10

    /// The key of one value; with a `collation`, strings are keyed by their ICU sort keys (an
    /// index built with that collation).
    public static func encode(_ value: BSONValue, collation: Collation? = nil) -> [UInt8] {
        encode(value, collation: collation, legacyDecimals: false)
    }

    /// `encode`, or with `legacyDecimals` the first format's decimals (`idKey`).
    static func encode(_ value: BSONValue, collation: Collation?, legacyDecimals: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(value, collation: collation, legacyDecimals: legacyDecimals, to: &bytes)
        return bytes
    }

    /// The key of a document's `_id`: the documents table's `id_key`, and the key under which
    /// the space's state map and its commits record the document. It equals `encode` except for
    /// a decimal, which it keys by `Decimal128.keyDoubleValue` (the format of every signed
    /// history so far), so two `_id`s that are different numbers with that same double collide.
    public static func idKey(_ id: BSONValue) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(id, collation: nil, legacyDecimals: true, to: &bytes)
        return bytes
    }

    /// Appends a value's key; `descending` inverts its bytes.
    static func append(
        _ value: BSONValue, descending: Bool, collation: Collation? = nil, legacyDecimals: Bool = false, to bytes: inout [UInt8]
    ) {
        let start = bytes.count
        append(value, collation: collation, legacyDecimals: legacyDecimals, to: &bytes)
        if descending {
            for index in start..<bytes.count { bytes[index] = ~bytes[index] }
        }
    }

    static func append(_ value: BSONValue, collation: Collation?, legacyDecimals: Bool, to bytes: inout [UInt8]) {
        bytes.append(value.canonicalRank)
        appendBody(value, collation: collation, legacyDecimals: legacyDecimals, to: &bytes)
    }

    private static func appendBody(_ value: BSONValue, collation: Collation?, legacyDecimals: Bool, to bytes: inout [UInt8]) {
        switch value {
        case .string(let text) where collation != nil, .symbol(let text) where collation != nil:
            appendEscaped(collation!.sortKey(text), to: &bytes)
        case .minKey, .maxKey, .null, .undefined: break
        case .int32(let number): appendInteger(Int64(number), to: &bytes)
        case .int64(let number): appendInteger(number, to: &bytes)
        case .double(let number): appendDouble(number, residual: 0, to: &bytes)
        case .decimal128(let decimal) where legacyDecimals: appendDouble(decimal.keyDoubleValue, residual: 0, to: &bytes)
        case .decimal128(let decimal):
            let key = decimalKey(decimal)
            appendDouble(key.double, residual: key.residual, to: &bytes)
        case .string(let text), .symbol(let text), .javascript(let text): appendEscaped(text.utf8, to: &bytes)
        case .document(let document):
            for element in document.elements {
                bytes.append(element.value.canonicalRank)
                appendEscaped(element.key.utf8, to: &bytes)
                appendBody(element.value, collation: collation, legacyDecimals: legacyDecimals, to: &bytes)
            }
            bytes.append(0)
        case .array(let elements):
            for element in elements { append(element, collation: collation, legacyDecimals: legacyDecimals, to: &bytes) }
            bytes.append(0)
        case .binary(let binary):
            appendBigEndian(UInt32(binary.data.count), to: &bytes)
            bytes.append(binary.subtype)
            bytes.append(contentsOf: binary.data)
        case .objectId(let id): bytes.append(contentsOf: id.bytes)
        case .bool(let flag): bytes.append(flag ? 1 : 0)
        case .datetime(let milliseconds): appendBigEndian(UInt64(bitPattern: milliseconds) ^ (1 << 63), to: &bytes)
        case .timestamp(let timestamp): appendBigEndian(timestamp.packed, to: &bytes)
        case .regex(let regex):
            appendEscaped(regex.pattern.utf8, to: &bytes)
            appendEscaped(regex.options.utf8, to: &bytes)
        case .dbPointer(let namespace, let id):
            appendEscaped(namespace.utf8, to: &bytes)
            bytes.append(contentsOf: id.bytes)
        case .javascriptWithScope(let code, let scope):
            appendEscaped(code.utf8, to: &bytes)
            appendBody(.document(scope), collation: nil, legacyDecimals: legacyDecimals, to: &bytes)
        }
    }

    private static func appendInteger(_ value: Int64, to bytes: inout [UInt8]) {
        let double = Double(value)
        let residual: Int64
        if double >= 9_223_372_036_854_775_808.0 {
            residual = value &+ Int64.min  // value − 2^63, exact in range.
        } else {
            residual = value &- Int64(double)
        }
        appendDouble(double, residual: residual, to: &bytes)
    }

    /// A decimal's place among the numbers (`encode`): the nearest double, and a residual that
    /// orders it among the values sharing that double, as `BSONComparison` orders them (a double
    /// `d` compares as its 34-digit decimal `ref`, so the residual follows `t = value − ref`).
    ///
    /// - `t = 0`: residual 0, the key of the double and of an equal integer (`3`, `3.0` and
    ///   `NumberDecimal("3.00")` share it).
    /// - From 2^53 to 2^63 in magnitude, integers have residual `i − d` (`appendInteger`), so a
    ///   decimal takes `floor(t)`: exact for a whole number, shared with the integer below it
    ///   for one with a fraction (`exact` false).
    /// - Elsewhere `t` is scaled by 2^62 / ulp(d) and pushed one step away from zero. Two
    ///   decimal128 values (34 digits) differ by at least 2^-60.95 ulp of any double between
    ///   them, so the scaled values are more than 2 apart and their floors differ: exact, except
    ///   below the normal doubles (ulp stops shrinking) and beyond them (every such value is
    ///   keyed just inside ±infinity).
    ///
    /// Every step is monotonic, so keys order as values do; equal values give equal keys.
    static func decimalKey(_ decimal: Decimal128) -> (double: Double, residual: Int64, exact: Bool) {
        if decimal.isNaN { return (.nan, 0, true) }
        let double = decimal.exactDoubleValue
        if double.isInfinite {
            if decimal.isInfinite { return (double, 0, true) }
            return (double, double > 0 ? -1 : 1, false)
        }
        let difference = decimal - Decimal128(exactly: double)
        if difference.isZero { return (double, 0, true) }
        let magnitude = abs(double)
        if magnitude >= 0x1p53 && magnitude <= 0x1p63 {
            let whole = difference.rounded(.floor)
            return (double, whole.truncatedInt64 ?? 0, Decimal128.compare(whole, difference) == 0)
        }
        let exponent = 62 - Int(double.ulp.exponent)
        let half = exponent / 2
        let scale = Decimal128(exactly: Double(sign: .plus, exponent: half, significand: 1))
            * Decimal128(exactly: Double(sign: .plus, exponent: exponent - half, significand: 1))
        let step = 1 + ((difference.magnitude * scale).rounded(.floor).truncatedInt64 ?? 0)
        return (double, difference.isNegative ? -step : step, magnitude >= Double.leastNormalMagnitude)
    }

    /// Whether `encode` gives `value` a key no different value shares (false only for the rare
    /// decimals `decimalKey` cannot place exactly, alone or inside a document or array).
    public static func isExact(_ value: BSONValue) -> Bool {
        switch value {
        case .decimal128(let decimal): decimalKey(decimal).exact
        case .document(let document): document.elements.allSatisfy { isExact($0.value) }
        case .array(let elements): elements.allSatisfy(isExact)
        default: true
        }
    }

    private static func appendDouble(_ value: Double, residual: Int64, to bytes: inout [UInt8]) {
        var bits: UInt64
        if value.isNaN {
            bits = 0  // NaN sorts below every other number.
        } else {
            let normalized = value == 0 ? 0.0 : value  // -0.0 equals 0.0.
            bits = normalized.bitPattern
            bits = bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
        }
        appendBigEndian(bits, to: &bytes)
        appendBigEndian(UInt64(bitPattern: residual) ^ (1 << 63), to: &bytes)
    }

    private static func appendEscaped(_ utf8: some Sequence<UInt8>, to bytes: inout [UInt8]) {
        for byte in utf8 {
            bytes.append(byte)
            if byte == 0 { bytes.append(0xFF) }
        }
        bytes.append(0)
        bytes.append(0)
    }

    private static func appendBigEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var big = value.bigEndian
        withUnsafeBytes(of: &big) { bytes.append(contentsOf: $0) }
    }

    /// The smallest byte string greater than every string that starts with `prefix`, or `nil`
    /// when there is none (all bytes 0xFF).
    public static func prefixSuccessor(_ prefix: [UInt8]) -> [UInt8]? {
        var result = prefix
        while let last = result.last {
            if last < 0xFF {
                result[result.count - 1] = last + 1
                return result
            }
            result.removeLast()
        }
        return nil
    }

    /// The lowest key of a numeric value that is not NaN (−∞).
    static let lowestNonNaNNumber: [UInt8] = encode(.double(-.infinity))
}
