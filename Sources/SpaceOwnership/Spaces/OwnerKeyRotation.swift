import StratosCore

/// A space's owner moving to a new key: signed by the current owner key (it authorizes the
/// move) and by the new one (proof that its holder has it). The space keeps its id — derived
/// from the original owner and name — and its whole history; from the rotation on, only the new
/// key may grant, revoke, export or drop, and the old key loses its owner rights.
public struct OwnerKeyRotation: Hashable, Sendable {
    public let space: SpaceID
    public let from: DID
    public let to: DID
    public let issuedAtMilliseconds: Int64
    public let fromSignature: Signature
    public let toSignature: Signature

    static let domain = "stratosdb/owner-key-rotation/v1"

    /// Signs a rotation with both keys.
    public init(space: SpaceID, from current: SigningKey, to next: SigningKey, issuedAtMilliseconds: Int64) {
        self.space = space
        from = current.did
        to = next.did
        self.issuedAtMilliseconds = issuedAtMilliseconds
        let bytes = Self.signedBytes(space: space, from: from, to: to, issued: issuedAtMilliseconds)
        fromSignature = current.sign(bytes)
        toSignature = next.sign(bytes)
    }

    static func signedBytes(space: SpaceID, from: DID, to: DID, issued: Int64) -> [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(domain)
        encoder.write(space.string)
        encoder.write(from.string)
        encoder.write(to.string)
        encoder.write(issued)
        return encoder.bytes
    }

    /// Whether both signatures hold.
    public var isValid: Bool {
        let bytes = Self.signedBytes(space: space, from: from, to: to, issued: issuedAtMilliseconds)
        return from != to && from.verify(fromSignature, for: bytes) && to.verify(toSignature, for: bytes)
    }

    /// Canonical bytes and both signatures.
    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(bytes: Self.signedBytes(space: space, from: from, to: to, issued: issuedAtMilliseconds))
        encoder.write(bytes: fromSignature.bytes)
        encoder.write(bytes: toSignature.bytes)
        return encoder.bytes
    }

    /// Decodes and verifies a stored rotation.
    public init(decoding bytes: [UInt8]) throws(SpaceOwnershipError) {
        do {
            var outer = CanonicalDecoder(bytes)
            var inner = CanonicalDecoder(try outer.readBytes(maxCount: 1024))
            let fromSignature = try Signature(bytes: try outer.readBytes(maxCount: 64))
            let toSignature = try Signature(bytes: try outer.readBytes(maxCount: 64))
            try outer.finish()
            guard try inner.readString() == Self.domain, let space = SpaceID(try inner.readString()) else {
                throw SpaceOwnershipError(.invalidGrant, "not an owner key rotation")
            }
            let from = try DID(parsing: try inner.readString())
            let to = try DID(parsing: try inner.readString())
            let issued = try inner.readInt64()
            try inner.finish()
            self.space = space
            self.from = from
            self.to = to
            self.issuedAtMilliseconds = issued
            self.fromSignature = fromSignature
            self.toSignature = toSignature
        } catch let error as SpaceOwnershipError {
            throw error
        } catch {
            throw SpaceOwnershipError(.invalidGrant, "owner key rotation encoding is malformed")
        }
        guard isValid else { throw SpaceOwnershipError(.invalidGrant, "owner key rotation signatures do not verify") }
    }

    /// The controller after applying `rotations` in order to a space first owned by `owner`;
    /// nil when the chain is broken (a rotation not signed by the controller of its time).
    public static func controller(owner: DID, rotations: [OwnerKeyRotation]) -> (current: DID, all: [DID])? {
        var current = owner
        var all = [owner]
        for rotation in rotations {
            guard rotation.from == current, rotation.isValid else { return nil }
            current = rotation.to
            all.append(current)
        }
        return (current, all)
    }
}
