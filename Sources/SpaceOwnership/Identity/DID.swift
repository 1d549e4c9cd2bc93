import StratosCore

/// A `did:key` identity for an Ed25519 key (W3C did:key method): `did:key:z` followed by the
/// base58btc encoding of the multicodec prefix `0xed 0x01` and the 32-byte public key.
///
/// Users, apps and nodes are all named this way; the DID is self-certifying, so verifying a
/// signature needs nothing but the DID itself.
public struct DID: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The Ed25519 public key the DID names.
    public let publicKey: PublicKey
    /// The canonical text form.
    public let string: String

    private static let prefix = "did:key:z"
    private static let ed25519Multicodec: [UInt8] = [0xed, 0x01]

    /// The DID of a public key.
    public init(publicKey: PublicKey) {
        self.publicKey = publicKey
        self.string = Self.prefix + Base58.encode(Self.ed25519Multicodec + publicKey.bytes)
    }

    /// Parses a did:key text, accepting only Ed25519 keys in their one canonical spelling.
    public init(parsing text: String) throws(SpaceOwnershipError) {
        guard text.utf8.count <= SpaceOwnershipLimits.didCountMax, text.hasPrefix(Self.prefix) else {
            throw SpaceOwnershipError(.invalidIdentity, "not a did:key identity (expected did:key:z6Mk…)")
        }
        let encoded = String(text.dropFirst(Self.prefix.count))
        guard let bytes = try? Base58.decode(encoded), bytes.count == 34, Array(bytes.prefix(2)) == Self.ed25519Multicodec,
            let key = try? PublicKey(bytes: Array(bytes.dropFirst(2)))
        else {
            throw SpaceOwnershipError(.invalidIdentity, "did:key is not a base58btc Ed25519 key (multicodec 0xed01)")
        }
        self.init(publicKey: key)
        guard string == text else {
            throw SpaceOwnershipError(.invalidIdentity, "did:key is not in canonical form")
        }
    }

    /// Throws unless `signature` is this identity's signature over `message`.
    public func verify(_ signature: Signature, for message: [UInt8]) -> Bool {
        publicKey.isValidSignature(signature, for: message)
    }

    public var description: String { string }
    public static func < (lhs: DID, rhs: DID) -> Bool { lhs.string < rhs.string }
}

extension SigningKey {
    /// The did:key of this key pair.
    public var did: DID { DID(publicKey: publicKey) }
}
