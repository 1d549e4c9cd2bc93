/// The error shape of the ledger: a stable code, a message free of secrets, an optional cause.
public struct LedgerError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-readable error category.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidEncoding, invalidSignature, invalidBlock, invalidTransaction, invalidProof
            case insufficientFunds, unknownAccount, badNonce, storage, notFound, limitExceeded
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Bytes could not be decoded.
        public static let invalidEncoding = Code(.invalidEncoding)
        /// A signature did not verify.
        public static let invalidSignature = Code(.invalidSignature)
        /// A block broke a rule of the chain (header, commit, evidence, transactions).
        public static let invalidBlock = Code(.invalidBlock)
        /// A transaction is malformed or not allowed.
        public static let invalidTransaction = Code(.invalidTransaction)
        /// A light-client or anchor proof did not verify.
        public static let invalidProof = Code(.invalidProof)
        /// An account cannot pay the amount and the fee.
        public static let insufficientFunds = Code(.insufficientFunds)
        /// The account does not exist.
        public static let unknownAccount = Code(.unknownAccount)
        /// The transaction's nonce is not the account's next nonce.
        public static let badNonce = Code(.badNonce)
        /// The block store or write-ahead log failed.
        public static let storage = Code(.storage)
        /// The requested block, transaction or account is not there.
        public static let notFound = Code(.notFound)
        /// A configured bound was exceeded.
        public static let limitExceeded = Code(.limitExceeded)

        public var description: String { base.rawValue }
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { "\(code): \(message)" }
}
