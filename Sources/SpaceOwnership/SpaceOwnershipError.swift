/// The error shape of the ownership model: a stable code and a message free of secrets.
public struct SpaceOwnershipError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-readable error category.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidIdentity, invalidSpaceName, invalidGrant, invalidToken, expired, invalidKeyFile
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A DID could not be parsed or is not an Ed25519 did:key.
        public static let invalidIdentity = Code(.invalidIdentity)
        /// A space name is empty, too long or holds a character MongoDB refuses.
        public static let invalidSpaceName = Code(.invalidSpaceName)
        /// A grant or revocation is malformed or its signature does not verify.
        public static let invalidGrant = Code(.invalidGrant)
        /// A session token is malformed, for another node, or its signature does not verify.
        public static let invalidToken = Code(.invalidToken)
        /// A token or grant is past its expiry.
        public static let expired = Code(.expired)
        /// A key file could not be read.
        public static let invalidKeyFile = Code(.invalidKeyFile)

        public var description: String { base.rawValue }
    }

    /// The error category.
    public var code: Code
    /// A human-readable explanation without key material or tokens.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
