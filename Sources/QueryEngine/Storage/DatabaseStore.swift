import StratosCore

/// One database (one StratosDB space) stored in one SQLite file.
///
/// Documents live in a table per collection, keyed by an order-preserving `_id` key; each
/// secondary index is a `(key, rid)` table. Not thread-safe: exactly one executor owns a store.
public final class DatabaseStore {
    /// The database name.
    public let name: String
    /// The file path.
    public let path: String
    let connection: SQLiteConnection
    var collections: [String: CollectionDescriptor] = [:]
    /// Compiled validators by collection (`.some(nil)`: the collection has none).
    private var validators: [String: CollectionValidator?] = [:]
    /// Skips document validation (`bypassDocumentValidation`, and replaying history).
    public var bypassDocumentValidation = false
    /// Set while replaying recorded history (`replay`): what the history recorded is applied as
    /// it was, without checks added since it was written (text languages, capped bounds, whose
    /// evictions the history holds as deletes of their own).
    var isReplaying = false
    private var nextTableId: Int64 = 1
    private var inTransaction = false
    /// The SQL of each interval scan's shape (`QueryScan`), built once per shape rather than per
    /// scan. A pure function of its key, so never stale; at most 1,024 shapes are kept.
    var scanSQL: [ScanShape: String] = [:]

    /// What an interval scan's statement depends on.
    struct ScanShape: Hashable {
        let table: String
        let indexTable: String?
        let descending: Bool
        let resuming: Bool
    }

    /// Changes made by the open transaction, in order (see `StorageChange`).
    public private(set) var pendingChanges: [StorageChange] = []

    /// Told of each write a validator with `validationAction: "warn"` would have refused (the
    /// node logs it, with the collection's name and never the document).
    public var validationWarning: (@Sendable (_ database: String, _ collection: String) -> Void)?

    /// Sees every write transaction end (the node's commit log).
    public var transactionObserver: (any StoreTransactionObserver)?

    /// Whether the open transaction's `commit` calls the observer's `willCommit` even if it
    /// changed nothing (`observeThisCommit`).
    private var observerRequested = false

    /// Has the open transaction's commit call `transactionObserver.willCommit` even when the
    /// transaction changed nothing: the node seals pending commit operations that way.
    public func observeThisCommit() throws(QueryError) {
        guard inTransaction else { throw QueryError(.internalError, "observeThisCommit needs an open write transaction") }
        observerRequested = true
    }

    /// The SQLite connection, for the commit log and state map tables the node keeps in the
    /// same file (only on the write connection, only inside `beforeCommit` or a read).
    package var sqlite: SQLiteConnection { connection }

    func record(_ change: StorageChange) {
        if inTransaction { pendingChanges.append(change) }
    }

    /// Records a node-side change (`StorageChange.spaceRecord`) in the open transaction, so the
    /// transaction's commit carries it like any change to the documents.
    public func recordSpaceRecord(kind: UInt8, bytes: [UInt8]) throws(QueryError) {
        guard inTransaction else { throw QueryError(.internalError, "a space record needs an open write transaction") }
        pendingChanges.append(.spaceRecord(kind: kind, bytes: bytes))
    }

