/// A strict decoder for untrusted BSON (bsonspec.org 1.1).
///
/// Every declared length is checked against the bytes that remain before anything is read, keys
/// must be NUL-free UTF-8, strings must be valid UTF-8 with their terminating NUL, nesting is
/// bounded, and a document must end exactly where its length says. Anything else is an
/// `InvalidBSON` error, never a crash.
public struct BSONDecoder {
    private let base: UnsafeRawBufferPointer
    private var offset: Int
    private let depthMax: Int

    private init(base: UnsafeRawBufferPointer, offset: Int, depthMax: Int) {
        self.base = base
        self.offset = offset
        self.depthMax = depthMax
    }

    /// Decodes exactly one document that fills all of `bytes`.
    public static func decode(
        _ bytes: some Collection<UInt8>, depthMax: Int = QueryEngineLimits.decodeDepthMax
    ) throws(QueryError) -> BSONDocument {
        let result: Result<BSONDocument, QueryError>? = bytes.withContiguousStorageIfAvailable { buffer in
            do {
                return .success(try decode(UnsafeRawBufferPointer(buffer), depthMax: depthMax))
            } catch let error as QueryError {
                return .failure(error)
            } catch {
                return .failure(QueryError(.invalidBSON, "BSON could not be decoded"))
            }
        }
        if let result { return try result.get() }
        return try decode(Array(bytes), depthMax: depthMax)
    }

    /// Decodes exactly one document that fills all of `buffer`.
    public static func decode(
        _ buffer: UnsafeRawBufferPointer, depthMax: Int = QueryEngineLimits.decodeDepthMax
    ) throws(QueryError) -> BSONDocument {
        var decoder = BSONDecoder(base: buffer, offset: 0, depthMax: depthMax)
        let document = try decoder.readDocument(depth: 0)
        guard decoder.offset == buffer.count else {
            throw QueryError(.invalidBSON, "\(buffer.count - decoder.offset) trailing bytes after BSON document")
        }
        return document
    }

    /// Decodes one document starting at `offset` of `buffer`, returning it and the offset after it.
    public static func decodePrefix(
        _ buffer: UnsafeRawBufferPointer, at offset: Int, depthMax: Int = QueryEngineLimits.decodeDepthMax
    ) throws(QueryError) -> (document: BSONDocument, end: Int) {
        var decoder = BSONDecoder(base: buffer, offset: offset, depthMax: depthMax)
        let document = try decoder.readDocument(depth: 0)
        return (document, decoder.offset)
    }

    // MARK: - Primitive readers

    private var remaining: Int { base.count - offset }

    private func invalid(_ message: String) -> QueryError { QueryError(.invalidBSON, message) }

