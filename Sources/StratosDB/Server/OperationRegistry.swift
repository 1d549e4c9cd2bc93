import Foundation
import QueryEngine
import Synchronization

/// Every command running on the node, for `currentOp` and `killOp`, and so that a closed
/// connection or a shutdown can stop what it started.
final class OperationRegistry: Sendable {
    struct Entry: Sendable {
        let opid: Int64
        let connectionID: Int64
        let client: String
        /// The principal's DID ("" before authentication).
        let principal: String
        let command: String
        let namespace: String
        let startedMilliseconds: Int64
        let startedNanoseconds: UInt64
        let operation: OperationContext
    }

    private let entries = Mutex<[Int64: Entry]>([:])
    private let nextID = Atomic<Int64>(0)

    /// The operation the current task's database work belongs to (installed by the command
    /// router; the database executors make it the thread's current operation).
    @TaskLocal static var current: OperationContext?

    func register(connection: ConnectionInfo, principal: String, command: String, namespace: String, nowMilliseconds: Int64, operation: OperationContext) -> Int64 {
        let opid = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        let entry = Entry(
            opid: opid, connectionID: connection.id, client: connection.remoteAddress, principal: principal, command: command,
            namespace: namespace, startedMilliseconds: nowMilliseconds, startedNanoseconds: MonotonicTime.nowNanoseconds(), operation: operation)
        entries.withLock { $0[opid] = entry }
        return opid
    }

    func finish(_ opid: Int64) { entries.withLock { _ = $0.removeValue(forKey: opid) } }

    /// Running operations, oldest first.
    var running: [Entry] { entries.withLock { Array($0.values) }.sorted { $0.opid < $1.opid } }

    func entry(_ opid: Int64) -> Entry? { entries.withLock { $0[opid] } }

    /// Cancels the operations of a connection that closed.
    func cancel(connection: Int64) {
        for entry in running where entry.connectionID == connection { entry.operation.cancel(.disconnected) }
    }

    /// Cancels every operation (shutdown).
    func cancelAll() {
        for entry in running { entry.operation.cancel(.shutdown) }
    }

    /// Wraps a database closure so that it runs with the task's operation as the thread's
    /// current one (checked before it starts, and at every checkpoint inside).
    static func bind<T>(
        _ body: @escaping @Sendable (DatabaseStore) throws(QueryError) -> T
    ) -> @Sendable (DatabaseStore) throws(QueryError) -> T {
        guard let operation = current else { return body }
        return { store throws(QueryError) -> T in
            try operation.check()
            return try OperationContext.withCurrent(operation) { () throws(QueryError) -> T in
                try Collation.with(operation.collation, in: store) { () throws(QueryError) -> T in try body(store) }
            }
        }
    }
}
