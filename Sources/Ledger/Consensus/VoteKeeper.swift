import StratosCore

/// The votes of one height, per round and type, with stake-weighted tallies; reports a
/// validator that votes twice differently (the input to duplicate-vote evidence).
///
/// Signatures are checked by the caller before a vote gets here.
struct VoteKeeper: Sendable {
    let validators: ValidatorSet

    struct Tally: Sendable {
        /// Each validator's first vote (what counts toward "2f+1 of anything").
        var votes: [PublicKey: Vote] = [:]
        /// Every distinct signed vote, by block: an equivocator's signatures count toward each
        /// block it signed, as the honest nodes that received them count them (CometBFT's vote
        /// set does the same for blocks a peer shows a majority for). Without this, a node that
        /// first saw the conflicting half could never see a polka the others saw, and stall.
        var votesByBlock: [Hash256?: [PublicKey: Vote]] = [:]
        var powerByBlock: [Hash256?: Int64] = [:]
        var totalPower: Int64 = 0
        /// Distinct votes per validator, bounded so an equivocator cannot make us store many.
        var distinctVotes: [PublicKey: Int] = [:]
    }

    /// Distinct conflicting votes kept per validator, round and type.
    static let conflictingVotesMax = 4

    private var tallies: [Int32: [VoteType: Tally]] = [:]
    /// Validators heard from in each round (votes or proposal), for the round skip of line 55.
    private var senders: [Int32: Set<PublicKey>] = [:]
    /// Validators already reported for equivocating at (round, type), so each is reported once.
    private var reported: Set<[UInt8]> = []

    init(validators: ValidatorSet) { self.validators = validators }

    enum AddResult: Sendable {
        case added
        case duplicate
        case equivocation(DuplicateVoteEvidence)
    }

    /// Records a vote (its signer must be in the set).
    mutating func add(_ vote: Vote) -> AddResult {
        var tally = tallies[vote.round]?[vote.type] ?? Tally()
        let power = validators.power(of: vote.validator)
        if let existing = tally.votes[vote.validator] {
            if existing.blockID == vote.blockID || tally.votesByBlock[vote.blockID]?[vote.validator] != nil { return .duplicate }
            if tally.distinctVotes[vote.validator, default: 1] < Self.conflictingVotesMax {
                tally.distinctVotes[vote.validator, default: 1] += 1
                tally.votesByBlock[vote.blockID, default: [:]][vote.validator] = vote
                tally.powerByBlock[vote.blockID, default: 0] += power
                tallies[vote.round, default: [:]][vote.type] = tally
            }
            var key = vote.validator.bytes
            key.append(vote.type.rawValue)
            withUnsafeBytes(of: vote.round.bigEndian) { key.append(contentsOf: $0) }
            guard reported.insert(key).inserted else { return .added }
            return .equivocation(DuplicateVoteEvidence(existing, vote))
        }
        tally.votes[vote.validator] = vote
        tally.votesByBlock[vote.blockID, default: [:]][vote.validator] = vote
        tally.powerByBlock[vote.blockID, default: 0] += power
        tally.totalPower += power
        tallies[vote.round, default: [:]][vote.type] = tally
        senders[vote.round, default: []].insert(vote.validator)
        return .added
    }

    /// Notes that the proposer of `round` was heard from.
    mutating func noteSender(_ key: PublicKey, round: Int32) { senders[round, default: []].insert(key) }

    /// Power voting `blockID` (nil for nil votes) at (round, type).
    func power(round: Int32, type: VoteType, blockID: Hash256?) -> Int64 {
        tallies[round]?[type]?.powerByBlock[blockID] ?? 0
    }

    /// Whether more than 2/3 voted `blockID` at (round, type).
    func hasQuorum(round: Int32, type: VoteType, blockID: Hash256?) -> Bool {
        validators.isQuorum(power(round: round, type: type, blockID: blockID))
    }

    /// Whether more than 2/3 voted anything at (round, type) (lines 34 and 47).
    func hasQuorumForAnything(round: Int32, type: VoteType) -> Bool {
        validators.isQuorum(tallies[round]?[type]?.totalPower ?? 0)
    }

    /// The block (not nil) with more than 2/3 of the votes at (round, type), if any.
    func quorumBlock(round: Int32, type: VoteType) -> Hash256? {
        guard let tally = tallies[round]?[type] else { return nil }
        for (block, power) in tally.powerByBlock where block != nil && validators.isQuorum(power) { return block }
        return nil
    }

    /// Rounds above `round` from which validators holding more than 1/3 of the power sent messages.
    func skipRound(above round: Int32) -> Int32? {
        var best: Int32?
        for (candidate, keys) in senders where candidate > round {
            let power = keys.reduce(Int64(0)) { $0 + validators.power(of: $1) }
            if validators.isOneThird(power), candidate > (best ?? -1) { best = candidate }
        }
        return best
    }

    /// The votes for `blockID` at (round, type), in validator-set order.
    func votes(round: Int32, type: VoteType, blockID: Hash256?) -> [Vote] {
        guard let votes = tallies[round]?[type]?.votesByBlock[blockID] else { return [] }
        return validators.validators.compactMap { votes[$0.publicKey] }
    }

    /// Rounds that have any precommits (candidates for a decision in any round, line 49).
    var precommitRounds: [Int32] {
        tallies.compactMap { $0.value[.precommit] == nil ? nil : $0.key }.sorted()
    }

    /// The precommit signatures for `blockID` in `round`, in validator-set order.
    func commitSignatures(round: Int32, blockID: Hash256) -> [CommitSignature] {
        guard let votes = tallies[round]?[.precommit]?.votesByBlock[blockID] else { return [] }
        return validators.validators.compactMap { validator in
            guard let vote = votes[validator.publicKey] else { return nil }
            return CommitSignature(validator: vote.validator, signature: vote.signature)
        }
    }
}
