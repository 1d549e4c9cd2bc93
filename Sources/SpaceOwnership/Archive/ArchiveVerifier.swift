import StratosCore

/// Checks an archive record by record, offline: the header's space id is its owner's, every
/// grant and revocation is the owner's, every commit is validly signed, belongs to the space,
/// and links to the one before with consecutive seq; with the space key (or a decrypted
/// export) every payload matches its hash and replaying it reaches the commit's state root.
public final class ArchiveVerifier {
    /// What a complete check found.
    public struct Summary: Sendable {
        public var header: ArchiveHeader
        public var commits: UInt64
        public var operations: UInt64
        public var documentBytes: UInt64
        public var grants: Int
        public var revocations: Int
        /// Grants and revocations found in the commits (counted when payloads were replayed).
        public var loggedGrants: Int
        public var loggedRevocations: Int
        public var keyRecipients: [DID]
        /// Whether state roots were recomputed (needs the key for encrypted payloads).
        public var stateRootsChecked: Bool
        public var headStateRoot: [UInt8]
        /// Who signed the commits (hosting nodes).
        public var commitAuthors: [DID]
        /// The key holding the owner's rights (the last rotation's, or the original owner).
        public var controller: DID
    }

    private var header: ArchiveHeader?
    private var previous: (seq: UInt64, hash: [UInt8]) = (0, [UInt8](repeating: 0, count: 32))
    private var stateRoot = StateMap<InMemoryStateMapStorage>.emptyRoot.bytes
    private let state = SpaceState(storage: InMemorySpaceStateStorage())
    private var spaceKey: [UInt8]?
    private let keyHolders: [SigningKey]
    private var summary: Summary?
    private var operations: UInt64 = 0
    private var documentBytes: UInt64 = 0
    private var grants = 0
    private var revocations = 0
    private var loggedGrants = 0
    private var loggedRevocations = 0
    private var recipients: [DID] = []
    private var authors: [DID] = []
    private var rotations: [OwnerKeyRotation] = []
    private var controllers: [DID] = []
    private var sawTrailer = false

    private let replaysStateRoots: Bool

    /// A verifier; `keyHolders` may open the space key from the archive's sealed copies. With
    /// `replaysStateRoots` false, payloads are still checked against their hashes but not
    /// replayed (for an importer that replays them itself and checks every root as it builds).
    public init(keyHolders: [SigningKey] = [], replaysStateRoots: Bool = true) {
        self.keyHolders = keyHolders
        self.replaysStateRoots = replaysStateRoots
    }

    /// A verifier that already holds the space key (handed over sealed to the importing node):
    /// a wrong key fails at the first encrypted payload.
    public convenience init(spaceKey: [UInt8], replaysStateRoots: Bool = true) {
        self.init(keyHolders: [], replaysStateRoots: replaysStateRoots)
        self.spaceKey = spaceKey
    }

    /// The space key, once a sealed copy opened (for importing).
    public var openedSpaceKey: [UInt8]? { spaceKey }
    /// The plain payload of the commit record `check` just accepted (nil after any other record,
    /// or when it could not open the payload), so an importer need not decrypt it again.
    public private(set) var lastPayload: [UInt8]?

