import Ledger
import StratosCore
import Testing

/// The chain state machine: accounts, fees, nonces, staking with H+2 validator changes,
/// slashing, and a deterministic app hash.
@Suite struct ChainStateTests {
    let fixture = Fixture()

    /// Decides `transactions` in the next block with a real commit from every validator.
    func decide(
        _ state: inout ChainState, _ transactions: [Transaction], evidence: [DuplicateVoteEvidence] = [], lastCommit: inout Commit?,
        absent: Set<PublicKey> = []
    ) throws {
        var app = ChainApplication(state: state, proposerKey: state.validators.proposer, lastCommit: lastCommit)
        for transaction in transactions { app.submit(transaction.encoded) }
        app.nowMilliseconds = state.lastBlockTimeMilliseconds + 1_000
        let proposed = app.proposeBlock(height: state.height + 1, round: 0)
        let block: Block
        if evidence.isEmpty {
            block = proposed
        } else {
            var header = proposed.header
            header.evidenceHash = Block.evidenceHash(evidence)
            block = Block(header: header, transactions: proposed.transactions, evidence: evidence, lastCommit: proposed.lastCommit)
        }
        try state.apply(block)
        let signers = state.lastValidators!.validators.compactMap { validator in
            absent.contains(validator.publicKey) ? nil : fixture.keys.first { $0.publicKey == validator.publicKey }
        }
        lastCommit = Commit(
            height: block.height, round: 0, blockID: block.id,
            signatures: signers.map { CommitSignature(validator: $0.publicKey, signature: $0.sign(Vote.signBytes(type: .precommit, height: block.height, round: 0, blockID: block.id, chainID: Fixture.chainID))) })
    }

    @Test("a transfer moves the amount, charges the fee to the proposer, and advances the nonce")
    func transfer() throws {
        var state = fixture.state
        var last: Commit?
        let alice = fixture.keys[0], bob = fixture.keys[1]
        let proposer = state.validators.proposer
        let before = state.accounts[proposer]!.balance
        let supply = state.totalSupply
        try decide(&state, [Transaction(chainID: Fixture.chainID, key: alice, nonce: 0, fee: 10, body: .transfer(to: bob.publicKey, amount: 500))], lastCommit: &last)
        #expect(state.accounts[alice.publicKey]!.nonce == 1)
        #expect(state.accounts[bob.publicKey]!.balance == 100_000_000 + 500 + (proposer == bob.publicKey ? 10 : 0))
        #expect(state.accounts[proposer]!.balance >= before + (proposer == alice.publicKey ? 0 : 10))
        #expect(state.totalSupply == supply, "transfers and fees conserve the supply")
    }

