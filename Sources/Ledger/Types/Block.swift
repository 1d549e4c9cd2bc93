import StratosCore

/// A block header: everything a light client needs, and what validators sign (through the
/// block ID, its SHA-256).
public struct BlockHeader: Hashable, Sendable {
    public var chainID: String
    public var height: UInt64
    /// The proposer's clock, milliseconds since the Unix epoch; later than the previous block's.
    public var timeMilliseconds: Int64
    /// The previous block's ID (nil at height 1).
    public var lastBlockID: Hash256?
    /// Hash of the commit certificate for the previous block carried in this block.
    public var lastCommitHash: Hash256
    /// RFC 6962 root over the block's transactions.
    public var dataHash: Hash256
    /// The validator set that decides this block, and the one that decides the next
    /// (changes decided at H appear as `nextValidatorsHash` at H+1 and act from H+2).
    public var validatorsHash: Hash256
    public var nextValidatorsHash: Hash256
    /// The chain state after the previous block.
    public var appHash: Hash256
    /// RFC 6962 root over the block's evidence.
    public var evidenceHash: Hash256
    public var proposer: PublicKey

    static let domain = "stratosdb/block-header/v1"

    public var canonicalBytes: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(Self.domain)
        encoder.write(chainID)
        encoder.write(height)
        encoder.write(timeMilliseconds)
        encoder.write(optionalHash: lastBlockID)
        encoder.write(hash: lastCommitHash)
        encoder.write(hash: dataHash)
        encoder.write(hash: validatorsHash)
        encoder.write(hash: nextValidatorsHash)
        encoder.write(hash: appHash)
        encoder.write(hash: evidenceHash)
        encoder.write(key: proposer)
        return encoder.bytes
    }

    /// The block ID: SHA-256 of the canonical header bytes.
    public var hash: Hash256 { Hash256.sha256(canonicalBytes) }

    public init(
        chainID: String, height: UInt64, timeMilliseconds: Int64, lastBlockID: Hash256?, lastCommitHash: Hash256,
        dataHash: Hash256, validatorsHash: Hash256, nextValidatorsHash: Hash256, appHash: Hash256, evidenceHash: Hash256,
        proposer: PublicKey
    ) {
        self.chainID = chainID
        self.height = height
        self.timeMilliseconds = timeMilliseconds
        self.lastBlockID = lastBlockID
        self.lastCommitHash = lastCommitHash
        self.dataHash = dataHash
        self.validatorsHash = validatorsHash
        self.nextValidatorsHash = nextValidatorsHash
        self.appHash = appHash
        self.evidenceHash = evidenceHash
        self.proposer = proposer
    }

    public init(decoding bytes: [UInt8]) throws(LedgerError) {
        self = try ledgerDecode("block header") { () throws(StratosError) -> BlockHeader in
            var decoder = CanonicalDecoder(bytes)
            guard try decoder.readString() == Self.domain else { throw StratosError(.invalidEncoding, "not a block header") }
            let header = BlockHeader(
                chainID: try decoder.readString(maxCount: LedgerLimits.chainIDBytesMax), height: try decoder.readUInt64(),
                timeMilliseconds: try decoder.readInt64(), lastBlockID: try decoder.readOptionalHash(),
                lastCommitHash: try decoder.readHash(), dataHash: try decoder.readHash(), validatorsHash: try decoder.readHash(),
                nextValidatorsHash: try decoder.readHash(), appHash: try decoder.readHash(), evidenceHash: try decoder.readHash(),
                proposer: try decoder.readKey())
            try decoder.finish()
            return header
        }
    }
}

/// One validator's precommit signature inside a commit certificate.
public struct CommitSignature: Hashable, Sendable {
    public let validator: PublicKey
    public let signature: Signature

    public init(validator: PublicKey, signature: Signature) {
        self.validator = validator
        self.signature = signature
    }
}

/// The certificate that a block was decided: precommits for it, in one round, from validators
/// holding more than two thirds of the power (Algorithm 1, line 49).
public struct Commit: Hashable, Sendable {
    public let height: UInt64
    public let round: Int32
    public let blockID: Hash256
    public let signatures: [CommitSignature]

    public init(height: UInt64, round: Int32, blockID: Hash256, signatures: [CommitSignature]) {
        self.height = height
        self.round = round
        self.blockID = blockID
        self.signatures = signatures
    }

    /// The hash carried as `lastCommitHash` in the next header.
    public var hash: Hash256 {
        var encoder = CanonicalEncoder()
        encode(into: &encoder)
        return Hash256.sha256(encoder.bytes)
    }

    /// The hash of "no commit" (height 1 has no previous block).
    public static let emptyHash = Hash256.sha256([UInt8]())

    /// Checks that validators of `set` holding more than two thirds of its power signed this
    /// block's precommit (each signer in the set, counted once, signature valid).
    public func verify(validators set: ValidatorSet, chainID: String) throws(LedgerError) {
        let power = try signedPower(validators: set, chainID: chainID, requireMembership: true)
        guard set.isQuorum(power) else {
            throw LedgerError(.invalidProof, "commit for height \(height) has \(power) of \(set.totalPower) power, not more than 2/3")
        }
    }

