import StratosCore

/// One account: spendable balance, next nonce, bonded stake (all amounts in micro-units).
public struct Account: Hashable, Sendable {
    public var balance: UInt64 = 0
    public var nonce: UInt64 = 0
    public var stake: UInt64 = 0

    public init(balance: UInt64 = 0, nonce: UInt64 = 0, stake: UInt64 = 0) {
        self.balance = balance
        self.nonce = nonce
        self.stake = stake
    }
}

/// Stake on its way back to a balance.
public struct Unbonding: Hashable, Sendable {
    public let owner: PublicKey
    public var amount: UInt64
    public let releaseHeight: UInt64
}

/// The latest anchor batch a submitter put on chain.
public struct AnchorRecord: Hashable, Sendable {
    public let root: Hash256
    public let size: UInt64
    public let height: UInt64
}

/// The chain state machine: accounts, transfers with nonces and fees, staking and unbonding,
/// the validator set from stake (changes effective at H+2), anchors, double-sign slashing with
/// tombstones. Deterministic: the same blocks from the same genesis give the same `appHash`.
public struct ChainState: Hashable, Sendable {
    public let chainID: String
    public let parameters: ChainParameters
    /// The last decided height (0 before the first block).
    public private(set) var height: UInt64 = 0
    public private(set) var lastBlockID: Hash256?
    public private(set) var lastBlockTimeMilliseconds: Int64
    /// The validators of `height` (they signed the last commit), of `height + 1`, of `height + 2`.
    public private(set) var lastValidators: ValidatorSet?
    public private(set) var validators: ValidatorSet
    public private(set) var nextValidators: ValidatorSet
    public internal(set) var accounts: [PublicKey: Account] = [:]
    public internal(set) var unbonding: [Unbonding] = []
    public private(set) var tombstoned: Set<PublicKey> = []
    public private(set) var anchors: [PublicKey: AnchorRecord] = [:]
    public private(set) var anchorBatchCount: UInt64 = 0
    public private(set) var anchoredCommitCount: UInt64 = 0
    /// Registered resource nodes (storage, database, computation) and their deposits.
    public internal(set) var resourceNodes: [PublicKey: ResourceNode] = [:]
    /// Ban proposals by id, and the content hashes banned by a passed vote.
    public internal(set) var banProposals: [UInt64: BanProposal] = [:]
    public internal(set) var nextBanProposal: UInt64 = 0
    public internal(set) var banned: Set<Hash256> = []
    /// Heights each validator missed within the downtime window, and jailed validators' terms.
    public internal(set) var missedBlocks: [PublicKey: [UInt64]] = [:]
    public internal(set) var jailedUntil: [PublicKey: UInt64] = [:]
    /// The hash of this state (the next header's `appHash`).
    public private(set) var appHash: Hash256

    /// The state before the first block.
    public init(genesis: Genesis) throws(LedgerError) {
        guard !genesis.chainID.isEmpty, genesis.chainID.utf8.count <= LedgerLimits.chainIDBytesMax else {
            throw LedgerError(.invalidBlock, "a chain ID has 1...\(LedgerLimits.chainIDBytesMax) bytes")
        }
        guard genesis.parameters.evidenceMaxAgeBlocks <= genesis.parameters.unbondingBlocks else {
            throw LedgerError(.invalidBlock, "evidenceMaxAgeBlocks must not exceed unbondingBlocks: evidence must arrive while the stake is still slashable")
        }
        guard genesis.parameters.isValid else { throw LedgerError(.invalidBlock, "the genesis parameters are out of range") }
        chainID = genesis.chainID
        parameters = genesis.parameters
        lastBlockTimeMilliseconds = genesis.timeMilliseconds
        for account in genesis.accounts {
            guard accounts[account.key] == nil else { throw LedgerError(.invalidBlock, "genesis lists an account twice") }
            accounts[account.key] = Account(balance: account.balance, stake: account.stake)
        }
        let initial = try ChainState.validatorSet(accounts: accounts, tombstoned: [], parameters: genesis.parameters, previous: nil)
        guard let initial else { throw LedgerError(.invalidBlock, "genesis has no stake: a chain needs at least one validator") }
        validators = initial
        var next = initial
        next.incrementProposerPriority(times: 1)
        nextValidators = next
        appHash = MerkleTree.emptyRoot
        appHash = computeHash()
    }

