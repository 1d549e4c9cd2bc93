import ArgumentParser
import Foundation
import Ledger
import QueryEngine
import SpaceOwnership
import StratosCore
import StratosDB

/// Where a ledger command reads the chain: a data directory, node `i` of a cluster directory,
/// or a running node over the wire (`--rpc host:port`).
struct ChainLocation: ParsableArguments {
    @Option(name: .long, help: "The node's data directory (or the cluster's, with --node).") var dataDir: String = "./.stratosdb"
    @Option(name: .long, help: "Node number in a cluster directory (<data-dir>/cluster/node<i>).") var node: Int?
    @Option(name: .long, help: "Read from a running node at host:port (its MongoDB port), logged in with a throwaway identity.") var rpc: String?
    @Flag(name: .long, help: "Print JSON instead of lines.") var json = false

    var nodeDirectory: String {
        guard let node else { return dataDir }
        return ((dataDir as NSString).appendingPathComponent("cluster") as NSString).appendingPathComponent("node\(node)")
    }

    /// The chain, from the local store or from a node.
    func open() throws -> any ChainSource {
        if let rpc { return try RemoteChain(address: rpc) }
        let directory = ((nodeDirectory as NSString).appendingPathComponent("ledger") as NSString).appendingPathComponent("chain")
        guard FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("data.mdb")) else {
            throw CLIError("no chain in \(nodeDirectory): start the node once (stratosdb serve) first")
        }
        // LMDB lets readers in other processes run beside the node.
        do { return try BlockStore(directory: directory, readOnly: true) } catch { throw CLIError("cannot open the chain in \(directory): \(error.message)") }
    }

    func state(_ source: any ChainSource) throws -> ChainState {
        guard let state = try source.latestState() else { throw CLIError("the chain has no block yet") }
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

/// What the ledger commands read.
protocol ChainSource {
    func latestState() throws -> ChainState?
    func block(at height: UInt64) throws -> Block?
    func commit(at height: UInt64) throws -> Commit?
    func transactionLocation(_ hash: Hash256) throws -> (height: UInt64, index: UInt64)?
}

extension BlockStore: ChainSource {}

/// A running node's chain, over the wire protocol.
final class RemoteChain: ChainSource {
    private let client: NodeClient
    private var blocks: [UInt64: (Block, Commit)] = [:]

    init(address: String) throws {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw CLIError("--rpc takes host:port")
        }
        let host = String(address[..<colon])
        client = try NodeClient(host: host, port: port)
    }

    func latestState() throws -> ChainState? {
        let reply = try client.command(["ledgerData": .string("state"), "$db": .string("admin")])
        guard case .binary(let bytes)? = reply["state"] else { throw CLIError("the node sent no state") }
        do { return try ChainState(decoding: bytes.data) } catch { throw CLIError("the node sent a malformed state: \(error.message)") }
    }

    func fetch(_ height: UInt64) throws -> (Block, Commit)? {
        if let cached = blocks[height] { return cached }
        guard let reply = try? client.command(["ledgerData": .string("block"), "height": .int64(Int64(height)), "$db": .string("admin")]),
            case .binary(let blockBytes)? = reply["block"], case .binary(let commitBytes)? = reply["commit"]
        else { return nil }
        do {
            let block = try Block(decoding: blockBytes.data)
            var decoder = CanonicalDecoder(commitBytes.data)
            let commit = try Commit(from: &decoder)
            blocks[height] = (block, commit)
            return (block, commit)
        } catch {
            throw CLIError("the node sent a malformed block")
        }
    }

    func block(at height: UInt64) throws -> Block? { try fetch(height)?.0 }
    func commit(at height: UInt64) throws -> Commit? { try fetch(height)?.1 }

    func transactionLocation(_ hash: Hash256) throws -> (height: UInt64, index: UInt64)? {
        guard let reply = try? client.command(["ledgerTransaction": .string(hash.hex), "$db": .string("admin")]),
            let height = reply["height"]?.int64Value, let index = reply["index"]?.int64Value
        else { return nil }
        return (UInt64(height), UInt64(index))
    }
}

