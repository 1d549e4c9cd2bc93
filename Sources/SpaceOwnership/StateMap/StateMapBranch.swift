import StratosCore

/// One slot of a branch: nothing, a record (key and value digests), or a deeper branch. Every
/// case is inline (no heap storage), so a branch's sixteen slots are one allocation.
public enum StateMapSlot: Hashable, Sendable {
    case empty
    /// A record: `key` = BLAKE2b-256 of the record's key, `value` = BLAKE2b-256 of its content.
    case leaf(key: Digest32, value: Digest32)
    /// A branch whose keys all start with `prefix`, with its hash.
    case branch(prefix: NibblePath, hash: Digest32)
}

/// A node of the state map: a 16-way branch at nibble `depth`, holding every key that starts
/// with `prefix` (its first `depth` nibbles).
///
/// The hash commits to the depth, the prefix and each slot, with one-byte domain tags (0x00 for
/// records, 0x01 for branches, as RFC 6962 §2.1 separates leaves from nodes), so a proof cannot
/// pass a record off as a branch or move a branch under another prefix.
public struct StateMapBranch: Hashable, Sendable {
    /// The first `depth` nibbles shared by every key below.
    public var prefix: NibblePath
    /// Sixteen slots, one per value of nibble `depth` (changed through `setSlot`).
    public private(set) var slots: [StateMapSlot]
    /// What each slot contributes to the hash, kept once known: a record's leaf hash is computed
    /// once, not each time a sibling changes the branch. Nil for a record whose leaf hash was not
    /// needed yet (a decoded branch computes them only when it is hashed: a branch read for a
    /// lookup or a path never needs them).
    private var digests: [Digest32?]

    /// The nibble this branch splits on.
    public var depth: Int { prefix.count }

    /// An empty branch.
    public init(prefix: NibblePath) {
        self.prefix = prefix
        self.slots = Array(repeating: .empty, count: 16)
        self.digests = Array(repeating: .zero, count: 16)
    }

    init(prefix: NibblePath, slots: [StateMapSlot]) {
        self.prefix = prefix
        self.slots = slots
        self.digests = slots.map { slot in if case .leaf = slot { nil } else { Self.digest(slot) } }
    }

    /// Sets slot `index` (0..<16).
    public mutating func setSlot(_ index: Int, _ slot: StateMapSlot) {
        slots[index] = slot
        digests[index] = if case .leaf = slot { nil } else { Self.digest(slot) }
    }

    /// Computes and keeps every slot's digest, so later hashes of this branch value (after a
    /// sibling changes) recompute only the changed slot's.
    public mutating func computeDigests() {
        for index in 0..<16 where digests[index] == nil { digests[index] = Self.digest(slots[index]) }
    }

    public static func == (lhs: StateMapBranch, rhs: StateMapBranch) -> Bool {
        lhs.prefix == rhs.prefix && lhs.slots == rhs.slots
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(prefix)
        hasher.combine(slots)
    }

    private static func digest(_ slot: StateMapSlot) -> Digest32 {
        switch slot {
        case .empty: .zero
        case .leaf(let key, let value): leafHash(key: key, value: value)
        case .branch(_, let hash): hash
        }
    }