    /// Opens or creates the database file.
    /// `reservedBytesPerPage` leaves room at the end of every page for an encrypting VFS (set
    /// before anything is written; an existing file keeps what its header says).
    /// `bulkLoad` opens a new file nobody else sees with its rollback journal in memory instead of
    /// a write-ahead log, so each page is written (and sealed) once instead of into the log and
    /// again by a checkpoint; a failure leaves a file to delete, not to recover. The loader turns
    /// the write-ahead log on when it is done.
    public init(name: String, path: String, readOnly: Bool = false, reservedBytesPerPage: Int32 = 0, bulkLoad: Bool = false) throws(QueryError) {
        self.name = name
        self.path = path
        connection = try SQLiteConnection(path: path, create: !readOnly)
        if reservedBytesPerPage > 0 && !readOnly {
            try connection.reserveBytesPerPage(reservedBytesPerPage)
            try connection.execute("PRAGMA page_size=4096")
        }
        if readOnly {
            // A reader connection: the executor's connection created the schema; this one only
            // reads, and loads the catalog inside each read transaction.
            try connection.execute("PRAGMA query_only=1; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-8192;")
            return
        }
        // WAL lets readers run while a writer commits; synchronous=NORMAL makes a committed
        // transaction survive a process crash (it is in the WAL) but not power loss, which
        // a transaction begun with `begin(durable: true)` adds by syncing the WAL at its commit. See docs/durability.md.
        try connection.execute("""
            PRAGMA journal_mode=\(bulkLoad ? "MEMORY" : "WAL");
            PRAGMA synchronous=\(bulkLoad ? "OFF" : "NORMAL");
            PRAGMA temp_store=MEMORY;
            PRAGMA cache_size=-16384;
            PRAGMA wal_autocheckpoint=4000;
            CREATE TABLE IF NOT EXISTS stratos_collections(
                name TEXT PRIMARY KEY, table_id INTEGER NOT NULL UNIQUE, options BLOB NOT NULL, uuid BLOB NOT NULL,
                decimal_keys INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS stratos_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT OR IGNORE INTO stratos_meta(key, value) VALUES ('catalog_generation', 0);
            CREATE TABLE IF NOT EXISTS stratos_capped_usage(
                collection TEXT PRIMARY KEY, documents INTEGER NOT NULL, bytes INTEGER NOT NULL, last_rid INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS stratos_indexes(
                collection TEXT NOT NULL, name TEXT NOT NULL, table_id INTEGER NOT NULL UNIQUE,
                spec BLOB NOT NULL, multikey INTEGER NOT NULL DEFAULT 0, decimal_keys INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY(collection, name));
            """)
        // Files from before decimal keys were tracked: their indexes may hold decimals, so they
        // are marked as holding them (rows added from now on say what they hold).
        for table in ["stratos_collections", "stratos_indexes"] where try !hasColumn(table, "decimal_keys") {
            try connection.execute("ALTER TABLE \(table) ADD COLUMN decimal_keys INTEGER NOT NULL DEFAULT 1")
        }
        try loadCatalog()
        try rebuildOutdatedTextIndexes()
        try rebuildApproximateIndexes()
    }

    private func hasColumn(_ table: String, _ column: String) throws(QueryError) -> Bool {
        let statement = try connection.statement("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")
        statement.bind(1, table)
        statement.bind(2, column)
        defer { statement.reset() }
        return try statement.step()
    }

    /// The catalog generation this store's cached catalog was loaded at (readers only).
    private var loadedGeneration: Int64 = -1

    /// Records in the database that the catalog changed, inside the current write transaction,
    /// so readers on other connections reload it in the same snapshot as the data.
    func bumpCatalogGeneration() throws(QueryError) {
        try connection.execute("UPDATE stratos_meta SET value = value + 1 WHERE key = 'catalog_generation'")
    }

    /// Runs a read on this (reader) connection inside one read transaction: the catalog is
    /// reloaded first when another connection changed it, so catalog and data come from the
    /// same snapshot.
    public func withReadTransaction<T>(_ body: (DatabaseStore) throws(QueryError) -> T) throws(QueryError) -> T {
        try connection.statement("BEGIN").run()
        defer {
            connection.resetStatements()
            try? connection.statement("COMMIT").run()
        }
        let statement = try connection.statement("SELECT value FROM stratos_meta WHERE key = 'catalog_generation'")
        _ = try statement.step()
        let generation = statement.int64(0)
        statement.reset()
        if generation != loadedGeneration {
            try loadCatalog()
            loadedGeneration = generation
        }
        return try body(self)
    }

