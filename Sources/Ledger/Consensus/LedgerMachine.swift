import StratosCore

/// Timers the ledger asks its host to run.
public enum LedgerTimer: Hashable, Sendable {
    case consensus(ConsensusTimeout)
    /// The block interval after a decision: start deciding `height`.
    case nextHeight(UInt64)
    /// Re-send this height's own messages and status, so a lost message is never fatal.
    case gossip
}

/// Inputs to a validator (or follower) node's ledger.
public enum LedgerEvent: Sendable {
    case start
    case received(from: PublicKey, LedgerMessage)
    case timer(LedgerTimer)
    /// A transaction submitted on this node (by its CLI or its anchoring).
    case submit([UInt8])
}

/// Outputs for the host to perform, in order.
public enum LedgerAction: Sendable {
    /// Append to the write-ahead log; when the record `needsSync`, it is fsynced before any
    /// later `broadcast` or `send`.
    case appendWAL(WALRecord)
    /// The blocks below `height` are stored: the log may drop their records.
    case resetWAL(height: UInt64)
    case broadcast(LedgerMessage)
    case send(PublicKey, LedgerMessage)
    case schedule(LedgerTimer, milliseconds: Int64)
    /// Store the block, its commit and the state after it, durably, before the next action.
    case store(CommittedBlock, ChainState)
    /// Read blocks from `fromHeight` on from the store and send them as a `syncResponse`.
    case serveSync(to: PublicKey, fromHeight: UInt64)
}

/// One node's ledger as a pure state machine: the consensus core of the current height, the
/// chain application, block sync, evidence and transaction gossip, and write-ahead-log replay.
/// The real node and the deterministic simulation both drive this same type.
public struct LedgerMachine: Sendable {
    public private(set) var application: ChainApplication
    let key: SigningKey?
    let timeouts: ConsensusTimeouts
    public private(set) var core: ConsensusCore
    /// Decided, waiting for the block interval before the next height.
    public private(set) var isCommitting = false
    private var replay: [WALRecord]
    private var future: [(PublicKey, LedgerMessage)] = []
    private var ownMessages: [LedgerMessage] = []
    /// Votes of this height already seen: each new one is relayed once, so every honest node
    /// sees every vote (and both halves of an equivocation) even when its sender's copy was lost.
    private var seenVotes: Set<Vote> = []
    private var lastSyncRequestMilliseconds: Int64 = .min
    private var now: Int64 = 0

    /// Votes remembered per height (each verified and signed by a validator; the vote keeper
    /// keeps at most four per validator, round and type).
    static let seenVotesMax = 200_000

    /// How often own messages and status are re-sent.
    public let gossipIntervalMilliseconds: Int64

    /// A node whose committed state is `state` (its last commit `lastCommit`), with `wal` the
    /// write-ahead-log records of the height it was deciding when it stopped.
    public init(state: ChainState, lastCommit: Commit?, key: SigningKey?, timeouts: ConsensusTimeouts, wal: [WALRecord] = []) {
        application = ChainApplication(state: state, proposerKey: key?.publicKey, lastCommit: lastCommit)
        self.key = key
        self.timeouts = timeouts
        let height = state.height + 1
        replay = wal.filter { record in
            switch record {
            case .proposal(let proposal, _): proposal.height == height
            case .vote(let vote): vote.height == height
            case .timeout(let timeout): timeout.height == height
            case .signed(let signed): signed.height == height
            }
        }
        let signed = replay.compactMap { if case .signed(let record) = $0 { record } else { nil } }
        core = ConsensusCore(chainID: state.chainID, height: height, validators: state.validators, key: key, timeouts: timeouts, signed: signed)
        gossipIntervalMilliseconds = max(50, timeouts.proposeMilliseconds / 2)
    }

    public var height: UInt64 { core.height }
    public var state: ChainState { application.state }

    /// Handles one event at local time `nowMilliseconds`.
    public mutating func handle(_ event: LedgerEvent, nowMilliseconds: Int64) -> [LedgerAction] {
        now = nowMilliseconds
        application.nowMilliseconds = nowMilliseconds
        var actions: [LedgerAction] = []
        switch event {
        case .start:
            startHeight(&actions, replaying: true)
            actions.append(.schedule(.gossip, milliseconds: gossipIntervalMilliseconds))
        case .received(let peer, let message):
            receive(message, from: peer, &actions)
        case .timer(let timer):
            fire(timer, &actions)
        case .submit(let bytes):
            if application.submit(bytes) { actions.append(.broadcast(.transaction(bytes))) }
        }
        return actions
    }

