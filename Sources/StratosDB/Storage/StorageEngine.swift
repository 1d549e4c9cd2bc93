import CStratosVFS
import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import Synchronization

/// The node's databases: one SQLite file and one executor per database, opened on first use.
final class StorageEngine: Sendable {
    let dataDirectory: String
    private let databasesDirectory: String
    private let executors = Mutex<[String: DatabaseExecutor]>([:])

    /// Signs every space's commits: the hosting node's key.
    private let signer: SigningKey?
    private let clock: any WallClock
    /// The key of a space, for the encrypting VFS (nil: files are not encrypted, as in tests).
    private let spaceKey: (@Sendable (SpaceID) throws(QueryError) -> [UInt8])?
    /// Told of every space commit (the ledger anchors them).
    private let onCommitted: (@Sendable (SpaceID, UInt64, [UInt8]) -> Void)?
    /// The newest commit of a space the ledger anchored, checked when the space opens.
    private let anchoredHead: (@Sendable (SpaceID) -> (seq: UInt64, commitHash: [UInt8])?)?
    /// Every space's grants (the node catalog), reconciled with a space's own log on open.
    private let grantIndex: (any GrantIndex)?
    /// Told of writes a `validationAction: "warn"` validator would refuse.
    private let validationWarning: (@Sendable (String, String) -> Void)?
    /// How long a space's writes may wait to be sealed into one commit (nil: each transaction).
    private let commitWindow: Duration?

    init(
        dataDirectory: String, signer: SigningKey? = nil, clock: any WallClock = SystemWallClock(),
        spaceKey: (@Sendable (SpaceID) throws(QueryError) -> [UInt8])? = nil,
        onCommitted: (@Sendable (SpaceID, UInt64, [UInt8]) -> Void)? = nil,
        anchoredHead: (@Sendable (SpaceID) -> (seq: UInt64, commitHash: [UInt8])?)? = nil,
        grantIndex: (any GrantIndex)? = nil,
        validationWarning: (@Sendable (String, String) -> Void)? = nil,
        commitWindow: Duration? = nil
    ) throws {
        self.commitWindow = commitWindow
        self.grantIndex = grantIndex
        self.validationWarning = validationWarning
        self.onCommitted = onCommitted
        self.anchoredHead = anchoredHead
        self.dataDirectory = dataDirectory
        self.signer = signer
        self.clock = clock
        self.spaceKey = spaceKey
        databasesDirectory = (dataDirectory as NSString).appendingPathComponent("databases")
        try FileManager.default.createDirectory(atPath: databasesDirectory, withIntermediateDirectories: true)
        Self.removeUnfinishedBuilds(in: databasesDirectory)
    }

    /// Space files an import or rebuild was writing when its process died (`<id>.sqlite.importing-…`,
    /// `<id>.sqlite.rebuilding`, with their -wal/-shm): never used, only deleted. The node runs
    /// this when it starts, holding the data directory's lock, so no build can be in progress.
    /// (`.before-rotation` copies are recovery copies and stay.)
    private static func removeUnfinishedBuilds(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.contains(".sqlite.importing-") || name.contains(".sqlite.rebuilding") {
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(name))
        }
    }

    private func path(for database: String) -> String {
        (databasesDirectory as NSString).appendingPathComponent("\(database).sqlite")
    }

    /// The executor of `database`, opening (and with `create`, creating) it.
    func executor(_ database: String, create: Bool) throws(QueryError) -> DatabaseExecutor? {
        try NamespaceRules.validateDatabase(database)
        let result: Result<DatabaseExecutor?, QueryError> = executors.withLock { open in
            if let existing = open[database] { return .success(existing) }
            guard create || FileManager.default.fileExists(atPath: path(for: database)) else { return .success(nil) }
            guard open.count < ServerLimits.openDatabasesMax else {
                return .failure(QueryError(.location(7_000_001), "too many open databases"))
            }
            do {
                var reserved: Int32 = 0
                if let spaceKey, let id = SpaceID(database) {
                    // Every page of the space's file and write-ahead log is sealed with its key.
                    var key = try spaceKey(id)
                    defer { for index in key.indices { key[index] = 0 } }
                    guard stratos_vfs_set_key("\(database).sqlite", key) == 0 else {
                        return .failure(QueryError(.location(7_000_001), "too many open spaces"))
                    }
                    reserved = Int32(stratos_vfs_reserved_bytes())
                }
                let executor = try DatabaseExecutor(name: database, path: path(for: database), reservedBytesPerPage: reserved, signer: signer, clock: clock, onCommitted: onCommitted,
                    anchoredHead: anchoredHead, grantIndex: grantIndex, validationWarning: validationWarning, commitWindow: commitWindow)
                open[database] = executor
                return .success(executor)
            } catch let error as QueryError {
                return .failure(error)
            } catch {
                return .failure(QueryError(.internalError, "cannot open database"))
            }
        }
        return try result.get()
    }

    /// Names of databases that exist on disk or are open.
    func databaseNames() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: databasesDirectory)) ?? []
        var names = Set(files.filter { $0.hasSuffix(".sqlite") }.map { String($0.dropLast(7)) })
        executors.withLock { names.formUnion($0.keys) }
        return names.sorted()
    }

    /// The size on disk of a database.
    func sizeOnDisk(_ database: String) -> Int64 {
        var total: Int64 = 0
        for suffix in ["", "-wal"] {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path(for: database) + suffix)
            total += (attributes?[.size] as? NSNumber)?.int64Value ?? 0
        }
        return total
    }

    /// Closes and deletes a database.
    /// `afterShutdown` runs under the same lock, once the database's last write is done and
    /// before anything can reopen it (the ledger's record of its last commit is final then).
    func dropDatabase(_ database: String, afterShutdown: () -> Void = {}) throws(QueryError) {
        try NamespaceRules.validateDatabase(database)
        // Under the lock, so no write can reopen the space between shutting its executor down
        // and removing its files (it would write to a file about to be unlinked).
        executors.withLock { open in
            if let executor = open.removeValue(forKey: database) {
                executor.isDropped.store(true, ordering: .releasing)
                executor.shutdown()
            }
            afterShutdown()
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path(for: database) + suffix) }
            // Frees the VFS's key slot; the key is registered again if the space is written to.
            _ = stratos_vfs_set_key("\(database).sqlite", nil)
        }
    }

    /// Runs `body` (which puts a new database's file in place) under the lock that opening a
    /// database takes, so no write can open or create that database meanwhile.
    func install(_ body: () throws -> Void) throws {
        try executors.withLock { _ in try body() }
    }

    /// Stops every executor after its queued work.
    func shutdown() {
        let all = executors.withLock { open in
            let values = Array(open.values)
            open.removeAll()
            return values
        }
        for executor in all { executor.shutdown() }
    }
}
