import StratosCore

/// A short-lived, self-signed credential: "`issuer` may act as itself on node `audience` until
/// `expiresAtMilliseconds`". Sent as the password of SASL PLAIN with the issuer's DID as the
/// user name, so every MongoDB driver can carry it unchanged.
///
/// The token is the base64url text of the canonical fields followed by an Ed25519 signature.
/// The audience binds it to one node, so a token captured by one node cannot be replayed to
/// another; the lifetime bound limits what a leaked token is worth.
public struct SessionToken: Sendable {
    /// Who the token authenticates.
    public let issuer: DID
    /// The node it is for.
    public let audience: DID
    /// When it was made.
    public let issuedAtMilliseconds: Int64
    /// When it stops working.
    public let expiresAtMilliseconds: Int64
    /// 16 random bytes.
    public let nonce: [UInt8]
    /// The issuer's signature.
    public let signature: Signature

    static let domain = "stratosdb/session-token/v1"

    /// Mints a token signed by `key`.
    public init(key: SigningKey, audience: DID, issuedAtMilliseconds: Int64, lifetimeMilliseconds: Int64) {
        issuer = key.did
        self.audience = audience
        self.issuedAtMilliseconds = issuedAtMilliseconds
        expiresAtMilliseconds = issuedAtMilliseconds + lifetimeMilliseconds
        nonce = SecureRandom.bytes(count: 16)
        signature = key.sign(Self.signedBytes(issuer: issuer, audience: audience, issued: issuedAtMilliseconds, expires: expiresAtMilliseconds, nonce: nonce))
    }

    static func signedBytes(issuer: DID, audience: DID, issued: Int64, expires: Int64, nonce: [UInt8]) -> [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(domain)
        encoder.write(issuer.string)
        encoder.write(audience.string)
        encoder.write(issued)
        encoder.write(expires)
        encoder.write(bytes: nonce)
        return encoder.bytes
    }

    /// The text form, the PLAIN password.
    public var text: String {
        var encoder = CanonicalEncoder()
        encoder.write(bytes: Self.signedBytes(issuer: issuer, audience: audience, issued: issuedAtMilliseconds, expires: expiresAtMilliseconds, nonce: nonce))
        encoder.write(bytes: signature.bytes)
        return Base64URL.encode(encoder.bytes)
    }

    /// Parses and fully checks a token presented by `claimedIssuer` to the node `audience`:
    /// canonical form, signature, audience, issue time not in the future, expiry not passed, and
    /// a lifetime no longer than `lifetimeMillisecondsMax`. Every failure has the same message,
    /// so a client cannot probe which check failed.
    public init(
        verifying text: String, claimedIssuer: String, audience: DID, nowMilliseconds: Int64,
        lifetimeMillisecondsMax: Int64 = SpaceOwnershipLimits.tokenLifetimeMillisecondsMax
    ) throws(SpaceOwnershipError) {
        let rejected = SpaceOwnershipError(.invalidToken, "session token is not valid for this node")
        guard let bytes = try? Base64URL.decode(text, maxCount: SpaceOwnershipLimits.tokenCountMax) else { throw rejected }
        var outer = CanonicalDecoder(bytes)
        guard let body = try? outer.readBytes(maxCount: 1024), let signatureBytes = try? outer.readBytes(maxCount: 64), outer.isAtEnd,
            let signature = try? Signature(bytes: signatureBytes)
        else { throw rejected }
        var inner = CanonicalDecoder(body)
        guard (try? inner.readString()) == Self.domain, let issuerText = try? inner.readString(maxCount: 128),
            let audienceText = try? inner.readString(maxCount: 128), let issued = try? inner.readInt64(),
            let expires = try? inner.readInt64(), let nonce = try? inner.readBytes(maxCount: 64), inner.isAtEnd,
            let issuer = try? DID(parsing: issuerText)
        else { throw rejected }
        guard issuerText == claimedIssuer, audienceText == audience.string, issuer.verify(signature, for: body) else { throw rejected }
        guard issued <= nowMilliseconds + SpaceOwnershipLimits.clockSkewMilliseconds, expires > issued,
            expires - issued <= lifetimeMillisecondsMax
        else { throw rejected }
        guard nowMilliseconds < expires else { throw SpaceOwnershipError(.expired, "session token has expired") }
        self.issuer = issuer
        self.audience = audience
        self.issuedAtMilliseconds = issued
        self.expiresAtMilliseconds = expires
        self.nonce = nonce
        self.signature = signature
    }
}