/// `stratosdb ledger …`: read the chain.
struct LedgerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Read the proof-of-stake chain: status, blocks, transactions, accounts, validators.",
        subcommands: [
            Status.self, BlockInfo.self, TransactionInfo.self, AccountInfo.self, Validators.self, ResourceNodes.self, Bans.self,
            BenchmarkAnchoring.self,
        ])

    static func did(_ key: PublicKey) -> String { DID(publicKey: key).string }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The chain's height, last block, and anchoring totals.")
        @OptionGroup var location: ChainLocation

        func run() throws {
            let state = try location.state(try location.open())
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
            let store = try location.open()
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
            let store = try location.open()
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
            case .registerResourceNode(let types, let deposit):
                detail["types"] = ResourceTypes.names(types)
                detail["deposit"] = deposit
            case .proposeBan(let hash):
                detail["contentHash"] = hash.hex
            case .voteBan(let proposal, let approve):
                detail["proposal"] = proposal
                detail["approve"] = approve
            case .unregisterResourceNode, .unjail:
                break
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
            let state = try location.state(try location.open())
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

    struct ResourceNodes: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "resource-nodes", abstract: "Registered resource nodes: types and deposits.")
        @OptionGroup var location: ChainLocation

        func run() throws {
            let state = try location.state(try location.open())
            let entries = state.resourceNodes.sorted { LedgerCommand.did($0.key) < LedgerCommand.did($1.key) }.map { key, node -> [String: Any] in
                ["did": LedgerCommand.did(key), "types": ResourceTypes.names(node.types), "deposit": node.deposit, "registeredHeight": node.registeredHeight]
            }
            try location.output(
                ["resourceNodes": entries],
                lines: entries.map { "\($0["did"]!) \(($0["types"] as? [String] ?? []).joined(separator: ",")) deposit \($0["deposit"]!)" })
        }
    }

    struct Bans: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ban proposals with their tallies, and the banned content hashes.")
        @OptionGroup var location: ChainLocation

        func run() throws {
            let state = try location.state(try location.open())
            let proposals = state.banProposals.values.sorted { $0.id < $1.id }.map { proposal -> [String: Any] in
                let (approving, total) = state.tally(proposal)
                return [
                    "id": proposal.id, "contentHash": proposal.contentHash.hex, "status": ["open", "passed", "rejected"][Int(proposal.status.rawValue)],
                    "approvingStake": approving, "totalStake": total, "votes": proposal.votes.count, "createdHeight": proposal.createdHeight,
                ]
            }
            let banned = state.banned.sorted().map(\.hex)
            try location.output(
                ["proposals": proposals, "banned": banned],
                lines: proposals.map { "proposal \($0["id"]!) \($0["contentHash"]!) \($0["status"]!) approving \($0["approvingStake"]!)/\($0["totalStake"]!)" }
                    + banned.map { "banned \($0)" })
        }
    }

    struct Validators: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The validators of the next height, with power and proposer priority.")
        @OptionGroup var location: ChainLocation

        func run() throws {
            let state = try location.state(try location.open())
            let entries = state.validators.validators.map { validator -> [String: Any] in
                ["did": LedgerCommand.did(validator.publicKey), "power": validator.power, "proposerPriority": validator.proposerPriority]
            }
            try location.output(
                ["height": state.height + 1, "totalPower": state.validators.totalPower, "validators": entries],
                lines: entries.map { "\($0["did"]!) power \($0["power"]!) priority \($0["proposerPriority"]!)" })
        }
    }
}

/// `stratosdb ledger benchmark-anchoring` (hidden): how long one block takes to anchor N space
/// commits on this machine — batch tree, anchor transaction, a decided block through the real
/// consensus machine, the LMDB write of the block and N anchor locations, and N proofs read back
/// and verified. Used by `make bench-ledger`.
struct BenchmarkAnchoring: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark-anchoring", abstract: "Measure anchoring N commits in one block.", shouldDisplay: false)
    @Option(name: .long, help: "Commits (one per space) in the batch.") var commits: Int = 10_000
    @Option(name: .long, help: "A scratch directory (emptied).") var directory: String

    func run() throws {
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let key = SigningKey.generate()
        let genesis = Genesis(chainID: "bench", timeMilliseconds: 1, accounts: [Genesis.Account(key: key.publicKey, balance: 1_000_000_000, stake: 10_000_000)])
        let state = try ChainState(genesis: genesis)
        let store = try BlockStore(directory: directory)
        let clock = ContinuousClock()
        let leaves = (0..<commits).map { index in
            AnchorLeaf(space: "s" + String(format: "%026d", index), seq: 1, commitHash: Hash256.sha256(withUnsafeBytes(of: index) { Array($0) }).bytes)
        }
        var batch: AnchorBatch?
        let treeTime = clock.measure { batch = AnchorBatch(leaves) }
        guard let batch else { return }
        var machine = LedgerMachine(state: state, lastCommit: nil, key: key, timeouts: .loopback)
        let transaction = Transaction(chainID: "bench", key: key, nonce: 0, fee: 10, body: .anchor(root: batch.root, size: UInt64(batch.size)))
        var stored: (CommittedBlock, ChainState)?
        let decideTime = clock.measure {
            _ = machine.handle(.submit(transaction.encoded), nowMilliseconds: 10)
            for action in machine.handle(.start, nowMilliseconds: 20) {
                if case .store(let block, let after) = action { stored = (block, after) }
            }
        }
        guard let (block, after) = stored, let index = block.block.transactions.firstIndex(of: transaction.encoded) else {
            throw CLIError("the block did not include the anchor")
        }
        var locations: [AnchorLocation] = []
        let pathTime = clock.measure {
            let paths = batch.allPaths
            locations = batch.leaves.enumerated().map { leafIndex, leaf in
                AnchorLocation(height: block.block.height, transactionIndex: UInt64(index), leafIndex: UInt64(leafIndex), batchSize: UInt64(batch.size), path: paths[leafIndex], leaf: leaf)
            }
        }
        let storeTime = try clock.measure { try store.save(block, state: after, decidedBy: after.lastValidators!, anchors: locations) }
        var verified = 0
        let proofTime = try clock.measure {
            for leaf in batch.leaves {
                guard let proof = try store.anchorProof(space: leaf.space, seq: leaf.seq) else { continue }
                _ = try proof.verify(space: leaf.space, commitHash: leaf.commitHash, trusted: nil)
                verified += 1
            }
        }
        func ms(_ duration: Duration) -> String { String(format: "%.1f", Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1000) }
        emit("commits \(commits)")
        emit("transactions_in_block \(block.block.transactions.count)")
        emit("batch_tree_ms \(ms(treeTime))")
        emit("decide_block_ms \(ms(decideTime))")
        emit("audit_paths_ms \(ms(pathTime))")
        emit("store_block_and_locations_ms \(ms(storeTime))")
        emit("proofs_verified \(verified)")
        emit("proof_read_and_verify_ms_each \(String(format: "%.3f", (Double(proofTime.components.attoseconds) / 1e15 + Double(proofTime.components.seconds) * 1000) / Double(max(1, verified))))")
    }
}