    /// Checks a document about to be stored against its collection's validator; `previous` is
    /// the stored version an update replaces (with `moderate`, an invalid one is not checked).
    func validate(_ document: BSONDocument, in collectionName: String, previous: BSONDocument?) throws(QueryError) {
        guard !bypassDocumentValidation, let descriptor = collections[collectionName], descriptor.options["validator"] != nil else { return }
        let validator: CollectionValidator?
        if let cached = validators[collectionName] {
            validator = cached
        } else {
            // Options were checked when they were stored; a validator that no longer parses
            // (written by another version) is not enforced rather than blocking every write.
            validator = (try? CollectionValidator(options: descriptor.options)) ?? nil
            validators[collectionName] = .some(validator)
        }
        guard let validator else { return }
        // Under the collection's default collation, whatever the command's (as MongoDB does).
        let collation = descriptor.defaultCollation
        if let previous, validator.level == .moderate, Collation.with(collation, { validator.failure(previous) }) != nil { return }
        if let details = Collation.with(collation, { validator.failure(document) }) {
            guard validator.action == .warn else { throw validator.error(document, details: details) }
            validationWarning?(name, collectionName)
        }
    }

    /// Replaces a collection's options (`collMod`), as a recorded change.
    public func setCollectionOptions(_ name: String, options: BSONDocument) throws(QueryError) {
        guard let existing = collections[name] else { throw QueryError(.namespaceNotFound, "ns does not exist") }
        // New options are checked; replayed history is taken as it was accepted then.
        if !bypassDocumentValidation { _ = try CollectionValidator(options: options) }
        let update = try connection.statement("UPDATE stratos_collections SET options = ?1 WHERE name = ?2")
        update.bind(1, options.bsonBytes)
        update.bind(2, name)
        try update.run()
        collections[name] = CollectionDescriptor(
            name: name, tableId: existing.tableId, options: options, uuid: existing.uuid, indexes: existing.indexes, idHoldsDecimals: existing.idHoldsDecimals)
        validators[name] = nil
        try bumpCatalogGeneration()
        record(.setCollectionOptions(name: name, options: options.bsonBytes))
    }

    func loadCatalog() throws(QueryError) {
        let statement = try connection.statement("SELECT name, table_id, options, uuid, decimal_keys FROM stratos_collections")
        var loaded: [String: CollectionDescriptor] = [:]
        while try statement.step() {
            let name = statement.text(0)
            let tableId = statement.int64(1)
            let options = try BSONDecoder.decode(statement.blob(2))
            loaded[name] = CollectionDescriptor(
                name: name, tableId: tableId, options: options, uuid: statement.blob(3), indexes: [], idHoldsDecimals: statement.int64(4) != 0)
            nextTableId = max(nextTableId, tableId + 1)
        }
        let indexStatement = try connection.statement("SELECT collection, table_id, spec, multikey, decimal_keys FROM stratos_indexes ORDER BY rowid")
        while try indexStatement.step() {
            let collection = indexStatement.text(0)
            let tableId = indexStatement.int64(1)
            let spec = try BSONDecoder.decode(indexStatement.blob(2))
            var index = try IndexDescriptor(specification: spec, tableId: tableId, isMultikey: indexStatement.int64(3) != 0)
            // `decimal_keys` holds flags: 1, some key is inexact (`IndexDescriptor.holdsInexactKeys`),
            // or, without flag 4, some key holds a decimal keyed by a nearby double (the format
            // before decimals were keyed exactly, rebuilt at open: `rebuildApproximateIndexes`);
            // 2, string keys are the collation's sort keys (an index created before that keeps
            // byte keys, whatever its specification says); 4, decimals are keyed exactly; 8, the
            // rebuild to exact keys failed and the index keeps the first format for good.
            let flags = indexStatement.int64(4)
            index.holdsInexactKeys = flags & 1 != 0
            index.legacyDecimalKeys = flags & 4 == 0 && (flags & 8 != 0 || flags & 1 != 0)
            if flags & 2 == 0 { index.collation = nil }
            loaded[collection]?.indexes.append(index)
            nextTableId = max(nextTableId, tableId + 1)
        }
        collections = loaded
        validators = [:]
    }

