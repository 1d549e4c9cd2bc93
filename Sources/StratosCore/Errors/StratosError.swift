/// The error shape shared by StratosDB's foundation modules.
///
/// A `code` is a struct over a private enum, so new codes can be added without breaking callers
/// (the same idea as swift-nio's `FileSystemError.Code`). Messages never contain key material or
/// document contents.
public struct StratosError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-readable error category.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidArgument
            case invalidEncoding
            case invalidProof
            case invalidSignature
            case cryptoFailure
            case limitExceeded
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// An argument was outside its allowed range or shape.
        public static let invalidArgument = Code(.invalidArgument)
        /// Bytes could not be decoded (truncated, malformed, trailing data).
        public static let invalidEncoding = Code(.invalidEncoding)
        /// A Merkle proof did not verify.
        public static let invalidProof = Code(.invalidProof)
        /// A signature did not verify.
        public static let invalidSignature = Code(.invalidSignature)
        /// The cryptographic library reported a failure.
        public static let cryptoFailure = Code(.cryptoFailure)
        /// A configured bound was exceeded.
        public static let limitExceeded = Code(.limitExceeded)

        public var description: String { base.rawValue }
    }

    /// The error category.
    public var code: Code
    /// A human-readable explanation, free of secrets.
    public var message: String
    /// The error that caused this one, if any.
    public var underlying: (any Error)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { "\(code): \(message)" }
}
