import StratosCore

/// One entry of a space's commit log: the state the space reached, chained to the previous
/// entry and signed by its author (ARCHITECTURE §3).
///
/// `stateRoot` is the root of the space's state map after the commit, `payloadHash` the
/// BLAKE2b-256 of the operations that led there; `prevHash` links to the previous commit (32
/// zero bytes for the first), so the log is a hash chain and rewriting history changes every
/// later hash.
public struct SpaceCommit: Hashable, Sendable {
    public var space: SpaceID
    /// 1 for the first commit, then consecutive.
    public var seq: UInt64
    public var prevHash: [UInt8]
    public var stateRoot: [UInt8]
    public var payloadHash: [UInt8]
    /// The signer: the hosting node (it writes on behalf of the authenticated principals).
    public var author: DID
    public var timestampMilliseconds: Int64

    static let domain = "stratosdb/commit/v1"

    /// Creates an unsigned commit.
    public init(space: SpaceID, seq: UInt64, prevHash: [UInt8], stateRoot: [UInt8], payloadHash: [UInt8], author: DID, timestampMilliseconds: Int64) {
        self.space = space
        self.seq = seq
        self.prevHash = prevHash
        self.stateRoot = stateRoot
        self.payloadHash = payloadHash
        self.author = author
        self.timestampMilliseconds = timestampMilliseconds
    }

    /// The bytes the author signs.
    public var canonicalBytes: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(Self.domain)
        encoder.write(space.string)
        encoder.write(seq)
        encoder.write(bytes: prevHash)
        encoder.write(bytes: stateRoot)
        encoder.write(bytes: payloadHash)
        encoder.write(author.string)
        encoder.write(timestampMilliseconds)
        return encoder.bytes
    }

    /// Signs the commit with the author's key.
    public func signed(by key: SigningKey) -> SignedCommit {
        // Compares keys, not DID texts: encoding a did:key (base58) costs more than the check.
        precondition(key.publicKey == author.publicKey, "a commit is signed by its author")
        return SignedCommit(commit: self, signature: key.sign(canonicalBytes))
    }
}

/// A commit with its author's signature.
public struct SignedCommit: Hashable, Sendable {
    public let commit: SpaceCommit
    public let signature: Signature

    /// The commit's hash (what the next commit's `prevHash` and an anchor name).
    public var hash: [UInt8] { Hash256.blake2b(encoded).bytes }

    /// Canonical commit bytes followed by the signature.
    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(bytes: commit.canonicalBytes)
        encoder.write(bytes: signature.bytes)
        return encoder.bytes
    }

    /// Whether the signature is the author's.
    public var isSignatureValid: Bool { commit.author.verify(signature, for: commit.canonicalBytes) }

    /// Decodes a stored or received commit and checks its signature.
    public init(decoding bytes: [UInt8]) throws(StratosError) {
        var outer = CanonicalDecoder(bytes)
        let body = try outer.readBytes(maxCount: 4096)
        let signature = try Signature(bytes: try outer.readBytes(maxCount: 64))
        try outer.finish()
        var decoder = CanonicalDecoder(body)
        guard try decoder.readString() == SpaceCommit.domain, let space = SpaceID(try decoder.readString()) else {
            throw StratosError(.invalidEncoding, "not a space commit")
        }
        let seq = try decoder.readUInt64()
        let prev = try decoder.readBytes(maxCount: 32)
        let root = try decoder.readBytes(maxCount: 32)
        let payload = try decoder.readBytes(maxCount: 32)
        guard let author = try? DID(parsing: try decoder.readString()) else { throw StratosError(.invalidEncoding, "commit author is not a did:key") }
        let timestamp = try decoder.readInt64()
        try decoder.finish()
        guard prev.count == 32, root.count == 32, payload.count == 32 else { throw StratosError(.invalidEncoding, "commit digests must be 32 bytes") }
        self.commit = SpaceCommit(space: space, seq: seq, prevHash: prev, stateRoot: root, payloadHash: payload, author: author, timestampMilliseconds: timestamp)
        self.signature = signature
        guard isSignatureValid else { throw StratosError(.invalidSignature, "commit \(seq) of \(space) has an invalid signature") }
    }

    init(commit: SpaceCommit, signature: Signature) {
        self.commit = commit
        self.signature = signature
    }
}
