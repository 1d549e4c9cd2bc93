import CSodium

/// A 32-byte digest: BLAKE2b-256 for StratosDB's own content addressing, SHA-256 where an external
/// specification requires it (RFC 6962 Merkle trees).
public struct Hash256: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 32 digest bytes.
    public let bytes: [UInt8]

    /// Wraps exactly 32 bytes. Throws when the count differs.
    public init(bytes: [UInt8]) throws(StratosError) {
        guard bytes.count == 32 else {
            throw StratosError(.invalidArgument, "a 256-bit hash has 32 bytes, got \(bytes.count)")
        }
        self.bytes = bytes
    }

    @usableFromInline init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    /// Lower-case hexadecimal form.
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public static func < (lhs: Hash256, rhs: Hash256) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    /// BLAKE2b with a 256-bit output (libsodium `crypto_generichash`). Inlinable, so each
    /// caller's collection type gets a specialized copy.
    @inlinable public static func blake2b<Bytes: Collection<UInt8>>(_ data: Bytes) -> Hash256 {
        Hash256(unchecked: Digest32.blake2b(data).bytes)
    }

    /// BLAKE2b with a shorter output (16 to 64 bytes), as a separate function of the input: BLAKE2b
    /// mixes the output length into its parameter block, so a 16-byte digest is not a prefix of the
    /// 32-byte one (RFC 7693 §2.5).
    public static func blake2b<Bytes: Collection<UInt8>>(_ data: Bytes, outputCount: Int) -> [UInt8] {
        generichash(data, outputCount: outputCount, key: [])
    }

    /// BLAKE2b in keyed mode (RFC 7693 §2.5: the key is part of the parameter block and the first
    /// block): for `key` of 16 to 64 bytes, a function of the input unrelated to the unkeyed one,
    /// which makes it a domain separator no input of the unkeyed hash can reach.
    public static func blake2b<Bytes: Collection<UInt8>>(_ data: Bytes, outputCount: Int, key: [UInt8]) -> [UInt8] {
        precondition((16...64).contains(key.count), "a BLAKE2b key is 16 to 64 bytes")
        return generichash(data, outputCount: outputCount, key: key)
    }

    /// libsodium's `crypto_generichash`, unkeyed when `key` is empty.
    private static func generichash<Bytes: Collection<UInt8>>(_ data: Bytes, outputCount: Int, key: [UInt8]) -> [UInt8] {
        precondition((16...64).contains(outputCount), "BLAKE2b output length must be 16 to 64 bytes")
        Sodium.ensureReady()
        var out = [UInt8](repeating: 0, count: outputCount)
        let input = Array(data)
        // A key of length 0 is the unkeyed hash (libsodium's blake2b initialises by key length).
        let status = crypto_generichash(&out, outputCount, input, UInt64(input.count), key, key.count)
        precondition(status == 0, "crypto_generichash cannot fail for valid output and key lengths")
        return out
    }

    /// SHA-256 (FIPS 180-4) through libsodium `crypto_hash_sha256`.
    public static func sha256<Bytes: Collection<UInt8>>(_ data: Bytes) -> Hash256 {
        var state = SHA256Hasher()
        state.update(data)
        return state.finalize()
    }
}

/// An incremental SHA-256, so callers can hash prefixes and concatenations without copying.
public struct SHA256Hasher: Sendable {
    private var state = crypto_hash_sha256_state()

    /// Starts a new hash.
    public init() {
        Sodium.ensureReady()
        crypto_hash_sha256_init(&state)
    }

    /// Feeds bytes.
    public mutating func update<Bytes: Collection<UInt8>>(_ data: Bytes) {
        let status = data.withContiguousStorageIfAvailable { buffer in
            crypto_hash_sha256_update(&state, buffer.baseAddress, UInt64(buffer.count))
        }
        if status == nil {
            let copy = Array(data)
            copy.withUnsafeBufferPointer { buffer in
                _ = crypto_hash_sha256_update(&state, buffer.baseAddress, UInt64(buffer.count))
            }
        }
    }

    /// Returns the digest. The hasher must not be used afterwards.
    public mutating func finalize() -> Hash256 {
        var out = [UInt8](repeating: 0, count: 32)
        _ = crypto_hash_sha256_final(&state, &out)
        return Hash256(unchecked: out)
    }
}