    /// Checks the next record; throws with the reason at the first problem.
    public func check(_ record: ArchiveRecord) throws(StratosError) {
        lastPayload = nil
        guard !sawTrailer else { throw StratosError(.invalidEncoding, "records after the trailer") }
        if case .header(let header) = record {
            guard self.header == nil else { throw StratosError(.invalidEncoding, "two archive headers") }
            guard SpaceID(owner: header.owner, name: header.name) == header.space else {
                throw StratosError(.invalidProof, "the header's space id is not its owner's space of that name")
            }
            self.header = header
            controllers = [header.owner]
            return
        }
        guard let header else { throw StratosError(.invalidEncoding, "the archive does not start with its header") }
        switch record {
        case .header:
            break
        case .rotation(let bytes):
            let rotation: OwnerKeyRotation
            do { rotation = try OwnerKeyRotation(decoding: bytes) } catch { throw StratosError(.invalidSignature, "owner key rotation: \(error.message)") }
            guard rotation.space == header.space, rotation.from == controllers.last else {
                throw StratosError(.invalidProof, "an owner key rotation is not signed by the space's owner key of its time")
            }
            rotations.append(rotation)
            controllers.append(rotation.to)
        case .sealedKey(let recipient, let sealed):
            recipients.append(recipient)
            if spaceKey == nil, let holder = keyHolders.first(where: { $0.did == recipient }), let key = try? SealedBox.open(sealed, with: holder) {
                spaceKey = key
            }
        case .grant(let bytes):
            let signed: SignedGrant
            do { signed = try SignedGrant(decoding: bytes) } catch { throw StratosError(.invalidSignature, "grant: \(error.message)") }
            guard signed.grant.space == header.space, controllers.contains(signed.grant.issuer) else {
                throw StratosError(.invalidProof, "a grant is not the owner's grant on this space")
            }
            grants += 1
        case .revocation(let bytes):
            let revocation: SignedRevocation
            do { revocation = try SignedRevocation(decoding: bytes) } catch { throw StratosError(.invalidSignature, "revocation: \(error.message)") }
            guard revocation.space == header.space, controllers.contains(revocation.issuer) else {
                throw StratosError(.invalidProof, "a revocation is not the owner's on this space")
            }
            revocations += 1
        case .commit(let signed, let payload):
            let commit = signed.commit
            guard commit.space == header.space else { throw StratosError(.invalidProof, "commit \(commit.seq) belongs to another space") }
            guard commit.seq == previous.seq + 1, commit.prevHash == previous.hash else {
                throw StratosError(.invalidProof, "the commit chain is broken at seq \(commit.seq)")
            }
            var plain: [UInt8]?
            if !header.payloadsEncrypted {
                plain = payload
            } else if let spaceKey {
                do {
                    plain = try AEAD.open(payload, key: spaceKey, additionalData: SpaceArchive.payloadAdditionalData(space: header.space, seq: commit.seq))
                } catch {
                    throw StratosError(.invalidProof, "the payload of commit \(commit.seq) does not decrypt (altered)")
                }
            }
            if let plain {
                guard Hash256.blake2b(plain).bytes == commit.payloadHash else {
                    throw StratosError(.invalidProof, "the payload of commit \(commit.seq) does not match its hash")
                }
                lastPayload = plain
                if replaysStateRoots {
                    let decoded = try CommitOperation.decode(plain)
                    stateRoot = try state.apply(decoded, isFirstCommit: commit.seq == 1)
                    guard stateRoot == commit.stateRoot else {
                        throw StratosError(.invalidProof, "replaying commit \(commit.seq) does not reach its state root")
                    }
                    operations += UInt64(decoded.count)
                    for operation in decoded {
                        switch operation {
                        case .put(_, _, let document): documentBytes += UInt64(document.count)
                        case .grant(let bytes):
                            guard let grant = try? SignedGrant(decoding: bytes), grant.grant.space == header.space else {
                                throw StratosError(.invalidProof, "commit \(commit.seq) holds a grant that does not verify for this space")
                            }
                            loggedGrants += 1
                        case .revocation(let bytes):
                            guard let revocation = try? SignedRevocation(decoding: bytes), revocation.isValid, revocation.space == header.space else {
                                throw StratosError(.invalidProof, "commit \(commit.seq) holds a revocation that does not verify for this space")
                            }
                            loggedRevocations += 1
                        default: break
                        }
                    }
                } else {
                    documentBytes += UInt64(plain.count)
                }
            }
            previous = (commit.seq, signed.hash)
            stateRoot = commit.stateRoot
            if !authors.contains(commit.author) { authors.append(commit.author) }
        case .trailer(let records, let digest, let signatureBytes):
            // The reader checked the digest; the owner's signature over it makes the archive
            // the owner's: an edited archive needs a new signature nobody else can make.
            guard let signature = try? Signature(bytes: signatureBytes), let controller = controllers.last,
                controller.verify(signature, for: SpaceArchive.trailerSignedBytes(space: header.space, records: records, digest: digest))
            else { throw StratosError(.invalidSignature, "the archive is not signed by the space's owner") }
            guard previous.seq == header.commitCount, previous.hash == header.headHash else {
                throw StratosError(.invalidProof, "the archive holds \(previous.seq) commits, its header says \(header.commitCount)")
            }
            sawTrailer = true
            summary = Summary(
                header: header, commits: previous.seq, operations: operations, documentBytes: documentBytes, grants: grants,
                revocations: revocations, loggedGrants: loggedGrants, loggedRevocations: loggedRevocations, keyRecipients: recipients,
                stateRootsChecked: !header.payloadsEncrypted || spaceKey != nil, headStateRoot: stateRoot, commitAuthors: authors, controller: controllers.last ?? header.owner)
        }
    }

    /// The result, once the trailer was checked; throws if it never came.
    public func finish() throws(StratosError) -> Summary {
        guard let summary else { throw StratosError(.invalidEncoding, "the archive has no trailer (truncated)") }
        return summary
    }
}
