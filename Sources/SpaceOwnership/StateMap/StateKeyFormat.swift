import StratosCore

/// How a space's state map turns names into 32-byte keys: a document's `_id` key (the query
/// engine's order-preserving encoding) in a collection map, and a collection's name in the root
/// map. A space's format is fixed by its first commit (`CommitOperation.stateFormat`); a space
/// whose history names none uses `.hashed`, the format of every space written before formats
/// existed.
///
/// **Why `.ordered`.** A trie keyed by hashes puts each new document in a random bottom branch,
/// so once a collection outgrows the branch cache nearly every write reads and rewrites a branch
/// nobody touched recently (docs/benchmarks.md, "Bulk loads"). `_id`s usually grow (ObjectIds,
/// counters), and with keys that keep their order a batch of new documents fills a few new
/// branches at the right edge of the trie instead.
///
/// **The root commits to the format.** The two formats key collections by different functions
/// (unkeyed and keyed BLAKE2b), so a record proof's root-map key tells a verifier which format
/// the space uses, and no key of one format can pass for a key of the other.
public enum StateKeyFormat: UInt8, Hashable, Sendable, CaseIterable {
    /// Documents: BLAKE2b-256 of the `_id` key. Collections: BLAKE2b-256 of the name.
    case hashed = 1
    /// Documents: an `_id` key of at most 31 bytes is kept as it is — its bytes, zeros up to
    /// byte 31, then its length in byte 31; a longer one is BLAKE2b of it with a 31-byte output,
    /// then 0xFF. Byte 31 tells the forms apart and each is injective (a long-key collision would
    /// be a 248-bit BLAKE2b collision). Collections: BLAKE2b-256 of the name, keyed with
    /// `collectionDomain`.
    case ordered = 2

    /// The format new spaces get.
    public static let current = StateKeyFormat.ordered

    /// The BLAKE2b key of `.ordered` collection keys (a domain separator, not a secret).
    static let collectionDomain = Array("stratosdb/state/ordered".utf8)
    /// Byte 31 of the key of an `_id` key longer than 31 bytes.
    static let longMarker: UInt8 = 0xFF

    /// The state-map key of a document whose `_id` key is `idKey`.
    public func documentKey(_ idKey: [UInt8]) -> Digest32 {
        switch self {
        case .hashed:
            return Digest32.blake2b(idKey)
        case .ordered:
            var key = [UInt8](repeating: 0, count: 32)
            if idKey.count < 32 {
                for index in idKey.indices { key[index] = idKey[index] }
                key[31] = UInt8(idKey.count)
            } else {
                let digest = Hash256.blake2b(idKey, outputCount: 31)
                for index in 0..<31 { key[index] = digest[index] }
                key[31] = Self.longMarker
            }
            return Digest32(key)
        }
    }

    /// The root-map key of collection `name`.
    public func collectionKey(_ name: String) -> Digest32 {
        switch self {
        case .hashed: Digest32.blake2b(name.utf8)
        case .ordered: Digest32(Hash256.blake2b(name.utf8, outputCount: 32, key: Self.collectionDomain))
        }
    }
}
