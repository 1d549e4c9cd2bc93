import Crypto
import Foundation
import QueryEngine
import StratosCore

/// The two SCRAM mechanisms MongoDB drivers speak (RFC 5802, RFC 7677, and MongoDB's
/// "Authentication" driver specification).
enum ScramMechanism: String, Sendable, CaseIterable {
    case sha1 = "SCRAM-SHA-1"
    case sha256 = "SCRAM-SHA-256"

    /// Iterations for new credentials: MongoDB's defaults (SCRAM-SHA-256 15,000, SCRAM-SHA-1
    /// 10,000).
    var iterations: Int {
        switch self {
        case .sha1: 10_000
        case .sha256: 15_000
        }
    }

    var digestCount: Int { self == .sha1 ? 20 : 32 }

    /// The SCRAM password for `password`: SCRAM-SHA-1 in MongoDB hashes `user:mongo:password`
    /// with MD5 first (the legacy MONGODB-CR digest); SCRAM-SHA-256 uses SASLprep'd text.
    func scramPassword(user: String, password: String) throws(QueryError) -> [UInt8] {
        switch self {
        case .sha1:
            let digest = Insecure.MD5.hash(data: Array("\(user):mongo:\(password)".utf8))
            return Array(Hex.encode(Array(digest)).utf8)
        case .sha256:
            return Array(try SASLPrep.prepare(password).utf8)
        }
    }

    func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        let symmetric = SymmetricKey(data: key)
        switch self {
        case .sha1: return Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: symmetric))
        case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: message, using: symmetric))
        }
    }

    func hash(_ message: [UInt8]) -> [UInt8] {
        switch self {
        case .sha1: Array(Insecure.SHA1.hash(data: message))
        case .sha256: Array(SHA256.hash(data: message))
        }
    }

    /// PBKDF2 (RFC 8018 §5.2) with this mechanism's HMAC, one output block: SCRAM's `Hi()`.
    func saltedPassword(_ password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let symmetric = SymmetricKey(data: password)
        switch self {
        case .sha1: return Self.pbkdf2(HMAC<Insecure.SHA1>.self, key: symmetric, salt: salt, iterations: iterations)
        case .sha256: return Self.pbkdf2(HMAC<SHA256>.self, key: symmetric, salt: salt, iterations: iterations)
        }
    }

    private static func pbkdf2<H: HashFunction>(_: HMAC<H>.Type, key: SymmetricKey, salt: [UInt8], iterations: Int) -> [UInt8] {
        var block = Array(HMAC<H>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var result = block
        for _ in 1..<max(iterations, 1) {
            block = Array(HMAC<H>.authenticationCode(for: block, using: key))
            for index in result.indices { result[index] ^= block[index] }
        }
        return result
    }
}

/// What the server stores for one user and mechanism: never the password, only the salt, the
/// iteration count, `StoredKey = H(ClientKey)` and `ServerKey` (RFC 5802 §3).
struct ScramCredential: Sendable, Codable, Equatable {
    var salt: [UInt8]
    var iterations: Int
    var storedKey: [UInt8]
    var serverKey: [UInt8]

    /// Salt lengths: 16 bytes for SCRAM-SHA-1 and 28 for SCRAM-SHA-256, as mongod uses.
    static func saltCount(_ mechanism: ScramMechanism) -> Int { mechanism == .sha1 ? 16 : 28 }

    /// Derives a credential from a password with a fresh random salt.
    static func derive(_ mechanism: ScramMechanism, user: String, password: String) throws(QueryError) -> ScramCredential {
        let salt = SecureRandom.bytes(count: saltCount(mechanism))
        return try derive(mechanism, user: user, password: password, salt: salt, iterations: mechanism.iterations)
    }

    static func derive(_ mechanism: ScramMechanism, user: String, password: String, salt: [UInt8], iterations: Int) throws(QueryError) -> ScramCredential {
        let salted = mechanism.saltedPassword(try mechanism.scramPassword(user: user, password: password), salt: salt, iterations: iterations)
        let clientKey = mechanism.hmac(key: salted, Array("Client Key".utf8))
        return ScramCredential(
            salt: salt, iterations: iterations, storedKey: mechanism.hash(clientKey),
            serverKey: mechanism.hmac(key: salted, Array("Server Key".utf8)))
    }
}
