import StratosCore

/// Timeouts of Algorithm 1, growing with the round: `init + round · delta` (milliseconds).
public struct ConsensusTimeouts: Hashable, Sendable {
    public var proposeMilliseconds: Int64
    public var proposeDeltaMilliseconds: Int64
    public var prevoteMilliseconds: Int64
    public var prevoteDeltaMilliseconds: Int64
    public var precommitMilliseconds: Int64
    public var precommitDeltaMilliseconds: Int64
    /// The pause after a decision before the next height starts: the block interval.
    public var commitMilliseconds: Int64

    public init(
        proposeMilliseconds: Int64 = 3000, proposeDeltaMilliseconds: Int64 = 500, prevoteMilliseconds: Int64 = 1000,
        prevoteDeltaMilliseconds: Int64 = 500, precommitMilliseconds: Int64 = 1000, precommitDeltaMilliseconds: Int64 = 500,
        commitMilliseconds: Int64 = 1000
    ) {
        self.proposeMilliseconds = proposeMilliseconds
        self.proposeDeltaMilliseconds = proposeDeltaMilliseconds
        self.prevoteMilliseconds = prevoteMilliseconds
        self.prevoteDeltaMilliseconds = prevoteDeltaMilliseconds
        self.precommitMilliseconds = precommitMilliseconds
        self.precommitDeltaMilliseconds = precommitDeltaMilliseconds
        self.commitMilliseconds = commitMilliseconds
    }

    /// Timeouts for validators on one machine or a LAN: a round takes tens of milliseconds.
    public static let loopback = ConsensusTimeouts(
        proposeMilliseconds: 400, proposeDeltaMilliseconds: 100, prevoteMilliseconds: 100, prevoteDeltaMilliseconds: 50,
        precommitMilliseconds: 100, precommitDeltaMilliseconds: 50, commitMilliseconds: 1000)

    func milliseconds(_ step: ConsensusStep, round: Int32) -> Int64 {
        let r = Int64(round)
        switch step {
        case .propose: return proposeMilliseconds + r * proposeDeltaMilliseconds
        case .prevote: return prevoteMilliseconds + r * prevoteDeltaMilliseconds
        case .precommit: return precommitMilliseconds + r * precommitDeltaMilliseconds
        }
    }
}

/// The step within a round.
public enum ConsensusStep: UInt8, Sendable, Comparable {
    case propose = 1
    case prevote = 2
    case precommit = 3

    public static func < (a: ConsensusStep, b: ConsensusStep) -> Bool { a.rawValue < b.rawValue }
}

/// A timeout of Algorithm 1: it acts only if (height, round, step) is still current.
public struct ConsensusTimeout: Hashable, Sendable {
    public let height: UInt64
    public let round: Int32
    public let step: ConsensusStep

    public init(height: UInt64, round: Int32, step: ConsensusStep) {
        self.height = height
        self.round = round
        self.step = step
    }
}

/// What the application tells consensus about blocks: the value to propose, and `valid(v)`.
/// Both must be deterministic functions of the chain state.
public protocol ConsensusApplication {
    /// A new block for (height, round); called only on the proposer, when it has no valid value.
    mutating func proposeBlock(height: UInt64, round: Int32) -> Block
    /// Whether `block` may be decided at this height.
    func isValid(_ block: Block) -> Bool
}

/// Inputs to the consensus core.
public enum ConsensusEvent: Sendable {
    case proposal(Proposal, Block)
    case vote(Vote)
    case timeout(ConsensusTimeout)
}

/// Outputs of the consensus core, to be performed in order. A `persist` must be durable
/// before any later `broadcast` is sent.
public enum ConsensusAction: Sendable {
    case persist(SignedRecord)
    case broadcastProposal(Proposal, Block)
    case broadcastVote(Vote)
    case scheduleTimeout(ConsensusTimeout, milliseconds: Int64)
    case decide(Block, Commit)
    case evidence(DuplicateVoteEvidence)
}

/// Tendermint BFT consensus for one height, as a pure state machine: Algorithm 1 of "The
/// latest gossip on BFT consensus" (Buchman, Kwon, Milosevic 2018), lines 11–67. Events in,
/// actions out; no clock, no I/O.
public struct ConsensusCore: Sendable {
    public let chainID: String
    public let height: UInt64
    public let validators: ValidatorSet
    let timeouts: ConsensusTimeouts
    private var signer: SignerGuard?
    private var keeper: VoteKeeper

    public private(set) var round: Int32 = -1
    public private(set) var step: ConsensusStep = .propose
    public private(set) var lockedValue: Block?
    public private(set) var lockedRound: Int32 = -1
    public private(set) var validValue: Block?
    public private(set) var validRound: Int32 = -1
    public private(set) var decision: (block: Block, commit: Commit)?

    /// The proposer's proposal per round (the first one with a valid signature).
    private var proposals: [Int32: (proposal: Proposal, block: Block)] = [:]
    private var validity: [Hash256: Bool] = [:]
    private var prevoteTimeoutScheduled: Set<Int32> = []
    private var precommitTimeoutScheduled: Set<Int32> = []
    private var line36Fired: Set<Int32> = []

