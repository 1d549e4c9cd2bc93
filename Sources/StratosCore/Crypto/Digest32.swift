import CSodium

/// A 32-byte digest held inline (four words, no heap storage), for structures that hold many
/// digests and copy, compare and hash them on every write: a state-map branch holds up to
/// sixteen, and as `[UInt8]` each was its own reference-counted allocation.
///
/// The words hold the bytes in memory order; `bytes` gives them back as written.
public struct Digest32: Hashable, Sendable {
    @usableFromInline var words: (UInt64, UInt64, UInt64, UInt64)

    /// All zeros.
    public static let zero = Digest32(words: (0, 0, 0, 0))

    @inlinable init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }

    /// The digest with these 32 bytes. (Inlinable, so callers in other modules get a copy
    /// specialized to their collection type instead of the generic one.)
    @inlinable public init<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        precondition(bytes.count == 32, "a Digest32 has 32 bytes")
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let copied: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            Swift.withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(buffer)) }
        }
        if copied == nil {
            Swift.withUnsafeMutableBytes(of: &words) { raw in
                var index = 0
                for byte in bytes {
                    raw[index] = byte
                    index += 1
                }
            }
        }
        self.init(words: words)
    }

    /// Reads 32 bytes at `pointer`.
    public init(copying pointer: UnsafeRawPointer) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: 32)) }
        self.words = words
    }

    /// The 32 bytes.
    public var bytes: [UInt8] { Swift.withUnsafeBytes(of: words) { Array($0) } }

    /// Byte `index` (0..<32).
    @inlinable public subscript(index: Int) -> UInt8 {
        Swift.withUnsafeBytes(of: words) { $0[index] }
    }

    /// Calls `body` with the 32 bytes.
    @inlinable public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: words, body)
    }

    /// The first `count` nibbles (high half of each byte first) kept, the rest zero.
    public func keepingNibbles(_ count: Int) -> Digest32 {
        precondition((0...64).contains(count), "a Digest32 has 64 nibbles")
        var copy = words
        Swift.withUnsafeMutableBytes(of: &copy) { raw in
            let whole = count / 2
            if count % 2 == 1 { raw[whole] &= 0xf0 }
            for index in (whole + count % 2)..<32 { raw[index] = 0 }
        }
        return Digest32(words: copy)
    }

    /// Lower-case hexadecimal form.
    public var hex: String { Hex.encode(bytes) }

    public static func == (lhs: Digest32, rhs: Digest32) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2 && lhs.words.3 == rhs.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }

    /// BLAKE2b-256 of `bytes` (the same function as `Hash256.blake2b`, without its copies).
    public static func blake2b(_ bytes: UnsafeRawBufferPointer) -> Digest32 {
        Sodium.ensureReady()
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let status = Swift.withUnsafeMutableBytes(of: &words) { out in
            crypto_generichash(
                out.baseAddress!.assumingMemoryBound(to: UInt8.self), 32,
                bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count), nil, 0)
        }
        precondition(status == 0, "crypto_generichash cannot fail for a 32-byte output without a key")
        return Digest32(words: words)
    }

    /// BLAKE2b-256 of `bytes`.
    @inlinable public static func blake2b<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Digest32 {
        if let digest = bytes.withContiguousStorageIfAvailable({ blake2b(UnsafeRawBufferPointer($0)) }) { return digest }
        return Array(bytes).withUnsafeBytes { blake2b($0) }
    }
}