    // MARK: - Heights

    private mutating func startHeight(_ actions: inout [LedgerAction], replaying: Bool) {
        if !replaying {
            core = ConsensusCore(
                chainID: state.chainID, height: state.height + 1, validators: state.validators, key: key, timeouts: timeouts)
        }
        isCommitting = false
        ownMessages = []
        seenVotes = []
        perform(core.start(&application), &actions)
        if replaying {
            let records = replay
            replay = []
            for record in records {
                switch record {
                case .proposal(let proposal, let block):
                    // Its own proposal, from before the restart, is gossiped again like any own message.
                    if proposal.proposer == key?.publicKey { ownMessages.append(.proposal(proposal, block)) }
                    perform(core.handle(.proposal(proposal, block), &application), &actions)
                case .vote(let vote): perform(core.handle(.vote(vote), &application), &actions)
                case .timeout(let timeout): perform(core.handle(.timeout(timeout), &application), &actions)
                case .signed: break
                }
            }
        }
        let pending = future
        future = []
        for (peer, message) in pending { receive(message, from: peer, &actions) }
    }

    private mutating func commitDecided(_ block: Block, _ commit: Commit, _ actions: inout [LedgerAction]) {
        do {
            try application.commit(block, commit)
        } catch {
            // Consensus only decides blocks the application found valid, and sync checks the
            // same rule: a failure here is a bug, and continuing would fork the state.
            preconditionFailure("a decided block failed to apply: \(error)")
        }
        actions.append(.store(CommittedBlock(block: block, commit: commit), application.state))
        actions.append(.resetWAL(height: application.state.height + 1))
    }

    // MARK: - Messages

    private mutating func receive(_ message: LedgerMessage, from peer: PublicKey, _ actions: inout [LedgerAction]) {
        switch message {
        case .proposal(let proposal, _):
            route(message, height: proposal.height, from: peer, &actions)
        case .vote(let vote):
            route(message, height: vote.height, from: peer, &actions)
        case .status(let peerHeight):
            if peerHeight > height { requestSync(from: peer, &actions) }
        case .syncRequest(let fromHeight):
            if fromHeight <= state.height { actions.append(.serveSync(to: peer, fromHeight: fromHeight)) }
        case .syncResponse(let blocks):
            applySynced(blocks, &actions)
        case .transaction(let bytes):
            if application.submit(bytes) { actions.append(.broadcast(message)) }
        case .evidence(let evidence):
            if application.addEvidence(evidence) { actions.append(.broadcast(message)) }
        }
    }

    private mutating func route(_ message: LedgerMessage, height messageHeight: UInt64, from peer: PublicKey, _ actions: inout [LedgerAction]) {
        guard messageHeight > height || (messageHeight == height && !isCommitting) else { return }
        guard let validators = validatorSet(for: messageHeight) else {
            // Further ahead than the sets we know: we are behind, so catch up first.
            requestSync(from: peer, &actions)
            return
        }
        // Nothing unsigned is logged, relayed or buffered: a peer cannot make us store or
        // amplify junk.
        guard isAuthentic(message, validators) else { return }
        if messageHeight == height {
            feed(message, &actions)
        } else {
            if future.count < LedgerLimits.futureMessagesMax { future.append((peer, message)) }
            if !isCommitting { requestSync(from: peer, &actions) }
        }
    }

    /// The validator set of `messageHeight`, when this node knows it: the current height's, and
    /// the next one's (from the chain state: sets change at H+2, so it is already decided).
    private func validatorSet(for messageHeight: UInt64) -> ValidatorSet? {
        if messageHeight == height { return core.validators }
        if messageHeight == height + 1 { return isCommitting ? state.validators : state.nextValidators }
        return nil
    }

    /// Whether a proposal or vote is signed by who must sign it for its height and round.
    private func isAuthentic(_ message: LedgerMessage, _ validators: ValidatorSet) -> Bool {
        switch message {
        case .vote(let vote):
            return (0...LedgerLimits.roundMax).contains(vote.round) && validators.contains(vote.validator)
                && !seenVotes.contains(vote) && vote.isSignatureValid(chainID: state.chainID)
        case .proposal(let proposal, let block):
            return (0...LedgerLimits.roundMax).contains(proposal.round) && proposal.proposer == validators.proposer(round: proposal.round)
                && block.id == proposal.blockID && proposal.isSignatureValid(chainID: state.chainID)
        default:
            return false
        }
    }

