import CSQLite

/// One SQLite connection. It must be used from one thread at a time: the owner (a database
/// executor) guarantees that, as GRDB's `SerializedDatabase` does.
///
/// Related SQLite documentation: https://www.sqlite.org/c3ref/intro.html
public final class SQLiteConnection {
    private var handle: OpaquePointer?
    private var statementCache: [String: SQLiteStatement] = [:]
    private var commitObserver: CommitObserver?

    /// Opens the database file at `path`, creating it when `create` (never for readers: a
    /// reader racing a drop must not bring back an empty file).
    public init(path: String, create: Bool = true) throws(QueryError) {
        var raw: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &raw, flags, nil)
        guard status == SQLITE_OK, let raw else {
            let message = raw.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
            let extended = raw.map { sqlite3_extended_errcode($0) } ?? status
            sqlite3_close_v2(raw)
            let mapped = Self.error(extended, message)
            if mapped.code != .internalError { throw mapped }
            throw QueryError(.internalError, "cannot open database file: \(message)")
        }
        handle = raw
        _ = stratos_sqlite_defensive(raw)
        sqlite3_extended_result_codes(raw, 1)
        sqlite3_busy_timeout(raw, 5000)
    }

    deinit {
        statementCache.removeAll()
        if commitObserver != nil, let handle { sqlite3_wal_hook(handle, nil, nil) }
        sqlite3_close_v2(handle)
    }

    /// Runs one or more SQL statements that return no rows.
    public func execute(_ sql: String) throws(QueryError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if status != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(status))
            sqlite3_free(errorMessage)
            throw SQLiteConnection.error(status, message)
        }
    }

    /// A prepared statement, cached by its SQL text.
    public func statement(_ sql: String) throws(QueryError) -> SQLiteStatement {
        if let cached = statementCache[sql] {
            cached.reset()
            return cached
        }
        var raw: OpaquePointer?
        let status = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard status == SQLITE_OK, let raw else {
            throw SQLiteConnection.error(status, String(cString: sqlite3_errmsg(handle)))
        }
        let statement = SQLiteStatement(raw, connection: self)
        statementCache[sql] = statement
        return statement
    }

    /// Resets every cached statement, releasing read snapshots.
    public func resetStatements() {
        for statement in statementCache.values { statement.reset() }
    }

    /// Calls `body` after each transaction this connection commits, once the commit is in the
    /// write-ahead log and visible to other connections (SQLite's WAL hook; WAL mode only).
    /// Replaces SQLite's automatic checkpoint hook, so it checkpoints itself, as SQLite's default
    /// does, once the log holds `checkpointFrames` frames.
    public func observeCommits(checkpointFrames: Int32 = 1000, _ body: @escaping () -> Void) {
        let observer = CommitObserver(body: body, checkpointFrames: checkpointFrames)
        commitObserver = observer
        sqlite3_wal_hook(
            handle,
            { context, database, schema, frames in
                guard let context else { return SQLITE_OK }
                let observer = Unmanaged<CommitObserver>.fromOpaque(context).takeUnretainedValue()
                observer.body()
                if frames >= observer.checkpointFrames { sqlite3_wal_checkpoint(database, schema) }
                return SQLITE_OK
            }, Unmanaged.passUnretained(observer).toOpaque())
    }

    private final class CommitObserver {
        let body: () -> Void
        let checkpointFrames: Int32
        init(body: @escaping () -> Void, checkpointFrames: Int32) {
            self.body = body
            self.checkpointFrames = checkpointFrames
        }
    }

    /// Drops cached statements (after schema changes such as dropping a table).
    public func clearStatementCache() { statementCache.removeAll() }

    /// The rowid of the last inserted row.
    public var lastInsertRowid: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Rows inserted, updated or deleted through this connection since it opened (statements
    /// later undone by a savepoint or rollback included).
    public var totalChanges: Int64 { sqlite3_total_changes64(handle) }

    /// Reserves `count` bytes at the end of every page (SQLITE_FCNTL_RESERVE_BYTES), for the
    /// encrypting VFS's nonce and tag. Effective only before the database's first page is written.
    public func reserveBytesPerPage(_ count: Int32) throws(QueryError) {
        var value = count
        let status = sqlite3_file_control(handle, "main", SQLITE_FCNTL_RESERVE_BYTES, &value)
        guard status == SQLITE_OK else { throw Self.error(status, "cannot reserve bytes per page") }
    }

    /// Whether a transaction is open (SQLite ends one by itself after some errors: an I/O
    /// error, a full disk, running out of memory).
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Rows changed by the last statement.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    var lastErrorMessage: String { String(cString: sqlite3_errmsg(handle)) }

    static func error(_ status: Int32, _ message: String) -> QueryError {
        let primary = status & 0xFF
        if status == 2067 || status == 1555 {  // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY (macros Swift cannot import)
            return QueryError(.duplicateKey, "E11000 duplicate key error")
        }
        if primary == SQLITE_FULL {
            return QueryError(.location(14031), "disk is full: \(message)")
        }
        if status == SQLITE_IOERR | (32 << 8) || primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT {
            // SQLITE_IOERR_DATA: a page failed authentication in the encrypting VFS.
            return QueryError(.location(7_100_008), "the database is damaged: a page failed its integrity check (the file was corrupted or tampered with)")
        }
        return QueryError(.internalError, "storage error \(status) (\(String(cString: sqlite3_errstr(status)))): \(message)")
    }
}

