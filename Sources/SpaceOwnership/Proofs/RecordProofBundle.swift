import StratosCore

/// Everything needed to check, offline, that a document is in a space: the document's bytes,
/// its path through the state map, and the signed commit whose state root the path reaches.
///
/// Checking it needs no node and no database: the commit's signature names its author (a
/// did:key), the state map proof reaches the commit's root, and the document's hash is the
/// leaf. (The ledger's anchor proof — commit → block → validator signatures — extends it.)
public struct RecordProofBundle: Sendable {
    public let space: SpaceID
    public let document: [UInt8]
    public let proof: RecordProof
    public let commit: SignedCommit

    static let domain = "stratosdb/record-proof/v1"

    public init(space: SpaceID, document: [UInt8], proof: RecordProof, commit: SignedCommit) {
        self.space = space
        self.document = document
        self.proof = proof
        self.commit = commit
    }

    /// What a successful check established.
    public struct Verified: Sendable {
        public let space: SpaceID
        public let collection: String
        public let commitSeq: UInt64
        public let stateRoot: [UInt8]
        public let author: DID
        public let commitHash: [UInt8]
    }

    /// Checks every link; throws with the first that fails.
    public func verify() throws(StratosError) -> Verified {
        guard commit.isSignatureValid else { throw StratosError(.invalidSignature, "the commit's signature does not verify") }
        guard commit.commit.space == space else { throw StratosError(.invalidProof, "the commit belongs to another space") }
        guard proof.verify(document: document, stateRoot: commit.commit.stateRoot) else {
            throw StratosError(.invalidProof, "the document's path does not reach the commit's state root")
        }
        return Verified(
            space: space, collection: proof.collection, commitSeq: commit.commit.seq, stateRoot: commit.commit.stateRoot,
            author: commit.commit.author, commitHash: commit.hash)
    }

    /// The canonical bytes of the bundle.
    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(Self.domain)
        encoder.write(space.string)
        encoder.write(bytes: document)
        encoder.write(proof.collection)
        encoder.write(bytes: proof.idKey)
        for mapProof in [proof.collectionProof, proof.rootProof] {
            encoder.write(bytes: mapProof.key)
            encoder.write(bytes: mapProof.value)
            encoder.write(UInt32(mapProof.branches.count))
            for branch in mapProof.branches { encoder.write(bytes: branch.encoded) }
        }
        encoder.write(bytes: commit.encoded)
        return encoder.bytes
    }

    /// The portable text form (base64url of `encoded`).
    public var text: String { Base64URL.encode(encoded) }

    /// Decodes a bundle (checking nothing but its form; call `verify`).
    public init(decoding bytes: [UInt8]) throws(StratosError) {
        var decoder = CanonicalDecoder(bytes)
        guard try decoder.readString() == Self.domain, let space = SpaceID(try decoder.readString()) else {
            throw StratosError(.invalidEncoding, "not a StratosDB record proof")
        }
        let document = try decoder.readBytes(maxCount: 1 << 25)
        let collection = try decoder.readString(maxCount: 255)
        let idKey = try decoder.readBytes(maxCount: 1 << 24)
        var mapProofs: [StateMapProof] = []
        for _ in 0..<2 {
            let key = try decoder.readBytes(maxCount: 32)
            let value = try decoder.readBytes(maxCount: 32)
            let count = Int(try decoder.readUInt32())
            guard count <= StateMapKey.nibbleCount else { throw StratosError(.invalidEncoding, "state map proof is too long") }
            var branches: [StateMapBranch] = []
            for _ in 0..<count { branches.append(try StateMapBranch(decoding: try decoder.readBytes(maxCount: 4096))) }
            mapProofs.append(StateMapProof(key: key, value: value, branches: branches))
        }
        let commit = try SignedCommit(decoding: try decoder.readBytes(maxCount: 8192))
        try decoder.finish()
        self.init(
            space: space, document: document,
            proof: RecordProof(collection: collection, idKey: idKey, collectionProof: mapProofs[0], rootProof: mapProofs[1]), commit: commit)
    }

    /// Decodes the text form.
    public init(text: String) throws(StratosError) {
        try self.init(decoding: try Base64URL.decode(text, maxCount: 1 << 27))
    }
}
