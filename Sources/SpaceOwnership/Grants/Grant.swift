import StratosCore

/// An owner-signed capability: `grantee` may perform `actions` on `collections` of `space`
/// until `expiresAtMilliseconds`.
///
/// Grants are values signed by the space owner, so a node can check one without trusting
/// whoever stored or forwarded it. The signature covers the canonical encoding below, which
/// starts with a domain tag so a grant signature can never be replayed as another kind of
/// signed message (a token, a commit).
public struct Grant: Hashable, Sendable {
    /// The space the grant is for.
    public var space: SpaceID
    /// Who signed it: the space's owner.
    public var issuer: DID
    /// Who receives the rights.
    public var grantee: DID
    /// The actions allowed.
    public var actions: GrantActions
    /// Collection names the grant covers; empty means every collection.
    public var collections: [String]
    /// When the grant was made (milliseconds since the Unix epoch).
    public var issuedAtMilliseconds: Int64
    /// When the grant stops working; nil means it lasts until revoked.
    public var expiresAtMilliseconds: Int64?
    /// 16 random bytes, so two otherwise identical grants have different ids.
    public var nonce: [UInt8]

    static let domain = "stratosdb/grant/v1"

    /// Creates a grant with a fresh nonce.
    public init(
        space: SpaceID, issuer: DID, grantee: DID, actions: GrantActions, collections: [String],
        issuedAtMilliseconds: Int64, expiresAtMilliseconds: Int64?, nonce: [UInt8] = SecureRandom.bytes(count: 16)
    ) {
        self.space = space
        self.issuer = issuer
        self.grantee = grantee
        self.actions = actions
        self.collections = collections.sorted()
        self.issuedAtMilliseconds = issuedAtMilliseconds
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.nonce = nonce
    }

    /// The bytes the issuer signs.
    public var canonicalBytes: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(Self.domain)
        encoder.write(space.string)
        encoder.write(issuer.string)
        encoder.write(grantee.string)
        encoder.write(actions.rawValue)
        encoder.write(UInt32(collections.count))
        for collection in collections { encoder.write(collection) }
        encoder.write(issuedAtMilliseconds)
        encoder.write(expiresAtMilliseconds != nil)
        encoder.write(expiresAtMilliseconds ?? 0)
        encoder.write(bytes: nonce)
        return encoder.bytes
    }

    static func decode(_ decoder: inout CanonicalDecoder) throws(SpaceOwnershipError) -> Grant {
        do {
            guard try decoder.readString() == domain else { throw SpaceOwnershipError(.invalidGrant, "not a grant") }
            guard let space = SpaceID(try decoder.readString()) else { throw SpaceOwnershipError(.invalidGrant, "grant names no valid space id") }
            let issuer = try DID(parsing: try decoder.readString())
            let grantee = try DID(parsing: try decoder.readString())
            let actions = GrantActions(rawValue: try decoder.readUInt8())
            guard !actions.isEmpty, GrantActions.all.isSuperset(of: actions) else { throw SpaceOwnershipError(.invalidGrant, "grant has no valid actions") }
            let count = Int(try decoder.readUInt32())
            guard count <= SpaceOwnershipLimits.grantCollectionsMax else { throw SpaceOwnershipError(.invalidGrant, "grant names too many collections") }
            var collections: [String] = []
            for _ in 0..<count { collections.append(try decoder.readString(maxCount: 255)) }
            let issued = try decoder.readInt64()
            let hasExpiry = try decoder.readBool()
            let expiry = try decoder.readInt64()
            let nonce = try decoder.readBytes(maxCount: 64)
            let grant = Grant(
                space: space, issuer: issuer, grantee: grantee, actions: actions, collections: collections,
                issuedAtMilliseconds: issued, expiresAtMilliseconds: hasExpiry ? expiry : nil, nonce: nonce)
            guard grant.collections == collections, hasExpiry || expiry == 0 else {
                throw SpaceOwnershipError(.invalidGrant, "grant is not in canonical form")
            }
            return grant
        } catch let error as SpaceOwnershipError {
            throw error
        } catch {
            throw SpaceOwnershipError(.invalidGrant, "grant encoding is malformed")
        }
    }

    /// Whether the grant covers `action` on `collection` (nil: the space as a whole) at `now`.
    public func permits(_ action: GrantActions, collection: String?, nowMilliseconds: Int64) -> Bool {
        guard actions.isSuperset(of: action), !isExpired(nowMilliseconds: nowMilliseconds) else { return false }
        guard let collection else { return collections.isEmpty }
        return collections.isEmpty || collections.contains(collection)
    }

    /// Whether the grant is past its expiry.
    public func isExpired(nowMilliseconds: Int64) -> Bool {
        expiresAtMilliseconds.map { nowMilliseconds >= $0 } ?? false
    }

    /// Signs the grant with the issuer's key.
    public func signed(by key: SigningKey) throws(SpaceOwnershipError) -> SignedGrant {
        guard key.did == issuer else { throw SpaceOwnershipError(.invalidGrant, "the signing key is not the grant's issuer") }
        return SignedGrant(grant: self, signature: key.sign(canonicalBytes))
    }
}