    // MARK: - Transactions

    /// Starts a write transaction.
    public func begin(durable: Bool = false) throws(QueryError) {
        precondition(!inTransaction, "transactions do not nest; use savepoints")
        // SQLite refuses to change the safety level inside a transaction, so it is chosen here.
        if durable { try connection.execute("PRAGMA synchronous=FULL") }
        durableTransaction = durable
        do {
            try connection.statement("BEGIN IMMEDIATE").run()
        } catch {
            restoreSynchronous()
            throw error
        }
        inTransaction = true
        selfProtectedJobFailed = false
    }

    /// Commits. A transaction begun `durable` has its write-ahead log synced to stable storage
    /// before this returns.
    public func commit() throws(QueryError) {
        precondition(inTransaction)
        guard connection.isInTransaction else {
            // SQLite already rolled the whole transaction back (an I/O error, a full disk): none
            // of it may be acknowledged, and nothing may be appended for it.
            throw QueryError(.location(7_100_011), "the write transaction was aborted by the storage engine; retry the write")
        }
        guard !selfProtectedJobFailed else {
            throw QueryError(.location(7_100_011), "a write in the same group commit failed part-way; retry the write")
        }
        if !pendingChanges.isEmpty || observerRequested, let transactionObserver {
            try transactionObserver.willCommit(self, changes: pendingChanges)
        }
        try connection.statement("COMMIT").run()
        pendingChanges.removeAll(keepingCapacity: true)
        observerRequested = false
        inTransaction = false
        transactionObserver?.didCommit()
        restoreSynchronous()
    }

    /// Resets every cached statement so none holds a read snapshot (which would block WAL
    /// checkpoints and schema changes) between jobs.
    public func finishJob() { connection.resetStatements() }

    /// Rolls the transaction back.
    public func rollback() {
        if inTransaction {
            rollbackTransaction()
            try? loadCatalog()  // The catalog cache may describe rolled-back changes.
        }
    }

    private func rollbackTransaction() {
        try? connection.execute("ROLLBACK")
        pendingChanges.removeAll(keepingCapacity: true)
        observerRequested = false
        inTransaction = false
        restoreSynchronous()
        transactionObserver?.didRollBack()
    }

    /// Whether the open transaction syncs on commit (`begin(durable:)`).
    private var durableTransaction = false

    /// Whether the open transaction syncs its write-ahead log on commit.
    public var isDurableTransaction: Bool { durableTransaction }

    /// Returns a durable transaction's connection to `synchronous=NORMAL` once it has ended. A
    /// failure to do so must not report the transaction failed: it only costs speed.
    private func restoreSynchronous() {
        if durableTransaction { try? connection.execute("PRAGMA synchronous=NORMAL") }
        durableTransaction = false
    }

    /// Runs a job that wraps each of its writes in a savepoint of its own and throws only before
    /// writing anything (insert, update and delete, with one savepoint per document or
    /// statement) without a job savepoint around it, so that its savepoints are SQLite's
    /// outermost (see `runSoleJob`). Should it throw after writing anyway, `commit` refuses the
    /// transaction, so the whole group is rolled back rather than partly committed. A job that
    /// throws before writing (interrupted, or past its deadline, before it started) fails alone.
    public func runSelfProtectedJob<T>(_ body: () throws(QueryError) -> T) throws(QueryError) -> T {
        // Row changes (the catalog's included) and recorded changes (a space's own records)
        // tell whether the job wrote anything before it threw.
        let changesBefore = connection.totalChanges
        let recordedBefore = pendingChanges.count
        do {
            return try body()
        } catch {
            if connection.totalChanges != changesBefore || pendingChanges.count != recordedBefore { selfProtectedJobFailed = true }
            throw error
        }
    }

