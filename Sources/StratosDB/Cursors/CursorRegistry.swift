import QueryEngine
import Synchronization

/// An open server-side cursor.
final class ServerCursor: @unchecked Sendable {
    // Safe: a cursor is used by one getMore at a time (the registry checks it out), and its
    // `FindQuery` only ever runs on its database's executor thread.
    enum Source {
        case find(FindQuery)
        case buffered([BSONDocument], offset: Int)
    }

    let id: Int64
    let namespace: String
    let database: String
    /// The DID of the principal that opened it: only it may continue or kill the cursor.
    let owner: String
    var source: Source
    var lastUsedSeconds: Int64
    /// The getMore running on the cursor now, if any: killCursors cancels it.
    let running = Mutex<OperationContext?>(nil)
    /// The documents it keeps in memory between getMores, counted against the node-wide cap
    /// (released when the cursor goes away).
    var memory: OperationContext.MemoryHold?

    init(id: Int64, namespace: String, database: String, owner: String, source: Source, nowSeconds: Int64) {
        self.id = id
        self.namespace = namespace
        self.database = database
        self.owner = owner
        self.source = source
        self.lastUsedSeconds = nowSeconds
    }
}

/// Open cursors, bounded in number and reaped when idle.
final class CursorRegistry: Sendable {
    private struct State {
        var cursors: [Int64: ServerCursor] = [:]
        var inUse: Set<Int64> = []
    }

    private let state = Mutex(State())

    /// Registers a cursor and returns its id.
    func register(namespace: String, database: String, owner: String, source: ServerCursor.Source, nowSeconds: Int64) throws(QueryError) -> Int64 {
        let bytes: Int =
            switch source {
            case .buffered(let documents, let offset): documents[offset...].reduce(0) { $0 + $1.encodedSize }
            case .find(let query): query.bufferedBytes
            }
        let memory = bytes > 0 ? try OperationContext.holdMemory(bytes, movingFrom: OperationRegistry.current) : nil
        let result: Result<Int64, QueryError> = state.withLock { state in
            guard state.cursors.count < ServerLimits.cursorsMax else {
                return .failure(QueryError(.location(2_000_010), "too many open cursors (limit \(ServerLimits.cursorsMax)); close cursors you no longer need"))
            }
            var id: Int64
            repeat { id = Int64.random(in: 1...Int64.max) } while state.cursors[id] != nil
            let cursor = ServerCursor(id: id, namespace: namespace, database: database, owner: owner, source: source, nowSeconds: nowSeconds)
            cursor.memory = memory
            state.cursors[id] = cursor
            return .success(id)
        }
        return try result.get()
    }

    /// Takes a cursor for a getMore; it is unavailable to others until `checkIn`.
    func checkOut(_ id: Int64, namespace: String, database: String, owner: String) throws(QueryError) -> ServerCursor {
        let result: Result<ServerCursor, QueryError> = state.withLock { state in
            guard let cursor = state.cursors[id], !state.inUse.contains(id) else {
                return .failure(QueryError(.cursorNotFound, "cursor id \(id) not found"))
            }
            // Another principal's cursor, or the same name in another principal's space, reads
            // as missing: cursor ids are not capabilities.
            guard cursor.owner == owner, cursor.database == database else {
                return .failure(QueryError(.cursorNotFound, "cursor id \(id) not found"))
            }
            guard cursor.namespace == namespace else {
                return .failure(QueryError(.unauthorized, "Requested getMore on namespace '\(namespace)', but cursor belongs to a different namespace \(cursor.namespace)"))
            }
            state.inUse.insert(id)
            return .success(cursor)
        }
        return try result.get()
    }

    /// Returns a cursor after a getMore; an exhausted cursor is removed.
    func checkIn(_ cursor: ServerCursor, exhausted: Bool, nowSeconds: Int64) {
        state.withLock { state in
            state.inUse.remove(cursor.id)
            cursor.lastUsedSeconds = nowSeconds
            if exhausted { state.cursors[cursor.id] = nil }
        }
    }

    /// Kills cursors; returns (killed, notFound).
    func kill(_ ids: [Int64], owner: String) -> (killed: [Int64], notFound: [Int64]) {
        state.withLock { state in
            var killed: [Int64] = []
            var notFound: [Int64] = []
            for id in ids {
                guard state.cursors[id]?.owner == owner else {
                    notFound.append(id)
                    continue
                }
                if let cursor = state.cursors.removeValue(forKey: id) {
                    // A getMore running on it stops at its next checkpoint (Interrupted).
                    cursor.running.withLock { $0 }?.cancel(.killed)
                    killed.append(id)
                } else {
                    notFound.append(id)
                }
                state.inUse.remove(id)
            }
            return (killed, notFound)
        }
    }

    /// Closes cursors of a database (dropDatabase) or namespace (drop).
    func killAll(database: String, namespace: String? = nil) {
        state.withLock { state in
            state.cursors = state.cursors.filter { _, cursor in
                !(cursor.database == database && (namespace == nil || cursor.namespace == namespace))
            }
        }
    }

    /// Removes cursors idle for longer than the timeout.
    func reap(nowSeconds: Int64) {
        state.withLock { state in
            state.cursors = state.cursors.filter { id, cursor in
                state.inUse.contains(id) || nowSeconds - cursor.lastUsedSeconds < ServerLimits.cursorIdleTimeoutSeconds
            }
        }
    }

    /// The number of open cursors.
    var openCount: Int { state.withLock { $0.cursors.count } }
}