    // MARK: - Blocks

    /// Checks that `block` may follow this state (everything but its consensus round).
    public func validate(_ block: Block) throws(LedgerError) {
        let header = block.header
        guard header.chainID == chainID, header.height == height + 1 else {
            throw LedgerError(.invalidBlock, "block for \(header.chainID) height \(header.height) cannot follow height \(height)")
        }
        guard header.lastBlockID == lastBlockID else { throw LedgerError(.invalidBlock, "block \(header.height) does not link to the last block") }
        guard header.timeMilliseconds > lastBlockTimeMilliseconds else {
            throw LedgerError(.invalidBlock, "block \(header.height) time does not move forward")
        }
        guard header.validatorsHash == validators.hash, header.nextValidatorsHash == nextValidators.hash else {
            throw LedgerError(.invalidBlock, "block \(header.height) names the wrong validator sets")
        }
        guard header.appHash == appHash else { throw LedgerError(.invalidBlock, "block \(header.height) has the wrong app hash") }
        guard validators.contains(header.proposer) else { throw LedgerError(.invalidBlock, "block \(header.height) proposer is not a validator") }
        try block.checkBody()
        if let lastCommit = block.lastCommit {
            guard let lastValidators, lastCommit.height == height, lastCommit.blockID == lastBlockID else {
                throw LedgerError(.invalidBlock, "block \(header.height) carries a commit for another block")
            }
            try lastCommit.verify(validators: lastValidators, chainID: chainID)
        } else if height > 0 {
            throw LedgerError(.invalidBlock, "block \(header.height) lacks the last commit")
        }
        var copy = self
        try copy.execute(block)
    }

    /// Applies a decided block (its commit was checked by consensus or block sync).
    public mutating func apply(_ block: Block) throws(LedgerError) {
        try validate(block)
        try execute(block)
    }

    /// Runs evidence and transactions; errors leave `self` unusable (callers work on a copy).
    private mutating func execute(_ block: Block) throws(LedgerError) {
        var seenEvidence = Set<PublicKey>()
        for evidence in block.evidence {
            try evidence.verify(chainID: chainID)
            guard evidence.height <= block.height, block.height - evidence.height <= parameters.evidenceMaxAgeBlocks else {
                throw LedgerError(.invalidBlock, "evidence is too old or from the future")
            }
            guard seenEvidence.insert(evidence.validator).inserted, isPunishable(evidence.validator) else {
                throw LedgerError(.invalidBlock, "evidence against a validator that is not punishable")
            }
            slash(evidence.validator)
        }
        recordSignatures(block.lastCommit, height: block.height)
        var fees: UInt64 = 0
        for bytes in block.transactions {
            let transaction = try Transaction(decoding: bytes)
            try apply(transaction, height: block.height)
            fees += transaction.fee
        }
        accounts[block.header.proposer, default: Account()].balance += fees
        releaseUnbonding(at: block.height)
        tallyBanProposals(height: block.height)

        height = block.height
        lastBlockID = block.id
        lastBlockTimeMilliseconds = block.header.timeMilliseconds
        lastValidators = validators
        validators = nextValidators
        let computed = try ChainState.validatorSet(
            accounts: accounts, tombstoned: tombstoned.union(jailedUntil.keys), parameters: parameters, previous: nextValidators)
        guard var next = computed else { throw LedgerError(.invalidBlock, "block \(block.height) would leave the chain without validators") }
        next.incrementProposerPriority(times: 1)
        nextValidators = next
        appHash = computeHash()
    }

