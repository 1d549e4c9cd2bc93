import StratosCore

/// One slot of a branch: nothing, a record (key and value digests), or a deeper branch.
public enum StateMapSlot: Hashable, Sendable {
    case empty
    /// A record: `key` = BLAKE2b-256 of the record's key, `value` = BLAKE2b-256 of its content.
    case leaf(key: [UInt8], value: [UInt8])
    /// A branch whose keys all start with `prefix` (nibbles), with its hash.
    case branch(prefix: [UInt8], hash: [UInt8])

    /// What the parent's hash covers for this slot.
    var digest: [UInt8] {
        switch self {
        case .empty: StateMapBranch.emptyDigest
        case .leaf(let key, let value): StateMapBranch.leafHash(key: key, value: value)
        case .branch(_, let hash): hash
        }
    }
}

/// A node of the state map: a 16-way branch at nibble `depth`, holding every key that starts
/// with `prefix` (its first `depth` nibbles).
///
/// The hash commits to the depth, the prefix and each slot, with one-byte domain tags (0x00 for
/// records, 0x01 for branches, as RFC 6962 §2.1 separates leaves from nodes), so a proof cannot
/// pass a record off as a branch or move a branch under another prefix.
public struct StateMapBranch: Hashable, Sendable {
    /// The nibble this branch splits on.
    public var depth: Int
    /// The first `depth` nibbles shared by every key below.
    public var prefix: [UInt8]
    /// Sixteen slots, one per value of nibble `depth`.
    public var slots: [StateMapSlot]

    static let emptyDigest = [UInt8](repeating: 0, count: 32)

    /// An empty branch.
    public init(prefix: [UInt8]) {
        self.depth = prefix.count
        self.prefix = prefix
        self.slots = Array(repeating: .empty, count: 16)
    }

    init(depth: Int, prefix: [UInt8], slots: [StateMapSlot]) {
        self.depth = depth
        self.prefix = prefix
        self.slots = slots
    }

    static func leafHash(key: [UInt8], value: [UInt8]) -> [UInt8] {
        Hash256.blake2b([0x00] + key + value).bytes
    }

    /// The branch's hash.
    public var hash: [UInt8] {
        var bytes: [UInt8] = [0x01, UInt8(depth)]
        bytes.reserveCapacity(2 + depth + 16 * 33)
        bytes += prefix
        for slot in slots {
            switch slot {
            case .empty: bytes.append(0)
            case .leaf: bytes.append(1)
            case .branch(let childPrefix, _):
                // The child's prefix is committed here too, so no byte of a branch is malleable.
                bytes.append(2)
                bytes.append(UInt8(childPrefix.count))
                bytes += childPrefix
            }
            bytes += slot.digest
        }
        return Hash256.blake2b(bytes).bytes
    }

    var occupiedCount: Int { slots.count { $0 != .empty } }

    // MARK: - Encoding

    /// The canonical bytes of the branch (storage and proofs).
    public var encoded: [UInt8] {
        var bytes: [UInt8] = [UInt8(depth)] + prefix
        for slot in slots {
            switch slot {
            case .empty:
                bytes.append(0)
            case .leaf(let key, let value):
                bytes.append(1)
                bytes += key + value
            case .branch(let prefix, let hash):
                bytes.append(2)
                bytes.append(UInt8(prefix.count))
                bytes += prefix + hash
            }
        }
        return bytes
    }

    /// Decodes a branch, rejecting any malformed or non-canonical input.
    public init(decoding bytes: [UInt8]) throws(StratosError) {
        var index = 0
        func take(_ count: Int) throws(StratosError) -> [UInt8] {
            guard count >= 0, bytes.count - index >= count else { throw StratosError(.invalidEncoding, "state map branch is truncated") }
            defer { index += count }
            return Array(bytes[index..<index + count])
        }
        let depth = Int(try take(1)[0])
        guard depth < StateMapKey.nibbleCount else { throw StratosError(.invalidEncoding, "state map branch depth out of range") }
        let prefix = try take(depth)
        guard prefix.allSatisfy({ $0 < 16 }) else { throw StratosError(.invalidEncoding, "state map prefix holds a non-nibble") }
        var slots: [StateMapSlot] = []
        for _ in 0..<16 {
            switch try take(1)[0] {
            case 0: slots.append(.empty)
            case 1: slots.append(.leaf(key: try take(32), value: try take(32)))
            case 2:
                let count = Int(try take(1)[0])
                guard count > depth, count < StateMapKey.nibbleCount else { throw StratosError(.invalidEncoding, "state map child depth out of range") }
                let childPrefix = try take(count)
                guard childPrefix.allSatisfy({ $0 < 16 }) else { throw StratosError(.invalidEncoding, "state map prefix holds a non-nibble") }
                slots.append(.branch(prefix: childPrefix, hash: try take(32)))
            default: throw StratosError(.invalidEncoding, "state map slot tag out of range")
            }
        }
        guard index == bytes.count else { throw StratosError(.invalidEncoding, "trailing bytes after state map branch") }
        self.init(depth: depth, prefix: prefix, slots: slots)
    }
}

/// Keys of the state map: 32-byte digests read as 64 nibbles, high nibble first.
public enum StateMapKey {
    /// Nibbles in a key.
    public static let nibbleCount = 64

    /// The nibbles of a 32-byte key.
    public static func nibbles(_ key: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in key {
            out.append(byte >> 4)
            out.append(byte & 0x0f)
        }
        return out
    }

    static func commonPrefixCount(_ left: [UInt8], _ right: [UInt8]) -> Int {
        var count = 0
        while count < min(left.count, right.count) && left[count] == right[count] { count += 1 }
        return count
    }
}