/// A grant with its issuer's signature; `text` is its portable form (base64url).
public struct SignedGrant: Hashable, Sendable {
    /// The grant.
    public let grant: Grant
    /// The issuer's Ed25519 signature over `grant.canonicalBytes`.
    public let signature: Signature

    /// The grant's id: `g` plus base32 of the first 16 bytes of BLAKE2b over the signed bytes.
    public var id: String { "g" + Base32.encode(Hash256.blake2b(encoded, outputCount: 16)) }

    /// Canonical bytes of the grant followed by the signature.
    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(bytes: grant.canonicalBytes)
        encoder.write(bytes: signature.bytes)
        return encoder.bytes
    }

    /// The portable text form.
    public var text: String { Base64URL.encode(encoded) }

    /// Decodes and verifies a signed grant: the signature must be the issuer's.
    public init(decoding bytes: [UInt8]) throws(SpaceOwnershipError) {
        var outer = CanonicalDecoder(bytes)
        guard let grantBytes = try? outer.readBytes(maxCount: 1 << 16), let signatureBytes = try? outer.readBytes(maxCount: 64),
            outer.isAtEnd, let signature = try? Signature(bytes: signatureBytes)
        else { throw SpaceOwnershipError(.invalidGrant, "signed grant encoding is malformed") }
        var inner = CanonicalDecoder(grantBytes)
        let grant = try Grant.decode(&inner)
        guard inner.isAtEnd else { throw SpaceOwnershipError(.invalidGrant, "trailing bytes after grant") }
        guard grant.issuer.verify(signature, for: grantBytes) else {
            throw SpaceOwnershipError(.invalidGrant, "grant signature does not verify")
        }
        self.grant = grant
        self.signature = signature
    }

    /// Decodes and verifies the text form.
    public init(text: String) throws(SpaceOwnershipError) {
        guard let bytes = try? Base64URL.decode(text, maxCount: 1 << 17) else {
            throw SpaceOwnershipError(.invalidGrant, "signed grant text is not base64url")
        }
        try self.init(decoding: bytes)
    }

    init(grant: Grant, signature: Signature) {
        self.grant = grant
        self.signature = signature
    }
}

/// An owner-signed revocation of one grant.
public struct SignedRevocation: Hashable, Sendable {
    /// The space.
    public let space: SpaceID
    /// The grant revoked.
    public let grantID: String
    /// Who signed: the space's owner.
    public let issuer: DID
    /// When.
    public let issuedAtMilliseconds: Int64
    /// The issuer's signature over `canonicalBytes`.
    public let signature: Signature

    static let domain = "stratosdb/revocation/v1"

    /// Signs a revocation.
    public init(space: SpaceID, grantID: String, key: SigningKey, issuedAtMilliseconds: Int64) {
        self.space = space
        self.grantID = grantID
        self.issuer = key.did
        self.issuedAtMilliseconds = issuedAtMilliseconds
        self.signature = key.sign(Self.canonicalBytes(space: space, grantID: grantID, issuer: key.did, issued: issuedAtMilliseconds))
    }

    static func canonicalBytes(space: SpaceID, grantID: String, issuer: DID, issued: Int64) -> [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(domain)
        encoder.write(space.string)
        encoder.write(grantID)
        encoder.write(issuer.string)
        encoder.write(issued)
        return encoder.bytes
    }

    /// Whether the signature is the issuer's.
    public var isValid: Bool {
        issuer.verify(signature, for: Self.canonicalBytes(space: space, grantID: grantID, issuer: issuer, issued: issuedAtMilliseconds))
    }

    /// Canonical bytes plus signature, for storage.
    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(bytes: Self.canonicalBytes(space: space, grantID: grantID, issuer: issuer, issued: issuedAtMilliseconds))
        encoder.write(bytes: signature.bytes)
        return encoder.bytes
    }

    /// Decodes and verifies a stored revocation.
    public init(decoding bytes: [UInt8]) throws(SpaceOwnershipError) {
        do {
            var outer = CanonicalDecoder(bytes)
            var inner = CanonicalDecoder(try outer.readBytes(maxCount: 1 << 12))
            let signature = try Signature(bytes: try outer.readBytes(maxCount: 64))
            try outer.finish()
            guard try inner.readString() == Self.domain, let space = SpaceID(try inner.readString()) else {
                throw SpaceOwnershipError(.invalidGrant, "not a revocation")
            }
            let grantID = try inner.readString(maxCount: 64)
            let issuer = try DID(parsing: try inner.readString())
            let issued = try inner.readInt64()
            try inner.finish()
            self.space = space
            self.grantID = grantID
            self.issuer = issuer
            self.issuedAtMilliseconds = issued
            self.signature = signature
        } catch let error as SpaceOwnershipError {
            throw error
        } catch {
            throw SpaceOwnershipError(.invalidGrant, "revocation encoding is malformed")
        }
        guard isValid else { throw SpaceOwnershipError(.invalidGrant, "revocation signature does not verify") }
    }
}
