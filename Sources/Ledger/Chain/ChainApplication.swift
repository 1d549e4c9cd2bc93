import StratosCore

/// The application side of consensus for one node: the committed chain state, the mempool,
/// pending evidence, and how blocks are built and checked.
public struct ChainApplication: ConsensusApplication, Sendable {
    public private(set) var state: ChainState
    /// This node's key (the proposer of the blocks it builds).
    let proposerKey: PublicKey?
    /// Transactions waiting for a block, in arrival order, by hash.
    private(set) var mempool: [(hash: Hash256, bytes: [UInt8])] = []
    private var mempoolHashes: Set<Hash256> = []
    /// Transactions waiting for a block.
    public var mempoolCount: Int { mempool.count }

    /// The nonce `sender`'s next transaction should carry: after its committed nonce and after
    /// its transactions already waiting in the mempool.
    public func nextNonce(for sender: PublicKey) -> UInt64 {
        var next = state.accounts[sender]?.nonce ?? 0
        for entry in mempool {
            guard let transaction = try? Transaction(decoding: entry.bytes), transaction.sender == sender else { continue }
            if transaction.nonce >= next { next = transaction.nonce + 1 }
        }
        return next
    }
    /// Evidence seen but not yet committed.
    private(set) var pendingEvidence: [DuplicateVoteEvidence] = []
    /// The last commit, carried in the next block.
    var lastCommit: Commit?
    /// The proposer's clock for the block being built, set by the driver before each input.
    public var nowMilliseconds: Int64 = 0

    /// Bounds the mempool; beyond it new transactions are refused.
    public static let mempoolCountMax = 50_000

    public init(state: ChainState, proposerKey: PublicKey?, lastCommit: Commit?) {
        self.state = state
        self.proposerKey = proposerKey
        self.lastCommit = lastCommit
    }

    /// Adds a transaction if it is well formed and signed; returns false for duplicates and refusals.
    @discardableResult
    public mutating func submit(_ bytes: [UInt8]) -> Bool {
        (try? check(bytes)) != nil
    }

    /// Adds a transaction after checking it would apply now, after the mempool's (CometBFT's
    /// CheckTx): a transaction the chain would refuse is refused here, with the chain's reason,
    /// instead of waiting in the mempool for a block that will never take it.
    public mutating func check(_ bytes: [UInt8]) throws(LedgerError) {
        guard mempool.count < Self.mempoolCountMax else { throw LedgerError(.limitExceeded, "the mempool is full") }
        let transaction = try Transaction(decoding: bytes)
        guard transaction.isSignatureValid(chainID: state.chainID) else { throw LedgerError(.invalidSignature, "the signature does not verify for chain \(state.chainID)") }
        let hash = transaction.hash
        guard !mempoolHashes.contains(hash) else { throw LedgerError(.invalidTransaction, "the transaction is already waiting for a block") }
        var scratch = state
        for entry in mempool {
            if let pending = try? Transaction(decoding: entry.bytes) { _ = try? scratch.apply(pending, height: state.height + 1) }
        }
        try scratch.apply(transaction, height: state.height + 1)
        mempoolHashes.insert(hash)
        mempool.append((hash, bytes))
    }

    /// Evidence waiting for a block, at most this many (one per validator is enough to punish it).
    public static let pendingEvidenceMax = 1_000

    mutating func addEvidence(_ evidence: DuplicateVoteEvidence) -> Bool {
        let height = state.height + 1
        guard pendingEvidence.count < Self.pendingEvidenceMax, !pendingEvidence.contains(where: { $0.validator == evidence.validator }),
            state.isPunishable(evidence.validator), evidence.height <= height,
            height - evidence.height <= state.parameters.evidenceMaxAgeBlocks,
            (try? evidence.verify(chainID: state.chainID)) != nil
        else { return false }
        pendingEvidence.append(evidence)
        return true
    }

    public mutating func proposeBlock(height: UInt64, round: Int32) -> Block {
        // Include what applies, in order, skipping transactions that would fail now.
        var scratch = state
        var included: [[UInt8]] = []
        for entry in mempool where included.count < LedgerLimits.transactionsPerBlockMax {
            guard let transaction = try? Transaction(decoding: entry.bytes) else { continue }
            if (try? scratch.apply(transaction, height: height)) != nil { included.append(entry.bytes) }
        }
        var evidence: [DuplicateVoteEvidence] = []
        var punished = Set<PublicKey>()
        for item in pendingEvidence where evidence.count < LedgerLimits.evidencePerBlockMax
            && state.isPunishable(item.validator) && punished.insert(item.validator).inserted
            && item.height <= height && height - item.height <= state.parameters.evidenceMaxAgeBlocks
        {
            evidence.append(item)
        }
        let header = BlockHeader(
            chainID: state.chainID, height: height,
            timeMilliseconds: max(nowMilliseconds, state.lastBlockTimeMilliseconds + 1),
            lastBlockID: state.lastBlockID, lastCommitHash: lastCommit?.hash ?? Commit.emptyHash,
            dataHash: Block.dataHash(included), validatorsHash: state.validators.hash,
            nextValidatorsHash: state.nextValidators.hash, appHash: state.appHash, evidenceHash: Block.evidenceHash(evidence),
            proposer: proposerKey ?? state.validators.proposer)
        return Block(header: header, transactions: included, evidence: evidence, lastCommit: lastCommit)
    }

    public func isValid(_ block: Block) -> Bool {
        (try? state.validate(block)) != nil
    }

    /// Applies a decided block and its commit; drops what it included from the mempool and
    /// what no longer applies.
    mutating func commit(_ block: Block, _ commit: Commit) throws(LedgerError) {
        try state.apply(block)
        lastCommit = commit
        let included = Set(block.transactions.map { Hash256.sha256($0) })
        var scratch = state
        mempool.removeAll { entry in
            if included.contains(entry.hash) { return true }
            guard let transaction = try? Transaction(decoding: entry.bytes) else { return true }
            return (try? scratch.apply(transaction, height: state.height + 1)) == nil
        }
        mempoolHashes = Set(mempool.map(\.hash))
        let height = state.height + 1
        pendingEvidence.removeAll { item in
            block.evidence.contains(item) || !state.isPunishable(item.validator) || height - min(height, item.height) > state.parameters.evidenceMaxAgeBlocks
        }
    }
}
