import StratosCore

/// The first `count` nibbles (4-bit halves, high first) of a 32-byte state-map key: a branch's
/// prefix. Held inline, packed two nibbles a byte with the nibbles past `count` zero, so a path
/// compares and hashes as five words and a path of a whole key is that key's bytes.
public struct NibblePath: Hashable, Sendable {
    /// Packed nibbles; those at `count` and beyond are zero.
    private var packed: Digest32
    private var storedCount: UInt8
    /// How many nibbles (0...64).
    public var count: Int { Int(storedCount) }

    /// The empty path (the root branch's).
    public static let empty = NibblePath(packed: .zero, count: 0)

    private init(packed: Digest32, count: Int) {
        self.packed = packed
        self.storedCount = UInt8(count)
    }

    /// The first `count` nibbles of `key`.
    public init(prefixOf key: Digest32, count: Int) {
        precondition((0...StateMapKey.nibbleCount).contains(count), "a nibble path holds at most 64 nibbles")
        self.init(packed: key.keepingNibbles(count), count: count)
    }

    /// A path from one nibble (0...15) per byte, as stored and as proofs carry it; nil when a
    /// byte is not a nibble or there are more than 64.
    public init?(nibbles: [UInt8]) {
        guard nibbles.count <= StateMapKey.nibbleCount, nibbles.allSatisfy({ $0 < 16 }) else { return nil }
        var bytes = [UInt8](repeating: 0, count: 32)
        for (index, nibble) in nibbles.enumerated() {
            bytes[index / 2] |= index % 2 == 0 ? nibble << 4 : nibble
        }
        self.init(packed: Digest32(bytes), count: nibbles.count)
    }

    /// Nibble `index` (below `count`, or of a whole key).
    @inlinable public subscript(index: Int) -> UInt8 {
        let byte = packedByte(index / 2)
        return index % 2 == 0 ? byte >> 4 : byte & 0x0f
    }

    @usableFromInline func packedByte(_ index: Int) -> UInt8 { packed[index] }

    /// The nibbles, one per byte (the stored and hashed form).
    public var nibbles: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count)
        for index in 0..<count { out.append(self[index]) }
        return out
    }

    /// Appends the nibbles, one per byte, to `bytes`.
    func append(to bytes: inout [UInt8]) {
        for index in 0..<count { bytes.append(self[index]) }
    }

    /// Whether `key` starts with this path.
    public func isPrefix(of key: Digest32) -> Bool {
        NibblePath(prefixOf: key, count: count) == self
    }

    /// How many leading nibbles `key` shares with this path (at most `count`).
    func sharedCount(with key: Digest32) -> Int {
        var shared = 0
        while shared < count && self[shared] == StateMapKey.nibble(key, shared) { shared += 1 }
        return shared
    }
}
