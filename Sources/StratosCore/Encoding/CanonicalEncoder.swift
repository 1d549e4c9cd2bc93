/// The canonical binary encoding for everything StratosDB hashes or signs.
///
/// Why not JSON or BSON: a signature must cover exactly one byte string per value. This encoding
/// has one form per value: fixed-width big-endian integers, lengths as big-endian `UInt32`,
/// strings as UTF-8, no optional padding and no field names, so field order is the code's order.
public struct CanonicalEncoder: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8] = []

    /// Creates an empty encoder.
    public init() {}

    /// Appends one byte.
    public mutating func write(_ value: UInt8) { bytes.append(value) }
    /// Appends a big-endian `UInt32`.
    public mutating func write(_ value: UInt32) { appendBigEndian(value) }
    /// Appends a big-endian `UInt64`.
    public mutating func write(_ value: UInt64) { appendBigEndian(value) }
    /// Appends a big-endian two's-complement `Int64`.
    public mutating func write(_ value: Int64) { appendBigEndian(UInt64(bitPattern: value)) }
    /// Appends a boolean as one byte, 0 or 1.
    public mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }

    /// Appends a length-prefixed byte string.
    public mutating func write(bytes value: [UInt8]) {
        precondition(value.count <= Int(UInt32.max), "canonical byte strings are at most 4 GiB")
        write(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    /// Appends a length-prefixed UTF-8 string.
    public mutating func write(_ value: String) { write(bytes: Array(value.utf8)) }

    private mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var big = value.bigEndian
        withUnsafeBytes(of: &big) { bytes.append(contentsOf: $0) }
    }
}

/// Reads the canonical encoding back, rejecting truncated input and trailing bytes.
public struct CanonicalDecoder: Sendable {
    private let bytes: [UInt8]
    private var offset = 0

    /// Starts reading `bytes`.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Whether every byte has been consumed.
    public var isAtEnd: Bool { offset == bytes.count }

    /// Reads one byte.
    public mutating func readUInt8() throws(StratosError) -> UInt8 { let slice = try take(1); return slice[slice.startIndex] }
    /// Reads a big-endian `UInt32`.
    public mutating func readUInt32() throws(StratosError) -> UInt32 { try readBigEndian() }
    /// Reads a big-endian `UInt64`.
    public mutating func readUInt64() throws(StratosError) -> UInt64 { try readBigEndian() }
    /// Reads a big-endian `Int64`.
    public mutating func readInt64() throws(StratosError) -> Int64 { Int64(bitPattern: try readBigEndian()) }

    /// Reads a boolean; any byte other than 0 or 1 is an error (one form per value).
    public mutating func readBool() throws(StratosError) -> Bool {
        switch try readUInt8() {
        case 0: return false
        case 1: return true
        default: throw StratosError(.invalidEncoding, "a canonical boolean is 0 or 1")
        }
    }

    /// Reads a length-prefixed byte string of at most `maxCount` bytes.
    public mutating func readBytes(maxCount: Int = StratosCoreLimits.canonicalBytesCountMax) throws(StratosError) -> [UInt8] {
        let count = Int(try readUInt32())
        guard count <= maxCount else {
            throw StratosError(.limitExceeded, "canonical byte string of \(count) bytes exceeds \(maxCount)")
        }
        return Array(try take(count))
    }

    /// Reads a length-prefixed UTF-8 string, rejecting invalid UTF-8.
    public mutating func readString(maxCount: Int = StratosCoreLimits.canonicalStringCountMax) throws(StratosError) -> String {
        let raw = try readBytes(maxCount: maxCount)
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw StratosError(.invalidEncoding, "canonical string is not valid UTF-8")
        }
        return text
    }

    /// Throws unless every byte was consumed.
    public func finish() throws(StratosError) {
        guard isAtEnd else {
            throw StratosError(.invalidEncoding, "\(bytes.count - offset) trailing bytes after canonical value")
        }
    }

    private mutating func take(_ count: Int) throws(StratosError) -> ArraySlice<UInt8> {
        guard count >= 0, bytes.count - offset >= count else {
            throw StratosError(.invalidEncoding, "canonical value is truncated")
        }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    private mutating func readBigEndian<T: FixedWidthInteger>() throws(StratosError) -> T {
        let slice = try take(MemoryLayout<T>.size)
        var value: T = 0
        for byte in slice { value = value << 8 | T(byte) }
        return value
    }
}
