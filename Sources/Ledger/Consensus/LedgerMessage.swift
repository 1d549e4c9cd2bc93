import StratosCore

/// A decided block with the commit that decided it.
public struct CommittedBlock: Hashable, Sendable {
    public let block: Block
    public let commit: Commit

    public init(block: Block, commit: Commit) {
        self.block = block
        self.commit = commit
    }
}

/// What validators send each other.
public enum LedgerMessage: Hashable, Sendable {
    case proposal(Proposal, Block)
    case vote(Vote)
    /// "I am deciding `height`": lets a peer that is ahead serve blocks, or one behind ask.
    case status(height: UInt64)
    /// Asks for decided blocks from `fromHeight` on.
    case syncRequest(fromHeight: UInt64)
    case syncResponse([CommittedBlock])
    case transaction([UInt8])
    case evidence(DuplicateVoteEvidence)

    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        switch self {
        case .proposal(let proposal, let block):
            encoder.write(UInt8(1))
            proposal.encode(into: &encoder)
            encoder.write(bytes: block.encoded)
        case .vote(let vote):
            encoder.write(UInt8(2))
            vote.encode(into: &encoder)
        case .status(let height):
            encoder.write(UInt8(3))
            encoder.write(height)
        case .syncRequest(let height):
            encoder.write(UInt8(4))
            encoder.write(height)
        case .syncResponse(let blocks):
            encoder.write(UInt8(5))
            encoder.write(UInt32(blocks.count))
            for entry in blocks {
                encoder.write(bytes: entry.block.encoded)
                entry.commit.encode(into: &encoder)
            }
        case .transaction(let bytes):
            encoder.write(UInt8(6))
            encoder.write(bytes: bytes)
        case .evidence(let evidence):
            encoder.write(UInt8(7))
            evidence.encode(into: &encoder)
        }
        return encoder.bytes
    }

    public init(decoding bytes: [UInt8]) throws(LedgerError) {
        var decoder = CanonicalDecoder(bytes)
        let tag = try ledgerDecode("message") { () throws(StratosError) in try decoder.readUInt8() }
        switch tag {
        case 1:
            let proposal = try ledgerDecode("proposal") { () throws(StratosError) in try Proposal(from: &decoder) }
            let blockBytes = try ledgerDecode("proposal") { () throws(StratosError) in try decoder.readBytes(maxCount: LedgerLimits.blockBytesMax) }
            self = .proposal(proposal, try Block(decoding: blockBytes))
        case 2: self = .vote(try ledgerDecode("vote") { () throws(StratosError) in try Vote(from: &decoder) })
        case 3: self = .status(height: try ledgerDecode("status") { () throws(StratosError) in try decoder.readUInt64() })
        case 4: self = .syncRequest(fromHeight: try ledgerDecode("sync request") { () throws(StratosError) in try decoder.readUInt64() })
        case 5:
            let count = try ledgerDecode("sync response") { () throws(StratosError) in try decoder.readCount(max: LedgerLimits.syncBlocksPerReplyMax) }
            var blocks: [CommittedBlock] = []
            for _ in 0..<count {
                let blockBytes = try ledgerDecode("sync response") { () throws(StratosError) in try decoder.readBytes(maxCount: LedgerLimits.blockBytesMax) }
                let block = try Block(decoding: blockBytes)
                let commit = try ledgerDecode("sync response") { () throws(StratosError) in try Commit(from: &decoder) }
                blocks.append(CommittedBlock(block: block, commit: commit))
            }
            self = .syncResponse(blocks)
        case 6: self = .transaction(try ledgerDecode("transaction") { () throws(StratosError) in try decoder.readBytes(maxCount: LedgerLimits.transactionBytesMax) })
        case 7: self = .evidence(try ledgerDecode("evidence") { () throws(StratosError) in try DuplicateVoteEvidence(from: &decoder) })
        default: throw LedgerError(.invalidEncoding, "unknown message type \(tag)")
        }
        try ledgerDecode("message") { () throws(StratosError) in try decoder.finish() }
    }
}

/// One record of the consensus write-ahead log: an input fed to the core, or a signature the
/// validator made (fsynced before the message it belongs to is sent). Replaying a height's
/// records rebuilds the core's locks exactly, and the signatures keep it from signing anew.
public enum WALRecord: Hashable, Sendable {
    case proposal(Proposal, Block)
    case vote(Vote)
    case timeout(ConsensusTimeout)
    case signed(SignedRecord)

    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        switch self {
        case .proposal(let proposal, let block):
            encoder.write(UInt8(1))
            proposal.encode(into: &encoder)
            encoder.write(bytes: block.encoded)
        case .vote(let vote):
            encoder.write(UInt8(2))
            vote.encode(into: &encoder)
        case .timeout(let timeout):
            encoder.write(UInt8(3))
            encoder.write(timeout.height)
            encoder.write(round: timeout.round)
            encoder.write(timeout.step.rawValue)
        case .signed(let record):
            encoder.write(UInt8(4))
            encoder.write(record.height)
            encoder.write(round: record.round)
            encoder.write(record.step.rawValue)
            encoder.write(bytes: record.signBytes)
            encoder.write(signature: record.signature)
        }
        return encoder.bytes
    }

    public init(decoding bytes: [UInt8]) throws(LedgerError) {
        var decoder = CanonicalDecoder(bytes)
        let tag = try ledgerDecode("WAL record") { () throws(StratosError) in try decoder.readUInt8() }
        switch tag {
        case 1:
            let proposal = try ledgerDecode("WAL record") { () throws(StratosError) in try Proposal(from: &decoder) }
            let blockBytes = try ledgerDecode("WAL record") { () throws(StratosError) in try decoder.readBytes(maxCount: LedgerLimits.blockBytesMax) }
            self = .proposal(proposal, try Block(decoding: blockBytes))
        case 2: self = .vote(try ledgerDecode("WAL record") { () throws(StratosError) in try Vote(from: &decoder) })
        case 3:
            self = try ledgerDecode("WAL record") { () throws(StratosError) -> WALRecord in
                let height = try decoder.readUInt64()
                let round = try decoder.readRound()
                guard let step = ConsensusStep(rawValue: try decoder.readUInt8()) else { throw StratosError(.invalidEncoding, "bad step") }
                return .timeout(ConsensusTimeout(height: height, round: round, step: step))
            }
        case 4:
            self = try ledgerDecode("WAL record") { () throws(StratosError) -> WALRecord in
                let height = try decoder.readUInt64()
                let round = try decoder.readRound()
                guard let step = SignedStep(rawValue: try decoder.readUInt8()) else { throw StratosError(.invalidEncoding, "bad step") }
                return .signed(SignedRecord(height: height, round: round, step: step, signBytes: try decoder.readBytes(maxCount: 4096), signature: try decoder.readSignature()))
            }
        default: throw LedgerError(.invalidEncoding, "unknown WAL record type \(tag)")
        }
        try ledgerDecode("WAL record") { () throws(StratosError) in try decoder.finish() }
    }

    /// Whether the record must be on disk before anything that follows it is sent.
    public var needsSync: Bool { if case .signed = self { return true } else { return false } }
}
