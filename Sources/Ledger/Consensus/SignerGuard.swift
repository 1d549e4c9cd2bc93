import StratosCore

/// The step a signature belongs to, ordered as a validator signs them within a round.
public enum SignedStep: UInt8, Sendable, Comparable {
    case proposal = 1
    case prevote = 2
    case precommit = 3

    public static func < (a: SignedStep, b: SignedStep) -> Bool { a.rawValue < b.rawValue }
}

/// What a validator signed: the height, round and step, the exact bytes and the signature.
/// Stored in the write-ahead log before the message leaves the node.
public struct SignedRecord: Hashable, Sendable {
    public let height: UInt64
    public let round: Int32
    public let step: SignedStep
    public let signBytes: [UInt8]
    public let signature: Signature

    public init(height: UInt64, round: Int32, step: SignedStep, signBytes: [UInt8], signature: Signature) {
        self.height = height
        self.round = round
        self.step = step
        self.signBytes = signBytes
        self.signature = signature
    }

    func isBefore(height: UInt64, round: Int32, step: SignedStep) -> Bool {
        (self.height, self.round, self.step.rawValue) < (height, round, step.rawValue)
    }
}

/// The double-sign guard (CometBFT `spec/consensus/signing.md`): a validator signs only at a
/// (height, round, step) strictly after the last one it signed; asked again for bytes it already
/// signed, it returns the same signature (a replay after restart re-sends, never re-decides).
struct SignerGuard: Sendable {
    let key: SigningKey
    private(set) var last: SignedRecord?
    /// Everything signed at the current height, by sign bytes.
    private var signedAtHeight: [[UInt8]: Signature] = [:]

    init(key: SigningKey, history: [SignedRecord]) {
        self.key = key
        for record in history {
            signedAtHeight[record.signBytes] = record.signature
            if last.map({ $0.isBefore(height: record.height, round: record.round, step: record.step) }) ?? true { last = record }
        }
    }

    /// Signs `bytes` at (height, round, step), or returns nil when that would double-sign.
    /// The returned record is new (to be persisted) or nil when it was signed before.
    mutating func sign(_ bytes: [UInt8], height: UInt64, round: Int32, step: SignedStep) -> (Signature, SignedRecord?)? {
        if let previous = signedAtHeight[bytes] { return (previous, nil) }
        if let last, !last.isBefore(height: height, round: round, step: step) { return nil }
        if let last, last.height < height { signedAtHeight = [:] }
        let signature = key.sign(bytes)
        let record = SignedRecord(height: height, round: round, step: step, signBytes: bytes, signature: signature)
        signedAtHeight[bytes] = signature
        last = record
        return (signature, record)
    }
}
