import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import Synchronization

/// The node's SCRAM users, each bound to an identity (DID): `stratosdb user add|list|remove|passwd`
/// and the wire's `createUser`/`dropUser`/`usersInfo`.
extension NodeCatalog {
    /// Adds a SCRAM user bound to `did`, storing SCRAM-SHA-1 and SCRAM-SHA-256 credentials.
    public func addUser(name: String, did: DID, password: String) throws(QueryError) {
        let (sha1, sha256) = try credentials(name: name, password: password)
        try state.withLock { state throws(QueryError) in
            let exists = try state.connection.statement("SELECT 1 FROM users WHERE name = ?1")
            exists.bind(1, name)
            defer { exists.reset() }
            guard try !exists.step() else { throw QueryError(.location(51003), "User \"\(name)\" already exists") }
            let insert = try state.connection.statement("INSERT INTO users(name, did, sha1, sha256, created) VALUES (?1, ?2, ?3, ?4, ?5)")
            insert.bind(1, name)
            insert.bind(2, did.string)
            insert.bind(3, sha1)
            insert.bind(4, sha256)
            insert.bind(5, clock.nowMilliseconds())
            try insert.run()
        }
    }

    /// Replaces a user's password.
    public func setPassword(name: String, password: String) throws(QueryError) {
        let (sha1, sha256) = try credentials(name: name, password: password)
        try state.withLock { state throws(QueryError) in
            let update = try state.connection.statement("UPDATE users SET sha1 = ?2, sha256 = ?3 WHERE name = ?1")
            update.bind(1, name)
            update.bind(2, sha1)
            update.bind(3, sha256)
            try update.run()
            guard state.connection.changes == 1 else { throw QueryError(.userNotFound, "User \"\(name)\" not found") }
        }
    }

    /// Removes a user; false when there was none.
    @discardableResult
    public func removeUser(name: String) throws(QueryError) -> Bool {
        try state.withLock { state throws(QueryError) in
            let delete = try state.connection.statement("DELETE FROM users WHERE name = ?1")
            delete.bind(1, name)
            try delete.run()
            return state.connection.changes == 1
        }
    }

    /// Every user, by name.
    public func users() throws(QueryError) -> [UserRecord] {
        try state.withLock { state throws(QueryError) in
            let select = try state.connection.statement("SELECT name, did FROM users ORDER BY name")
            defer { select.reset() }
            var users: [UserRecord] = []
            while try select.step() {
                if let did = try? DID(parsing: select.text(1)) { users.append(UserRecord(name: select.text(0), did: did)) }
            }
            return users
        }
    }

    /// The stored credential and identity of a user, for one mechanism.
    func credential(user: String, mechanism: ScramMechanism) -> (ScramCredential, DID)? {
        state.withLock { state in
            guard let select = try? state.connection.statement("SELECT did, sha1, sha256 FROM users WHERE name = ?1") else { return nil }
            select.bind(1, user)
            defer { select.reset() }
            guard (try? select.step()) == true, let did = try? DID(parsing: select.text(0)) else { return nil }
            let blob = select.blob(mechanism == .sha1 ? 1 : 2)
            guard let credential = try? JSONDecoder().decode(ScramCredential.self, from: Data(blob)) else { return nil }
            return (credential, did)
        }
    }

    /// Whether user `name` still exists, bound to `did`, with the credential it logged in with
    /// (a changed password ends sessions opened with the old one). Token logins always pass.
    func userStillBinds(_ principal: Principal) -> Bool {
        let scram: ScramMechanism
        switch principal.method {
        case .token: return true
        case .scramSHA1: scram = .sha1
        case .scramSHA256: scram = .sha256
        }
        guard let (credential, did) = credential(user: principal.userName, mechanism: scram) else { return false }
        return did == principal.did && credential.storedKey == principal.credentialTag
    }

    private static func validateUser(name: String, password: String) throws(QueryError) {
        guard (1...128).contains(name.utf8.count), !name.contains("\0") else {
            throw QueryError(.badValue, "a user name has 1 to 128 bytes and no NUL")
        }
        guard (1...1024).contains(password.utf8.count) else { throw QueryError(.badValue, "a password has 1 to 1024 bytes") }
    }

    /// Checks a user name and password and derives both stored credentials (SCRAM-SHA-1, -256).
    private func credentials(name: String, password: String) throws(QueryError) -> (sha1: [UInt8], sha256: [UInt8]) {
        try Self.validateUser(name: name, password: password)
        return (
            try encode(ScramCredential.derive(.sha1, user: name, password: password)),
            try encode(ScramCredential.derive(.sha256, user: name, password: password))
        )
    }

    private func encode(_ credential: ScramCredential) throws(QueryError) -> [UInt8] {
        do { return Array(try JSONEncoder().encode(credential)) } catch { throw QueryError(.internalError, "cannot encode credential") }
    }
}