    /// A core for `height`; `key` is nil on a node that follows without voting. `signed` is
    /// what this validator already signed at this height (from the write-ahead log).
    public init(
        chainID: String, height: UInt64, validators: ValidatorSet, key: SigningKey?, timeouts: ConsensusTimeouts,
        signed: [SignedRecord] = []
    ) {
        self.chainID = chainID
        self.height = height
        self.validators = validators
        self.timeouts = timeouts
        self.keeper = VoteKeeper(validators: validators)
        if let key, validators.contains(key.publicKey) {
            signer = SignerGuard(key: key, history: signed)
        }
    }

    public var isValidator: Bool { signer != nil }

    /// StartRound(0) (line 10).
    public mutating func start<App: ConsensusApplication>(_ app: inout App) -> [ConsensusAction] {
        var actions: [ConsensusAction] = []
        startRound(0, &app, &actions)
        evaluate(&app, &actions)
        return actions
    }

    /// Handles one input.
    public mutating func handle<App: ConsensusApplication>(_ event: ConsensusEvent, _ app: inout App) -> [ConsensusAction] {
        guard decision == nil else { return [] }
        var actions: [ConsensusAction] = []
        switch event {
        case .proposal(let proposal, let block):
            guard accept(proposal, block) else { return [] }
        case .vote(let vote):
            guard accept(vote, &actions) else { return actions }
        case .timeout(let timeout):
            onTimeout(timeout, &app, &actions)
        }
        evaluate(&app, &actions)
        return actions
    }

    // MARK: - Inputs

    private mutating func accept(_ proposal: Proposal, _ block: Block) -> Bool {
        guard proposal.height == height, (0...LedgerLimits.roundMax).contains(proposal.round),
            proposal.polRound >= -1, proposal.polRound < proposal.round,
            proposals[proposal.round] == nil,
            proposal.proposer == validators.proposer(round: proposal.round),
            block.id == proposal.blockID, block.height == height,
            proposal.isSignatureValid(chainID: chainID)
        else { return false }
        proposals[proposal.round] = (proposal, block)
        keeper.noteSender(proposal.proposer, round: proposal.round)
        return true
    }

    private mutating func accept(_ vote: Vote, _ actions: inout [ConsensusAction]) -> Bool {
        guard vote.height == height, (0...LedgerLimits.roundMax).contains(vote.round), validators.contains(vote.validator),
            vote.isSignatureValid(chainID: chainID)
        else { return false }
        switch keeper.add(vote) {
        case .added: return true
        case .duplicate: return false
        case .equivocation(let evidence):
            // The conflicting vote still counts toward its own block (see `VoteKeeper.Tally`).
            actions.append(.evidence(evidence))
            return true
        }
    }


    private mutating func checkValid<App: ConsensusApplication>(_ block: Block, _ app: inout App) -> Bool {
        if let known = validity[block.id] { return known }
        let result = block.height == height && app.isValid(block)
        validity[block.id] = result
        return result
    }

    // MARK: - Algorithm 1

    /// StartRound (lines 11–21).
    private mutating func startRound<App: ConsensusApplication>(_ newRound: Int32, _ app: inout App, _ actions: inout [ConsensusAction]) {
        round = newRound
        step = .propose
        if let signer, validators.proposer(round: newRound) == signer.key.publicKey {
            let value = validValue ?? app.proposeBlock(height: height, round: newRound)
            let bytes = Proposal.signBytes(height: height, round: newRound, polRound: validRound, blockID: value.id, chainID: chainID)
            if let (signature, record) = self.signer!.sign(bytes, height: height, round: newRound, step: .proposal) {
                if let record { actions.append(.persist(record)) }
                let proposal = Proposal(
                    height: height, round: newRound, polRound: validRound, blockID: value.id, proposer: signer.key.publicKey,
                    signature: signature)
                actions.append(.broadcastProposal(proposal, value))
                _ = accept(proposal, value)
                return
            }
            // Already signed another proposal for this round (before a restart): wait for it to
            // be replayed from the log, or time out like any other validator.
        }
        actions.append(.scheduleTimeout(
            ConsensusTimeout(height: height, round: newRound, step: .propose), milliseconds: timeouts.milliseconds(.propose, round: newRound)))
    }

    /// Lines 57–67.
    private mutating func onTimeout<App: ConsensusApplication>(_ timeout: ConsensusTimeout, _ app: inout App, _ actions: inout [ConsensusAction]) {
        guard timeout.height == height, timeout.round == round else { return }
        switch timeout.step {
        case .propose where step == .propose:
            castVote(.prevote, nil, &actions)
            step = .prevote
        case .prevote where step == .prevote:
            castVote(.precommit, nil, &actions)
            step = .precommit
        case .precommit:
            startRound(round + 1, &app, &actions)
        default:
            break
        }
    }