    @Test("refused: replayed nonce, fee below the minimum, more than the balance, wrong chain, unknown sender")
    func refusals() throws {
        var state = fixture.state
        let alice = fixture.keys[0]
        let stranger = try SigningKey(seed: [UInt8](repeating: 3, count: 32))
        let cases: [(Transaction, LedgerError.Code)] = [
            (Transaction(chainID: Fixture.chainID, key: alice, nonce: 5, fee: 10, body: .transfer(to: stranger.publicKey, amount: 1)), .badNonce),
            (Transaction(chainID: Fixture.chainID, key: alice, nonce: 0, fee: 1, body: .transfer(to: stranger.publicKey, amount: 1)), .invalidTransaction),
            (Transaction(chainID: Fixture.chainID, key: alice, nonce: 0, fee: 10, body: .transfer(to: stranger.publicKey, amount: 1_000_000_000)), .insufficientFunds),
            (Transaction(chainID: "other", key: alice, nonce: 0, fee: 10, body: .transfer(to: stranger.publicKey, amount: 1)), .invalidSignature),
            (Transaction(chainID: Fixture.chainID, key: stranger, nonce: 0, fee: 10, body: .transfer(to: alice.publicKey, amount: 1)), .unknownAccount),
        ]
        for (transaction, code) in cases {
            #expect(throws: LedgerError.self) { try state.apply(transaction, height: 1) }
            do { try state.apply(transaction, height: 1) } catch { #expect(error.code == code) }
        }
    }

    @Test("staking changes the validator set two blocks later (H+2), unstaking returns the balance after unbonding")
    func stakingAtHPlusTwo() throws {
        var state = fixture.state
        var last: Commit?
        let newcomer = try SigningKey(seed: [UInt8](repeating: 4, count: 32))
        let funder = fixture.keys[0]
        try decide(&state, [Transaction(chainID: Fixture.chainID, key: funder, nonce: 0, fee: 10, body: .transfer(to: newcomer.publicKey, amount: 20_000_000))], lastCommit: &last)
        try decide(&state, [Transaction(chainID: Fixture.chainID, key: newcomer, nonce: 0, fee: 10, body: .stake(amount: 10_000_000))], lastCommit: &last)
        let stakedAt = state.height
        #expect(!state.validators.contains(newcomer.publicKey), "not a validator of H+1")
        #expect(state.nextValidators.contains(newcomer.publicKey), "a validator of H+2")
        try decide(&state, [], lastCommit: &last)
        #expect(state.height == stakedAt + 1 && state.validators.contains(newcomer.publicKey))
        #expect(state.validators.power(of: newcomer.publicKey) == 10)

        // Unstake everything: out of the set at H+2, the balance back after the unbonding period.
        let balance = state.accounts[newcomer.publicKey]!.balance
        try decide(&state, [Transaction(chainID: Fixture.chainID, key: newcomer, nonce: 1, fee: 10, body: .unstake(amount: 10_000_000))], lastCommit: &last)
        #expect(!state.nextValidators.contains(newcomer.publicKey))
        #expect(state.accounts[newcomer.publicKey]!.balance == balance - 10)
        let unstakedAt = state.height
        while state.height < unstakedAt + state.parameters.unbondingBlocks - 1 { try decide(&state, [], lastCommit: &last) }
        #expect(state.accounts[newcomer.publicKey]!.balance == balance - 10, "still unbonding")
        try decide(&state, [], lastCommit: &last)
        #expect(state.accounts[newcomer.publicKey]!.balance == balance - 10 + 10_000_000)
    }

    @Test("the app hash is a function of the blocks: two replicas agree, and a different block differs")
    func appHashDeterministic() throws {
        var a = fixture.state, b = fixture.state
        var lastA: Commit?, lastB: Commit?
        let transfer = Transaction(chainID: Fixture.chainID, key: fixture.keys[0], nonce: 0, fee: 10, body: .transfer(to: fixture.keys[2].publicKey, amount: 7))
        try decide(&a, [transfer], lastCommit: &lastA)
        try decide(&b, [transfer], lastCommit: &lastB)
        #expect(a.appHash == b.appHash)
        var c = fixture.state
        var lastC: Commit?
        try decide(&c, [], lastCommit: &lastC)
        #expect(c.appHash != a.appHash)
        // A stored state decodes to the same hash.
        #expect(try ChainState(decoding: a.encoded).appHash == a.appHash)
    }

    @Test("double-sign evidence slashes 5 % of stake, tombstones the validator, and removes it from the set at H+2")
    func slashing() throws {
        var state = fixture.state
        var last: Commit?
        try decide(&state, [], lastCommit: &last)
        let cheat = fixture.keys[1]
        let voteA = Vote(type: .prevote, height: 1, round: 0, blockID: Hash256.sha256([1]), chainID: Fixture.chainID, key: cheat)
        let voteB = Vote(type: .prevote, height: 1, round: 0, blockID: nil, chainID: Fixture.chainID, key: cheat)
        let stake = state.accounts[cheat.publicKey]!.stake
        try decide(&state, [], evidence: [DuplicateVoteEvidence(voteA, voteB)], lastCommit: &last)
        #expect(state.tombstoned.contains(cheat.publicKey))
        #expect(state.accounts[cheat.publicKey]!.stake == stake - stake / 20)
        #expect(state.validators.contains(cheat.publicKey), "still in the set of H+1")
        #expect(!state.nextValidators.contains(cheat.publicKey), "gone from the set of H+2")
        try decide(&state, [], lastCommit: &last)
        #expect(!state.validators.contains(cheat.publicKey))
        // The same evidence again is refused (already tombstoned).
        var copy = state
        #expect(throws: LedgerError.self) { try self.decide(&copy, [], evidence: [DuplicateVoteEvidence(voteA, voteB)], lastCommit: &last) }
    }

    @Test("a validator that double-signs and then unstakes everything is still slashed from its unbonding stake")
    func noEscapeByUnstaking() throws {
        var state = fixture.state
        var last: Commit?
        try decide(&state, [], lastCommit: &last)
        let cheat = fixture.keys[2]
        let voteA = Vote(type: .precommit, height: 1, round: 0, blockID: Hash256.sha256([2]), chainID: Fixture.chainID, key: cheat)
        let voteB = Vote(type: .precommit, height: 1, round: 0, blockID: Hash256.sha256([3]), chainID: Fixture.chainID, key: cheat)
        try decide(&state, [Transaction(chainID: Fixture.chainID, key: cheat, nonce: 0, fee: 10, body: .unstake(amount: 10_000_000))], lastCommit: &last)
        for _ in 0..<3 { try decide(&state, [], lastCommit: &last) }
        #expect(!state.validators.contains(cheat.publicKey) && state.isPunishable(cheat.publicKey))
        try decide(&state, [], evidence: [DuplicateVoteEvidence(voteA, voteB)], lastCommit: &last)
        #expect(state.tombstoned.contains(cheat.publicKey))
        #expect(state.unbonding.first { $0.owner == cheat.publicKey }?.amount == 9_500_000)
    }

    @Test("a resource node registers with types and a deposit, and its deposit returns after unbonding when it retires")
    func resourceNodes() throws {
        var state = fixture.state
        var last: Commit?
        let node = fixture.keys[1]
        let tooSmall = Transaction(chainID: Fixture.chainID, key: node, nonce: 0, fee: 10, body: .registerResourceNode(types: 4, deposit: 10))
        #expect(throws: LedgerError.self) { var copy = state; try copy.apply(tooSmall, height: 1) }
        #expect(throws: LedgerError.self) {
            var copy = state
            try copy.apply(Transaction(chainID: Fixture.chainID, key: node, nonce: 0, fee: 10, body: .registerResourceNode(types: 8, deposit: 2_000_000)), height: 1)
        }
        let balance = state.accounts[node.publicKey]!.balance
        try decide(&state, [Transaction(chainID: Fixture.chainID, key: node, nonce: 0, fee: 10, body: .registerResourceNode(types: ResourceNode.storage | ResourceNode.database, deposit: 2_000_000))], lastCommit: &last)
        #expect(state.resourceNodes[node.publicKey] == ResourceNode(types: 6, deposit: 2_000_000, registeredHeight: 1))
        try decide(&state, [Transaction(chainID: Fixture.chainID, key: node, nonce: 1, fee: 10, body: .unregisterResourceNode)], lastCommit: &last)
        #expect(state.resourceNodes[node.publicKey] == nil)
        while state.height < 2 + state.parameters.unbondingBlocks { try decide(&state, [], lastCommit: &last) }
        // The deposit is back (less the two fees, plus any fees it earned as a proposer).
        #expect(state.accounts[node.publicKey]!.balance >= balance - 20 && state.accounts[node.publicKey]!.balance <= balance)
        #expect(!state.unbonding.contains { $0.owner == node.publicKey })
        #expect(state.totalSupply == fixture.state.totalSupply)
    }

