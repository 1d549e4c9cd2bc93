import Foundation
import SpaceOwnership
import StratosCore
import Testing

/// Vectors computed independently with Python's `cryptography` (Ed25519), `hashlib.blake2b` and
/// a base58/base32 written from the specifications.
@Suite struct IdentityTests {
    let key = try! SigningKey(seed: Array(0..<32))

    @Test func didKeyMatchesIndependentEncoding() throws {
        #expect(Hex.encode(key.publicKey.bytes) == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8")
        #expect(key.did.string == "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd")
        #expect(try DID(parsing: key.did.string) == key.did)
    }

    @Test(arguments: [
        "", "did:key:", "did:key:z", "did:web:example.org", "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvV",
        "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd0", "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
    ])
    func malformedDIDsAreRefused(_ text: String) {
        #expect(throws: SpaceOwnershipError.self) { try DID(parsing: text) }
    }

    @Test func spaceIDMatchesIndependentHash() {
        let id = SpaceID(owner: key.did, name: "profile")
        #expect(id.string == "srrikrgalcdj3aldqndcc4g7wqm")
        #expect(SpaceID.isSpaceID(id.string))
        #expect(SpaceID(owner: SigningKey.generate().did, name: "profile") != id)
        #expect(!SpaceID.isSpaceID("profile"))
    }

    @Test func keyFileRoundTripsAndRejectsMismatch() throws {
        let text = KeyFile.encode(name: "alice", key: key)
        let decoded = try KeyFile.decode(text)
        #expect(decoded.name == "alice")
        #expect(decoded.key.did == key.did)
        let other = SigningKey.generate()
        let forged = text.replacingOccurrences(of: key.did.string, with: other.did.string)
        #expect(throws: SpaceOwnershipError.self) { try KeyFile.decode(forged) }
    }

    @Test func base64URLRoundTrip() throws {
        for count in 0..<40 {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(try Base64URL.decode(Base64URL.encode(bytes), maxCount: 100) == bytes)
        }
        #expect(throws: StratosError.self) { try Base64URL.decode("A", maxCount: 10) }
        #expect(throws: StratosError.self) { try Base64URL.decode("AB", maxCount: 10) }  // non-zero trailing bits
    }
}

@Suite struct GrantTests {
    let owner = SigningKey.generate()
    let app = SigningKey.generate()

    func grant(expires: Int64? = 10_000, collections: [String] = ["users"]) -> Grant {
        Grant(
            space: SpaceID(owner: owner.did, name: "profile"), issuer: owner.did, grantee: app.did, actions: [.read, .write],
            collections: collections, issuedAtMilliseconds: 1_000, expiresAtMilliseconds: expires)
    }

    @Test func signedGrantRoundTripsThroughText() throws {
        let signed = try grant().signed(by: owner)
        let decoded = try SignedGrant(text: signed.text)
        #expect(decoded.grant == signed.grant)
        #expect(decoded.id == signed.id)
        #expect(signed.id.hasPrefix("g") && signed.id.count == 27)
    }

    @Test func everyFlippedByteIsRejectedOrChangesTheGrant() throws {
        let signed = try grant().signed(by: owner)
        let bytes = signed.encoded
        for index in bytes.indices {
            var tampered = bytes
            tampered[index] ^= 0x01
            #expect(throws: SpaceOwnershipError.self) { try SignedGrant(decoding: tampered) }
        }
    }

    @Test func onlyTheIssuerCanSign() {
        #expect(throws: SpaceOwnershipError.self) { try grant().signed(by: app) }
    }

    @Test func permitsChecksActionCollectionAndExpiry() {
        let scoped = grant()
        #expect(scoped.permits(.read, collection: "users", nowMilliseconds: 5_000))
        #expect(scoped.permits(.write, collection: "users", nowMilliseconds: 5_000))
        #expect(!scoped.permits(.admin, collection: "users", nowMilliseconds: 5_000))
        #expect(!scoped.permits(.read, collection: "secrets", nowMilliseconds: 5_000))
        #expect(!scoped.permits(.read, collection: "users", nowMilliseconds: 10_000))
        #expect(!scoped.permits(.read, collection: nil, nowMilliseconds: 5_000))
        let everything = grant(expires: nil, collections: [])
        #expect(everything.permits(.read, collection: "anything", nowMilliseconds: .max))
        #expect(everything.permits(.read, collection: nil, nowMilliseconds: 0))
    }