/// A prepared statement owned by its connection; finalized in `deinit`.
public final class SQLiteStatement {
    private let handle: OpaquePointer
    private unowned let connection: SQLiteConnection

    init(_ handle: OpaquePointer, connection: SQLiteConnection) {
        self.handle = handle
        self.connection = connection
    }

    deinit { sqlite3_finalize(handle) }

    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Binds a blob to the 1-based parameter `index`.
    public func bind(_ index: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            _ = sqlite3_bind_blob(handle, index, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(buffer.count), stratos_sqlite_transient())
        }
    }

    /// Binds an integer.
    public func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }

    /// Binds text.
    public func bind(_ index: Int32, _ text: String) {
        _ = sqlite3_bind_text(handle, index, text, -1, stratos_sqlite_transient())
    }

    /// Advances; returns `true` when a row is available. A finished statement is reset at once,
    /// so it can be bound again: SQLite refuses new bindings on a finished, unreset statement
    /// (`SQLITE_MISUSE`) and would silently re-run it with the old ones.
    public func step() throws(QueryError) -> Bool {
        let status = sqlite3_step(handle)
        switch status {
        case SQLITE_ROW: return true
        case SQLITE_DONE:
            sqlite3_reset(handle)
            return false
        default:
            let message = connection.lastErrorMessage
            sqlite3_reset(handle)
            throw SQLiteConnection.error(status, message)
        }
    }

    /// Runs a statement that returns no rows.
    public func run() throws(QueryError) {
        _ = try step()
        sqlite3_reset(handle)
    }

    /// The integer in column `index` (0-based).
    public func int64(_ index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }

    /// The double in column `index`.
    public func double(_ index: Int32) -> Double { sqlite3_column_double(handle, index) }

    /// The text in column `index`.
    public func text(_ index: Int32) -> String {
        guard let raw = sqlite3_column_text(handle, index) else { return "" }
        return String(cString: raw)
    }

    /// The blob in column `index`, copied.
    public func blob(_ index: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count > 0, let raw = sqlite3_column_blob(handle, index) else { return [] }
        return Array(UnsafeRawBufferPointer(start: raw, count: count))
    }

    /// Calls `body` with the blob in column `index` without copying it.
    public func withBlob<T>(_ index: Int32, _ body: (UnsafeRawBufferPointer) throws(QueryError) -> T) throws(QueryError) -> T {
        let raw = sqlite3_column_blob(handle, index)
        let count = Int(sqlite3_column_bytes(handle, index))
        return try body(UnsafeRawBufferPointer(start: raw, count: raw == nil ? 0 : count))
    }

    /// Whether column `index` is NULL.
    public func isNull(_ index: Int32) -> Bool { sqlite3_column_type(handle, index) == SQLITE_NULL }
}
