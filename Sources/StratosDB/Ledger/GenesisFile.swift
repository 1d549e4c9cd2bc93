import Foundation
import Ledger
import QueryEngine
import SpaceOwnership
import StratosCore

/// The chain's genesis as a JSON file (`<data-dir>/ledger/genesis.json`): the chain ID, the
/// start time, the first accounts (by did:key) with their balances and stake, the parameters.
/// Every node of a network starts from the same file.
public struct GenesisFile: Codable, Sendable {
    public struct AccountEntry: Codable, Sendable {
        public var did: String
        /// Micro-units.
        public var balance: UInt64
        /// Micro-units bonded at genesis; accounts with stake are the first validators.
        public var stake: UInt64
    }

    public struct ParameterEntries: Codable, Sendable {
        public var minimumFee: UInt64
        public var stakePerPower: UInt64
        public var unbondingBlocks: UInt64
        public var doubleSignSlashBasisPoints: UInt64
        public var evidenceMaxAgeBlocks: UInt64
        // Optional in the file: absent means the default.
        public var resourceNodeDepositMinimum: UInt64?
        public var governanceVotingBlocks: UInt64?
        public var signedBlocksWindow: UInt64?
        public var minimumSignedPercent: UInt64?
        public var downtimeJailBlocks: UInt64?
        public var downtimeSlashBasisPoints: UInt64?
    }

    public var chainId: String
    public var genesisTimeMilliseconds: Int64
    public var accounts: [AccountEntry]
    public var parameters: ParameterEntries

    /// The default for a node that plays every role alone: it is the only validator.
    public static func singleNode(nodeDID: DID, nowMilliseconds: Int64) -> GenesisFile {
        let defaults = ChainParameters()
        return GenesisFile(
            chainId: "stratos-local-" + String(Hex.encode(nodeDID.publicKey.bytes).prefix(8)), genesisTimeMilliseconds: nowMilliseconds,
            accounts: [AccountEntry(did: nodeDID.string, balance: 1_000_000_000_000, stake: 10_000_000)],
            parameters: ParameterEntries(defaults))
    }

    /// A network of validators with equal stake (`stratosdb cluster up`).
    public static func network(validators: [DID], nowMilliseconds: Int64) -> GenesisFile {
        let defaults = ChainParameters()
        let tag = Hex.encode(Hash256.sha256(validators.map(\.string).joined().utf8).bytes.prefix(4))
        return GenesisFile(
            chainId: "stratos-cluster-" + tag, genesisTimeMilliseconds: nowMilliseconds,
            accounts: validators.map { AccountEntry(did: $0.string, balance: 1_000_000_000_000, stake: 10_000_000) },
            parameters: ParameterEntries(defaults))
    }

    public var genesis: Genesis {
        get throws(QueryError) {
            var parameters = ChainParameters()
            parameters.minimumFee = self.parameters.minimumFee
            parameters.stakePerPower = self.parameters.stakePerPower
            parameters.unbondingBlocks = self.parameters.unbondingBlocks
            parameters.doubleSignSlashBasisPoints = self.parameters.doubleSignSlashBasisPoints
            parameters.evidenceMaxAgeBlocks = self.parameters.evidenceMaxAgeBlocks
            let optional = self.parameters
            if let value = optional.resourceNodeDepositMinimum { parameters.resourceNodeDepositMinimum = value }
            if let value = optional.governanceVotingBlocks { parameters.governanceVotingBlocks = value }
            if let value = optional.signedBlocksWindow { parameters.signedBlocksWindow = value }
            if let value = optional.minimumSignedPercent { parameters.minimumSignedPercent = value }
            if let value = optional.downtimeJailBlocks { parameters.downtimeJailBlocks = value }
            if let value = optional.downtimeSlashBasisPoints { parameters.downtimeSlashBasisPoints = value }
            var entries: [Genesis.Account] = []
            for account in accounts {
                guard let did = try? DID(parsing: account.did) else { throw QueryError(.badValue, "genesis account \(account.did) is not a did:key") }
                entries.append(Genesis.Account(key: did.publicKey, balance: account.balance, stake: account.stake))
            }
            return Genesis(chainID: chainId, timeMilliseconds: genesisTimeMilliseconds, accounts: entries, parameters: parameters)
        }
    }

    public static func read(path: String) throws(QueryError) -> GenesisFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw QueryError(.badValue, "cannot read the genesis file \(path)") }
        do { return try JSONDecoder().decode(GenesisFile.self, from: data) } catch {
            throw QueryError(.badValue, "the genesis file \(path) is not valid: \(error)")
        }
    }

    public func write(path: String) throws(QueryError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw QueryError(.internalError, "cannot write the genesis file \(path)")
        }
    }
}

extension GenesisFile.ParameterEntries {
    init(_ parameters: ChainParameters) {
        self.init(
            minimumFee: parameters.minimumFee, stakePerPower: parameters.stakePerPower, unbondingBlocks: parameters.unbondingBlocks,
            doubleSignSlashBasisPoints: parameters.doubleSignSlashBasisPoints, evidenceMaxAgeBlocks: parameters.evidenceMaxAgeBlocks,
            resourceNodeDepositMinimum: parameters.resourceNodeDepositMinimum, governanceVotingBlocks: parameters.governanceVotingBlocks,
            signedBlocksWindow: parameters.signedBlocksWindow, minimumSignedPercent: parameters.minimumSignedPercent,
            downtimeJailBlocks: parameters.downtimeJailBlocks, downtimeSlashBasisPoints: parameters.downtimeSlashBasisPoints)
    }
}
