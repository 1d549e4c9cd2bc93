import Ledger
import StratosCore
import Testing

/// Tendermint Algorithm 1, rule by rule: each test feeds one validator's core the messages it
/// would receive and checks what it broadcasts.
@Suite struct ConsensusCoreTests {
    let fixture = Fixture()

    @Test("a single validator proposes, prevotes, precommits and decides in one step")
    func singleValidator() {
        let solo = Fixture(validatorCount: 1)
        var core = solo.core(for: solo.keys[0])
        var app = solo.application(for: solo.keys[0])
        app.nowMilliseconds = 5_000
        let actions = core.start(&app)
        #expect(actions.votes.map(\.type) == [.prevote, .precommit])
        #expect(actions.decisions.count == 1)
        let (block, commit) = actions.decisions[0]
        #expect(block.height == 1 && commit.blockID == block.id)
        #expect((try? commit.verify(validators: solo.validators, chainID: Fixture.chainID)) != nil)
        // Every signature is persisted before the message that carries it leaves.
        let order = actions.map { action -> String in
            switch action {
            case .persist: "persist"
            case .broadcastProposal: "proposal"
            case .broadcastVote: "vote"
            default: "other"
            }
        }.filter { $0 != "other" }
        #expect(order == ["persist", "proposal", "persist", "vote", "persist", "vote"])
    }

    /// A validator that is not the proposer of round 0 of height 1.
    var follower: SigningKey { fixture.keys.first { $0.publicKey != fixture.validators.proposer(round: 0) && $0.publicKey != fixture.validators.proposer(round: 1) && $0.publicKey != fixture.validators.proposer(round: 2) }! }
    func others(than key: SigningKey) -> [SigningKey] { fixture.keys.filter { $0.publicKey != key.publicKey } }

    @Test("line 22: a valid proposal gets a prevote; on timeout without one, a nil prevote (line 57)")
    func line22() {
        var core = fixture.core(for: follower)
        var app = fixture.application(for: follower)
        let start = core.start(&app)
        #expect(start.timeouts == [ConsensusTimeout(height: 1, round: 0, step: .propose)])
        let block = fixture.block(time: 2_000, proposer: fixture.validators.proposer(round: 0))
        let actions = core.handle(.proposal(fixture.proposal(block, round: 0), block), &app)
        #expect(actions.votes.map(\.blockID) == [block.id])

        var silent = fixture.core(for: follower)
        var silentApp = fixture.application(for: follower)
        _ = silent.start(&silentApp)
        let timedOut = silent.handle(.timeout(ConsensusTimeout(height: 1, round: 0, step: .propose)), &silentApp)
        #expect(timedOut.votes.count == 1 && timedOut.votes[0].blockID == nil)
    }

    @Test("a proposal signed by someone other than the round's proposer is ignored")
    func wrongProposer() {
        var core = fixture.core(for: follower)
        var app = fixture.application(for: follower)
        _ = core.start(&app)
        let block = fixture.block(time: 2_000)
        let impostor = fixture.keys.first { $0.publicKey != fixture.validators.proposer(round: 0) }!
        let forged = Proposal(height: 1, round: 0, polRound: -1, blockID: block.id, chainID: Fixture.chainID, key: impostor)
        #expect(core.handle(.proposal(forged, block), &app).votes.isEmpty)
    }

    /// Locks `key`'s core on `block` in round 0 (proposal plus a polka of the three others),
    /// then moves it to round 1 on the precommit timeout.
    func lockedInRoundZero(_ key: SigningKey, on block: Block) -> (ConsensusCore, ChainApplication) {
        var core = fixture.core(for: key)
        var app = fixture.application(for: key)
        _ = core.start(&app)
        _ = core.handle(.proposal(fixture.proposal(block, round: 0), block), &app)
        var locked: [ConsensusAction] = []
        for other in others(than: key).prefix(2) { locked += core.handle(.vote(fixture.vote(.prevote, round: 0, block, by: other)), &app) }
        #expect(locked.votes.map(\.type) == [.precommit] && locked.votes[0].blockID == block.id, "line 36 locks and precommits")
        #expect(core.lockedRound == 0 && core.lockedValue?.id == block.id)
        for other in others(than: key).prefix(2) { _ = core.handle(.vote(fixture.vote(.precommit, round: 0, nil, by: other)), &app) }
        _ = core.handle(.timeout(ConsensusTimeout(height: 1, round: 0, step: .precommit)), &app)
        #expect(core.round == 1)
        return (core, app)
    }

