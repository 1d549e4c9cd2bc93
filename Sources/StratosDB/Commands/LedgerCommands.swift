import Foundation
import Ledger
import QueryEngine
import SpaceOwnership
import StratosCore
import Synchronization

/// Reading the chain and submitting transactions over the wire protocol:
/// `ledgerStatus`, `ledgerBlock`, `ledgerAccount`, `submitTransaction`.
enum LedgerCommands {
    static func register(into table: inout CommandTable) {
        table["ledgerStatus"] = { context in try status(context) }
        table["ledgerBlock"] = { context in try block(context) }
        table["ledgerAccount"] = { context in try await account(context) }
        table["ledgerTransaction"] = { context in try transaction(context) }
        table["ledgerData"] = { context in try await data(context) }
        table["submitTransaction"] = { context in try await submit(context) }
    }

    static func ledger(_ context: CommandContext) throws(QueryError) -> LedgerService {
        guard let ledger = context.server.ledger else {
            throw QueryError(.location(7_200_001), "this node runs without a ledger (--benchmark-baseline)")
        }
        return ledger
    }

    static func status(_ context: CommandContext) throws -> BSONDocument {
        let ledger = try ledger(context)
        let status = ledger.status
        let latencies = ledger.blockLatencies.withLock { $0 }.sorted()
        var reply: BSONDocument = [
            "chainId": .string(status.chainID), "height": .int64(Int64(status.height)),
            "lastBlockHash": status.lastBlockID.map { .string($0.hex) } ?? .null,
            "lastBlockTime": .datetime(status.lastBlockTimeMilliseconds),
            "node": .string(context.server.identity.nodeKey.did.string),
            "isValidator": .bool(status.validators.contains(context.server.identity.nodeKey.publicKey)),
            "validators": .array(validators(status.validators)),
            "anchorBatches": .int64(Int64(status.anchorBatches)), "anchoredCommits": .int64(Int64(status.anchoredCommits)),
        ]
        if !latencies.isEmpty {
            reply["blockCommitLatencyMillisMedian"] = .int64(latencies[latencies.count / 2])
        }
        return reply
    }

    static func validators(_ set: ValidatorSet) -> [BSONValue] {
        set.validators.map { validator in
            .document(["did": .string(DID(publicKey: validator.publicKey).string), "power": .int64(validator.power), "proposerPriority": .int64(validator.proposerPriority)])
        }
    }

    static func block(_ context: CommandContext) throws -> BSONDocument {
        let ledger = try ledger(context)
        guard let height = try context.integer("ledgerBlock"), height > 0 else {
            throw QueryError(.badValue, "ledgerBlock takes a height of 1 or more")
        }
        guard let block = try ledger.store.block(at: UInt64(height)), let commit = try ledger.store.commit(at: UInt64(height)) else {
            throw QueryError(.location(7_200_002), "no block at height \(height) yet")
        }
        return describe(block, commit)
    }

    static func describe(_ block: Block, _ commit: Commit) -> BSONDocument {
        let header = block.header
        return [
            "height": .int64(Int64(header.height)), "hash": .string(block.id.hex), "chainId": .string(header.chainID),
            "time": .datetime(header.timeMilliseconds), "lastBlockHash": header.lastBlockID.map { .string($0.hex) } ?? .null,
            "dataHash": .string(header.dataHash.hex), "appHash": .string(header.appHash.hex),
            "validatorsHash": .string(header.validatorsHash.hex), "nextValidatorsHash": .string(header.nextValidatorsHash.hex),
            "proposer": .string(DID(publicKey: header.proposer).string),
            "transactions": .array(block.transactions.map { bytes in
                let decoded = try? Transaction(decoding: bytes)
                return .document(["hash": .string(Hash256.sha256(bytes).hex), "type": .string(decoded?.body.kind ?? "unknown")])
            }),
            "evidence": .int32(Int32(block.evidence.count)),
            "commit": .document(["round": .int32(commit.round), "signatures": .int32(Int32(commit.signatures.count))]),
        ]
    }