    @Test("a ban passes when stakers with more than 2/3 of the staked power approve, and a proposal without them expires")
    func banGovernance() throws {
        var state = fixture.state
        var last: Commit?
        let content = Hash256.sha256(Array("bad content".utf8))
        try decide(&state, [Transaction(chainID: Fixture.chainID, key: fixture.keys[0], nonce: 0, fee: 10, body: .proposeBan(contentHash: content))], lastCommit: &last)
        let id = try #require(state.banProposals.keys.first)
        #expect(state.tally(state.banProposals[id]!) == (10_000_000, 40_000_000))
        // Two of four equal stakers: exactly half, not more than 2/3.
        try decide(&state, [Transaction(chainID: Fixture.chainID, key: fixture.keys[1], nonce: 0, fee: 10, body: .voteBan(proposal: id, approve: true))], lastCommit: &last)
        #expect(!state.isBanned(content))
        // A third approval: 3/4 of the power.
        try decide(&state, [Transaction(chainID: Fixture.chainID, key: fixture.keys[2], nonce: 0, fee: 10, body: .voteBan(proposal: id, approve: true))], lastCommit: &last)
        #expect(state.isBanned(content) && state.banProposals[id]?.status == .passed)
        // Voting on a decided proposal is refused; proposing it again too.
        #expect(throws: LedgerError.self) { var copy = state; try copy.apply(Transaction(chainID: Fixture.chainID, key: fixture.keys[3], nonce: 0, fee: 10, body: .voteBan(proposal: id, approve: false)), height: 9) }
        // A proposal nobody else supports is rejected when its voting period ends.
        let other = Hash256.sha256(Array("other".utf8))
        try decide(&state, [Transaction(chainID: Fixture.chainID, key: fixture.keys[3], nonce: 0, fee: 10, body: .proposeBan(contentHash: other))], lastCommit: &last)
        let second = state.nextBanProposal
        for _ in 0..<state.parameters.governanceVotingBlocks { try decide(&state, [], lastCommit: &last) }
        #expect(state.banProposals[second]?.status == .rejected && !state.isBanned(other))
        #expect(try ChainState(decoding: state.encoded).appHash == state.appHash)
    }

