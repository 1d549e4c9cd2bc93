import Ledger
import StratosCore
import Testing

/// The "more than 1/3 faulty" scenario: two of four validators equivocate, the two honest ones
/// decide different blocks, and the two commits name exactly the equivocators (accountable
/// safety: disagreement needs f+1 faulty validators, and never frames an honest one).
@Suite struct AccountabilityTests {
    @Test("> 1/3 faulty: disagreement happens only with equivocation, and the commits convict f+1 equivocators")
    func disagreementYieldsEvidence() throws {
        let fixture = Fixture()
        let proposerKey = fixture.proposer(round: 0)
        let faulty = [proposerKey] + [fixture.keys.first { $0.publicKey != proposerKey.publicKey }!]
        let honest = fixture.keys.filter { key in !faulty.contains { $0.publicKey == key.publicKey } }
        let x = fixture.block(time: 2_000, proposer: proposerKey.publicKey)
        let y = fixture.block(time: 2_001, proposer: proposerKey.publicKey)
        #expect(x.id != y.id)
        var commits: [Commit] = []
        for (target, value) in zip(honest, [x, y]) {
            var core = fixture.core(for: target)
            var app = fixture.application(for: target)
            _ = core.start(&app)
            // The faulty proposer shows each honest validator a different block; the faulty
            // validators prevote and precommit whatever that validator was shown.
            _ = core.handle(.proposal(fixture.proposal(value, round: 0), value), &app)
            for bad in faulty { _ = core.handle(.vote(fixture.vote(.prevote, round: 0, value, by: bad)), &app) }
            var decided: [ConsensusAction] = []
            for bad in faulty { decided += core.handle(.vote(fixture.vote(.precommit, round: 0, value, by: bad)), &app) }
            #expect(decided.decisions.count == 1)
            commits.append(try #require(decided.decisions.first?.1))
        }
        #expect(commits[0].blockID != commits[1].blockID, "the two honest validators disagree")
        let evidence = Accountability.evidence(commits[0], commits[1], chainID: Fixture.chainID)
        let convicted = Set(evidence.map(\.validator))
        #expect(convicted == Set(faulty.map(\.publicKey)), "exactly the equivocators are convicted")
        #expect(fixture.validators.isOneThird(convicted.reduce(0) { $0 + fixture.validators.power(of: $1) }), "more than 1/3 of the power")
        for item in evidence { #expect((try? item.verify(chainID: Fixture.chainID)) != nil) }
    }

    @Test("with at most 1/3 faulty, the same attack decides nothing: one honest vote is missing from each side")
    func oneThirdCannotSplit() {
        let fixture = Fixture()
        let proposerKey = fixture.proposer(round: 0)
        let honest = fixture.keys.filter { $0.publicKey != proposerKey.publicKey }
        let x = fixture.block(time: 2_000, proposer: proposerKey.publicKey)
        var core = fixture.core(for: honest[0])
        var app = fixture.application(for: honest[0])
        _ = core.start(&app)
        _ = core.handle(.proposal(fixture.proposal(x, round: 0), x), &app)
        var actions = core.handle(.vote(fixture.vote(.prevote, round: 0, x, by: proposerKey)), &app)
        actions += core.handle(.vote(fixture.vote(.precommit, round: 0, x, by: proposerKey)), &app)
        #expect(actions.decisions.isEmpty)
    }
}