    private mutating func feed(_ message: LedgerMessage, _ actions: inout [LedgerAction]) {
        switch message {
        case .proposal(let proposal, let block):
            actions.append(.appendWAL(.proposal(proposal, block)))
            perform(core.handle(.proposal(proposal, block), &application), &actions)
        case .vote(let vote):
            guard seenVotes.count < Self.seenVotesMax, seenVotes.insert(vote).inserted else { return }
            actions.append(.appendWAL(.vote(vote)))
            actions.append(.broadcast(message))
            perform(core.handle(.vote(vote), &application), &actions)
        default:
            break
        }
    }

    private mutating func requestSync(from peer: PublicKey, _ actions: inout [LedgerAction]) {
        // At most one request per gossip interval: a peer far ahead is asked, not flooded.
        guard lastSyncRequestMilliseconds == .min || now - lastSyncRequestMilliseconds >= gossipIntervalMilliseconds else { return }
        lastSyncRequestMilliseconds = now
        actions.append(.send(peer, .syncRequest(fromHeight: state.height + 1)))
    }

    /// Block sync: each block must extend our chain and carry a commit signed by more than 2/3
    /// of the validators we know for its height.
    private mutating func applySynced(_ blocks: [CommittedBlock], _ actions: inout [LedgerAction]) {
        var applied = false
        for entry in blocks where entry.block.height == state.height + 1 {
            guard entry.commit.height == entry.block.height, entry.commit.blockID == entry.block.id,
                (try? entry.commit.verify(validators: state.validators, chainID: state.chainID)) != nil,
                application.isValid(entry.block)
            else { break }
            commitDecided(entry.block, entry.commit, &actions)
            applied = true
        }
        if applied {
            // Caught up as far as this reply goes: decide the next height now, and ask for more.
            lastSyncRequestMilliseconds = .min
            startHeight(&actions, replaying: false)
        }
    }

    // MARK: - Timers

    private mutating func fire(_ timer: LedgerTimer, _ actions: inout [LedgerAction]) {
        switch timer {
        case .consensus(let timeout):
            guard timeout.height == height, !isCommitting else { return }
            actions.append(.appendWAL(.timeout(timeout)))
            perform(core.handle(.timeout(timeout), &application), &actions)
        case .nextHeight(let next):
            guard next == state.height + 1, isCommitting else { return }
            startHeight(&actions, replaying: false)
        case .gossip:
            actions.append(.broadcast(.status(height: height)))
            for message in ownMessages { actions.append(.broadcast(message)) }
            // Other validators' votes that a late node needs to follow this node's lock
            // (Tendermint's liveness assumes every message a correct node received eventually
            // reaches every correct node; relaying each vote once on arrival is not enough).
            if !isCommitting {
                for vote in core.proofOfLock where vote.validator != key?.publicKey { actions.append(.broadcast(.vote(vote))) }
            }
            actions.append(.schedule(.gossip, milliseconds: gossipIntervalMilliseconds))
        }
    }

    // MARK: - Core actions

    private mutating func perform(_ coreActions: [ConsensusAction], _ actions: inout [LedgerAction]) {
        var signedProposal: SignedRecord?
        for action in coreActions {
            switch action {
            case .persist(let record) where record.step == .proposal:
                // Written just after the proposal's block, in the same sync: a restart then
                // finds the very block it signed, replays it, and gossips it again (it never
                // signs a second proposal for the round).
                signedProposal = record
            case .persist(let record):
                actions.append(.appendWAL(.signed(record)))
            case .broadcastProposal(let proposal, let block):
                actions.append(.appendWAL(.proposal(proposal, block)))
                if let record = signedProposal {
                    actions.append(.appendWAL(.signed(record)))
                    signedProposal = nil
                }
                let message = LedgerMessage.proposal(proposal, block)
                ownMessages.append(message)
                actions.append(.broadcast(message))
            case .broadcastVote(let vote):
                let message = LedgerMessage.vote(vote)
                ownMessages.append(message)
                actions.append(.broadcast(message))
            case .scheduleTimeout(let timeout, let milliseconds):
                actions.append(.schedule(.consensus(timeout), milliseconds: milliseconds))
            case .evidence(let evidence):
                if application.addEvidence(evidence) { actions.append(.broadcast(.evidence(evidence))) }
            case .decide(let block, let commit):
                commitDecided(block, commit, &actions)
                isCommitting = true
                actions.append(.schedule(.nextHeight(state.height + 1), milliseconds: timeouts.commitMilliseconds))
            }
        }
    }
}