    static func account(_ context: CommandContext) async throws -> BSONDocument {
        let ledger = try ledger(context)
        guard case .string(let text) = context.firstValue, let did = try? DID(parsing: text) else {
            throw QueryError(.badValue, "ledgerAccount takes a did:key")
        }
        let state = await ledger.state()
        let account = state.accounts[did.publicKey] ?? Account()
        return [
            "did": .string(did.string), "balance": .int64(Int64(clamping: account.balance)), "nonce": .int64(Int64(clamping: account.nonce)),
            "stake": .int64(Int64(clamping: account.stake)), "power": .int64(state.validators.power(of: did.publicKey)),
            "unbonding": .int64(Int64(clamping: state.unbonding.filter { $0.owner == did.publicKey }.reduce(0) { $0 + $1.amount })),
            "tombstoned": .bool(state.tombstoned.contains(did.publicKey)), "height": .int64(Int64(state.height)),
            "nextNonce": .int64(Int64(clamping: await ledger.nextNonce(for: did.publicKey))),
        ]
    }

    /// `{ledgerData: "state"}` or `{ledgerData: "block", height: H}`: the chain's own bytes (the
    /// state after the last block; a block and its commit), for `stratosdb ledger … --rpc`,
    /// which decodes and prints them exactly as it does from a local data directory.
    static func data(_ context: CommandContext) async throws -> BSONDocument {
        let ledger = try ledger(context)
        switch context.firstValue {
        case .string("state"):
            let state = await ledger.state()
            return ["state": .binary(BSONBinary(subtype: 0, data: state.encoded))]
        case .string("block"):
            guard let height = try context.integer("height"), height > 0 else { throw QueryError(.badValue, "ledgerData block takes a height of 1 or more") }
            guard let block = try ledger.store.block(at: UInt64(height)), let commit = try ledger.store.commit(at: UInt64(height)) else {
                throw QueryError(.location(7_200_002), "no block at height \(height) yet")
            }
            var encoder = CanonicalEncoder()
            commit.encode(into: &encoder)
            return ["block": .binary(BSONBinary(subtype: 0, data: block.encoded)), "commit": .binary(BSONBinary(subtype: 0, data: encoder.bytes))]
        default:
            throw QueryError(.badValue, "ledgerData takes \"state\" or \"block\"")
        }
    }

    /// `{ledgerTransaction: "<hash hex>"}`: where a transaction is on the chain.
    static func transaction(_ context: CommandContext) throws -> BSONDocument {
        let ledger = try ledger(context)
        guard case .string(let text) = context.firstValue, let hash = try? Hash256(bytes: try Hex.decode(text)) else {
            throw QueryError(.badValue, "ledgerTransaction takes a transaction hash (64 hex digits)")
        }
        guard let (height, index) = try ledger.store.transactionLocation(hash) else {
            throw QueryError(.location(7_200_004), "no transaction \(text) on the chain (yet)")
        }
        return ["hash": .string(hash.hex), "height": .int64(Int64(height)), "index": .int64(Int64(index))]
    }

    /// `{submitTransaction: BinData}`: a signed transaction for the mempool. The signature is
    /// the authority; the node only checks it is well formed and not a duplicate.
    static func submit(_ context: CommandContext) async throws -> BSONDocument {
        let ledger = try ledger(context)
        guard case .binary(let binary) = context.firstValue else {
            throw QueryError(.typeMismatch, "submitTransaction takes the transaction's bytes as BinData")
        }
        let transaction: Transaction
        do { transaction = try Transaction(decoding: binary.data) } catch {
            throw QueryError(.badValue, "not a transaction: \(error.message)")
        }
        guard transaction.isSignatureValid(chainID: ledger.chainID) else {
            throw QueryError(.badValue, "the transaction's signature does not verify for chain \(ledger.chainID)")
        }
        do { try await ledger.submit(binary.data) } catch let error as LedgerError {
            throw QueryError(.location(7_200_003), "the transaction was refused: \(error.message)")
        }
        return ["hash": .string(transaction.hash.hex)]
    }
}