    private mutating func readInt32() throws(QueryError) -> Int32 {
        guard remaining >= 4 else { throw invalid("BSON value is truncated") }
        defer { offset += 4 }
        return Int32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: Int32.self))
    }

    private mutating func readInt64() throws(QueryError) -> Int64 {
        guard remaining >= 8 else { throw invalid("BSON value is truncated") }
        defer { offset += 8 }
        return Int64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: Int64.self))
    }

    private mutating func readUInt64() throws(QueryError) -> UInt64 { UInt64(bitPattern: try readInt64()) }

    private mutating func readByte() throws(QueryError) -> UInt8 {
        guard remaining >= 1 else { throw invalid("BSON value is truncated") }
        defer { offset += 1 }
        return base[offset]
    }

    private mutating func readBytes(_ count: Int) throws(QueryError) -> [UInt8] {
        guard count >= 0, remaining >= count else { throw invalid("BSON value is truncated") }
        defer { offset += count }
        return Array(UnsafeRawBufferPointer(rebasing: base[offset..<offset + count]))
    }

    /// A NUL-terminated UTF-8 string (element names and regex parts).
    private mutating func readCString() throws(QueryError) -> String {
        var end = offset
        while end < base.count && base[end] != 0 { end += 1 }
        guard end < base.count else { throw invalid("BSON cstring has no terminating NUL") }
        let raw = UnsafeRawBufferPointer(rebasing: base[offset..<end])
        guard let text = Self.utf8String(raw) else { throw invalid("BSON cstring is not valid UTF-8") }
        offset = end + 1
        return text
    }

    /// The string `bytes` encode, nil unless they are valid UTF-8. Field names and most values
    /// are ASCII, which is valid UTF-8 byte by byte, so it skips the standard library's generic
    /// `String(validating:as:)` (more than half of the instructions decoding a command).
    @inline(__always)
    private static func utf8String(_ bytes: UnsafeRawBufferPointer) -> String? {
        let units = bytes.bindMemory(to: UInt8.self)
        if units.allSatisfy({ $0 < 0x80 }) { return String(decoding: units, as: UTF8.self) }
        return String(validating: units, as: UTF8.self)
    }

    /// A length-prefixed UTF-8 string whose length includes the terminating NUL.
    private mutating func readString() throws(QueryError) -> String {
        let declared = Int(try readInt32())
        guard declared >= 1, declared <= remaining else { throw invalid("BSON string length is invalid") }
        guard base[offset + declared - 1] == 0 else { throw invalid("BSON string is not NUL-terminated") }
        let raw = UnsafeRawBufferPointer(rebasing: base[offset..<offset + declared - 1])
        guard let text = Self.utf8String(raw) else { throw invalid("BSON string is not valid UTF-8") }
        offset += declared
        return text
    }

    // MARK: - Structures

    private mutating func readDocument(depth: Int) throws(QueryError) -> BSONDocument {
        var document = BSONDocument()
        try readElements(depth: depth) { (key: String, value: BSONValue) in document.append(key, value) }
        return document
    }

    private mutating func readArray(depth: Int) throws(QueryError) -> [BSONValue] {
        var array: [BSONValue] = []
        // Array keys should be "0", "1", …; MongoDB tolerates other keys on read, and so do we.
        try readElements(depth: depth) { (_: String, value: BSONValue) in array.append(value) }
        return array
    }

    private mutating func readElements(
        depth: Int, _ body: (String, BSONValue) -> Void
    ) throws(QueryError) {
        guard depth <= depthMax else {
            throw QueryError(.overflow, "BSON nesting depth exceeds the limit of \(depthMax)")
        }
        let start = offset
        let declared = Int(try readInt32())
        guard declared >= 5, declared <= base.count - start else {
            throw invalid("BSON document length \(declared) does not fit the \(base.count - start) bytes available")
        }
        let end = start + declared
        guard base[end - 1] == 0 else { throw invalid("BSON document does not end with NUL") }
        while true {
            guard offset < end else { throw invalid("BSON document overruns its declared length") }
            let type = try readByte()
            if type == 0 { break }
            let key = try readCString()
            let value = try readValue(type: type, depth: depth)
            guard offset < end else { throw invalid("BSON element overruns its document") }
            body(key, value)
        }
        guard offset == end else { throw invalid("BSON document length does not match its contents") }
    }

    private mutating func readValue(type: UInt8, depth: Int) throws(QueryError) -> BSONValue {
        switch type {
        case 0x01: return .double(Double(bitPattern: try readUInt64()))
        case 0x02: return .string(try readString())
        case 0x03: return .document(try readDocument(depth: depth + 1))
        case 0x04: return .array(try readArray(depth: depth + 1))
        case 0x05:
            let count = Int(try readInt32())
            guard count >= 0, count < remaining else { throw invalid("BSON binary length is invalid") }
            let subtype = try readByte()
            if subtype == 0x02 {
                // The old binary subtype 2 repeats the length inside the payload.
                let inner = Int(try readInt32())
                guard inner == count - 4 else { throw invalid("BSON binary subtype 2 has inconsistent lengths") }
                return .binary(BSONBinary(subtype: subtype, data: try readBytes(inner)))
            }
            return .binary(BSONBinary(subtype: subtype, data: try readBytes(count)))
        case 0x06: return .undefined
        case 0x07: return .objectId(ObjectId(unchecked: try readBytes(12)))
        case 0x08:
            switch try readByte() {
            case 0: return .bool(false)
            case 1: return .bool(true)
            default: throw invalid("BSON boolean is neither 0 nor 1")
            }
        case 0x09: return .datetime(try readInt64())
        case 0x0A: return .null
        case 0x0B:
            let pattern = try readCString()
            return .regex(BSONRegex(pattern: pattern, options: try readCString()))
        case 0x0C:
            let namespace = try readString()
            return .dbPointer(namespace: namespace, id: ObjectId(unchecked: try readBytes(12)))
        case 0x0D: return .javascript(try readString())
        case 0x0E: return .symbol(try readString())
        case 0x0F:
            let start = offset
            let total = Int(try readInt32())
            guard total >= 14, total <= base.count - start else { throw invalid("BSON code-with-scope length is invalid") }
            let code = try readString()
            let scope = try readDocument(depth: depth + 1)
            guard offset == start + total else { throw invalid("BSON code-with-scope length does not match") }
            return .javascriptWithScope(code: code, scope: scope)
        case 0x10: return .int32(try readInt32())
        case 0x11:
            let packed = try readUInt64()
            return .timestamp(
                BSONTimestamp(seconds: UInt32(truncatingIfNeeded: packed >> 32), increment: UInt32(truncatingIfNeeded: packed)))
        case 0x12: return .int64(try readInt64())
        case 0x13:
            let low = try readUInt64()
            return .decimal128(Decimal128(high: try readUInt64(), low: low))
        case 0xFF: return .minKey
        case 0x7F: return .maxKey
        default: throw invalid("unknown BSON element type 0x\(String(type, radix: 16))")
        }
    }
}
