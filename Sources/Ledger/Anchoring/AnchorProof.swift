import StratosCore

/// The proof that a space commit is anchored on the ledger: commit → anchor batch (RFC 6962
/// inclusion) → anchor transaction → block (RFC 6962 inclusion in `dataHash`) → header →
/// commit signatures of more than 2/3 of the validator power.
public struct AnchorProof: Hashable, Sendable {
    public let leaf: AnchorLeaf
    public let leafIndex: UInt64
    public let batchSize: UInt64
    public let batchPath: [Hash256]
    /// The anchor transaction's bytes and its place in the block.
    public let transaction: [UInt8]
    public let transactionIndex: UInt64
    public let transactionCount: UInt64
    public let transactionPath: [Hash256]
    public let header: BlockHeader
    public let commit: Commit
    /// The validator set that signed (checked against `header.validatorsHash`).
    public let validators: ValidatorSet

    public init(
        leaf: AnchorLeaf, leafIndex: UInt64, batchSize: UInt64, batchPath: [Hash256], transaction: [UInt8], transactionIndex: UInt64,
        transactionCount: UInt64, transactionPath: [Hash256], header: BlockHeader, commit: Commit, validators: ValidatorSet
    ) {
        self.leaf = leaf
        self.leafIndex = leafIndex
        self.batchSize = batchSize
        self.batchPath = batchPath
        self.transaction = transaction
        self.transactionIndex = transactionIndex
        self.transactionCount = transactionCount
        self.transactionPath = transactionPath
        self.header = header
        self.commit = commit
        self.validators = validators
    }

    /// What a successful check established.
    public struct Verified: Sendable {
        public let height: UInt64
        public let blockID: Hash256
        public let blockTimeMilliseconds: Int64
        public let chainID: String
        public let signedPower: Int64
        public let totalPower: Int64
    }

    /// Checks every link. With `trusted` nil, the carried validator set is taken on trust
    /// (its hash must still match the header); pass the set you trust to rule that out.
    public func verify(space: String, commitHash: [UInt8], trusted: ValidatorSet?) throws(LedgerError) -> Verified {
        guard leaf.space == space, leaf.commitHash == commitHash else {
            throw LedgerError(.invalidProof, "the anchor proof is for another commit")
        }
        let batchRoot: Hash256
        do {
            batchRoot = try MerkleProof.rootFromInclusion(
                leafHash: MerkleTree.leafHash(leaf.bytes), leafIndex: Int(leafIndex), treeSize: Int(batchSize), path: batchPath)
            try MerkleProof.verifyInclusion(
                leafHash: MerkleTree.leafHash(transaction), leafIndex: Int(transactionIndex), treeSize: Int(transactionCount),
                path: transactionPath, root: header.dataHash)
        } catch {
            throw LedgerError(.invalidProof, "an anchor inclusion path does not verify: \(error.message)")
        }
        guard leafIndex < batchSize, batchSize <= UInt64(LedgerLimits.anchorsPerBatchMax), transactionIndex < transactionCount,
            transactionCount <= UInt64(LedgerLimits.transactionsPerBlockMax)
        else { throw LedgerError(.invalidProof, "anchor proof indexes are out of range") }
        let anchor = try Transaction(decoding: transaction)
        guard case .anchor(let root, let size) = anchor.body, root == batchRoot, size == batchSize else {
            throw LedgerError(.invalidProof, "the transaction does not anchor this batch")
        }
        guard anchor.isSignatureValid(chainID: header.chainID) else { throw LedgerError(.invalidSignature, "the anchor transaction's signature does not verify") }
        guard validators.hash == header.validatorsHash else { throw LedgerError(.invalidProof, "the validator set is not the header's") }
        try LightClient.verify(header: header, commit: commit, headerValidators: validators, trusted: trusted ?? validators, chainID: header.chainID)
        let power = try commit.signedPower(validators: validators, chainID: header.chainID, requireMembership: true)
        return Verified(
            height: header.height, blockID: header.hash, blockTimeMilliseconds: header.timeMilliseconds, chainID: header.chainID,
            signedPower: power, totalPower: validators.totalPower)
    }

    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write("stratosdb/anchor-proof/v1")
        encoder.write(bytes: leaf.bytes)
        encoder.write(leafIndex)
        encoder.write(batchSize)
        encoder.write(UInt32(batchPath.count))
        for hash in batchPath { encoder.write(hash: hash) }
        encoder.write(bytes: transaction)
        encoder.write(transactionIndex)
        encoder.write(transactionCount)
        encoder.write(UInt32(transactionPath.count))
        for hash in transactionPath { encoder.write(hash: hash) }
        encoder.write(bytes: header.canonicalBytes)
        commit.encode(into: &encoder)
        validators.encode(into: &encoder)
        return encoder.bytes
    }

    public init(decoding bytes: [UInt8]) throws(LedgerError) {
        var decoder = CanonicalDecoder(bytes)
        let parts = try ledgerDecode("anchor proof") {
            () throws(StratosError) -> (AnchorLeaf, UInt64, UInt64, [Hash256], [UInt8], UInt64, UInt64, [Hash256], [UInt8], Commit) in
            guard try decoder.readString() == "stratosdb/anchor-proof/v1" else { throw StratosError(.invalidEncoding, "not an anchor proof") }
            var leafDecoder = CanonicalDecoder(try decoder.readBytes(maxCount: 1024))
            guard try leafDecoder.readString() == AnchorLeaf.domain else { throw StratosError(.invalidEncoding, "not an anchor leaf") }
            let leaf = AnchorLeaf(space: try leafDecoder.readString(maxCount: 64), seq: try leafDecoder.readUInt64(), commitHash: try leafDecoder.readBytes(maxCount: 32))
            try leafDecoder.finish()
            let leafIndex = try decoder.readUInt64()
            let batchSize = try decoder.readUInt64()
            var batchPath: [Hash256] = []
            for _ in 0..<(try decoder.readCount(max: 64)) { batchPath.append(try decoder.readHash()) }
            let transaction = try decoder.readBytes(maxCount: LedgerLimits.transactionBytesMax)
            let transactionIndex = try decoder.readUInt64()
            let transactionCount = try decoder.readUInt64()
            var transactionPath: [Hash256] = []
            for _ in 0..<(try decoder.readCount(max: 64)) { transactionPath.append(try decoder.readHash()) }
            let header = try decoder.readBytes(maxCount: 4096)
            let commit = try Commit(from: &decoder)
            return (leaf, leafIndex, batchSize, batchPath, transaction, transactionIndex, transactionCount, transactionPath, header, commit)
        }
        let validators = try ValidatorSet(from: &decoder)
        try ledgerDecode("anchor proof") { () throws(StratosError) in try decoder.finish() }
        self.init(
            leaf: parts.0, leafIndex: parts.1, batchSize: parts.2, batchPath: parts.3, transaction: parts.4, transactionIndex: parts.5,
            transactionCount: parts.6, transactionPath: parts.7, header: try BlockHeader(decoding: parts.8), commit: parts.9,
            validators: validators)
    }
}