    /// Set when a `runSelfProtectedJob` body threw: the transaction may hold part of its writes.
    private var selfProtectedJobFailed = false

    /// Whether a write transaction is open (a failed `runSoleJob` has rolled its back).
    public var isInWriteTransaction: Bool { inTransaction }

    /// Runs `body` as the only job of the open transaction, without a savepoint of its own: if it
    /// throws, the whole transaction is rolled back and the error rethrown.
    ///
    /// Why not `withSavepoint`: a job's own savepoints (one per document of an insert, per
    /// statement of an update or delete) are then SQLite's outermost, whose release truncates the
    /// in-memory sub-journal in constant time. Nested in a job savepoint, every release walks the
    /// sub-journal the job has built so far (a list of 1 KB chunks holding every page it touched),
    /// which made an `insert_many` into a collection with a scattered secondary index quadratic
    /// in its batch (docs/benchmarks.md, "Bulk loads").
    public func runSoleJob<T>(_ body: () throws(QueryError) -> T) throws(QueryError) -> T {
        precondition(inTransaction, "runSoleJob needs an open transaction")
        let catalogBefore = collections
        do {
            return try body()
        } catch {
            if inTransaction {
                rollbackTransaction()
                // The job's changes to the catalog cache are undone with it, as `withSavepoint` does.
                collections = catalogBefore
                validators = [:]
            }
            throw error
        }
    }

    /// Runs `body` inside a savepoint: its changes are undone if it throws, while the enclosing
    /// group-commit transaction carries on with the other writes.
    public func withSavepoint<T>(_ body: () throws(QueryError) -> T) throws(QueryError) -> T {
        // After SQLite aborted the group's transaction, a savepoint would start a transaction of
        // its own and commit on the spot: refuse instead, so the group fails as a whole.
        guard !inTransaction || connection.isInTransaction else {
            throw QueryError(.location(7_100_011), "the write transaction was aborted by the storage engine; retry the write")
        }
        try connection.statement("SAVEPOINT op").run()
        let catalogBefore = collections
        let changesBefore = pendingChanges.count
        do {
            let result = try body()
            try connection.statement("RELEASE op").run()
            return result
        } catch {
            try? connection.execute("ROLLBACK TO op")
            try? connection.execute("RELEASE op")
            collections = catalogBefore
            validators = [:]
            pendingChanges.removeSubrange(changesBefore...)
            throw error
        }
    }

    // MARK: - Catalog

    /// The collections, sorted by name.
    public var collectionDescriptors: [CollectionDescriptor] { collections.values.sorted { $0.name < $1.name } }

    /// The descriptor of `name`, if it exists.
    public func collection(_ name: String) -> CollectionDescriptor? { collections[name] }

    /// Creates a collection. Throws `NamespaceExists` when it exists.
    @discardableResult
    public func createCollection(_ name: String, options: BSONDocument = BSONDocument(), allowExisting: Bool = false) throws(QueryError) -> CollectionDescriptor {
        // Commands check client-supplied names (no `system.*` writes) before they get here; the
        // node's own collections are created on first use.
        try NamespaceRules.validateCollection(name, allowingInternal: true)
        if let existing = collections[name] {
            if existing.options == options && !options.isEmpty || (existing.options.isEmpty && options.isEmpty && allowExisting) {
                return existing
            }
            throw QueryError(.namespaceExists, "Collection \(self.name).\(name) already exists.")
        }
        let tableId = nextTableId
        nextTableId += 1
        let uuid = SecureRandom.bytes(count: 16)
        try connection.execute("""
            CREATE TABLE c\(tableId)(rid INTEGER PRIMARY KEY, id_key BLOB NOT NULL UNIQUE, doc BLOB NOT NULL)
            """)
        let insert = try connection.statement("INSERT INTO stratos_collections(name, table_id, options, uuid, decimal_keys) VALUES (?, ?, ?, ?, 0)")
        insert.bind(1, name)
        insert.bind(2, tableId)
        insert.bind(3, options.bsonBytes)
        insert.bind(4, uuid)
        try insert.run()
        let descriptor = CollectionDescriptor(name: name, tableId: tableId, options: options, uuid: uuid, indexes: [])
        collections[name] = descriptor
        validators[name] = nil
        try bumpCatalogGeneration()
        record(.createCollection(name: name, options: options.bsonBytes))
        return descriptor
    }

