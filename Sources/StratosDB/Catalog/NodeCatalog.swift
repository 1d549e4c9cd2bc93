import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import Synchronization

/// A SCRAM user of the node: a name and password bound to an identity.
public struct UserRecord: Sendable {
    /// The user name drivers send.
    public var name: String
    /// The identity the user acts as.
    public var did: DID
}

/// A space known to this node.
public struct SpaceRecord: Sendable, Hashable {
    /// The space id (also its storage name).
    public var id: SpaceID
    /// Its original owner (the id derives from this DID and the name).
    public var owner: DID
    /// The owner's name for it.
    public var name: String
    /// The key that holds the owner's rights now: the original owner, or the last key it was
    /// rotated to (`OwnerKeyRotation`).
    public var controller: DID
    /// Every key that has controlled the space, oldest first (grants any of them signed before
    /// a rotation stay valid; new ones need `controller`).
    public var controllers: [DID]

    public init(id: SpaceID, owner: DID, name: String, controller: DID? = nil, controllers: [DID]? = nil) {
        self.id = id
        self.owner = owner
        self.name = name
        self.controller = controller ?? owner
        self.controllers = controllers ?? [owner]
    }
}

/// A stored grant and whether it has been revoked.
public struct GrantRecord: Sendable {
    /// The owner-signed grant.
    public var signed: SignedGrant
    /// The revocation, once revoked.
    public var revocation: SignedRevocation?
}

/// The node's own catalog in `<data-dir>/node.sqlite`: SCRAM users, the spaces this node hosts
/// and their grants and revocations.
///
/// Grants are owner-signed, and every one is verified again when it is loaded, so a grant
/// written into the file by anything but its owner's key is ignored. The CLI writes this file
/// directly (it may run while the node does); every catalog connection announces its commits
/// through a shared-memory flag (`CatalogChangeSignal`), and the node then confirms with SQLite's
/// `PRAGMA data_version`, so a grant or revocation takes effect on the next command without a
/// restart.
public final class NodeCatalog: Sendable {
    struct Snapshot {
        var spaces: [SpaceID: SpaceRecord] = [:]
        /// Spaces whose owner key was rotated, by their controller and name.
        var rotatedByController: [DID: [String: SpaceID]] = [:]
        /// Live grants by space, then grantee.
        var grants: [SpaceID: [DID: [Grant]]] = [:]
        var dataVersion: Int64 = -1
    }

    // Internal (not private) so that the catalog's extensions in sibling files, one concern
    // each, reach the connection; nothing outside `Catalog/` uses them.
    struct State: ~Copyable {
        let connection: SQLiteConnection
        var snapshot = Snapshot()
        /// Commits announced by any process (nil: the flag could not be mapped).
        let changes: CatalogChangeSignal?
        /// The flag's value at the last `data_version` check, and when that check ran.
        var changesSeen: UInt64 = 0
        var lastVersionCheck: ContinuousClock.Instant = .now
        /// Space ids derived from (owner, name), kept because every command resolves its
        /// database name and the derivation (BLAKE2b, then base32) costs more than the lookup.
        /// A pure function's results: never stale; emptied when it reaches `derivedIDsMax`.
        var derivedIDs: [DerivedName: SpaceID] = [:]
    }

    /// The name as bytes: Swift strings compare by canonical equivalence, but a space id
    /// hashes the name's UTF-8 bytes, so two spellings of "café" are two ids.
    struct DerivedName: Hashable {
        let owner: DID
        let name: [UInt8]
    }

    static let derivedIDsMax = 4_096

    /// Without an announced change, `PRAGMA data_version` is still read this often (it catches
    /// edits made without this catalog, such as the `sqlite3` shell's).
    static let versionCheckInterval: Duration = .seconds(1)

    let state: Mutex<State>
    let clock: any WallClock

