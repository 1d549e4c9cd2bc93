import ArgumentParser
import Foundation
import Ledger
import QueryEngine
import SpaceOwnership
import StratosCore
import StratosDB

#if canImport(Glibc)
import Glibc
#endif

struct TransactionOptions: ParsableArguments {
    @Option(name: .long, help: "The node's data directory (or the cluster's, with --node).") var dataDir: String = "./.stratosdb"
    @Option(name: .long, help: "Node number in a cluster directory.") var node: Int?
    @Option(name: .long, help: "The signing key: a name in the keys directory (node, owner, or one from `key new`) or a path.") var key: String
    @Option(name: .long, help: "The fee, in micro-units.") var fee: UInt64 = 10
    @Flag(name: .long, help: "Wait until the transaction is in a decided block.") var wait = false

    var nodeDirectory: String {
        let base = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        guard let node else { return base }
        return ((base as NSString).appendingPathComponent("cluster") as NSString).appendingPathComponent("node\(node)")
    }

    /// Builds, signs and submits `body`; prints the transaction hash (and its height with --wait).
    func submit(_ body: TransactionBody) throws {
        let store = KeyStore(dataDirectory: nodeDirectory)
        let signer: SigningKey
        do { signer = try store.load(key) } catch { throw CLIError(error.message) }
        guard let address = NodeAddress.read(dataDirectory: nodeDirectory) else {
            throw CLIError("no running node in \(nodeDirectory): start it first")
        }
        let client = try NodeClient(address: address, key: signer)
        let status = try client.command(["ledgerStatus": .int32(1), "$db": .string("admin")])
        guard case .string(let chainID)? = status["chainId"] else { throw CLIError("the node reported no chain") }
        let account = try client.command(["ledgerAccount": .string(signer.did.string), "$db": .string("admin")])
        let nonce = UInt64(account["nextNonce"]?.int64Value ?? account["nonce"]?.int64Value ?? 0)
        let transaction = Transaction(chainID: chainID, key: signer, nonce: nonce, fee: fee, body: body)
        _ = try client.command([
            "submitTransaction": .binary(BSONBinary(subtype: 0, data: transaction.encoded)), "$db": .string("admin"),
        ])
        emit(transaction.hash.hex)
        guard wait else { return }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let found = try? client.command(["ledgerTransaction": .string(transaction.hash.hex), "$db": .string("admin")]) {
                emit("height \(found["height"]?.int64Value ?? 0)")
                return
            }
            // Its nonce was used by another transaction of the same key: it can no longer be included.
            let now = try client.command(["ledgerAccount": .string(signer.did.string), "$db": .string("admin")])
            if UInt64(now["nonce"]?.int64Value ?? 0) > nonce, (try? client.command(["ledgerTransaction": .string(transaction.hash.hex), "$db": .string("admin")])) == nil {
                throw CLIError("the transaction was not included: another transaction of this key took nonce \(nonce); submit it again")
            }
            usleep(100_000)
        }
        throw CLIError("the transaction was not included within 60 s")
    }
}

struct TransferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "transfer", abstract: "Send micro-units to another account; prints the transaction hash.")
    @Option(name: .long, help: "The receiving did:key.") var to: String
    @Option(name: .long, help: "The amount, in micro-units.") var amount: UInt64
    @OptionGroup var options: TransactionOptions

    func run() throws {
        guard let receiver = try? DID(parsing: to) else { throw CLIError("\(to) is not a did:key") }
        try options.submit(.transfer(to: receiver.publicKey, amount: amount))
    }
}

