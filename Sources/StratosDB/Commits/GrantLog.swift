import QueryEngine
import SpaceOwnership
import StratosCore

/// A space's grants and revocations as commits of the space (docs/spaces.md §5).
///
/// Each grant or revocation is an operation of a signed commit (`CommitOperation.grant`,
/// `.revocation`), so the access rules travel with the space: they replicate, export and
/// rebuild with its documents. `stratos_grants`, in the space's file and written in the same
/// transaction as the commit, is their view (as the collection tables are the documents').
///
/// The node catalog (`node.sqlite`) keeps every space's grants too: it answers "may this
/// principal touch this space?" without opening the space. The catalog is written first (a
/// revocation takes effect at once), then the log; whatever one holds and the other lacks
/// (a crash between the two writes, a grant the CLI stored while the node was stopped, a space
/// written before grants were commits, a catalog restored from an older copy) is reconciled
/// when the node opens the space: the log gains the missing commits, the catalog the missing
/// grants and revocations.
enum GrantLog {
    /// `StorageChange.spaceRecord` kinds.
    static let grantKind: UInt8 = 1
    static let revocationKind: UInt8 = 2

    static let schema = """
        CREATE TABLE IF NOT EXISTS stratos_grants(id TEXT PRIMARY KEY, signed BLOB NOT NULL, revocation BLOB);
        """

    /// Applies a logged grant or revocation to `stratos_grants` (while its commit is written, or
    /// replayed by an import or rebuild). Other operations are ignored. Both are verified: a
    /// signature that does not hold is refused, whatever wrote it. Replaying someone else's
    /// history (`space`, `controllers` given: an import) also refuses a grant or revocation of
    /// another space, and a revocation signed by neither a key that controlled the space nor
    /// the grant's issuer.
    static func apply(
        _ operation: CommitOperation, _ connection: SQLiteConnection, space: SpaceID? = nil, controllers: Set<DID>? = nil
    ) throws(QueryError) {
        switch operation {
        case .grant(let bytes):
            guard let signed = try? SignedGrant(decoding: bytes), space.map({ $0 == signed.grant.space }) ?? true else {
                throw QueryError(.location(7_100_011), "a logged grant does not verify for this space")
            }
            let insert = try connection.statement("INSERT OR IGNORE INTO stratos_grants(id, signed) VALUES (?1, ?2)")
            insert.bind(1, signed.id)
            insert.bind(2, bytes)
            try insert.run()
        case .revocation(let bytes):
            guard let revocation = try? SignedRevocation(decoding: bytes), revocation.isValid, space.map({ $0 == revocation.space }) ?? true else {
                throw QueryError(.location(7_100_011), "a logged revocation does not verify for this space")
            }
            if let controllers, !controllers.contains(revocation.issuer) {
                let select = try connection.statement("SELECT signed FROM stratos_grants WHERE id = ?1")
                select.bind(1, revocation.grantID)
                defer { select.reset() }
                let issuer = try select.step() ? (try? SignedGrant(decoding: select.blob(0)))?.grant.issuer : nil
                guard issuer == revocation.issuer else {
                    throw QueryError(.location(7_100_011), "a logged revocation is signed by neither the space's owner nor the grant's issuer")
                }
            }
            let update = try connection.statement("UPDATE stratos_grants SET revocation = ?2 WHERE id = ?1 AND revocation IS NULL")
            update.bind(1, revocation.grantID)
            update.bind(2, bytes)
            try update.run()
        default:
            break
        }
    }

    /// The grants the space's log holds, by id.
    static func records(_ connection: SQLiteConnection) throws(QueryError) -> [String: GrantRecord] {
        let select = try connection.statement("SELECT signed, revocation FROM stratos_grants")
        defer { select.reset() }
        var records: [String: GrantRecord] = [:]
        while try select.step() {
            guard let signed = try? SignedGrant(decoding: select.blob(0)) else { continue }
            let revocation = select.isNull(1) ? nil : try? SignedRevocation(decoding: select.blob(1))
            records[signed.id] = GrantRecord(signed: signed, revocation: revocation)
        }
        return records
    }

