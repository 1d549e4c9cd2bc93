import StratosCore

/// The two voting steps of Tendermint (Algorithm 1): prevote and precommit.
public enum VoteType: UInt8, Sendable, Hashable, CustomStringConvertible {
    case prevote = 1
    case precommit = 2

    public var description: String { self == .prevote ? "prevote" : "precommit" }
}

/// A signed vote of one validator for a block (or for nil) at a height and round.
///
/// The signature covers `signBytes(chainID:)`, which names the chain, so a vote can never be
/// replayed on another chain (CometBFT `spec/consensus/signing.md`).
public struct Vote: Hashable, Sendable, CustomStringConvertible {
    public let type: VoteType
    public let height: UInt64
    public let round: Int32
    /// The block voted for; nil is a vote for no block.
    public let blockID: Hash256?
    public let validator: PublicKey
    public let signature: Signature

    public init(type: VoteType, height: UInt64, round: Int32, blockID: Hash256?, validator: PublicKey, signature: Signature) {
        self.type = type
        self.height = height
        self.round = round
        self.blockID = blockID
        self.validator = validator
        self.signature = signature
    }

    /// Creates and signs a vote.
    public init(type: VoteType, height: UInt64, round: Int32, blockID: Hash256?, chainID: String, key: SigningKey) {
        let bytes = Vote.signBytes(type: type, height: height, round: round, blockID: blockID, chainID: chainID)
        self.init(type: type, height: height, round: round, blockID: blockID, validator: key.publicKey, signature: key.sign(bytes))
    }

    static let domain = "stratosdb/vote/v1"

    /// The bytes a validator signs for this vote.
    public static func signBytes(type: VoteType, height: UInt64, round: Int32, blockID: Hash256?, chainID: String) -> [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(domain)
        encoder.write(chainID)
        encoder.write(type.rawValue)
        encoder.write(height)
        encoder.write(round: round)
        encoder.write(optionalHash: blockID)
        return encoder.bytes
    }

    public func signBytes(chainID: String) -> [UInt8] {
        Vote.signBytes(type: type, height: height, round: round, blockID: blockID, chainID: chainID)
    }

    /// Whether the signature is the validator's over this chain's sign bytes.
    public func isSignatureValid(chainID: String) -> Bool {
        validator.isValidSignature(signature, for: signBytes(chainID: chainID))
    }

    public func encode(into encoder: inout CanonicalEncoder) {
        encoder.write(type.rawValue)
        encoder.write(height)
        encoder.write(round: round)
        encoder.write(optionalHash: blockID)
        encoder.write(key: validator)
        encoder.write(signature: signature)
    }

    public init(from decoder: inout CanonicalDecoder) throws(StratosError) {
        guard let type = VoteType(rawValue: try decoder.readUInt8()) else {
            throw StratosError(.invalidEncoding, "unknown vote type")
        }
        self.type = type
        height = try decoder.readUInt64()
        round = try decoder.readRound()
        blockID = try decoder.readOptionalHash()
        validator = try decoder.readKey()
        signature = try decoder.readSignature()
    }

    public var description: String {
        "\(type)(h=\(height) r=\(round) \(blockID.map { String($0.hex.prefix(8)) } ?? "nil") by \(validator.shortHex))"
    }
}

/// A signed proposal: the proposer of (height, round) offers the block with id `blockID`;
/// `polRound` is the round in which it saw a polka for that block, or -1 (Algorithm 1, line 19).
public struct Proposal: Hashable, Sendable {
    public let height: UInt64
    public let round: Int32
    public let polRound: Int32
    public let blockID: Hash256
    public let proposer: PublicKey
    public let signature: Signature

    static let domain = "stratosdb/proposal/v1"

    public init(height: UInt64, round: Int32, polRound: Int32, blockID: Hash256, proposer: PublicKey, signature: Signature) {
        self.height = height
        self.round = round
        self.polRound = polRound
        self.blockID = blockID
        self.proposer = proposer
        self.signature = signature
    }

    public init(height: UInt64, round: Int32, polRound: Int32, blockID: Hash256, chainID: String, key: SigningKey) {
        let bytes = Proposal.signBytes(height: height, round: round, polRound: polRound, blockID: blockID, chainID: chainID)
        self.init(height: height, round: round, polRound: polRound, blockID: blockID, proposer: key.publicKey, signature: key.sign(bytes))
    }

    public static func signBytes(height: UInt64, round: Int32, polRound: Int32, blockID: Hash256, chainID: String) -> [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(domain)
        encoder.write(chainID)
        encoder.write(height)
        encoder.write(round: round)
        encoder.write(round: polRound)
        encoder.write(hash: blockID)
        return encoder.bytes
    }

    public func isSignatureValid(chainID: String) -> Bool {
        proposer.isValidSignature(
            signature, for: Proposal.signBytes(height: height, round: round, polRound: polRound, blockID: blockID, chainID: chainID))
    }

    public func encode(into encoder: inout CanonicalEncoder) {
        encoder.write(height)
        encoder.write(round: round)
        encoder.write(round: polRound)
        encoder.write(hash: blockID)
        encoder.write(key: proposer)
        encoder.write(signature: signature)
    }

    public init(from decoder: inout CanonicalDecoder) throws(StratosError) {
        height = try decoder.readUInt64()
        round = try decoder.readRound()
        polRound = try decoder.readRound()
        blockID = try decoder.readHash()
        proposer = try decoder.readKey()
        signature = try decoder.readSignature()
    }
}

/// Two conflicting votes of one validator at the same height, round and type: proof that it
/// equivocated (CometBFT `spec/consensus/evidence.md`, DuplicateVoteEvidence).
public struct DuplicateVoteEvidence: Hashable, Sendable {
    public let voteA: Vote
    public let voteB: Vote

    /// Orders the two votes canonically (by block ID), so both observers build the same evidence.
    public init(_ first: Vote, _ second: Vote) {
        let firstKey = first.blockID?.bytes ?? []
        let secondKey = second.blockID?.bytes ?? []
        if firstKey.lexicographicallyPrecedes(secondKey) {
            voteA = first
            voteB = second
        } else {
            voteA = second
            voteB = first
        }
    }

    public var validator: PublicKey { voteA.validator }
    public var height: UInt64 { voteA.height }

    /// Checks the evidence's own shape and signatures (membership is checked against the
    /// validator set of its height by the chain).
    public func verify(chainID: String) throws(LedgerError) {
        guard voteA.validator == voteB.validator, voteA.height == voteB.height, voteA.round == voteB.round,
            voteA.type == voteB.type, voteA.blockID != voteB.blockID
        else { throw LedgerError(.invalidBlock, "evidence votes do not conflict") }
        guard voteA.isSignatureValid(chainID: chainID), voteB.isSignatureValid(chainID: chainID) else {
            throw LedgerError(.invalidSignature, "an evidence vote has an invalid signature")
        }
    }

    public var hash: Hash256 {
        var encoder = CanonicalEncoder()
        encode(into: &encoder)
        return Hash256.sha256(encoder.bytes)
    }

    public func encode(into encoder: inout CanonicalEncoder) {
        voteA.encode(into: &encoder)
        voteB.encode(into: &encoder)
    }

    public init(from decoder: inout CanonicalDecoder) throws(StratosError) {
        voteA = try Vote(from: &decoder)
        voteB = try Vote(from: &decoder)
    }
}
