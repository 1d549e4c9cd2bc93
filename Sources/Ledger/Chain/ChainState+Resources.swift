import StratosCore

/// A registered resource node (Stratos's resource layer).
public struct ResourceNode: Hashable, Sendable {
    /// Type bits: storage 4, database 2, computation 1.
    public var types: UInt8
    public var deposit: UInt64
    public var registeredHeight: UInt64

    public init(types: UInt8, deposit: UInt64, registeredHeight: UInt64) {
        self.types = types
        self.deposit = deposit
        self.registeredHeight = registeredHeight
    }

    public static let storage: UInt8 = 4
    public static let database: UInt8 = 2
    public static let computation: UInt8 = 1
}

/// A proposal to ban content by its hash, decided by the stake of those who vote for it.
public struct BanProposal: Hashable, Sendable {
    public enum Status: UInt8, Sendable { case open = 0, passed = 1, rejected = 2 }
    public let id: UInt64
    public let contentHash: Hash256
    public let proposer: PublicKey
    public let createdHeight: UInt64
    /// Votes by staker: true approves.
    public var votes: [PublicKey: Bool]
    public var status: Status
}

extension ChainState {
    /// The staked power approving proposal `id`, and all staked power (stake of keys that are
    /// not tombstoned), both in micro-units.
    public func tally(_ proposal: BanProposal) -> (approving: UInt64, total: UInt64) {
        var total: UInt64 = 0
        for (key, account) in accounts where !tombstoned.contains(key) { total += account.stake }
        var approving: UInt64 = 0
        for (key, approve) in proposal.votes where approve && !tombstoned.contains(key) { approving += accounts[key]?.stake ?? 0 }
        return (approving, total)
    }

    /// Whether content with this hash is banned.
    public func isBanned(_ contentHash: Hash256) -> Bool { banned.contains(contentHash) }

    /// The resource-node and governance transactions.
    mutating func applyResourceOrGovernance(_ body: TransactionBody, sender: PublicKey, account: inout Account, height: UInt64) throws(LedgerError) {
        switch body {
        case .registerResourceNode(let types, let deposit):
            guard (1...7).contains(types) else { throw LedgerError(.invalidTransaction, "resource node types are bits: storage 4, database 2, computation 1") }
            guard account.balance >= deposit else { throw LedgerError(.insufficientFunds, "the balance cannot pay a deposit of \(deposit)") }
            let total = (resourceNodes[sender]?.deposit ?? 0) + deposit
            guard total >= parameters.resourceNodeDepositMinimum else {
                throw LedgerError(.invalidTransaction, "a resource node deposits at least \(parameters.resourceNodeDepositMinimum)")
            }
            account.balance -= deposit
            resourceNodes[sender] = ResourceNode(types: types, deposit: total, registeredHeight: resourceNodes[sender]?.registeredHeight ?? height)
        case .unregisterResourceNode:
            guard let node = resourceNodes[sender] else { throw LedgerError(.invalidTransaction, "the sender is not a resource node") }
            resourceNodes[sender] = nil
            unbonding.append(Unbonding(owner: sender, amount: node.deposit, releaseHeight: height + parameters.unbondingBlocks))
        case .proposeBan(let contentHash):
            guard account.stake >= parameters.stakePerPower else { throw LedgerError(.invalidTransaction, "only a staker with voting power may propose a ban") }
            guard !banned.contains(contentHash), !banProposals.values.contains(where: { $0.contentHash == contentHash && $0.status == .open }) else {
                throw LedgerError(.invalidTransaction, "that content is already banned or under a vote")
            }
            guard banProposals.count < LedgerLimits.banProposalsMax else { throw LedgerError(.limitExceeded, "too many ban proposals") }
            nextBanProposal += 1
            banProposals[nextBanProposal] = BanProposal(
                id: nextBanProposal, contentHash: contentHash, proposer: sender, createdHeight: height, votes: [sender: true], status: .open)
        case .voteBan(let id, let approve):
            guard account.stake > 0 else { throw LedgerError(.invalidTransaction, "only stakers vote") }
            guard var proposal = banProposals[id], proposal.status == .open else { throw LedgerError(.invalidTransaction, "no open proposal \(id)") }
            proposal.votes[sender] = approve
            banProposals[id] = proposal
        case .unjail:
            guard let until = jailedUntil[sender] else { throw LedgerError(.invalidTransaction, "the sender is not jailed") }
            guard height >= until else { throw LedgerError(.invalidTransaction, "jailed until height \(until)") }
            jailedUntil[sender] = nil
        default:
            preconditionFailure("not a resource or governance transaction")
        }
    }

    /// After a block's transactions: decide ban proposals that reached > 2/3 of the staked power,
    /// and close those whose voting period ended.
    mutating func tallyBanProposals(height: UInt64) {
        for id in banProposals.keys.sorted() {
            guard var proposal = banProposals[id], proposal.status == .open else { continue }
            let (approving, total) = tally(proposal)
            if total > 0, approving.multipliedReportingOverflow(by: 3).partialValue > total.multipliedReportingOverflow(by: 2).partialValue {
                proposal.status = .passed
                banned.insert(proposal.contentHash)
            } else if height >= proposal.createdHeight + parameters.governanceVotingBlocks {
                proposal.status = .rejected
            } else {
                continue
            }
            banProposals[id] = proposal
        }
    }

    /// Downtime (Cosmos `x/slashing`): the last commit shows which validators of the previous
    /// height signed; one that missed more than the allowed share of the window is jailed for
    /// `downtimeJailBlocks`, loses `downtimeSlashBasisPoints` of its stake, and leaves the set at
    /// H+2 until it sends `unjail`.
    mutating func recordSignatures(_ lastCommit: Commit?, height: UInt64) {
        guard let lastCommit, let signers = lastValidators else { return }
        let signed = Set(lastCommit.signatures.map(\.validator))
        let oldest = height > parameters.signedBlocksWindow ? height - parameters.signedBlocksWindow : 0
        let allowed = parameters.signedBlocksWindow - parameters.signedBlocksWindow * parameters.minimumSignedPercent / 100
        for validator in signers.validators where !signed.contains(validator.publicKey) {
            var missed = missedBlocks[validator.publicKey, default: []]
            missed.removeAll { $0 < oldest }
            missed.append(lastCommit.height)
            if UInt64(missed.count) > allowed, jailedUntil[validator.publicKey] == nil {
                jailedUntil[validator.publicKey] = height + parameters.downtimeJailBlocks
                if var account = accounts[validator.publicKey] {
                    account.stake -= account.stake / 10_000 * parameters.downtimeSlashBasisPoints
                        + account.stake % 10_000 * parameters.downtimeSlashBasisPoints / 10_000
                    accounts[validator.publicKey] = account
                }
                missed = []
            }
            missedBlocks[validator.publicKey] = missed.isEmpty ? nil : missed
        }
        // Forget old misses of validators that sign again.
        for (key, list) in missedBlocks where signed.contains(key) {
            let kept = list.filter { $0 >= oldest }
            missedBlocks[key] = kept.isEmpty ? nil : kept
        }
    }
}