    /// Checks and applies one transaction.
    public mutating func apply(_ transaction: Transaction, height: UInt64) throws(LedgerError) {
        guard transaction.isSignatureValid(chainID: chainID) else { throw LedgerError(.invalidSignature, "transaction signature does not verify") }
        guard var account = accounts[transaction.sender] else { throw LedgerError(.unknownAccount, "the sender has no account") }
        guard transaction.nonce == account.nonce else {
            throw LedgerError(.badNonce, "nonce \(transaction.nonce) is not the account's next nonce \(account.nonce)")
        }
        guard transaction.fee >= parameters.minimumFee else { throw LedgerError(.invalidTransaction, "the fee is below \(parameters.minimumFee)") }
        guard account.balance >= transaction.fee else { throw LedgerError(.insufficientFunds, "the balance cannot pay the fee") }
        account.balance -= transaction.fee
        account.nonce += 1
        switch transaction.body {
        case .transfer(let to, let amount):
            guard amount > 0, account.balance >= amount else { throw LedgerError(.insufficientFunds, "the balance cannot pay \(amount)") }
            account.balance -= amount
            if to == transaction.sender {
                account.balance += amount
            } else {
                accounts[to, default: Account()].balance += amount
            }
        case .stake(let amount):
            guard amount > 0, account.balance >= amount else { throw LedgerError(.insufficientFunds, "the balance cannot bond \(amount)") }
            guard !tombstoned.contains(transaction.sender) else { throw LedgerError(.invalidTransaction, "a tombstoned validator cannot stake") }
            account.balance -= amount
            account.stake += amount
        case .unstake(let amount):
            guard amount > 0, account.stake >= amount else { throw LedgerError(.insufficientFunds, "the stake is less than \(amount)") }
            account.stake -= amount
            unbonding.append(Unbonding(owner: transaction.sender, amount: amount, releaseHeight: height + parameters.unbondingBlocks))
        case .anchor(let root, let size):
            guard size > 0, size <= UInt64(LedgerLimits.anchorsPerBatchMax) else {
                throw LedgerError(.invalidTransaction, "an anchor batch holds 1...\(LedgerLimits.anchorsPerBatchMax) commits")
            }
            anchors[transaction.sender] = AnchorRecord(root: root, size: size, height: height)
            anchorBatchCount += 1
            anchoredCommitCount += size
        case .registerResourceNode, .unregisterResourceNode, .proposeBan, .voteBan, .unjail:
            try applyResourceOrGovernance(transaction.body, sender: transaction.sender, account: &account, height: height)
        }
        accounts[transaction.sender] = account
    }

    /// Whether evidence against `key` can still be acted on: not tombstoned, and with stake or
    /// unbonding stake to slash. (Unbonding outlasts the evidence age, so a validator cannot
    /// escape by unstaking; a key that signs duplicates without ever validating only hurts itself.)
    public func isPunishable(_ key: PublicKey) -> Bool {
        guard !tombstoned.contains(key) else { return false }
        return (accounts[key]?.stake ?? 0) > 0 || unbonding.contains { $0.owner == key && $0.amount > 0 }
    }

    private mutating func slash(_ validator: PublicKey) {
        tombstoned.insert(validator)
        guard var account = accounts[validator] else { return }
        let bonded = account.stake
        account.stake = bonded - penalty(bonded)
        accounts[validator] = account
        for index in unbonding.indices where unbonding[index].owner == validator {
            unbonding[index].amount -= penalty(unbonding[index].amount)
        }
    }

    /// The slashed share of `amount`, without overflow: (amount · basis points) / 10,000.
    private func penalty(_ amount: UInt64) -> UInt64 {
        amount / 10_000 * parameters.doubleSignSlashBasisPoints + amount % 10_000 * parameters.doubleSignSlashBasisPoints / 10_000
    }

    private mutating func releaseUnbonding(at height: UInt64) {
        var remaining: [Unbonding] = []
        for entry in unbonding {
            if entry.releaseHeight <= height {
                accounts[entry.owner, default: Account()].balance += entry.amount
            } else {
                remaining.append(entry)
            }
        }
        unbonding = remaining
    }

