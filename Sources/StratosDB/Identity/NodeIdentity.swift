import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore

/// The identities a node keeps in its data directory, created on first start:
/// - `keys/node.key`: the node's own identity, the audience of session tokens;
/// - `keys/owner.key`: the local owner, who owns the spaces created through `make run`'s URI;
/// - a SCRAM user `owner` bound to the local owner, with a random password kept in
///   `keys/owner.password` (mode 0600), so every driver's default settings can log in.
public struct NodeIdentity: Sendable {
    /// The node's key.
    public let nodeKey: SigningKey
    /// The local owner's key.
    public let ownerKey: SigningKey
    /// The local owner's SCRAM user name and password, while that user exists.
    public let ownerLogin: (user: String, password: String)?
    /// A secret for decoy SCRAM salts, derived from the node key.
    let decoySecret: [UInt8]
    /// The principal every connection acts as under `--dev-insecure` (built once: encoding the
    /// owner's did:key per command was about 2 % of a benchmark baseline's server CPU).
    let developmentPrincipal: Principal

    init(nodeKey: SigningKey, ownerKey: SigningKey, ownerLogin: (user: String, password: String)?, decoySecret: [UInt8]) {
        self.nodeKey = nodeKey
        self.ownerKey = ownerKey
        self.ownerLogin = ownerLogin
        self.decoySecret = decoySecret
        developmentPrincipal = Principal(did: ownerKey.did, userName: Self.ownerUserName, method: .scramSHA256, isOperator: true)
    }

    /// The name of the SCRAM user created for the local owner.
    public static let ownerUserName = "owner"

    /// Loads the identities, creating whatever is missing.
    public static func bootstrap(dataDirectory: String, catalog: NodeCatalog) throws(QueryError) -> NodeIdentity {
        let keys = KeyStore(dataDirectory: dataDirectory)
        let nodeKey = try keys.loadOrCreate(name: "node")
        let ownerKey = try keys.loadOrCreate(name: "owner")
        let passwordPath = passwordFile(dataDirectory: dataDirectory)
        var login: (String, String)?
        if let stored = try? String(contentsOfFile: passwordPath, encoding: .utf8) {
            let password = stored.trimmingCharacters(in: .whitespacesAndNewlines)
            if try catalog.users().contains(where: { $0.name == ownerUserName }) { login = (ownerUserName, password) }
        } else if try catalog.users().isEmpty {
            // First start: a random password (base58, 32 characters, about 187 bits) that needs
            // no escaping in a URI.
            let password = String(Base58.encode(SecureRandom.bytes(count: 24)).prefix(32))
            try KeyStore.writePrivateFile(passwordPath, contents: password + "\n", exclusive: true)
            try catalog.addUser(name: ownerUserName, did: ownerKey.did, password: password)
            login = (ownerUserName, password)
        }
        let secret = Hash256.blake2b(Array("stratosdb/decoy-salt".utf8) + nodeKey.seed).bytes
        return NodeIdentity(nodeKey: nodeKey, ownerKey: ownerKey, ownerLogin: login, decoySecret: secret)
    }

    /// Where the local owner's password is kept.
    public static func passwordFile(dataDirectory: String) -> String {
        (dataDirectory as NSString).appendingPathComponent("keys/owner.password")
    }

}