    @Test("line 22 with a lock: a new value with no polka gets a nil prevote")
    func lockedRefusesNewValue() {
        let v = fixture.block(time: 2_000, proposer: fixture.validators.proposer(round: 0))
        var (core, app) = lockedInRoundZero(follower, on: v)
        let other = fixture.block(time: 3_000, proposer: fixture.validators.proposer(round: 1))
        let actions = core.handle(.proposal(fixture.proposal(other, round: 1), other), &app)
        #expect(actions.votes.count == 1 && actions.votes[0].blockID == nil)
    }

    @Test("line 28, the unlock rule: locked on v in round 0, a proposal of v' with a round-1 polka gets a prevote in round 2")
    func line28Unlock() {
        let v = fixture.block(time: 2_000, proposer: fixture.validators.proposer(round: 0))
        var (core, app) = lockedInRoundZero(follower, on: v)
        // Round 1: this validator never sees the proposal and prevotes nil on timeout.
        let round1 = core.handle(.timeout(ConsensusTimeout(height: 1, round: 1, step: .propose)), &app)
        #expect(round1.votes.map(\.blockID) == [nil])
        // Round 2 messages from two validators (more than 1/3) make it skip ahead (line 55).
        let vPrime = fixture.block(time: 3_000, proposer: fixture.validators.proposer(round: 1))
        for other in others(than: follower).prefix(2) { _ = core.handle(.vote(fixture.vote(.prevote, round: 2, nil, by: other)), &app) }
        #expect(core.round == 2 && core.step == .propose)
        // The round-1 polka for v' arrives late, then round 2's proposer re-proposes v' with polRound 1.
        for other in others(than: follower) { _ = core.handle(.vote(fixture.vote(.prevote, round: 1, vPrime, by: other)), &app) }
        let proposal = Proposal(height: 1, round: 2, polRound: 1, blockID: vPrime.id, chainID: Fixture.chainID, key: fixture.proposer(round: 2))
        let actions = core.handle(.proposal(proposal, vPrime), &app)
        #expect(actions.votes.first?.type == .prevote && actions.votes.first?.blockID == vPrime.id, "lockedRound 0 ≤ validRound 1: prevote v'")
    }

    @Test("line 28 without the polka: the re-proposal waits, then gets a nil prevote on timeout")
    func line28NeedsPolka() {
        let v = fixture.block(time: 2_000, proposer: fixture.validators.proposer(round: 0))
        var (core, app) = lockedInRoundZero(follower, on: v)
        _ = core.handle(.timeout(ConsensusTimeout(height: 1, round: 1, step: .propose)), &app)
        let vPrime = fixture.block(time: 3_000)
        for other in others(than: follower).prefix(2) { _ = core.handle(.vote(fixture.vote(.prevote, round: 2, nil, by: other)), &app) }
        _ = core.handle(.vote(fixture.vote(.prevote, round: 1, vPrime, by: others(than: follower)[0])), &app)
        let proposal = Proposal(height: 1, round: 2, polRound: 1, blockID: vPrime.id, chainID: Fixture.chainID, key: fixture.proposer(round: 2))
        #expect(core.handle(.proposal(proposal, vPrime), &app).votes.isEmpty)
        let timedOut = core.handle(.timeout(ConsensusTimeout(height: 1, round: 2, step: .propose)), &app)
        // Its nil prevote completes a nil polka with the two round-2 prevotes: a nil precommit follows (line 44).
        #expect(timedOut.votes.map(\.type) == [.prevote, .precommit])
        #expect(timedOut.votes.map(\.blockID) == [nil, nil])
    }

    @Test("line 44: a polka for nil gives a nil precommit; line 49 decides in a later round")
    func nilPolkaThenDecide() {
        var core = fixture.core(for: follower)
        var app = fixture.application(for: follower)
        _ = core.start(&app)
        _ = core.handle(.timeout(ConsensusTimeout(height: 1, round: 0, step: .propose)), &app)
        var actions: [ConsensusAction] = []
        for other in others(than: follower).prefix(2) { actions += core.handle(.vote(fixture.vote(.prevote, round: 0, nil, by: other)), &app) }
        #expect(actions.votes.map(\.type) == [.precommit] && actions.votes[0].blockID == nil)
        // A decision can come from precommits of any round, with the proposal of that round.
        let block = fixture.block(time: 4_000, proposer: fixture.validators.proposer(round: 3))
        _ = core.handle(.proposal(fixture.proposal(block, round: 3), block), &app)
        var decided: [ConsensusAction] = []
        for other in others(than: follower) { decided += core.handle(.vote(fixture.vote(.precommit, round: 3, block, by: other)), &app) }
        #expect(decided.decisions.count == 1 && decided.decisions[0].0.id == block.id)
        #expect(decided.decisions[0].1.round == 3 && decided.decisions[0].1.signatures.count == 3)
    }

