import ArgumentParser
import Foundation
import Ledger
import SpaceOwnership
import StratosCore
import StratosDB

/// Where a ledger command reads the chain: a data directory, or node `i` of a cluster directory.
struct ChainLocation: ParsableArguments {
    @Option(name: .long, help: "The node's data directory (or the cluster's, with --node).") var dataDir: String = "./.stratosdb"
    @Option(name: .long, help: "Node number in a cluster directory (<data-dir>/cluster/node<i>).") var node: Int?
    @Flag(name: .long, help: "Print JSON instead of lines.") var json = false

    var nodeDirectory: String {
        guard let node else { return dataDir }
        return ((dataDir as NSString).appendingPathComponent("cluster") as NSString).appendingPathComponent("node\(node)")
    }

    /// Opens the node's block store read-only (LMDB lets readers in other processes run beside the node).
    func openStore() throws -> BlockStore {
        let directory = ((nodeDirectory as NSString).appendingPathComponent("ledger") as NSString).appendingPathComponent("chain")
        guard FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("data.mdb")) else {
            throw CLIError("no chain in \(nodeDirectory): start the node once (stratosdb serve) first")
        }
        do { return try BlockStore(directory: directory, readOnly: true) } catch { throw CLIError("cannot open the chain in \(directory): \(error.message)") }
    }

    func state(_ store: BlockStore) throws -> ChainState {
        guard let state = try store.latestState() else { throw CLIError("the chain in \(nodeDirectory) has no block yet") }
        return state
    }

    /// Prints `object` as JSON, or its lines.
    func output(_ object: [String: Any], lines: [String]) throws {
        if json {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            emit(String(decoding: data, as: UTF8.self))
        } else {
            for line in lines { emit(line) }
        }
    }
}

