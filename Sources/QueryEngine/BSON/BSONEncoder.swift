/// Encodes documents to BSON bytes.
public enum BSONEncoder {
    /// The BSON bytes of `document`.
    public static func encode(_ document: BSONDocument) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        append(document, to: &bytes)
        return bytes
    }

    /// Appends `document` to `bytes`.
    public static func append(_ document: BSONDocument, to bytes: inout [UInt8]) {
        let start = bytes.count
        bytes.append(contentsOf: [0, 0, 0, 0])
        for element in document.elements { appendElement(key: element.key, value: element.value, to: &bytes) }
        bytes.append(0)
        patchLength(at: start, in: &bytes)
    }

    /// Appends an array as a BSON document with keys "0", "1", ….
    static func appendArray(_ array: [BSONValue], to bytes: inout [UInt8]) {
        let start = bytes.count
        bytes.append(contentsOf: [0, 0, 0, 0])
        for (index, value) in array.enumerated() { appendElement(key: String(index), value: value, to: &bytes) }
        bytes.append(0)
        patchLength(at: start, in: &bytes)
    }

    private static func patchLength(at start: Int, in bytes: inout [UInt8]) {
        let length = UInt32(bytes.count - start)
        bytes[start] = UInt8(truncatingIfNeeded: length)
        bytes[start + 1] = UInt8(truncatingIfNeeded: length >> 8)
        bytes[start + 2] = UInt8(truncatingIfNeeded: length >> 16)
        bytes[start + 3] = UInt8(truncatingIfNeeded: length >> 24)
    }

    private static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var little = value.littleEndian
        withUnsafeBytes(of: &little) { bytes.append(contentsOf: $0) }
    }

    private static func appendCString(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: text.utf8)
        bytes.append(0)
    }

    private static func appendString(_ text: String, to bytes: inout [UInt8]) {
        appendLittleEndian(Int32(text.utf8.count + 1), to: &bytes)
        bytes.append(contentsOf: text.utf8)
        bytes.append(0)
    }

    static func appendElement(key: String, value: BSONValue, to bytes: inout [UInt8]) {
        bytes.append(value.typeByte)
        appendCString(key, to: &bytes)
        appendValue(value, to: &bytes)
    }

    static func appendValue(_ value: BSONValue, to bytes: inout [UInt8]) {
        switch value {
        case .double(let number): appendLittleEndian(number.bitPattern, to: &bytes)
        case .string(let text), .javascript(let text), .symbol(let text): appendString(text, to: &bytes)
        case .document(let document): append(document, to: &bytes)
        case .array(let array): appendArray(array, to: &bytes)
        case .binary(let binary):
            if binary.subtype == 0x02 {
                appendLittleEndian(Int32(binary.data.count + 4), to: &bytes)
                bytes.append(binary.subtype)
                appendLittleEndian(Int32(binary.data.count), to: &bytes)
            } else {
                appendLittleEndian(Int32(binary.data.count), to: &bytes)
                bytes.append(binary.subtype)
            }
            bytes.append(contentsOf: binary.data)
        case .undefined, .null, .minKey, .maxKey: break
        case .objectId(let id): bytes.append(contentsOf: id.bytes)
        case .bool(let flag): bytes.append(flag ? 1 : 0)
        case .datetime(let milliseconds): appendLittleEndian(milliseconds, to: &bytes)
        case .regex(let regex):
            appendCString(regex.pattern, to: &bytes)
            appendCString(regex.options, to: &bytes)
        case .dbPointer(let namespace, let id):
            appendString(namespace, to: &bytes)
            bytes.append(contentsOf: id.bytes)
        case .javascriptWithScope(let code, let scope):
            let start = bytes.count
            bytes.append(contentsOf: [0, 0, 0, 0])
            appendString(code, to: &bytes)
            append(scope, to: &bytes)
            patchLength(at: start, in: &bytes)
        case .int32(let number): appendLittleEndian(number, to: &bytes)
        case .timestamp(let timestamp): appendLittleEndian(timestamp.packed, to: &bytes)
        case .int64(let number): appendLittleEndian(number, to: &bytes)
        case .decimal128(let decimal):
            appendLittleEndian(decimal.low, to: &bytes)
            appendLittleEndian(decimal.high, to: &bytes)
        }
    }
}

extension BSONDocument {
    /// The document's BSON bytes.
    public var bsonBytes: [UInt8] { BSONEncoder.encode(self) }

    /// The encoded size in bytes, computed without allocating.
    public var encodedSize: Int {
        var size = 5
        for element in elements { size += 2 + element.key.utf8.count + element.value.encodedSize }
        return size
    }

    /// The nesting depth: 1 for a flat document.
    public var depth: Int {
        1 + (elements.map { $0.value.nestingDepth }.max() ?? 0)
    }
}

extension BSONValue {
    /// The encoded size of the value part of an element.
    var encodedSize: Int {
        switch self {
        case .double, .datetime, .int64, .timestamp: 8
        case .string(let text), .javascript(let text), .symbol(let text): 5 + text.utf8.count
        case .document(let document): document.encodedSize
        case .array(let array):
            array.enumerated().reduce(5) { $0 + 2 + String($1.offset).utf8.count + $1.element.encodedSize }
        case .binary(let binary): 5 + binary.data.count + (binary.subtype == 0x02 ? 4 : 0)
        case .undefined, .null, .minKey, .maxKey: 0
        case .objectId: 12
        case .bool: 1
        case .regex(let regex): regex.pattern.utf8.count + regex.options.utf8.count + 2
        case .dbPointer(let namespace, _): 5 + namespace.utf8.count + 12
        case .javascriptWithScope(let code, let scope): 4 + 5 + code.utf8.count + scope.encodedSize
        case .int32: 4
        case .decimal128: 16
        }
    }

    /// Whether the encoded value would exceed `limit` bytes, found by walking at most about
    /// `limit` bytes of it: a value built by repeating shared parts (`$reduce` doubling an
    /// array) can describe far more than it stores, and `encodedSize` would walk all of it.
    public func exceedsSize(_ limit: Int) -> Bool {
        var budget = limit
        return !fits(within: &budget)
    }

    private func fits(within budget: inout Int) -> Bool {
        switch self {
        case .document(let document):
            budget -= 5
            for element in document.elements {
                budget -= 2 + element.key.utf8.count
                guard budget >= 0, element.value.fits(within: &budget) else { return false }
            }
        case .array(let items):
            budget -= 5
            for item in items {
                budget -= 4
                guard budget >= 0, item.fits(within: &budget) else { return false }
            }
        case .javascriptWithScope(let code, let scope):
            budget -= 9 + code.utf8.count
            guard budget >= 0 else { return false }
            return BSONValue.document(scope).fits(within: &budget)
        default:
            budget -= encodedSize
        }
        return budget >= 0
    }

    var nestingDepth: Int {
        switch self {
        case .document(let document): document.depth
        case .array(let array): 1 + (array.map(\.nestingDepth).max() ?? 0)
        case .javascriptWithScope(_, let scope): scope.depth
        default: 0
        }
    }
}