    /// Records the grants and revocations the log does not hold yet in the open write
    /// transaction, so its commit carries them; returns how many it recorded (0: no commit).
    @discardableResult
    static func append(_ operations: [CommitOperation], to store: DatabaseStore) throws(QueryError) -> Int {
        let logged = try records(store.sqlite)
        var recorded = 0
        var granted: Set<String> = []
        var revoked: Set<String> = []
        for operation in operations {
            switch operation {
            case .grant(let bytes):
                guard let signed = try? SignedGrant(decoding: bytes), logged[signed.id] == nil, granted.insert(signed.id).inserted else { continue }
                try store.recordSpaceRecord(kind: grantKind, bytes: bytes)
            case .revocation(let bytes):
                guard let revocation = try? SignedRevocation(decoding: bytes),
                    logged[revocation.grantID].map({ $0.revocation == nil }) ?? granted.contains(revocation.grantID),
                    revoked.insert(revocation.grantID).inserted
                else { continue }
                try store.recordSpaceRecord(kind: revocationKind, bytes: bytes)
            default:
                continue
            }
            try apply(operation, store.sqlite)
            recorded += 1
        }
        return recorded
    }

    /// What the log and the catalog must each gain to hold the same grants and revocations.
    struct Differences {
        /// For the log: grants, then revocations, the catalog holds and the log lacks.
        var forLog: [CommitOperation] = []
        /// For the catalog: what the log holds and the catalog lacks.
        var grantsForCatalog: [SignedGrant] = []
        var revocationsForCatalog: [SignedRevocation] = []

        var isEmpty: Bool { forLog.isEmpty && grantsForCatalog.isEmpty && revocationsForCatalog.isEmpty }
    }

    static func differences(logged: [String: GrantRecord], cataloged: [GrantRecord]) -> Differences {
        var result = Differences()
        var revocations: [CommitOperation] = []
        var catalogIDs: Set<String> = []
        for record in cataloged {
            let id = record.signed.id
            catalogIDs.insert(id)
            let inLog = logged[id]
            if inLog == nil { result.forLog.append(.grant(signed: record.signed.encoded)) }
            if let revocation = record.revocation, inLog?.revocation == nil { revocations.append(.revocation(signed: revocation.encoded)) }
            if record.revocation == nil, let revocation = inLog?.revocation { result.revocationsForCatalog.append(revocation) }
        }
        result.forLog += revocations
        for (id, record) in logged.sorted(by: { $0.key < $1.key }) where !catalogIDs.contains(id) {
            result.grantsForCatalog.append(record.signed)
            if let revocation = record.revocation { result.revocationsForCatalog.append(revocation) }
        }
        return result
    }
}

/// Where the node keeps every space's grants for authorization (the node catalog); the space's
/// log is reconciled with it when the space opens (`GrantLog`).
protocol GrantIndex: Sendable {
    func grants(space: SpaceID) throws(QueryError) -> [GrantRecord]
    /// Adds grants and revocations read from a space's own log (their signatures verified;
    /// authority is the index's to check, as for any grant it holds).
    func adopt(space: SpaceID, grants: [SignedGrant], revocations: [SignedRevocation]) throws(QueryError)
}

extension GrantLog {
    /// Brings a space's log and the index to the same grants and revocations (on open, before
    /// the space serves anything): the log gains one durable commit with what it lacks.
    static func reconcile(_ store: DatabaseStore, space: SpaceID, index: any GrantIndex) throws(QueryError) {
        let differences = differences(logged: try records(store.sqlite), cataloged: try index.grants(space: space))
        guard !differences.isEmpty else { return }
        if !differences.forLog.isEmpty {
            try store.begin(durable: true)
            do {
                try append(differences.forLog, to: store)
                try store.commit()
            } catch {
                store.rollback()
                throw error
            }
        }
        if !differences.grantsForCatalog.isEmpty || !differences.revocationsForCatalog.isEmpty {
            try index.adopt(space: space, grants: differences.grantsForCatalog, revocations: differences.revocationsForCatalog)
        }
    }
}
extension NodeCatalog: GrantIndex {}