    /// The set from bonded stake: the largest `validatorsCountMax` stakes of at least one power
    /// unit, tombstoned validators excluded; priorities carried over from `previous`.
    static func validatorSet(
        accounts: [PublicKey: Account], tombstoned: Set<PublicKey>, parameters: ChainParameters, previous: ValidatorSet?
    ) throws(LedgerError) -> ValidatorSet? {
        var candidates: [(PublicKey, Int64)] = []
        for (key, account) in accounts where !tombstoned.contains(key) {
            let power = account.stake / parameters.stakePerPower
            if power > 0 { candidates.append((key, Int64(min(power, UInt64(ValidatorSet.totalPowerMax / 200))))) }
        }
        candidates.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0.bytes.lexicographicallyPrecedes($1.0.bytes) }
        candidates = Array(candidates.prefix(LedgerLimits.validatorsCountMax))
        guard !candidates.isEmpty else { return nil }
        guard let previous else { return try ValidatorSet.genesis(candidates) }
        var changes: [PublicKey: Int64] = [:]
        for validator in previous.validators { changes[validator.publicKey] = 0 }
        for (key, power) in candidates { changes[key] = power }
        return try previous.applying(changes)
    }

    // MARK: - Hash

    /// SHA-256 over the canonical encoding of everything above, in sorted order.
    private func computeHash() -> Hash256 {
        Hash256.sha256(encoded)
    }

    static let domain = "stratosdb/chain-state/v1"

    /// The canonical bytes of the state (also how a node stores it).
    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(Self.domain)
        encoder.write(chainID)
        parameters.encode(into: &encoder)
        encoder.write(height)
        encoder.write(optionalHash: lastBlockID)
        encoder.write(lastBlockTimeMilliseconds)
        encoder.write(lastValidators != nil)
        lastValidators?.encode(into: &encoder)
        validators.encode(into: &encoder)
        nextValidators.encode(into: &encoder)
        let sortedAccounts = accounts.sorted { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }
        encoder.write(UInt32(sortedAccounts.count))
        for (key, account) in sortedAccounts {
            encoder.write(key: key)
            encoder.write(account.balance)
            encoder.write(account.nonce)
            encoder.write(account.stake)
        }
        encoder.write(UInt32(unbonding.count))
        for entry in unbonding {
            encoder.write(key: entry.owner)
            encoder.write(entry.amount)
            encoder.write(entry.releaseHeight)
        }
        let sortedTombstones = tombstoned.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        encoder.write(UInt32(sortedTombstones.count))
        for key in sortedTombstones { encoder.write(key: key) }
        let sortedAnchors = anchors.sorted { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }
        encoder.write(UInt32(sortedAnchors.count))
        for (key, record) in sortedAnchors {
            encoder.write(key: key)
            encoder.write(hash: record.root)
            encoder.write(record.size)
            encoder.write(record.height)
        }
        encoder.write(anchorBatchCount)
        encoder.write(anchoredCommitCount)
        let sortedNodes = resourceNodes.sorted { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }
        encoder.write(UInt32(sortedNodes.count))
        for (key, node) in sortedNodes {
            encoder.write(key: key)
            encoder.write(node.types)
            encoder.write(node.deposit)
            encoder.write(node.registeredHeight)
        }
        encoder.write(nextBanProposal)
        encoder.write(UInt32(banProposals.count))
        for (id, proposal) in banProposals.sorted(by: { $0.key < $1.key }) {
            encoder.write(id)
            encoder.write(hash: proposal.contentHash)
            encoder.write(key: proposal.proposer)
            encoder.write(proposal.createdHeight)
            encoder.write(proposal.status.rawValue)
            let votes = proposal.votes.sorted { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }
            encoder.write(UInt32(votes.count))
            for (voter, approve) in votes {
                encoder.write(key: voter)
                encoder.write(approve)
            }
        }
        let sortedBans = banned.sorted()
        encoder.write(UInt32(sortedBans.count))
        for hash in sortedBans { encoder.write(hash: hash) }
        let sortedMissed = missedBlocks.sorted { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }
        encoder.write(UInt32(sortedMissed.count))
        for (key, heights) in sortedMissed {
            encoder.write(key: key)
            encoder.write(UInt32(heights.count))
            for height in heights { encoder.write(height) }
        }
        let sortedJailed = jailedUntil.sorted { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }
        encoder.write(UInt32(sortedJailed.count))
        for (key, until) in sortedJailed {
            encoder.write(key: key)
            encoder.write(until)
        }
        return encoder.bytes
    }

    /// Restores a stored state, checking that it hashes to `expectedHash` when one is given.
    public init(decoding bytes: [UInt8]) throws(LedgerError) {
        var decoder = CanonicalDecoder(bytes)
        let chainID = try ledgerDecode("chain state") { () throws(StratosError) -> String in
            guard try decoder.readString() == Self.domain else { throw StratosError(.invalidEncoding, "not a chain state") }
            return try decoder.readString(maxCount: LedgerLimits.chainIDBytesMax)
        }
        self.chainID = chainID
        parameters = try ledgerDecode("chain state") { () throws(StratosError) in try ChainParameters(from: &decoder) }
        (height, lastBlockID, lastBlockTimeMilliseconds) = try ledgerDecode("chain state") {
            () throws(StratosError) -> (UInt64, Hash256?, Int64) in (try decoder.readUInt64(), try decoder.readOptionalHash(), try decoder.readInt64())
        }
        let hasLast = try ledgerDecode("chain state") { () throws(StratosError) in try decoder.readBool() }
        lastValidators = hasLast ? try ValidatorSet(from: &decoder) : nil
        validators = try ValidatorSet(from: &decoder)
        nextValidators = try ValidatorSet(from: &decoder)
        appHash = MerkleTree.emptyRoot
        try ledgerDecode("chain state") { () throws(StratosError) in
            let accountCount = try decoder.readCount(max: 100_000_000)
            for _ in 0..<accountCount {
                let key = try decoder.readKey()
                accounts[key] = Account(balance: try decoder.readUInt64(), nonce: try decoder.readUInt64(), stake: try decoder.readUInt64())
            }
            let unbondingCount = try decoder.readCount(max: 100_000_000)
            for _ in 0..<unbondingCount {
                unbonding.append(Unbonding(owner: try decoder.readKey(), amount: try decoder.readUInt64(), releaseHeight: try decoder.readUInt64()))
            }
            let tombstoneCount = try decoder.readCount(max: 100_000_000)
            for _ in 0..<tombstoneCount { tombstoned.insert(try decoder.readKey()) }
            let anchorCount = try decoder.readCount(max: 100_000_000)
            for _ in 0..<anchorCount {
                let key = try decoder.readKey()
                anchors[key] = AnchorRecord(root: try decoder.readHash(), size: try decoder.readUInt64(), height: try decoder.readUInt64())
            }
            anchorBatchCount = try decoder.readUInt64()
            anchoredCommitCount = try decoder.readUInt64()
            for _ in 0..<(try decoder.readCount(max: 100_000_000)) {
                let key = try decoder.readKey()
                resourceNodes[key] = ResourceNode(types: try decoder.readUInt8(), deposit: try decoder.readUInt64(), registeredHeight: try decoder.readUInt64())
            }
            nextBanProposal = try decoder.readUInt64()
            for _ in 0..<(try decoder.readCount(max: LedgerLimits.banProposalsMax)) {
                let id = try decoder.readUInt64()
                let hash = try decoder.readHash()
                let proposer = try decoder.readKey()
                let created = try decoder.readUInt64()
                guard let status = BanProposal.Status(rawValue: try decoder.readUInt8()) else { throw StratosError(.invalidEncoding, "bad proposal status") }
                var votes: [PublicKey: Bool] = [:]
                for _ in 0..<(try decoder.readCount(max: 100_000_000)) { votes[try decoder.readKey()] = try decoder.readBool() }
                banProposals[id] = BanProposal(id: id, contentHash: hash, proposer: proposer, createdHeight: created, votes: votes, status: status)
            }
            for _ in 0..<(try decoder.readCount(max: 100_000_000)) { banned.insert(try decoder.readHash()) }
            for _ in 0..<(try decoder.readCount(max: LedgerLimits.validatorsCountMax * 100)) {
                let key = try decoder.readKey()
                var heights: [UInt64] = []
                for _ in 0..<(try decoder.readCount(max: 1_000_000)) { heights.append(try decoder.readUInt64()) }
                missedBlocks[key] = heights
            }
            for _ in 0..<(try decoder.readCount(max: 100_000_000)) { jailedUntil[try decoder.readKey()] = try decoder.readUInt64() }
            try decoder.finish()
        }
        appHash = computeHash()
    }

    /// The sum of balances, stakes and unbonding amounts (conserved except by slashing).
    public var totalSupply: UInt64 {
        accounts.values.reduce(0) { $0 + $1.balance + $1.stake } + unbonding.reduce(0) { $0 + $1.amount }
    }
}
