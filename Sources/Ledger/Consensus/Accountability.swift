import StratosCore

/// Who is to blame when two blocks were decided at one height (accountable safety: a
/// disagreement is only possible when more than 1/3 of the power misbehaved, and the two
/// commits name them).
public enum Accountability {
    /// Duplicate-vote evidence from two conflicting commits of the same height and round:
    /// every validator that signed both precommitted two different blocks.
    public static func evidence(_ first: Commit, _ second: Commit, chainID: String) -> [DuplicateVoteEvidence] {
        guard first.height == second.height, first.round == second.round, first.blockID != second.blockID else { return [] }
        let signaturesB = Dictionary(second.signatures.map { ($0.validator, $0.signature) }, uniquingKeysWith: { a, _ in a })
        var found: [DuplicateVoteEvidence] = []
        for entry in first.signatures {
            guard let other = signaturesB[entry.validator] else { continue }
            let voteA = Vote(type: .precommit, height: first.height, round: first.round, blockID: first.blockID, validator: entry.validator, signature: entry.signature)
            let voteB = Vote(type: .precommit, height: second.height, round: second.round, blockID: second.blockID, validator: entry.validator, signature: other)
            let evidence = DuplicateVoteEvidence(voteA, voteB)
            if (try? evidence.verify(chainID: chainID)) != nil { found.append(evidence) }
        }
        return found
    }
}
