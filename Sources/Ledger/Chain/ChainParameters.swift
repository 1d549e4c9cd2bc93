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

    public init() {}

    func encode(into encoder: inout CanonicalEncoder) {
        encoder.write(minimumFee)
        encoder.write(stakePerPower)
        encoder.write(unbondingBlocks)
        encoder.write(doubleSignSlashBasisPoints)
        encoder.write(evidenceMaxAgeBlocks)
    }

    init(from decoder: inout CanonicalDecoder) throws(StratosError) {
        minimumFee = try decoder.readUInt64()
        stakePerPower = try decoder.readUInt64()
        unbondingBlocks = try decoder.readUInt64()
        doubleSignSlashBasisPoints = try decoder.readUInt64()
        evidenceMaxAgeBlocks = try decoder.readUInt64()
        guard stakePerPower > 0, doubleSignSlashBasisPoints <= 10_000 else { throw StratosError(.invalidEncoding, "invalid chain parameters") }
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
