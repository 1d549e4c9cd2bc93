import Foundation
import StratosCore
import Synchronization

/// A 12-byte BSON ObjectId: 4-byte big-endian seconds, 5 random bytes fixed per process, and a
/// 3-byte counter (MongoDB's ObjectId specification).
public struct ObjectId: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The 12 raw bytes.
    public let bytes: [UInt8]

    /// Wraps 12 raw bytes.
    public init(bytes: [UInt8]) throws(QueryError) {
        guard bytes.count == 12 else { throw QueryError(.badValue, "an ObjectId has 12 bytes, got \(bytes.count)") }
        self.bytes = bytes
    }

    /// Parses 24 hexadecimal digits.
    public init(hex: String) throws(QueryError) {
        guard hex.utf8.count == 24, let bytes = try? Hex.decode(hex) else {
            throw QueryError(.badValue, "an ObjectId is 24 hexadecimal digits")
        }
        self.bytes = bytes
    }

    init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    private static let processUnique = SecureRandom.bytes(count: 5)
    private static let counter = Atomic<UInt32>(UInt32.random(in: 0..<0x00FF_FFFF))

    /// A new ObjectId for `seconds` since the epoch.
    public static func generate(seconds: UInt32 = UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970)))
        -> ObjectId
    {
        let count = counter.wrappingAdd(1, ordering: .relaxed).newValue & 0x00FF_FFFF
        var bytes = [UInt8](repeating: 0, count: 12)
        bytes[0] = UInt8(truncatingIfNeeded: seconds >> 24)
        bytes[1] = UInt8(truncatingIfNeeded: seconds >> 16)
        bytes[2] = UInt8(truncatingIfNeeded: seconds >> 8)
        bytes[3] = UInt8(truncatingIfNeeded: seconds)
        for index in 0..<5 { bytes[4 + index] = processUnique[index] }
        bytes[9] = UInt8(truncatingIfNeeded: count >> 16)
        bytes[10] = UInt8(truncatingIfNeeded: count >> 8)
        bytes[11] = UInt8(truncatingIfNeeded: count)
        return ObjectId(unchecked: bytes)
    }

    /// The creation time in seconds since the epoch.
    public var seconds: UInt32 { bytes[0..<4].reduce(0) { $0 << 8 | UInt32($1) } }

    public var description: String { Hex.encode(bytes) }

    public static func < (lhs: ObjectId, rhs: ObjectId) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}
