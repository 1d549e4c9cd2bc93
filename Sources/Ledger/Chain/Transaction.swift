import StratosCore

/// What a transaction does.
public enum TransactionBody: Hashable, Sendable {
    /// Moves `amount` micro-units to `to`.
    case transfer(to: PublicKey, amount: UInt64)
    /// Bonds `amount` of the sender's balance as stake (voting power from H+2).
    case stake(amount: UInt64)
    /// Starts unbonding `amount` of stake: power drops at H+2, the balance returns after the
    /// unbonding period (slashable until then).
    case unstake(amount: UInt64)
    /// Anchors a batch of space commits: the root and size of its RFC 6962 tree (O(1) per batch).
    case anchor(root: Hash256, size: UInt64)
    /// Registers (or updates) the sender as a resource node with these type bits (storage 4,
    /// database 2, computation 1), adding `deposit` to its deposit.
    case registerResourceNode(types: UInt8, deposit: UInt64)
    /// Retires the sender's resource node; its deposit returns after the unbonding period.
    case unregisterResourceNode
    /// Proposes banning content by its hash; stakers vote, and > 2/3 of the staked power bans it.
    case proposeBan(contentHash: Hash256)
    /// A staker's vote on a ban proposal (a later vote replaces an earlier one).
    case voteBan(proposal: UInt64, approve: Bool)
    /// Ends a downtime jail once its term is over.
    case unjail

    var tag: UInt8 {
        switch self {
        case .transfer: 1
        case .stake: 2
        case .unstake: 3
        case .anchor: 4
        case .registerResourceNode: 5
        case .unregisterResourceNode: 6
        case .proposeBan: 7
        case .voteBan: 8
        case .unjail: 9
        }
    }

    public var kind: String {
        switch self {
        case .transfer: "transfer"
        case .stake: "stake"
        case .unstake: "unstake"
        case .anchor: "anchor"
        case .registerResourceNode: "registerResourceNode"
        case .unregisterResourceNode: "unregisterResourceNode"
        case .proposeBan: "proposeBan"
        case .voteBan: "voteBan"
        case .unjail: "unjail"
        }
    }
}

/// A signed transaction. The sender's key signs the chain ID, nonce, fee and body, so a
/// transaction is valid on one chain, once.
public struct Transaction: Hashable, Sendable {
    public let sender: PublicKey
    public let nonce: UInt64
    public let fee: UInt64
    public let body: TransactionBody
    public let signature: Signature

    static let domain = "stratosdb/transaction/v1"

    /// Creates and signs a transaction.
    public init(chainID: String, key: SigningKey, nonce: UInt64, fee: UInt64, body: TransactionBody) {
        self.sender = key.publicKey
        self.nonce = nonce
        self.fee = fee
        self.body = body
        self.signature = key.sign(Transaction.signBytes(chainID: chainID, sender: key.publicKey, nonce: nonce, fee: fee, body: body))
    }

    static func signBytes(chainID: String, sender: PublicKey, nonce: UInt64, fee: UInt64, body: TransactionBody) -> [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(domain)
        encoder.write(chainID)
        encoder.write(key: sender)
        encoder.write(nonce)
        encoder.write(fee)
        Transaction.encode(body, into: &encoder)
        return encoder.bytes
    }

    public func isSignatureValid(chainID: String) -> Bool {
        sender.isValidSignature(signature, for: Transaction.signBytes(chainID: chainID, sender: sender, nonce: nonce, fee: fee, body: body))
    }

    static func encode(_ body: TransactionBody, into encoder: inout CanonicalEncoder) {
        encoder.write(body.tag)
        switch body {
        case .transfer(let to, let amount):
            encoder.write(key: to)
            encoder.write(amount)
        case .stake(let amount), .unstake(let amount):
            encoder.write(amount)
        case .anchor(let root, let size):
            encoder.write(hash: root)
            encoder.write(size)
        case .registerResourceNode(let types, let deposit):
            encoder.write(types)
            encoder.write(deposit)
        case .proposeBan(let hash):
            encoder.write(hash: hash)
        case .voteBan(let proposal, let approve):
            encoder.write(proposal)
            encoder.write(approve)
        case .unregisterResourceNode, .unjail:
            break
        }
    }

    /// The bytes carried in a block.
    public var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(key: sender)
        encoder.write(nonce)
        encoder.write(fee)
        Transaction.encode(body, into: &encoder)
        encoder.write(signature: signature)
        return encoder.bytes
    }

    /// The transaction hash: SHA-256 of its bytes (what `ledger tx HASH` looks up).
    public var hash: Hash256 { Hash256.sha256(encoded) }

    public init(decoding bytes: [UInt8]) throws(LedgerError) {
        guard bytes.count <= LedgerLimits.transactionBytesMax else { throw LedgerError(.limitExceeded, "transaction is too large") }
        (sender, nonce, fee, body, signature) = try ledgerDecode("transaction") {
            () throws(StratosError) -> (PublicKey, UInt64, UInt64, TransactionBody, Signature) in
            var decoder = CanonicalDecoder(bytes)
            let sender = try decoder.readKey()
            let nonce = try decoder.readUInt64()
            let fee = try decoder.readUInt64()
            let body: TransactionBody
            switch try decoder.readUInt8() {
            case 1: body = .transfer(to: try decoder.readKey(), amount: try decoder.readUInt64())
            case 2: body = .stake(amount: try decoder.readUInt64())
            case 3: body = .unstake(amount: try decoder.readUInt64())
            case 4: body = .anchor(root: try decoder.readHash(), size: try decoder.readUInt64())
            case 5: body = .registerResourceNode(types: try decoder.readUInt8(), deposit: try decoder.readUInt64())
            case 6: body = .unregisterResourceNode
            case 7: body = .proposeBan(contentHash: try decoder.readHash())
            case 8: body = .voteBan(proposal: try decoder.readUInt64(), approve: try decoder.readBool())
            case 9: body = .unjail
            default: throw StratosError(.invalidEncoding, "unknown transaction type")
            }
            let signature = try decoder.readSignature()
            try decoder.finish()
            return (sender, nonce, fee, body, signature)
        }
    }
}