struct StakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stake", abstract: "Bond micro-units as stake: voting power from two blocks later (one power per 1,000,000).")
    @Option(name: .long, help: "The amount, in micro-units.") var amount: UInt64
    @Flag(name: .long, help: "Stake with a key that no running node signs blocks with.") var force = false
    @OptionGroup var options: TransactionOptions

    func run() throws {
        // Stake makes its key a validator. A validator that runs no node cannot vote, and once
        // such keys hold a third of the power the chain stops deciding blocks.
        let nodeKey = try? KeyStore(dataDirectory: options.nodeDirectory).load("node")
        let signer = try? KeyStore(dataDirectory: options.nodeDirectory).load(options.key)
        if !force, let signer, signer.publicKey != nodeKey?.publicKey {
            throw CLIError("stake makes \(signer.did) a validator, but no node here signs with that key; a validator without a running node halts the chain once such keys hold 1/3 of the power. Stake with the node's key (--key node), or pass --force")
        }
        try options.submit(.stake(amount: amount))
    }
}

struct UnstakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unstake", abstract: "Unbond stake: power drops two blocks later; the balance returns after the unbonding period.")
    @Option(name: .long, help: "The amount, in micro-units.") var amount: UInt64
    @OptionGroup var options: TransactionOptions

    func run() throws { try options.submit(.unstake(amount: amount)) }
}

/// Resource-node type names and bits (Stratos: storage 4, database 2, computation 1).
enum ResourceTypes {
    static let bits: [(String, UInt8)] = [("storage", ResourceNode.storage), ("database", ResourceNode.database), ("computation", ResourceNode.computation)]

    static func names(_ types: UInt8) -> [String] { bits.filter { types & $0.1 != 0 }.map(\.0) }

    static func parse(_ text: String) throws -> UInt8 {
        var types: UInt8 = 0
        for name in text.split(separator: ",") {
            guard let bit = bits.first(where: { $0.0 == name.trimmingCharacters(in: .whitespaces) })?.1 else {
                throw CLIError("unknown resource type '\(name)': use storage, database and computation, comma-separated")
            }
            types |= bit
        }
        guard types != 0 else { throw CLIError("give at least one resource type") }
        return types
    }
}

struct ResourceNodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resource-node", abstract: "Register this node on the chain as a resource node (storage, database, computation), or retire it.",
        subcommands: [Register.self, Unregister.self])

    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register (or update) the key as a resource node, adding a deposit.")
        @Option(name: .long, help: "Types, comma-separated: storage, database, computation.") var types: String
        @Option(name: .long, help: "Deposit to add, in micro-units (the total must reach the chain's minimum).") var deposit: UInt64
        @OptionGroup var options: TransactionOptions

        func run() throws { try options.submit(.registerResourceNode(types: try ResourceTypes.parse(types), deposit: deposit)) }
    }

    struct Unregister: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Retire the resource node; the deposit returns after the unbonding period.")
        @OptionGroup var options: TransactionOptions

        func run() throws { try options.submit(.unregisterResourceNode) }
    }
}

struct BanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ban", abstract: "Propose banning content by hash, or vote on a proposal (passes at > 2/3 of the staked power).",
        subcommands: [Propose.self, Vote.self])

    struct Propose: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Propose a ban (the proposer needs voting power; its own vote is yes).")
        @Option(name: .long, help: "The content hash, 64 hex digits.") var hash: String
        @OptionGroup var options: TransactionOptions

        func run() throws {
            guard let digest = try? Hash256(bytes: try Hex.decode(hash)) else { throw CLIError("a content hash is 64 hex digits") }
            try options.submit(.proposeBan(contentHash: digest))
        }
    }

    struct Vote: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Vote on a ban proposal with the key's stake.")
        @Option(name: .long, help: "The proposal number (stratosdb ledger bans).") var proposal: UInt64
        @Flag(name: .long, help: "Vote against (the default is for).") var reject = false
        @OptionGroup var options: TransactionOptions

        func run() throws { try options.submit(.voteBan(proposal: proposal, approve: !reject)) }
    }
}

struct UnjailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unjail", abstract: "Return a validator jailed for downtime to the set, once its jail term is over.")
    @OptionGroup var options: TransactionOptions

    func run() throws { try options.submit(.unjail) }
}
