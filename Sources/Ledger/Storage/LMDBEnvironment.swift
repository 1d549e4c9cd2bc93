import CLMDB
#if canImport(Glibc)
import Glibc
#endif

/// One LMDB environment (a directory with `data.mdb` and `lock.mdb`) and its named databases.
///
/// LMDB gives the block store what it needs: one writer with fully durable commits (a commit
/// is on disk when `mdb_txn_commit` returns), readers that never block the writer or each other
/// — including readers in other processes, such as `stratosdb ledger status` while the node
/// runs — and no recovery step after a crash (copy-on-write B+trees).
final class LMDBEnvironment: @unchecked Sendable {
    // Safe: LMDB environments are thread-safe; write transactions are serialized by LMDB itself.
    private let environment: OpaquePointer
    private var databases: [String: MDB_dbi] = [:]
    let isReadOnly: Bool

    /// The virtual size reserved for the map: LMDB files grow up to it (sparse on disk). Where
    /// the process may not reserve that much address space (`ulimit -v`, some containers), the
    /// environment opens with a quarter of it, down to `mapSizeBytesMin`.
    static let mapSizeBytes = 64 << 30
    static let mapSizeBytesMin = 1 << 30

    init(directory: String, databaseNames: [String], readOnly: Bool = false) throws(LedgerError) {
        environment = try Self.open(directory: directory, databaseCount: databaseNames.count, readOnly: readOnly)
        isReadOnly = readOnly
        // From here on `deinit` closes the environment, also when this initializer throws.
        try withTransaction(write: !readOnly) { transaction throws(LedgerError) in
            for name in databaseNames {
                var dbi: MDB_dbi = 0
                try Self.check(mdb_dbi_open(transaction.pointer, name, readOnly ? 0 : UInt32(MDB_CREATE), &dbi), "open database \(name)")
                databases[name] = dbi
            }
        }
    }

    /// An open environment handle, with the largest map this process may reserve.
    private static func open(directory: String, databaseCount: Int, readOnly: Bool) throws(LedgerError) -> OpaquePointer {
        var mapSize = mapSizeBytes
        while true {
            var pointer: OpaquePointer?
            try check(mdb_env_create(&pointer), "create the environment")
            guard let environment = pointer else { throw LedgerError(.storage, "LMDB returned no environment") }
            var status = mdb_env_set_maxdbs(environment, MDB_dbi(databaseCount + 1))
            if status == 0 { status = mdb_env_set_mapsize(environment, mapSize) }
            if status == 0 { status = mdb_env_open(environment, directory, readOnly ? UInt32(MDB_RDONLY) : 0, 0o600) }
            if status == 0 { return environment }
            // A handle whose open failed is only good for closing (LMDB's documentation).
            mdb_env_close(environment)
            // ENOMEM under `ulimit -v`; EINVAL where the map's length is refused outright (as
            // valgrind does): both say the reservation is too large, so a smaller one is tried.
            if status == ENOMEM || status == EINVAL, mapSize / 4 >= mapSizeBytesMin {
                mapSize /= 4
                continue
            }
            try check(status, "open \(directory) (with a map of \(mapSize >> 20) MiB of address space)")
        }
    }

    deinit { mdb_env_close(environment) }

    static func check(_ status: Int32, _ what: String) throws(LedgerError) {
        guard status == 0 else {
            let text = String(cString: mdb_strerror(status))
            throw LedgerError(.storage, "LMDB cannot \(what): \(text) (\(status))")
        }
    }

    /// A transaction handed to `withTransaction`'s body; never escapes it.
    struct Transaction {
        let pointer: OpaquePointer
        let environment: LMDBEnvironment

        func get(_ database: String, _ key: [UInt8]) throws(LedgerError) -> [UInt8]? {
            guard let dbi = environment.databases[database] else { throw LedgerError(.storage, "no database \(database)") }
            var keyCopy = key
            let (status, bytes) = keyCopy.withUnsafeMutableBytes { keyBytes -> (Int32, [UInt8]?) in
                var keyValue = MDB_val(mv_size: keyBytes.count, mv_data: keyBytes.baseAddress)
                var value = MDB_val()
                let status = mdb_get(pointer, dbi, &keyValue, &value)
                guard status == 0 else { return (status, nil) }
                return (0, Array(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)))
            }
            if status == MDB_NOTFOUND { return nil }
            try LMDBEnvironment.check(status, "read \(database)")
            return bytes
        }

        func put(_ database: String, _ key: [UInt8], _ value: [UInt8]) throws(LedgerError) {
            guard let dbi = environment.databases[database] else { throw LedgerError(.storage, "no database \(database)") }
            var keyCopy = key
            var valueCopy = value
            let status = keyCopy.withUnsafeMutableBytes { keyBytes in
                valueCopy.withUnsafeMutableBytes { valueBytes in
                    var keyValue = MDB_val(mv_size: keyBytes.count, mv_data: keyBytes.baseAddress)
                    var dataValue = MDB_val(mv_size: valueBytes.count, mv_data: valueBytes.baseAddress)
                    return mdb_put(pointer, dbi, &keyValue, &dataValue, 0)
                }
            }
            try LMDBEnvironment.check(status, "write \(database)")
        }

        /// The last key and value of `database` (keys sort as bytes).
        func last(_ database: String) throws(LedgerError) -> (key: [UInt8], value: [UInt8])? {
            guard let dbi = environment.databases[database] else { throw LedgerError(.storage, "no database \(database)") }
            var cursor: OpaquePointer?
            try LMDBEnvironment.check(mdb_cursor_open(pointer, dbi, &cursor), "open a cursor")
            defer { mdb_cursor_close(cursor) }
            var key = MDB_val()
            var value = MDB_val()
            let status = mdb_cursor_get(cursor, &key, &value, MDB_LAST)
            if status == MDB_NOTFOUND { return nil }
            try LMDBEnvironment.check(status, "read \(database)")
            return (Array(UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size)),
                    Array(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)))
        }
    }

    /// Runs `body` in one transaction; a write transaction commits (durably) when it returns.
    func withTransaction<T>(write: Bool, _ body: (Transaction) throws(LedgerError) -> T) throws(LedgerError) -> T {
        precondition(!write || !isReadOnly, "a read-only environment has no write transactions")
        var pointer: OpaquePointer?
        try Self.check(mdb_txn_begin(environment, nil, write ? 0 : UInt32(MDB_RDONLY), &pointer), "begin a transaction")
        guard let pointer else { throw LedgerError(.storage, "LMDB returned no transaction") }
        let result: T
        do {
            result = try body(Transaction(pointer: pointer, environment: self))
        } catch {
            mdb_txn_abort(pointer)
            throw error
        }
        // Read transactions end with a commit too: a database handle opened in an aborted
        // transaction is closed with it (mdb_dbi_open), and committing a reader is cheap.
        try Self.check(mdb_txn_commit(pointer), write ? "commit" : "end a read")
        return result
    }
}