    private mutating func castVote(_ type: VoteType, _ blockID: Hash256?, _ actions: inout [ConsensusAction]) {
        guard let key = signer?.key else { return }
        let bytes = Vote.signBytes(type: type, height: height, round: round, blockID: blockID, chainID: chainID)
        guard let (signature, record) = signer!.sign(bytes, height: height, round: round, step: type == .prevote ? .prevote : .precommit)
        else { return }
        if let record { actions.append(.persist(record)) }
        let vote = Vote(type: type, height: height, round: round, blockID: blockID, validator: key.publicKey, signature: signature)
        actions.append(.broadcastVote(vote))
        _ = keeper.add(vote)
    }

    /// Applies every "upon" rule that holds until none does; each fires at most once per state.
    private mutating func evaluate<App: ConsensusApplication>(_ app: inout App, _ actions: inout [ConsensusAction]) {
        var progressed = true
        while progressed && decision == nil {
            progressed = false
            // Line 49: a decision in any round.
            for candidate in keeper.precommitRounds {
                guard let blockID = keeper.quorumBlock(round: candidate, type: .precommit),
                    let block = knownBlock(blockID), checkValid(block, &app)
                else { continue }
                let commit = Commit(height: height, round: candidate, blockID: blockID, signatures: keeper.commitSignatures(round: candidate, blockID: blockID))
                decision = (block, commit)
                actions.append(.decide(block, commit))
                return
            }
            // Line 55: f+1 messages from a higher round.
            if let higher = keeper.skipRound(above: round) {
                startRound(higher, &app, &actions)
                progressed = true
                continue
            }
            let current = proposals[round]
            // Lines 22 and 28: prevote on the proposal.
            if step == .propose, let (proposal, block) = current {
                if proposal.polRound == -1 {
                    let vote = checkValid(block, &app) && (lockedRound == -1 || lockedValue?.id == block.id)
                    castVote(.prevote, vote ? block.id : nil, &actions)
                    step = .prevote
                    progressed = true
                    continue
                } else if proposal.polRound < round, keeper.hasQuorum(round: proposal.polRound, type: .prevote, blockID: block.id) {
                    // The unlock rule: a polka newer than our lock lets us prevote the new value.
                    let vote = checkValid(block, &app) && (lockedRound <= proposal.polRound || lockedValue?.id == block.id)
                    castVote(.prevote, vote ? block.id : nil, &actions)
                    step = .prevote
                    progressed = true
                    continue
                }
            }
            // Line 34: any 2f+1 prevotes start the prevote timeout.
            if step == .prevote, !prevoteTimeoutScheduled.contains(round), keeper.hasQuorumForAnything(round: round, type: .prevote) {
                prevoteTimeoutScheduled.insert(round)
                actions.append(.scheduleTimeout(ConsensusTimeout(height: height, round: round, step: .prevote), milliseconds: timeouts.milliseconds(.prevote, round: round)))
                progressed = true
            }
            // Line 36: a polka for the proposal locks it.
            if step >= .prevote, !line36Fired.contains(round), let (_, block) = current,
                keeper.hasQuorum(round: round, type: .prevote, blockID: block.id), checkValid(block, &app)
            {
                line36Fired.insert(round)
                if step == .prevote {
                    lockedValue = block
                    lockedRound = round
                    castVote(.precommit, block.id, &actions)
                    step = .precommit
                }
                validValue = block
                validRound = round
                progressed = true
                continue
            }
            // Line 44: a polka for nil.
            if step == .prevote, keeper.hasQuorum(round: round, type: .prevote, blockID: nil) {
                castVote(.precommit, nil, &actions)
                step = .precommit
                progressed = true
                continue
            }
            // Line 47: any 2f+1 precommits start the precommit timeout.
            if !precommitTimeoutScheduled.contains(round), keeper.hasQuorumForAnything(round: round, type: .precommit) {
                precommitTimeoutScheduled.insert(round)
                actions.append(.scheduleTimeout(ConsensusTimeout(height: height, round: round, step: .precommit), milliseconds: timeouts.milliseconds(.precommit, round: round)))
                progressed = true
            }
        }
    }

    private func knownBlock(_ id: Hash256) -> Block? {
        for (_, entry) in proposals where entry.block.id == id { return entry.block }
        return nil
    }

    /// The prevotes that justify this node's valid value (the polka of `validRound`), or none.
    /// A node that was down or cut off when they were sent cannot otherwise learn them, and
    /// without them it never prevotes the value the others are locked on: with one more
    /// validator missing, the height would stall although a quorum is live.
    public var proofOfLock: [Vote] {
        guard validRound >= 0, let validValue else { return [] }
        return keeper.votes(round: validRound, type: .prevote, blockID: validValue.id)
    }

    /// The proposal this node holds for `round`, if any (for gossip to peers that missed it).
    public func proposal(round: Int32) -> (Proposal, Block)? { proposals[round].map { ($0.proposal, $0.block) } }
}