    /// The collection, created on first use as MongoDB does for inserts and upserts.
    func collectionForWrite(_ name: String) throws(QueryError) -> CollectionDescriptor {
        if let existing = collections[name] {
            try requireCollection(name)
            return existing
        }
        return try createCollection(name)
    }

    /// Drops a collection and its indexes; returns whether it existed.
    @discardableResult
    public func dropCollection(_ name: String) throws(QueryError) -> Bool {
        guard let descriptor = collections[name] else { return false }
        IndexUsage.forget(database: self.name, collection: name)
        connection.clearStatementCache()
        for index in descriptor.indexes { try connection.execute("DROP TABLE IF EXISTS \(index.tableName)") }
        try connection.execute("DROP TABLE IF EXISTS \(descriptor.tableName)")
        let deleteCollection = try connection.statement("DELETE FROM stratos_collections WHERE name = ?")
        deleteCollection.bind(1, name)
        try deleteCollection.run()
        let deleteIndexes = try connection.statement("DELETE FROM stratos_indexes WHERE collection = ?")
        deleteIndexes.bind(1, name)
        try deleteIndexes.run()
        try forgetCappedUsage([name])
        collections[name] = nil
        validators[name] = nil
        connection.clearStatementCache()
        try bumpCatalogGeneration()
        record(.dropCollection(name: name))
        return true
    }

    /// Renames a collection within this database.
    public func renameCollection(_ source: String, to target: String, dropTarget: Bool) throws(QueryError) {
        try NamespaceRules.validateCollection(target)
        guard var descriptor = collections[source] else {
            throw QueryError(.namespaceNotFound, "Source collection \(name).\(source) does not exist")
        }
        IndexUsage.forget(database: name, collection: source)
        IndexUsage.forget(database: name, collection: target)
        if collections[target] != nil {
            guard dropTarget else { throw QueryError(.namespaceExists, "target namespace exists") }
            try dropCollection(target)
        }
        for sql in ["UPDATE stratos_collections SET name = ? WHERE name = ?", "UPDATE stratos_indexes SET collection = ? WHERE collection = ?"] {
            let statement = try connection.statement(sql)
            statement.bind(1, target)
            statement.bind(2, source)
            try statement.run()
        }
        try forgetCappedUsage([source, target])
        collections[source] = nil
        descriptor = CollectionDescriptor(
            name: target, tableId: descriptor.tableId, options: descriptor.options, uuid: descriptor.uuid,
            indexes: descriptor.indexes, idHoldsDecimals: descriptor.idHoldsDecimals)
        collections[target] = descriptor
        validators = [:]
        try bumpCatalogGeneration()
        record(.renameCollection(from: source, to: target))
    }

    /// Closes the store, checkpointing the write-ahead log.
    public func checkpoint() {
        try? connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }
}

/// Observes a store's write transactions.
public protocol StoreTransactionObserver: AnyObject {
    /// Runs inside every write transaction that changed something (or asked for it with
    /// `DatabaseStore.observeThisCommit`), just before COMMIT, on the
    /// same connection: the node appends the transaction's signed commit here, so the commit log
    /// and the rows can never disagree. Throwing rolls the whole transaction back.
    func willCommit(_ store: DatabaseStore, changes: [StorageChange]) throws(QueryError)
    /// The transaction committed.
    func didCommit()
    /// The transaction rolled back (whatever `willCommit` did is undone).
    func didRollBack()
    /// The store is about to close (its last chance to write, in a transaction of its own).
    func willClose(_ store: DatabaseStore)
}
