import Ledger
import StratosCore

/// Four validators of equal power on a fresh chain, and helpers to sign for them.
struct Fixture {
    static let chainID = "stratos-test"
    let keys: [SigningKey]
    let genesis: Genesis
    let state: ChainState

    init(validatorCount: Int = 4, powers: [UInt64]? = nil) {
        keys = (0..<validatorCount).map { index in
            var seed = [UInt8](repeating: 0, count: 32)
            seed[0] = UInt8(index)
            seed[31] = 0x7E
            return try! SigningKey(seed: seed)
        }
        let stakes = powers ?? Array(repeating: 10, count: validatorCount)
        var parameters = ChainParameters()
        parameters.unbondingBlocks = 20
        parameters.evidenceMaxAgeBlocks = 20
        parameters.signedBlocksWindow = 10
        parameters.downtimeJailBlocks = 5
        parameters.governanceVotingBlocks = 8
        genesis = Genesis(
            chainID: Fixture.chainID, timeMilliseconds: 1_000,
            accounts: zip(keys, stakes).map { Genesis.Account(key: $0.publicKey, balance: 100_000_000, stake: $1 * 1_000_000) },
            parameters: parameters)
        state = try! ChainState(genesis: genesis)
    }

    var validators: ValidatorSet { state.validators }

    func key(for publicKey: PublicKey) -> SigningKey { keys.first { $0.publicKey == publicKey }! }

    /// The validator that proposes `round` at height 1.
    func proposer(round: Int32) -> SigningKey { key(for: validators.proposer(round: round)) }

    /// A block for height 1 built at `time` (different times give different blocks).
    func block(time: Int64, proposer: PublicKey? = nil) -> Block {
        var app = ChainApplication(state: state, proposerKey: proposer ?? validators.proposer, lastCommit: nil)
        app.nowMilliseconds = time
        return app.proposeBlock(height: 1, round: 0)
    }

    func proposal(_ block: Block, round: Int32, polRound: Int32 = -1) -> Proposal {
        Proposal(height: 1, round: round, polRound: polRound, blockID: block.id, chainID: Fixture.chainID, key: proposer(round: round))
    }

    func vote(_ type: VoteType, round: Int32, _ block: Block?, by key: SigningKey, height: UInt64 = 1) -> Vote {
        Vote(type: type, height: height, round: round, blockID: block?.id, chainID: Fixture.chainID, key: key)
    }

    /// A core for validator `key` at height 1.
    func core(for key: SigningKey) -> ConsensusCore {
        ConsensusCore(chainID: Fixture.chainID, height: 1, validators: validators, key: key, timeouts: ConsensusTimeouts())
    }

    func application(for key: SigningKey) -> ChainApplication {
        ChainApplication(state: state, proposerKey: key.publicKey, lastCommit: nil)
    }
}

extension [ConsensusAction] {
    /// The votes broadcast, in order.
    var votes: [Vote] { compactMap { if case .broadcastVote(let vote) = $0 { vote } else { nil } } }
    var decisions: [(Block, Commit)] { compactMap { if case .decide(let block, let commit) = $0 { (block, commit) } else { nil } } }
    var timeouts: [ConsensusTimeout] { compactMap { if case .scheduleTimeout(let timeout, _) = $0 { timeout } else { nil } } }
    var evidence: [DuplicateVoteEvidence] { compactMap { if case .evidence(let item) = $0 { item } else { nil } } }
}