    /// Opens (creating) the catalog of a data directory.
    public init(dataDirectory: String, clock: any WallClock = SystemWallClock()) throws(QueryError) {
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw QueryError(.internalError, "cannot create the data directory")
        }
        let path = (dataDirectory as NSString).appendingPathComponent("node.sqlite")
        let connection = try SQLiteConnection(path: path)
        try connection.execute("""
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=FULL;
            CREATE TABLE IF NOT EXISTS users(
                name TEXT PRIMARY KEY, did TEXT NOT NULL, sha1 BLOB NOT NULL, sha256 BLOB NOT NULL, created INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS spaces(
                id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, created INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS grants(
                id TEXT PRIMARY KEY, space TEXT NOT NULL, grantee TEXT NOT NULL, signed BLOB NOT NULL, revocation BLOB);
            CREATE INDEX IF NOT EXISTS grants_by_space ON grants(space, grantee);
            CREATE TABLE IF NOT EXISTS space_rotations(
                space TEXT NOT NULL, seq INTEGER NOT NULL, rotation BLOB NOT NULL, PRIMARY KEY(space, seq));
            CREATE TABLE IF NOT EXISTS space_keys(
                space TEXT NOT NULL, recipient TEXT NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY(space, recipient));
            CREATE TABLE IF NOT EXISTS dropped_spaces(space TEXT PRIMARY KEY, seq INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS ttl_databases(name TEXT PRIMARY KEY);
            CREATE TABLE IF NOT EXISTS scheduled_jobs(
                space TEXT NOT NULL, job TEXT NOT NULL, next_run INTEGER NOT NULL, PRIMARY KEY(space, job));
            """)
        let changes = CatalogChangeSignal(catalogPath: path)
        if let changes { connection.observeCommits { changes.signal() } }
        state = Mutex(State(connection: connection, changes: changes))
        self.clock = clock
        try state.withLock { state throws(QueryError) in try Self.reload(&state) }
    }

    // MARK: - Spaces

    /// Records that `owner`'s space `name` exists on this node (idempotent). A new space gets a
    /// random 256-bit key, sealed to its owner and to the hosting node (`node`): the key that
    /// encrypts the space's file page by page.
    @discardableResult
    public func registerSpace(owner: DID, name: String, node: DID) throws(QueryError) -> SpaceRecord {
        do { try SpaceID.validateName(name) } catch { throw QueryError(.invalidNamespace, "Invalid database name: '\(name)': \(error.message)") }
        let record = SpaceRecord(id: SpaceID(owner: owner, name: name), owner: owner, name: name)
        try state.withLock { state throws(QueryError) in
            if state.snapshot.spaces[record.id] != nil { return }
            try state.connection.execute("BEGIN IMMEDIATE")
            do {
                let insert = try state.connection.statement("INSERT OR IGNORE INTO spaces(id, owner, name, created) VALUES (?1, ?2, ?3, ?4)")
                insert.bind(1, record.id.string)
                insert.bind(2, owner.string)
                insert.bind(3, name)
                insert.bind(4, clock.nowMilliseconds())
                try insert.run()
                if state.connection.changes == 1 {
                    var key = SecureRandom.bytes(count: 32)
                    defer { for index in key.indices { key[index] = 0 } }
                    for recipient in Set([owner, node]) { try Self.storeSealedKey(state.connection, space: record.id, key: key, recipient: recipient) }
                }
                try state.connection.execute("COMMIT")
            } catch let error as QueryError {
                try? state.connection.execute("ROLLBACK")
                throw error
            } catch {
                try? state.connection.execute("ROLLBACK")
                throw QueryError(.internalError, "cannot register the space")
            }
            state.snapshot.spaces[record.id] = record
        }
        return record
    }

    private static func storeSealedKey(_ connection: SQLiteConnection, space: SpaceID, key: [UInt8], recipient: DID) throws(QueryError) {
        let sealed: [UInt8]
        do { sealed = try SealedBox.seal(key, to: recipient.publicKey) } catch {
            throw QueryError(.internalError, "cannot seal a space key")
        }
        let insert = try connection.statement("INSERT OR REPLACE INTO space_keys(space, recipient, sealed) VALUES (?1, ?2, ?3)")
        insert.bind(1, space.string)
        insert.bind(2, recipient.string)
        insert.bind(3, sealed)
        try insert.run()
    }

    /// The space's key, opened with the key of one of its recipients (the hosting node).
    public func spaceKey(_ id: SpaceID, openedWith holder: SigningKey) throws(QueryError) -> [UInt8] {
        try state.withLock { state throws(QueryError) in
            let select = try state.connection.statement("SELECT sealed FROM space_keys WHERE space = ?1 AND recipient = ?2")
            select.bind(1, id.string)
            select.bind(2, holder.did.string)
            defer { select.reset() }
            guard try select.step() else {
                throw QueryError(.location(7_100_009), "space \(id) has no key for this node: it cannot be opened here")
            }
            do { return try SealedBox.open(select.blob(0), with: holder) } catch {
                throw QueryError(.location(7_100_009), "the key of space \(id) does not open with this node's key")
            }
        }
    }

    /// Seals the space key to another recipient (a reader), opening it with `holder`'s key.
    public func shareSpaceKey(_ id: SpaceID, with recipient: DID, openedWith holder: SigningKey) throws(QueryError) {
        var key = try spaceKey(id, openedWith: holder)
        defer { for index in key.indices { key[index] = 0 } }
        try state.withLock { state throws(QueryError) in try Self.storeSealedKey(state.connection, space: id, key: key, recipient: recipient) }
    }

    /// Replaces every sealed copy of a space's key with copies of `key` for `recipients`.
    public func replaceSpaceKey(_ id: SpaceID, key: [UInt8], recipients: [DID]) throws(QueryError) {
        try state.withLock { state throws(QueryError) in
            try state.connection.execute("BEGIN IMMEDIATE")
            do {
                let delete = try state.connection.statement("DELETE FROM space_keys WHERE space = ?1")
                delete.bind(1, id.string)
                try delete.run()
                for recipient in recipients { try Self.storeSealedKey(state.connection, space: id, key: key, recipient: recipient) }
                try state.connection.execute("COMMIT")
            } catch let error as QueryError {
                try? state.connection.execute("ROLLBACK")
                throw error
            } catch {
                try? state.connection.execute("ROLLBACK")
                throw QueryError(.internalError, "cannot replace the space key")
            }
        }
    }

    /// Every sealed copy of the space's key, by recipient (for archives).
    public func sealedSpaceKeys(_ id: SpaceID) throws(QueryError) -> [(DID, [UInt8])] {
        try state.withLock { state throws(QueryError) in
            let select = try state.connection.statement("SELECT recipient, sealed FROM space_keys WHERE space = ?1 ORDER BY recipient")
            select.bind(1, id.string)
            defer { select.reset() }
            var keys: [(DID, [UInt8])] = []
            while try select.step() { if let did = try? DID(parsing: select.text(0)) { keys.append((did, select.blob(1))) } }
            return keys
        }
    }

    /// Registers an imported space with its key sealed to its owner, this node and its readers.
    /// The key is sealed to the space's current owner key (the last rotation's, else the
    /// original owner), this node and `readers` — never to a retired owner key.
    public func importSpace(header: ArchiveHeader, key: [UInt8], node: DID, readers: [DID], rotations: [OwnerKeyRotation] = []) throws(QueryError) {
        let controller = OwnerKeyRotation.controller(owner: header.owner, rotations: rotations)?.current ?? header.owner
        let record = SpaceRecord(id: header.space, owner: header.owner, name: header.name)
        try state.withLock { state throws(QueryError) in
            let insert = try state.connection.statement("INSERT OR REPLACE INTO spaces(id, owner, name, created) VALUES (?1, ?2, ?3, ?4)")
            insert.bind(1, record.id.string)
            insert.bind(2, record.owner.string)
            insert.bind(3, record.name)
            insert.bind(4, clock.nowMilliseconds())
            try insert.run()
            for recipient in Set([controller, node] + readers) {
                try Self.storeSealedKey(state.connection, space: record.id, key: key, recipient: recipient)
            }
            for (index, rotation) in rotations.enumerated() {
                let insert = try state.connection.statement("INSERT OR REPLACE INTO space_rotations(space, seq, rotation) VALUES (?1, ?2, ?3)")
                insert.bind(1, record.id.string)
                insert.bind(2, Int64(index + 1))
                insert.bind(3, rotation.encoded)
                try insert.run()
            }
            try Self.reload(&state)
        }
    }

    /// The space a name means for `did` (as the wire's database names do): a space rotated to
    /// `did` under that name, or else `did`'s own space of that name; with its record, when the
    /// space exists. One snapshot refresh, however it resolves (this runs on every command).
    func lookup(name: String, for did: DID) -> (id: SpaceID, record: SpaceRecord?) {
        state.withLock { state in
            try? Self.refreshIfChanged(&state)
            if let id = state.snapshot.rotatedByController[did]?[name], let record = state.snapshot.spaces[id] {
                return (id, record)
            }
            let key = DerivedName(owner: did, name: Array(name.utf8))
            let id: SpaceID
            if let known = state.derivedIDs[key] {
                id = known
            } else {
                id = SpaceID(owner: did, name: name)
                if state.derivedIDs.count >= Self.derivedIDsMax { state.derivedIDs.removeAll(keepingCapacity: true) }
                state.derivedIDs[key] = id
            }
            return (id, state.snapshot.spaces[id])
        }
    }

    /// The id a name means for `did` (see `lookup`), for the CLI.
    public func resolveSpace(name: String, for did: DID) -> SpaceID { lookup(name: name, for: did).id }

    /// Moves a space's owner rights to a new key (signed by the current key and the new one),
    /// and seals the space key to the new key (opened with `nodeKey`).
    public func rotateOwnerKey(_ rotation: OwnerKeyRotation, nodeKey: SigningKey) throws(QueryError) {
        guard let record = space(rotation.space) else { throw QueryError(.namespaceNotFound, "no space \(rotation.space) on this node") }
        guard rotation.from == record.controller, rotation.isValid else {
            throw QueryError(.unauthorized, "only the current owner key of space \(record.id) can rotate it")
        }
        guard lookup(name: record.name, for: rotation.to).record == nil else {
            throw QueryError(.namespaceExists, "the new key already owns a space named '\(record.name)'")
        }
        try state.withLock { state throws(QueryError) in
            let insert = try state.connection.statement(
                "INSERT INTO space_rotations(space, seq, rotation) VALUES (?1, (SELECT count(*) + 1 FROM space_rotations WHERE space = ?1), ?2)")
            insert.bind(1, rotation.space.string)
            insert.bind(2, rotation.encoded)
            try insert.run()
            try Self.reload(&state)
        }
        try shareSpaceKey(rotation.space, with: rotation.to, openedWith: nodeKey)
    }

    /// A space's owner key rotations, oldest first.
    public func rotations(_ id: SpaceID) throws(QueryError) -> [OwnerKeyRotation] {
        try state.withLock { state throws(QueryError) in
            let select = try state.connection.statement("SELECT rotation FROM space_rotations WHERE space = ?1 ORDER BY seq")
            select.bind(1, id.string)
            defer { select.reset() }
            var rotations: [OwnerKeyRotation] = []
            while try select.step() { if let rotation = try? OwnerKeyRotation(decoding: select.blob(0)) { rotations.append(rotation) } }
            return rotations
        }
    }

    /// A space by id, reading changes other processes made.
    public func space(_ id: SpaceID) -> SpaceRecord? {
        // Always refreshed (one PRAGMA): a rotation or import the CLI wrote must take effect on
        // the next command, as grants do.
        state.withLock { state in
            try? Self.refreshIfChanged(&state)
            return state.snapshot.spaces[id]
        }
    }

    /// Every space, by id.
    public func allSpaces() -> [SpaceRecord] {
        state.withLock { state in
            try? Self.refreshIfChanged(&state)
            return state.snapshot.spaces.values.sorted { $0.id < $1.id }
        }
    }

    // MARK: - Grants

    /// Stores an owner-signed grant after checking that its issuer owns the space. A grant that
    /// lets its grantee read also seals the space key to the grantee (opened with `nodeKey`), so
    /// the grantee can read the space's encrypted exports.
    ///
    /// `fromHistory` accepts a grant signed by any key that has controlled the space (an
    /// imported archive's grants made before a rotation); new grants need the current key.
    public func addGrant(_ signed: SignedGrant, nodeKey: SigningKey? = nil, fromHistory: Bool = false) throws(QueryError) {
        guard let space = space(signed.grant.space) else {
            throw QueryError(.namespaceNotFound, "space \(signed.grant.space) does not exist on this node")
        }
        // The owner grants; so does a grantee whose live admin grant covers what it gives
        // (docs/spaces.md, delegation). Grants from an archive's history are kept as they are:
        // each counts only while its chain holds, checked when it is used.
        let delegated = GrantDelegation.isBacked(
            signed.grant, controllers: [space.controller], nowMilliseconds: clock.nowMilliseconds(),
            grantsTo: { self.unrevokedGrants(space: space.id, grantee: $0) })
        guard space.controller == signed.grant.issuer || fromHistory || delegated else {
            throw QueryError(
                .unauthorized,
                "only the owner of space \(space.id) (its current key), or a grantee whose live admin grant covers what it gives, can grant access to it")
        }
        try state.withLock { state throws(QueryError) in
            try Self.insertGrant(signed, state.connection)
            try Self.reload(&state)
        }
        if let nodeKey, signed.grant.actions.contains(.read) {
            try shareSpaceKey(signed.grant.space, with: signed.grant.grantee, openedWith: nodeKey)
        }
    }

    /// Applies a revocation signed by the space's owner, or by the grant's own issuer (an admin
    /// grantee takes back what it delegated).
    public func revoke(_ revocation: SignedRevocation, fromHistory: Bool = false) throws(QueryError) {
        let issuerOfGrant = (try? grants(space: revocation.space))?.first { $0.signed.id == revocation.grantID }?.signed.grant.issuer
        guard let space = space(revocation.space), revocation.isValid,
            space.controller == revocation.issuer || (fromHistory && space.controllers.contains(revocation.issuer))
                || issuerOfGrant == revocation.issuer
        else {
            throw QueryError(.unauthorized, "only the owner of a space, or the grant's issuer, can revoke a grant")
        }
        try state.withLock { state throws(QueryError) in
            guard try Self.setRevocation(revocation, state.connection) else {
                throw QueryError(.userNotFound, "no unrevoked grant \(revocation.grantID) in space \(revocation.space)")
            }
            try Self.reload(&state)
        }
    }

    /// Adds grants and revocations read from the space's own log (`GrantLog`): each grant as
    /// one from history (it counts only while its chain to the owner holds), each revocation
    /// only when it is signed by a key that controlled the space or by the grant's issuer.
    func adopt(space id: SpaceID, grants: [SignedGrant], revocations: [SignedRevocation]) throws(QueryError) {
        guard let space = space(id) else { return }
        try state.withLock { state throws(QueryError) in
            try state.connection.execute("BEGIN IMMEDIATE")
            do throws(QueryError) {
                for signed in grants where signed.grant.space == id { try Self.insertGrant(signed, state.connection) }
                let issuer = try state.connection.statement("SELECT signed FROM grants WHERE id = ?1 AND space = ?2")
                for revocation in revocations where revocation.space == id && revocation.isValid {
                    issuer.bind(1, revocation.grantID)
                    issuer.bind(2, id.string)
                    let grantIssuer = try issuer.step() ? (try? SignedGrant(decoding: issuer.blob(0)))?.grant.issuer : nil
                    issuer.reset()
                    guard space.controllers.contains(revocation.issuer) || grantIssuer == revocation.issuer else { continue }
                    _ = try Self.setRevocation(revocation, state.connection)
                }
                try state.connection.execute("COMMIT")
            } catch {
                try? state.connection.execute("ROLLBACK")
                throw error
            }
            try Self.reload(&state)
        }
    }

    /// Stores a grant row (once: the id is the grant's hash).
    private static func insertGrant(_ signed: SignedGrant, _ connection: SQLiteConnection) throws(QueryError) {
        let insert = try connection.statement("INSERT OR IGNORE INTO grants(id, space, grantee, signed) VALUES (?1, ?2, ?3, ?4)")
        insert.bind(1, signed.id)
        insert.bind(2, signed.grant.space.string)
        insert.bind(3, signed.grant.grantee.string)
        insert.bind(4, signed.encoded)
        try insert.run()
    }

    /// Marks a grant revoked; false when no unrevoked grant of that id is in the space.
    private static func setRevocation(_ revocation: SignedRevocation, _ connection: SQLiteConnection) throws(QueryError) -> Bool {
        let update = try connection.statement("UPDATE grants SET revocation = ?3 WHERE id = ?1 AND space = ?2 AND revocation IS NULL")
        update.bind(1, revocation.grantID)
        update.bind(2, revocation.space.string)
        update.bind(3, revocation.encoded)
        try update.run()
        return connection.changes == 1
    }

    /// Every grant of a space, revoked ones included.
    public func grants(space: SpaceID) throws(QueryError) -> [GrantRecord] {
        try state.withLock { state throws(QueryError) in
            let select = try state.connection.statement("SELECT signed, revocation FROM grants WHERE space = ?1 ORDER BY rowid")
            select.bind(1, space.string)
            defer { select.reset() }
            var records: [GrantRecord] = []
            while try select.step() {
                guard let signed = try? SignedGrant(decoding: select.blob(0)) else { continue }
                let revocation = select.isNull(1) ? nil : try? SignedRevocation(decoding: select.blob(1))
                records.append(GrantRecord(signed: signed, revocation: revocation))
            }
            return records
        }
    }

    /// The unrevoked grants `grantee` holds on `space` (expiry is checked by the caller, at the
    /// command's time). Picks up grants and revocations other processes wrote.
    func liveGrants(space: SpaceID, grantee: DID) -> [Grant] {
        let now = clock.nowMilliseconds()
        return state.withLock { state in
            try? Self.refreshIfChanged(&state)
            let snapshot = state.snapshot
            guard let held = snapshot.grants[space]?[grantee], let record = snapshot.spaces[space] else { return [] }
            // Delegated grants count while their chain to the owner holds (checked now, so an
            // expired or revoked link ends them at once).
            let controllers = Set(record.controllers)  // Once per call (this runs on every command of a grantee).
            return held.filter { grant in
                GrantDelegation.isBacked(grant, controllers: controllers, nowMilliseconds: now, grantsTo: { snapshot.grants[space]?[$0] ?? [] })
            }
        }
    }

    /// The unrevoked grants an identity holds on a space, backed or not.
    private func unrevokedGrants(space: SpaceID, grantee: DID) -> [Grant] {
        state.withLock { state in
            try? Self.refreshIfChanged(&state)
            return state.snapshot.grants[space]?[grantee] ?? []
        }
    }

    /// Spaces on which `grantee` holds an unrevoked grant that has not expired at `now`.
    func spacesGranted(to grantee: DID, nowMilliseconds: Int64) -> [SpaceID] {
        let candidates = state.withLock { state in
            try? Self.refreshIfChanged(&state)
            return state.snapshot.grants.compactMap { space, byGrantee in
                byGrantee[grantee]?.contains { !$0.isExpired(nowMilliseconds: nowMilliseconds) } == true ? space : nil
            }
        }
        // Only grants whose delegation chain holds count.
        return candidates.filter { space in liveGrants(space: space, grantee: grantee).contains { !$0.isExpired(nowMilliseconds: nowMilliseconds) } }
    }

    // MARK: - Snapshot

    private static func refreshIfChanged(_ state: inout State) throws(QueryError) {
        let now = ContinuousClock.now
        // Read before the check, so a commit announced after it is seen next time; recorded
        // only once the check succeeded, so a failed one is retried on the next command.
        let announced = state.changes?.current
        if let announced, announced == state.changesSeen, now - state.lastVersionCheck < versionCheckInterval { return }
        let version = try dataVersion(state.connection)
        if version != state.snapshot.dataVersion { try reload(&state) }
        if let announced { state.changesSeen = announced }
        state.lastVersionCheck = now
    }

    private static func dataVersion(_ connection: SQLiteConnection) throws(QueryError) -> Int64 {
        let statement = try connection.statement("PRAGMA data_version")
        defer { statement.reset() }
        _ = try statement.step()
        return statement.int64(0)
    }

    private static func reload(_ state: inout State) throws(QueryError) {
        var snapshot = Snapshot()
        snapshot.dataVersion = try dataVersion(state.connection)
        let spaces = try state.connection.statement("SELECT id, owner, name FROM spaces")
        while try spaces.step() {
            // The id is derived from owner and name: a row whose owner was edited no longer
            // matches its id and is ignored, so nobody gains owner rights by editing the file.
            guard let id = SpaceID(spaces.text(0)), let owner = try? DID(parsing: spaces.text(1)),
                SpaceID(owner: owner, name: spaces.text(2)) == id
            else { continue }
            snapshot.spaces[id] = SpaceRecord(id: id, owner: owner, name: spaces.text(2))
        }
        spaces.reset()
        let rotations = try state.connection.statement("SELECT space, rotation FROM space_rotations ORDER BY space, seq")
        var chains: [SpaceID: [OwnerKeyRotation]] = [:]
        while try rotations.step() {
            guard let id = SpaceID(rotations.text(0)), let rotation = try? OwnerKeyRotation(decoding: rotations.blob(1)), rotation.space == id else { continue }
            chains[id, default: []].append(rotation)
        }
        rotations.reset()
        for (id, chain) in chains {
            // A chain is followed only as far as every link is signed by the controller of its
            // time; a row that breaks it (and everything after) is ignored.
            guard var record = snapshot.spaces[id] else { continue }
            var valid: [OwnerKeyRotation] = []
            for rotation in chain where OwnerKeyRotation.controller(owner: record.owner, rotations: valid + [rotation]) != nil {
                valid.append(rotation)
            }
            if let result = OwnerKeyRotation.controller(owner: record.owner, rotations: valid) {
                record.controller = result.current
                record.controllers = result.all
                snapshot.spaces[id] = record
            }
        }
        for record in snapshot.spaces.values where record.controller != record.owner {
            snapshot.rotatedByController[record.controller, default: [:]][record.name] = record.id
        }
        let grants = try state.connection.statement("SELECT signed FROM grants WHERE revocation IS NULL")
        while try grants.step() {
            // Verified on every load: a row that is not a validly signed grant is ignored, whoever
            // wrote it. One not signed by the owner counts only while its delegation chain holds
            // (`liveGrants`).
            guard let signed = try? SignedGrant(decoding: grants.blob(0)), let space = snapshot.spaces[signed.grant.space] else { continue }
            snapshot.grants[space.id, default: [:]][signed.grant.grantee, default: []].append(signed.grant)
        }
        grants.reset()
        state.snapshot = snapshot
    }
}