    @Test("a validator that votes twice differently is reported, once, as duplicate-vote evidence")
    func equivocationIsReported() {
        var core = fixture.core(for: follower)
        var app = fixture.application(for: follower)
        _ = core.start(&app)
        let cheat = others(than: follower)[0]
        let block = fixture.block(time: 2_000)
        var actions = core.handle(.vote(fixture.vote(.prevote, round: 0, block, by: cheat)), &app)
        actions += core.handle(.vote(fixture.vote(.prevote, round: 0, nil, by: cheat)), &app)
        actions += core.handle(.vote(fixture.vote(.prevote, round: 0, fixture.block(time: 9_000), by: cheat)), &app)
        #expect(actions.evidence.count == 1)
        #expect(actions.evidence.first?.validator == cheat.publicKey)
        #expect((try? actions.evidence.first?.verify(chainID: Fixture.chainID)) != nil)
        // Evidence signed for another chain does not verify here.
        #expect((try? actions.evidence.first?.verify(chainID: "other-chain")) == nil)
    }

    @Test("the double-sign guard: after a restart a validator re-sends what it signed, and signs nothing conflicting")
    func doubleSignGuard() {
        var core = fixture.core(for: follower)
        var app = fixture.application(for: follower)
        _ = core.start(&app)
        let block = fixture.block(time: 2_000)
        let first = core.handle(.proposal(fixture.proposal(block, round: 0), block), &app)
        let signed = first.compactMap { if case .persist(let record) = $0 { record } else { nil } }
        #expect(signed.count == 1)
        // Restarted with the log but without the proposal: the timeout would prevote nil, which
        // conflicts with the signed prevote — the guard refuses it.
        var restarted = ConsensusCore(
            chainID: Fixture.chainID, height: 1, validators: fixture.validators, key: follower, timeouts: ConsensusTimeouts(), signed: signed)
        var app2 = fixture.application(for: follower)
        _ = restarted.start(&app2)
        let timeout = restarted.handle(.timeout(ConsensusTimeout(height: 1, round: 0, step: .propose)), &app2)
        #expect(timeout.votes.isEmpty)
        // Replaying the proposal gives the very same vote (same signature, nothing new persisted).
        var replayed = ConsensusCore(
            chainID: Fixture.chainID, height: 1, validators: fixture.validators, key: follower, timeouts: ConsensusTimeouts(), signed: signed)
        var app3 = fixture.application(for: follower)
        _ = replayed.start(&app3)
        let again = replayed.handle(.proposal(fixture.proposal(block, round: 0), block), &app3)
        #expect(again.votes == first.votes)
        #expect(!again.contains { if case .persist = $0 { true } else { false } })
    }

    @Test("timeouts grow with the round: init + round · delta")
    func timeoutsGrow() {
        var core = fixture.core(for: follower)
        var app = fixture.application(for: follower)
        var actions = core.start(&app)
        for other in others(than: follower).prefix(2) { actions += core.handle(.vote(fixture.vote(.prevote, round: 5, nil, by: other)), &app) }
        let scheduled = actions.compactMap { if case .scheduleTimeout(let timeout, let ms) = $0 { (timeout.round, ms) } else { nil } }
        #expect(scheduled.map(\.0) == [0, 5])
        #expect(scheduled.map(\.1) == [3_000, 3_000 + 5 * 500])
    }

    @Test("votes for another chain, height or from outside the set are ignored")
    func foreignVotes() {
        var core = fixture.core(for: follower)
        var app = fixture.application(for: follower)
        _ = core.start(&app)
        let block = fixture.block(time: 2_000)
        let outsider = try! SigningKey(seed: [UInt8](repeating: 9, count: 32))
        let foreign = Vote(type: .prevote, height: 1, round: 0, blockID: block.id, chainID: "other", key: fixture.keys[1])
        for vote in [foreign, fixture.vote(.prevote, round: 0, block, by: outsider), fixture.vote(.prevote, round: 0, block, by: fixture.keys[1], height: 2)] {
            #expect(core.handle(.vote(vote), &app).isEmpty)
        }
    }
}
