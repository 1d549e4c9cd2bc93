import StratosCore

/// Chain-wide parameters, fixed at genesis (changing them by governance is future work).
public struct ChainParameters: Hashable, Sendable {
    /// The least fee a transaction pays, in micro-units.
    public var minimumFee: UInt64 = 10
    /// Micro-units of stake per unit of voting power.
    public var stakePerPower: UInt64 = 1_000_000
    /// Blocks between an unstake and the return of its balance (slashable meanwhile).
    public var unbondingBlocks: UInt64 = 1_000
    /// The share of stake a double-signing validator loses, in basis points (Cosmos: 5 %).
    public var doubleSignSlashBasisPoints: UInt64 = 500
    /// Evidence older than this many blocks is refused (CometBFT `MaxAgeNumBlocks`); at most
    /// `unbondingBlocks`, so the stake it concerns is still there to slash.
    public var evidenceMaxAgeBlocks: UInt64 = 1_000
    /// The least deposit of a resource node (storage, database, computation).
    public var resourceNodeDepositMinimum: UInt64 = 1_000_000
    /// Blocks a ban proposal stays open for votes.
    public var governanceVotingBlocks: UInt64 = 1_000
    /// Downtime is judged over this many recent blocks (Cosmos `SignedBlocksWindow`).
    public var signedBlocksWindow: UInt64 = 10_000
    /// A validator must have signed at least this share of the window, in percent (Cosmos: 50).
    public var minimumSignedPercent: UInt64 = 50
    /// Blocks a validator stays jailed for downtime before it may unjail.
    public var downtimeJailBlocks: UInt64 = 600
    /// The share of stake a validator loses for downtime, in basis points (Cosmos: 1 %).
    public var downtimeSlashBasisPoints: UInt64 = 100

    public init() {}

    func encode(into encoder: inout CanonicalEncoder) {
        encoder.write(minimumFee)
        encoder.write(stakePerPower)
        encoder.write(unbondingBlocks)
        encoder.write(doubleSignSlashBasisPoints)
        encoder.write(evidenceMaxAgeBlocks)
        encoder.write(resourceNodeDepositMinimum)
        encoder.write(governanceVotingBlocks)
        encoder.write(signedBlocksWindow)
        encoder.write(minimumSignedPercent)
        encoder.write(downtimeJailBlocks)
        encoder.write(downtimeSlashBasisPoints)
    }

    init(from decoder: inout CanonicalDecoder) throws(StratosError) {
        minimumFee = try decoder.readUInt64()
        stakePerPower = try decoder.readUInt64()
        unbondingBlocks = try decoder.readUInt64()
        doubleSignSlashBasisPoints = try decoder.readUInt64()
        evidenceMaxAgeBlocks = try decoder.readUInt64()
        resourceNodeDepositMinimum = try decoder.readUInt64()
        governanceVotingBlocks = try decoder.readUInt64()
        signedBlocksWindow = try decoder.readUInt64()
        minimumSignedPercent = try decoder.readUInt64()
        downtimeJailBlocks = try decoder.readUInt64()
        downtimeSlashBasisPoints = try decoder.readUInt64()
        guard isValid else { throw StratosError(.invalidEncoding, "invalid chain parameters") }
    }

    /// The bounds every parameter set must respect.
    var isValid: Bool {
        stakePerPower > 0 && doubleSignSlashBasisPoints <= 10_000 && downtimeSlashBasisPoints <= 10_000 && minimumSignedPercent <= 100
            && signedBlocksWindow > 0 && signedBlocksWindow <= 1_000_000 && governanceVotingBlocks > 0
            && evidenceMaxAgeBlocks <= unbondingBlocks
    }
}

/// The first state of a chain.
public struct Genesis: Hashable, Sendable {
    public struct Account: Hashable, Sendable {
        public let key: PublicKey
        public let balance: UInt64
        /// Bonded at genesis: accounts with stake are the first validators.
        public let stake: UInt64

        public init(key: PublicKey, balance: UInt64, stake: UInt64) {
            self.key = key
            self.balance = balance
            self.stake = stake
        }
    }

    public var chainID: String
    public var timeMilliseconds: Int64
    public var accounts: [Account]
    public var parameters: ChainParameters

    public init(chainID: String, timeMilliseconds: Int64, accounts: [Account], parameters: ChainParameters = ChainParameters()) {
        self.chainID = chainID
        self.timeMilliseconds = timeMilliseconds
        self.accounts = accounts
        self.parameters = parameters
    }
}