    /// What a record's slot contributes to its branch's hash.
    static func leafHash(key: Digest32, value: Digest32) -> Digest32 {
        withUnsafeTemporaryAllocation(byteCount: 65, alignment: 8) { buffer in
            buffer[0] = 0x00
            key.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[1..<33]).copyMemory(from: $0) }
            value.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[33..<65]).copyMemory(from: $0) }
            return Digest32.blake2b(UnsafeRawBufferPointer(buffer))
        }
    }

    /// The branch's hash: BLAKE2b-256 of 0x01, the depth, the prefix nibbles, and per slot a tag
    /// (0 empty, 1 record, 2 branch, a branch's tag followed by its prefix length and nibbles)
    /// and its digest (zeros, the record's leaf hash, the branch's hash).
    public var hash: Digest32 {
        // At most 2 + 64 + 16 × (1 + 1 + 64 + 32) bytes, written into one stack buffer: building
        // an array byte by byte cost as much as the BLAKE2b itself.
        withUnsafeTemporaryAllocation(byteCount: 2 + StateMapKey.nibbleCount + 16 * (2 + StateMapKey.nibbleCount + 32), alignment: 8) { buffer in
            var count = 0
            func put(_ byte: UInt8) {
                buffer[count] = byte
                count += 1
            }
            func put(_ path: NibblePath) {
                for index in 0..<path.count { put(path[index]) }
            }
            put(0x01)
            put(UInt8(depth))
            put(prefix)
            for index in 0..<16 {
                let slot = slots[index]
                switch slot {
                case .empty: put(0)
                case .leaf: put(1)
                case .branch(let childPrefix, _):
                    // The child's prefix is committed here too, so no byte of a branch is malleable.
                    put(2)
                    put(UInt8(childPrefix.count))
                    put(childPrefix)
                }
                (digests[index] ?? Self.digest(slot)).withUnsafeBytes { digest in
                    UnsafeMutableRawBufferPointer(rebasing: buffer[count..<count + 32]).copyMemory(from: digest)
                }
                count += 32
            }
            return Digest32.blake2b(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    var occupiedCount: Int { slots.count { $0 != .empty } }

    // MARK: - Encoding

    /// The canonical bytes of the branch (storage and proofs).
    public var encoded: [UInt8] {
        var bytes: [UInt8] = [UInt8(depth)]
        bytes.reserveCapacity(1 + depth + 16 * 65)
        prefix.append(to: &bytes)
        for slot in slots {
            switch slot {
            case .empty:
                bytes.append(0)
            case .leaf(let key, let value):
                bytes.append(1)
                key.withUnsafeBytes { bytes.append(contentsOf: $0) }
                value.withUnsafeBytes { bytes.append(contentsOf: $0) }
            case .branch(let prefix, let hash):
                bytes.append(2)
                bytes.append(UInt8(prefix.count))
                prefix.append(to: &bytes)
                hash.withUnsafeBytes { bytes.append(contentsOf: $0) }
            }
        }
        return bytes
    }

    /// Decodes a branch, rejecting any malformed or non-canonical input.
    public init(decoding bytes: [UInt8]) throws(StratosError) {
        var index = 0
        func take(_ count: Int) throws(StratosError) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - index >= count else { throw StratosError(.invalidEncoding, "state map branch is truncated") }
            defer { index += count }
            return bytes[index..<index + count]
        }
        let depth = Int(try take(1).first!)
        guard depth < StateMapKey.nibbleCount else { throw StratosError(.invalidEncoding, "state map branch depth out of range") }
        guard let prefix = NibblePath(nibbles: Array(try take(depth))) else {
            throw StratosError(.invalidEncoding, "state map prefix holds a non-nibble")
        }
        var slots: [StateMapSlot] = []
        slots.reserveCapacity(16)
        for _ in 0..<16 {
            switch try take(1).first! {
            case 0: slots.append(.empty)
            case 1: slots.append(.leaf(key: Digest32(try take(32)), value: Digest32(try take(32))))
            case 2:
                let count = Int(try take(1).first!)
                guard count > depth, count < StateMapKey.nibbleCount else { throw StratosError(.invalidEncoding, "state map child depth out of range") }
                guard let childPrefix = NibblePath(nibbles: Array(try take(count))) else {
                    throw StratosError(.invalidEncoding, "state map prefix holds a non-nibble")
                }
                slots.append(.branch(prefix: childPrefix, hash: Digest32(try take(32))))
            default: throw StratosError(.invalidEncoding, "state map slot tag out of range")
            }
        }
        guard index == bytes.count else { throw StratosError(.invalidEncoding, "trailing bytes after state map branch") }
        self.init(prefix: prefix, slots: slots)
    }
}

/// Keys of the state map: 32-byte digests read as 64 nibbles, high nibble first.
public enum StateMapKey {
    /// Nibbles in a key.
    public static let nibbleCount = 64

    /// Nibble `index` of `key`.
    @inlinable public static func nibble(_ key: Digest32, _ index: Int) -> UInt8 {
        let byte = key[index / 2]
        return index % 2 == 0 ? byte >> 4 : byte & 0x0f
    }

    /// How many leading nibbles two keys share.
    static func sharedCount(_ left: Digest32, _ right: Digest32) -> Int {
        var count = 0
        while count < nibbleCount && nibble(left, count) == nibble(right, count) { count += 1 }
        return count
    }
}