    /// The power of `set` that signed, skipping signers outside it unless `requireMembership`.
    public func signedPower(validators set: ValidatorSet, chainID: String, requireMembership: Bool) throws(LedgerError) -> Int64 {
        guard signatures.count <= LedgerLimits.validatorsCountMax else { throw LedgerError(.limitExceeded, "too many commit signatures") }
        let message = Vote.signBytes(type: .precommit, height: height, round: round, blockID: blockID, chainID: chainID)
        var seen = Set<PublicKey>()
        var power: Int64 = 0
        for entry in signatures {
            guard seen.insert(entry.validator).inserted else {
                throw LedgerError(.invalidProof, "commit for height \(height) counts a validator twice")
            }
            let weight = set.power(of: entry.validator)
            if weight == 0 {
                if requireMembership { throw LedgerError(.invalidProof, "commit for height \(height) has a signer outside the validator set") }
                continue
            }
            guard entry.validator.isValidSignature(entry.signature, for: message) else {
                throw LedgerError(.invalidSignature, "commit for height \(height) has an invalid signature")
            }
            power += weight
        }
        return power
    }

    public func encode(into encoder: inout CanonicalEncoder) {
        encoder.write(height)
        encoder.write(round: round)
        encoder.write(hash: blockID)
        encoder.write(UInt32(signatures.count))
        for entry in signatures {
            encoder.write(key: entry.validator)
            encoder.write(signature: entry.signature)
        }
    }

    public init(from decoder: inout CanonicalDecoder) throws(StratosError) {
        height = try decoder.readUInt64()
        round = try decoder.readRound()
        blockID = try decoder.readHash()
        let count = try decoder.readCount(max: LedgerLimits.validatorsCountMax)
        var signatures: [CommitSignature] = []
        for _ in 0..<count { signatures.append(CommitSignature(validator: try decoder.readKey(), signature: try decoder.readSignature())) }
        self.signatures = signatures
    }
}

/// A block: header, transactions (opaque to consensus), evidence, and the previous block's commit.
public struct Block: Hashable, Sendable {
    public let header: BlockHeader
    public let transactions: [[UInt8]]
    public let evidence: [DuplicateVoteEvidence]
    /// The commit certificate of block `height − 1` (nil at height 1).
    public let lastCommit: Commit?

    public init(header: BlockHeader, transactions: [[UInt8]], evidence: [DuplicateVoteEvidence], lastCommit: Commit?) {
        self.header = header
        self.transactions = transactions
        self.evidence = evidence
        self.lastCommit = lastCommit
    }

    public var id: Hash256 { header.hash }
    public var height: UInt64 { header.height }

    /// RFC 6962 root over transaction bytes (what `dataHash` must be).
    public static func dataHash(_ transactions: [[UInt8]]) -> Hash256 {
        (try? MerkleTree(leaves: transactions).root()) ?? MerkleTree.emptyRoot
    }

    public static func evidenceHash(_ evidence: [DuplicateVoteEvidence]) -> Hash256 {
        var tree = MerkleTree()
        for item in evidence { tree.append(leafHash: MerkleTree.leafHash(item.hash.bytes)) }
        return (try? tree.root()) ?? MerkleTree.emptyRoot
    }

    /// Checks that the body matches the header's hashes.
    public func checkBody() throws(LedgerError) {
        guard transactions.count <= LedgerLimits.transactionsPerBlockMax, evidence.count <= LedgerLimits.evidencePerBlockMax else {
            throw LedgerError(.invalidBlock, "block \(height) is over its limits")
        }
        guard Block.dataHash(transactions) == header.dataHash else { throw LedgerError(.invalidBlock, "block \(height) data hash mismatch") }
        guard Block.evidenceHash(evidence) == header.evidenceHash else {
            throw LedgerError(.invalidBlock, "block \(height) evidence hash mismatch")
        }
        guard (lastCommit?.hash ?? Commit.emptyHash) == header.lastCommitHash else {
            throw LedgerError(.invalidBlock, "block \(height) last commit hash mismatch")
        }
    }

    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(bytes: header.canonicalBytes)
        encoder.write(UInt32(transactions.count))
        for transaction in transactions { encoder.write(bytes: transaction) }
        encoder.write(UInt32(evidence.count))
        for item in evidence { item.encode(into: &encoder) }
        encoder.write(lastCommit != nil)
        lastCommit?.encode(into: &encoder)
        return encoder.bytes
    }

    public init(decoding bytes: [UInt8]) throws(LedgerError) {
        guard bytes.count <= LedgerLimits.blockBytesMax else { throw LedgerError(.limitExceeded, "block is larger than its limit") }
        var decoder = CanonicalDecoder(bytes)
        let headerBytes = try ledgerDecode("block") { () throws(StratosError) in try decoder.readBytes(maxCount: 4096) }
        header = try BlockHeader(decoding: headerBytes)
        (transactions, evidence, lastCommit) = try ledgerDecode("block") {
            () throws(StratosError) -> ([[UInt8]], [DuplicateVoteEvidence], Commit?) in
            let count = try decoder.readCount(max: LedgerLimits.transactionsPerBlockMax)
            var transactions: [[UInt8]] = []
            for _ in 0..<count { transactions.append(try decoder.readBytes(maxCount: LedgerLimits.transactionBytesMax)) }
            let evidenceCount = try decoder.readCount(max: LedgerLimits.evidencePerBlockMax)
            var evidence: [DuplicateVoteEvidence] = []
            for _ in 0..<evidenceCount { evidence.append(try DuplicateVoteEvidence(from: &decoder)) }
            let lastCommit = try decoder.readBool() ? try Commit(from: &decoder) : nil
            try decoder.finish()
            return (transactions, evidence, lastCommit)
        }
    }
}