    @Test("a validator that misses more than half the window is jailed, slashed 1 %, leaves the set, and returns with unjail")
    func downtimeJail() throws {
        var state = fixture.state
        var last: Commit?
        let sleeper = fixture.keys[3]
        try decide(&state, [], lastCommit: &last)
        let stake = state.accounts[sleeper.publicKey]!.stake
        // Window 10: missing 6 blocks (more than 5) jails.
        for _ in 0..<6 { try decide(&state, [], lastCommit: &last, absent: [sleeper.publicKey]) }
        var jailedAt = state.height
        while state.jailedUntil[sleeper.publicKey] == nil && state.height < 20 {
            try decide(&state, [], lastCommit: &last, absent: [sleeper.publicKey])
            jailedAt = state.height
        }
        let until = try #require(state.jailedUntil[sleeper.publicKey])
        #expect(until == jailedAt + state.parameters.downtimeJailBlocks)
        #expect(state.accounts[sleeper.publicKey]!.stake == stake - stake / 100)
        #expect(!state.nextValidators.contains(sleeper.publicKey))
        try decide(&state, [], lastCommit: &last, absent: [sleeper.publicKey])
        #expect(!state.validators.contains(sleeper.publicKey))
        // Too early to unjail; after the term it rejoins two blocks later.
        let unjail = Transaction(chainID: Fixture.chainID, key: sleeper, nonce: 0, fee: 10, body: .unjail)
        #expect(throws: LedgerError.self) { var copy = state; try copy.apply(unjail, height: state.height + 1) }
        while state.height + 1 < until { try decide(&state, [], lastCommit: &last) }
        try decide(&state, [unjail], lastCommit: &last)
        #expect(state.jailedUntil[sleeper.publicKey] == nil && state.nextValidators.contains(sleeper.publicKey))
        // A validator that signs keeps its place.
        #expect(state.validators.contains(fixture.keys[0].publicKey) && state.missedBlocks[fixture.keys[0].publicKey] == nil)
    }

    @Test("a genesis whose evidence outlives the unbonding period is refused")
    func evidenceAgeWithinUnbonding() {
        var parameters = ChainParameters()
        parameters.evidenceMaxAgeBlocks = parameters.unbondingBlocks + 1
        let genesis = Genesis(chainID: "x", timeMilliseconds: 1, accounts: [Genesis.Account(key: fixture.keys[0].publicKey, balance: 1, stake: 1_000_000)], parameters: parameters)
        #expect(throws: LedgerError.self) { try ChainState(genesis: genesis) }
    }

    @Test("a block that breaks a rule is refused: wrong height, app hash, validators, or a forged last commit")
    func invalidBlocks() throws {
        var state = fixture.state
        var last: Commit?
        try decide(&state, [], lastCommit: &last)
        var app = ChainApplication(state: state, proposerKey: state.validators.proposer, lastCommit: last)
        app.nowMilliseconds = state.lastBlockTimeMilliseconds + 1_000
        let good = app.proposeBlock(height: 2, round: 0)
        #expect(app.isValid(good))
        var mutations: [(String, (inout BlockHeader) -> Void)] = [
            ("height", { $0.height = 3 }), ("appHash", { $0.appHash = Hash256.sha256([9]) }),
            ("validatorsHash", { $0.validatorsHash = Hash256.sha256([8]) }), ("time", { $0.timeMilliseconds = 0 }),
            ("lastBlockID", { $0.lastBlockID = Hash256.sha256([7]) }), ("chain", { $0.chainID = "x" }),
        ]
        mutations.append(("dataHash", { $0.dataHash = Hash256.sha256([6]) }))
        for (name, mutate) in mutations {
            var header = good.header
            mutate(&header)
            let bad = Block(header: header, transactions: good.transactions, evidence: good.evidence, lastCommit: good.lastCommit)
            #expect(!app.isValid(bad), "a wrong \(name) must be refused")
        }
        // A last commit signed by only two of four validators is not a quorum.
        let thin = Commit(height: 1, round: 0, blockID: last!.blockID, signatures: Array(last!.signatures.prefix(2)))
        var header = good.header
        header.lastCommitHash = thin.hash
        #expect(!app.isValid(Block(header: header, transactions: [], evidence: [], lastCommit: thin)))
    }
}