    @Test func revocationVerifies() throws {
        let signed = try grant().signed(by: owner)
        let revocation = SignedRevocation(space: signed.grant.space, grantID: signed.id, key: owner, issuedAtMilliseconds: 2_000)
        #expect(revocation.isValid)
        let decoded = try SignedRevocation(decoding: revocation.encoded)
        #expect(decoded.grantID == signed.id)
        var tampered = revocation.encoded
        tampered[tampered.count - 1] ^= 1
        #expect(throws: SpaceOwnershipError.self) { try SignedRevocation(decoding: tampered) }
    }
}

@Suite struct SessionTokenTests {
    let user = SigningKey.generate()
    let node = SigningKey.generate()

    @Test func validTokenVerifies() throws {
        let token = SessionToken(key: user, audience: node.did, issuedAtMilliseconds: 1_000, lifetimeMilliseconds: 3_600_000)
        let verified = try SessionToken(verifying: token.text, claimedIssuer: user.did.string, audience: node.did, nowMilliseconds: 2_000)
        #expect(verified.issuer == user.did)
    }

    @Test func wrongAudienceIssuerExpiryAndLifetimeAreRefused() {
        let token = SessionToken(key: user, audience: node.did, issuedAtMilliseconds: 1_000, lifetimeMilliseconds: 3_600_000)
        #expect(throws: SpaceOwnershipError.self) {
            try SessionToken(verifying: token.text, claimedIssuer: user.did.string, audience: SigningKey.generate().did, nowMilliseconds: 2_000)
        }
        #expect(throws: SpaceOwnershipError.self) {
            try SessionToken(verifying: token.text, claimedIssuer: node.did.string, audience: node.did, nowMilliseconds: 2_000)
        }
        #expect(throws: SpaceOwnershipError.self) {
            try SessionToken(verifying: token.text, claimedIssuer: user.did.string, audience: node.did, nowMilliseconds: 3_601_000)
        }
        let long = SessionToken(key: user, audience: node.did, issuedAtMilliseconds: 1_000, lifetimeMilliseconds: 48 * 3_600_000)
        #expect(throws: SpaceOwnershipError.self) {
            try SessionToken(verifying: long.text, claimedIssuer: user.did.string, audience: node.did, nowMilliseconds: 2_000)
        }
        var bytes = Array(token.text.utf8)
        bytes[40] = bytes[40] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(throws: SpaceOwnershipError.self) {
            try SessionToken(verifying: String(decoding: bytes, as: UTF8.self), claimedIssuer: user.did.string, audience: node.did, nowMilliseconds: 2_000)
        }
    }
}

@Suite struct OwnerKeyRotationTests {
    let first = SigningKey.generate()
    let second = SigningKey.generate()
    let third = SigningKey.generate()

    @Test func aChainSignedByEachControllerOfItsTimeHolds() throws {
        let space = SpaceID(owner: first.did, name: "profile")
        let one = OwnerKeyRotation(space: space, from: first, to: second, issuedAtMilliseconds: 1)
        let two = OwnerKeyRotation(space: space, from: second, to: third, issuedAtMilliseconds: 2)
        let chain = try #require(OwnerKeyRotation.controller(owner: first.did, rotations: [one, two]))
        #expect(chain.current == third.did)
        #expect(chain.all == [first.did, second.did, third.did])
        #expect(try OwnerKeyRotation(decoding: two.encoded) == two)
        // Out of order, or skipping a link, breaks the chain.
        #expect(OwnerKeyRotation.controller(owner: first.did, rotations: [two]) == nil)
        #expect(OwnerKeyRotation.controller(owner: first.did, rotations: [two, one]) == nil)
    }

    @Test func everyFlippedByteIsRefused() {
        let rotation = OwnerKeyRotation(space: SpaceID(owner: first.did, name: "p"), from: first, to: second, issuedAtMilliseconds: 7)
        let bytes = rotation.encoded
        for index in bytes.indices {
            var tampered = bytes
            tampered[index] ^= 0x01
            #expect(throws: SpaceOwnershipError.self) { try OwnerKeyRotation(decoding: tampered) }
        }
    }
}