/// `stratosdb ledger …`: read the chain.
struct LedgerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Read the proof-of-stake chain: status, blocks, transactions, accounts, validators.",
        subcommands: [Status.self, BlockInfo.self, TransactionInfo.self, AccountInfo.self, Validators.self])

    static func did(_ key: PublicKey) -> String { DID(publicKey: key).string }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The chain's height, last block, and anchoring totals.")
        @OptionGroup var location: ChainLocation

        func run() throws {
            let state = try location.state(try location.openStore())
            try location.output(
                [
                    "chainId": state.chainID, "height": state.height, "lastBlockHash": state.lastBlockID?.hex ?? NSNull(),
                    "lastBlockTime": state.lastBlockTimeMilliseconds, "validators": state.validators.count,
                    "totalPower": state.validators.totalPower, "anchorBatches": state.anchorBatchCount, "anchoredCommits": state.anchoredCommitCount,
                    "appHash": state.appHash.hex,
                ],
                lines: [
                    "chain \(state.chainID)", "height \(state.height)", "lastBlock \(state.lastBlockID?.hex ?? "none")",
                    "validators \(state.validators.count) (power \(state.validators.totalPower))",
                    "anchored \(state.anchoredCommitCount) commits in \(state.anchorBatchCount) batches",
                ])
        }
    }

    struct BlockInfo: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "block", abstract: "One block: header, transactions, commit.")
        @Argument(help: "The block height.") var height: UInt64
        @OptionGroup var location: ChainLocation

        func run() throws {
            let store = try location.openStore()
            guard let block = try store.block(at: height), let commit = try store.commit(at: height) else { throw CLIError("no block at height \(height)") }
            let header = block.header
            let transactions = block.transactions.map { bytes -> [String: Any] in
                ["hash": Hash256.sha256(bytes).hex, "type": (try? Transaction(decoding: bytes))?.body.kind ?? "unknown"]
            }
            try location.output(
                [
                    "height": header.height, "hash": block.id.hex, "chainId": header.chainID, "time": header.timeMilliseconds,
                    "lastBlockHash": header.lastBlockID?.hex ?? NSNull(), "dataHash": header.dataHash.hex, "appHash": header.appHash.hex,
                    "validatorsHash": header.validatorsHash.hex, "nextValidatorsHash": header.nextValidatorsHash.hex,
                    "proposer": LedgerCommand.did(header.proposer), "transactions": transactions, "evidence": block.evidence.count,
                    "commitRound": commit.round, "commitSignatures": commit.signatures.map { LedgerCommand.did($0.validator) },
                ],
                lines: [
                    "height \(header.height)", "hash \(block.id.hex)", "time \(header.timeMilliseconds)",
                    "lastBlock \(header.lastBlockID?.hex ?? "none")", "proposer \(LedgerCommand.did(header.proposer))",
                    "transactions \(block.transactions.count)", "evidence \(block.evidence.count)",
                    "signatures \(commit.signatures.count) (round \(commit.round))",
                ] + transactions.map { "tx \($0["hash"]!) \($0["type"]!)" })
        }
    }

    struct TransactionInfo: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "tx", abstract: "One transaction by its hash.")
        @Argument(help: "The transaction hash (hex).") var hash: String
        @OptionGroup var location: ChainLocation

        func run() throws {
            let store = try location.openStore()
            guard let digest = try? Hash256(bytes: try Hex.decode(hash)) else { throw CLIError("a transaction hash is 64 hex digits") }
            guard let (height, index) = try store.transactionLocation(digest), let block = try store.block(at: height),
                index < UInt64(block.transactions.count)
            else { throw CLIError("no transaction \(hash) on this chain") }
            let transaction = try Transaction(decoding: block.transactions[Int(index)])
            var detail: [String: Any] = ["type": transaction.body.kind]
            switch transaction.body {
            case .transfer(let to, let amount):
                detail["to"] = LedgerCommand.did(to)
                detail["amount"] = amount
            case .stake(let amount), .unstake(let amount):
                detail["amount"] = amount
            case .anchor(let root, let size):
                detail["root"] = root.hex
                detail["size"] = size
            }
            let object: [String: Any] = [
                "hash": hash.lowercased(), "height": height, "index": index, "sender": LedgerCommand.did(transaction.sender),
                "nonce": transaction.nonce, "fee": transaction.fee, "body": detail,
            ]
            try location.output(
                object,
                lines: ["hash \(hash.lowercased())", "height \(height)", "index \(index)", "sender \(LedgerCommand.did(transaction.sender))",
                    "nonce \(transaction.nonce)", "fee \(transaction.fee)"] + detail.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" })
        }
    }

    struct AccountInfo: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "account", abstract: "An account's balance, nonce and stake (micro-units).")
        @Argument(help: "The account's did:key.") var did: String
        @OptionGroup var location: ChainLocation

        func run() throws {
            guard let parsed = try? DID(parsing: did) else { throw CLIError("\(did) is not a did:key") }
            let state = try location.state(try location.openStore())
            let account = state.accounts[parsed.publicKey] ?? Account()
            let unbonding = state.unbonding.filter { $0.owner == parsed.publicKey }.reduce(0) { $0 + $1.amount }
            try location.output(
                [
                    "did": did, "balance": account.balance, "nonce": account.nonce, "stake": account.stake, "unbonding": unbonding,
                    "power": state.validators.power(of: parsed.publicKey), "tombstoned": state.tombstoned.contains(parsed.publicKey), "height": state.height,
                ],
                lines: [
                    "did \(did)", "balance \(account.balance)", "nonce \(account.nonce)", "stake \(account.stake)", "unbonding \(unbonding)",
                    "power \(state.validators.power(of: parsed.publicKey))",
                ])
        }
    }

    struct Validators: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The validators of the next height, with power and proposer priority.")
        @OptionGroup var location: ChainLocation

        func run() throws {
            let state = try location.state(try location.openStore())
            let entries = state.validators.validators.map { validator -> [String: Any] in
                ["did": LedgerCommand.did(validator.publicKey), "power": validator.power, "proposerPriority": validator.proposerPriority]
            }
            try location.output(
                ["height": state.height + 1, "totalPower": state.validators.totalPower, "validators": entries],
                lines: entries.map { "\($0["did"]!) power \($0["power"]!) priority \($0["proposerPriority"]!)" })
        }
    }
}
