import Foundation
import NIOPosix
import QueryEngine
import SpaceOwnership
import StratosCore
import Synchronization

/// The serial executor that owns one database's SQLite connection.
///
/// SQLite allows one writer, so writes from every connection queue here and are
/// **group-committed**: everything queued while the previous commit ran becomes one transaction,
/// each operation in its own savepoint (a failing write undoes only itself). Replies go out only
/// after the commit, so an acknowledged write is in the write-ahead log. A durable request
/// (`j: true` or `--sync full`) syncs the log before anyone in its group is answered.
final class DatabaseExecutor: @unchecked Sendable {
    // Safe: `queue` and `state` are only touched under `condition`; `store` only on `thread`.
    private struct Job {
        /// How a write runs in its group's transaction.
        enum Isolation {
            /// The group's only write: no savepoint; a failure rolls the transaction back.
            case sole
            /// In a savepoint of its own, undone alone if it fails.
            case savepoint
            /// Without a savepoint: the job protects each of its writes itself
            /// (`DatabaseStore.runSelfProtectedJob`).
            case selfProtected
        }

        let isWrite: Bool
        let durable: Bool
        /// The write wraps each of its writes in its own savepoint (`write(protectsItsWrites:)`).
        let protectsItsWrites: Bool
        /// Runs the operation (a write with its isolation, a read with none) and returns the
        /// completion to call after the group commits (with the commit's error, if any).
        let execute: (DatabaseStore, Isolation?) -> (QueryError?) -> Void
        /// Completes the job with an error without running it (the transaction could not start).
        let fail: (QueryError) -> Void
    }

    private enum State { case running, stopping, stopped }

    let name: String
    /// Unique for the process's lifetime: identifies this executor where an object address
    /// could be reused by the next one (a dropped and recreated database).
    let generation: UInt64 = DatabaseExecutor.generations.wrappingAdd(1, ordering: .relaxed).newValue
    private static let generations = Atomic<UInt64>(0)
    /// Set by `dropDatabase` before it shuts the executor down: work that arrives after fails
    /// with DatabaseDropPending (215) instead of reaching a file about to be removed.
    let isDropped = Atomic<Bool>(false)
    /// Write transactions committed since the database opened: a tailable cursor waiting for
    /// documents reads again only when this moves.
    let commits = Atomic<UInt64>(0)
    private let store: DatabaseStore
    /// Held while the write connection is in use, by the executor thread for a group or by a
    /// caller running an uncontended write inline.
    private let storeLock = NSLock()
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var state = State.running
    private var thread: Thread?
    /// The space's commit log (nil for a database that is not a space); used under `storeLock`.
    private let commitLog: CommitLog?
    /// When the executor's thread must seal the operations its log holds pending (under
    /// `condition`); set after a transaction leaves some, cleared once none are.
    private var sealDue: ContinuousClock.Instant?
    /// Whether the log holds pending operations, for `sealPendingCommits` on other threads.
    private let hasPending = Atomic<Bool>(false)

    /// Opens the database; a space (its name is a space id) gets its signed commit log, and is
    /// refused here if its log or state does not check out.
    init(
        name: String, path: String, reservedBytesPerPage: Int32 = 0, signer: SigningKey? = nil, clock: any WallClock = SystemWallClock(),
        onCommitted: (@Sendable (SpaceID, UInt64, [UInt8]) -> Void)? = nil,
        anchoredHead: (@Sendable (SpaceID) -> (seq: UInt64, commitHash: [UInt8])?)? = nil,
        grantIndex: (any GrantIndex)? = nil, validationWarning: (@Sendable (String, String) -> Void)? = nil,
        newSpaceKeyFormat: StateKeyFormat = .current, commitWindow: Duration? = nil
    ) throws(QueryError) {
        self.name = name
        store = try DatabaseStore(name: name, path: path, reservedBytesPerPage: reservedBytesPerPage)
        store.validationWarning = validationWarning
        if let signer, let space = SpaceID(name) {
            commitLog = try CommitLog(
                store: store, space: space, signer: signer, clock: clock, onCommitted: onCommitted, anchored: anchoredHead?(space),
                newSpaceKeyFormat: newSpaceKeyFormat, window: commitWindow)
            // Before anything is served: the log and the catalog agree on who may do what.
            if let grantIndex { try GrantLog.reconcile(store, space: space, index: grantIndex) }
        } else {
            commitLog = nil
        }
        let thread = Thread { [unowned self] in self.loop() }
        thread.name = "stratosdb-db"
        thread.stackSize = 8 << 20  // Deeply nested (but valid) documents recurse in the codec.
        self.thread = thread
        thread.start()
    }

    /// Runs a read-only operation.
    ///
    /// Reads run on the calling thread (a connection's event loop) through that thread's own
    /// read-only SQLite connection: WAL mode lets them proceed while the executor writes, and
    /// they skip two thread switches per request. Each read is one SQLite read transaction.
    func read<T: Sendable>(_ body: @escaping @Sendable (DatabaseStore) throws(QueryError) -> T) async throws(QueryError) -> T {
        try checkNotDropped()
        let body = OperationRegistry.bind(body)
        if ThreadReaders.isEnabled, let reader = ThreadReaders.reader(for: self) {
            return try reader.withReadTransaction(body)
        }
        return try await submit(isWrite: false, durable: false, protectsItsWrites: false, body)
    }

    /// Runs a read on a thread of `pool` (through that thread's reader connection), for work
    /// that may examine many documents and must not occupy an event loop.
    func readOffloaded<T: Sendable>(
        on pool: NIOThreadPool, _ body: @escaping @Sendable (DatabaseStore) throws(QueryError) -> T
    ) async throws(QueryError) -> T {
        try checkNotDropped()
        let body = OperationRegistry.bind(body)
        do {
            return try await pool.runIfActive { () throws -> T in
                guard let reader = ThreadReaders.reader(for: self) else {
                    throw QueryError(.internalError, "cannot open a reader connection")
                }
                return try reader.withReadTransaction(body)
            }
        } catch let error as QueryError {
            throw error
        } catch {
            throw QueryError(.interruptedAtShutdown, "the server is shutting down")
        }
    }

    static let droppedError = QueryError(.databaseDropPending, "the database was dropped while the operation was starting; retry it")

    private func checkNotDropped() throws(QueryError) {
        if isDropped.load(ordering: .acquiring) { throw Self.droppedError }
    }

    /// The database file, for reader connections.
    var path: String { store.path }

    /// Runs a write inside the next group commit.
    ///
    /// A write that needs no sync and finds the writer idle runs inline on the caller's thread
    /// (one transaction of its own, no thread switch). Durable writes, and writes that find the
    /// writer busy, queue for the executor, which group-commits them: one fsync for the group.
    /// `inline: false` always queues: for long writes (stored procedures) that must not occupy
    /// the caller's event loop.
    ///
    /// `protectsItsWrites`: the body wraps each of its writes in a savepoint of its own and
    /// catches their errors, so it throws only before writing anything (insert, update, delete).
    /// It then runs without a savepoint around it even when other writes share its group, which
    /// keeps its own savepoints cheap (`DatabaseStore.runSoleJob` says why).
    func write<T: Sendable>(
        durable: Bool, inline: Bool = true, protectsItsWrites: Bool = false, _ body: @escaping @Sendable (DatabaseStore) throws(QueryError) -> T
    ) async throws(QueryError) -> T {
        try checkNotDropped()
        let body = OperationRegistry.bind(body)
        if inline, !durable, let outcome = tryInlineWrite(body) { return try outcome.get() }
        return try await submit(isWrite: true, durable: durable, protectsItsWrites: protectsItsWrites, body)
    }

    /// Runs a write in its own transaction on the calling thread when the writer is idle;
    /// `nil` when it is busy (the caller then queues the write).
    private func tryInlineWrite<T>(_ body: (DatabaseStore) throws(QueryError) -> T) -> Result<T, QueryError>? {
        guard storeLock.try() else { return nil }
        defer { storeLock.unlock() }
        // Checked again under the lock: a drop that began after the first check must not see
        // this write committed to the file it is about to remove, and acknowledged.
        if isDropped.load(ordering: .acquiring) { return .failure(Self.droppedError) }
        do {
            try store.begin(durable: false)
        } catch {
            return .failure(error)
        }
        defer { store.finishJob() }
        let value: T
        do {
            // The transaction's only job: a failure rolls the transaction back.
            value = try store.runSoleJob { () throws(QueryError) -> T in try body(store) }
        } catch {
            return .failure(error)
        }
        do {
            try store.commit()
        } catch {
            store.rollback()
            return .failure(error)
        }
        commits.wrappingAdd(1, ordering: .releasing)
        notePending()
        return .success(value)
    }

    /// After a transaction (under `storeLock`): tells the executor's thread when the commit
    /// log's pending operations are due, or that none are.
    private func notePending() {
        guard let commitLog else { return }
        var due = commitLog.sealDeadline
        if let due0 = due, let retry = sealRetry, retry > due0 { due = retry }
        hasPending.store(commitLog.hasPending, ordering: .releasing)
        condition.lock()
        if sealDue != due {
            sealDue = due
            if due != nil { condition.signal() }
        }
        condition.unlock()
    }

    /// Seals the operations the space's commit log holds pending into a signed commit, before
    /// something reads the log (a proof, an export, an anchored write's wait). Returns at once
    /// when none are pending.
    func sealPendingCommits() async throws(QueryError) {
        guard commitLog != nil, hasPending.load(ordering: .acquiring) else { return }
        try await write(durable: false) { [self] store throws(QueryError) in try self.commitLog?.requestSeal(store) }
    }

    private func submit<T: Sendable>(
        isWrite: Bool, durable: Bool, protectsItsWrites: Bool, _ body: @escaping @Sendable (DatabaseStore) throws(QueryError) -> T
    ) async throws(QueryError) -> T {
        let result: Result<T, QueryError> = await withCheckedContinuation { continuation in
            let job = Job(isWrite: isWrite, durable: durable, protectsItsWrites: protectsItsWrites, execute: { store, isolation in
                let outcome: Result<T, QueryError>
                do {
                    switch isolation {
                    case nil: outcome = .success(try body(store))
                    case .sole: outcome = .success(try store.runSoleJob { () throws(QueryError) -> T in try body(store) })
                    case .savepoint: outcome = .success(try store.withSavepoint { () throws(QueryError) -> T in try body(store) })
                    case .selfProtected: outcome = .success(try store.runSelfProtectedJob { () throws(QueryError) -> T in try body(store) })
                    }
                } catch let error as QueryError {
                    outcome = .failure(error)
                } catch {
                    outcome = .failure(QueryError(.internalError, "unexpected storage failure"))
                }
                return { commitError in
                    if let commitError { continuation.resume(returning: .failure(commitError)) } else { continuation.resume(returning: outcome) }
                }
            }, fail: { error in continuation.resume(returning: .failure(error)) })
            condition.lock()
            if state != .running {
                condition.unlock()
                continuation.resume(returning: .failure(
                    isDropped.load(ordering: .acquiring) ? Self.droppedError : QueryError(.interruptedAtShutdown, "the database is shutting down")))
                return
            }
            queue.append(job)
            condition.signal()
            condition.unlock()
        }
        return try result.get()
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty && state == .running {
                guard let due = sealDue else {
                    condition.wait()
                    continue
                }
                let now = ContinuousClock.now
                if due <= now { break }
                // At most 100 ms at a time: the wait's deadline is wall-clock time, which can jump.
                let wait = min(now.duration(to: due), .milliseconds(100))
                _ = condition.wait(until: Date(timeIntervalSinceNow: Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18))
            }
            let jobs = queue
            queue.removeAll(keepingCapacity: true)
            let stopping = state != .running
            // Due even while jobs keep coming (queued reads never seal).
            let sealNow = state == .running && sealDue.map { $0 <= .now } == true
            condition.unlock()
            if jobs.isEmpty && stopping { break }
            storeLock.lock()
            if !jobs.isEmpty { runGroup(jobs) }
            if sealNow { sealPendingNow() }
            storeLock.unlock()
        }
        storeLock.lock()
        // A dropped database's file is about to be deleted: nothing in it needs sealing or
        // writing back.
        if !isDropped.load(ordering: .acquiring) { store.transactionObserver?.willClose(store) }
        store.checkpoint()
        storeLock.unlock()
        condition.lock()
        state = .stopped
        condition.broadcast()
        condition.unlock()
    }

    /// The window of the oldest pending operations has passed and no write came to seal them:
    /// a transaction of its own does (under `storeLock`).
    private func sealPendingNow() {
        guard let commitLog, commitLog.hasPending else { return notePending() }
        do {
            try commitLog.sealInOwnTransaction(store)
            sealRetry = nil
        } catch {
            // They stay pending; the next write, a retry a second later, or the next open seals them.
            sealRetry = .now + .seconds(1)
        }
        store.finishJob()
        notePending()
    }

    /// Not before this does the timer try again after a seal failed (under `storeLock`).
    private var sealRetry: ContinuousClock.Instant?

    private func runGroup(_ jobs: [Job]) {
        let writes = jobs.filter(\.isWrite)
        if !writes.isEmpty {
            var completions: [(QueryError?) -> Void] = []
            do {
                try store.begin(durable: writes.contains(where: \.durable))
                for job in writes {
                    let isolation: Job.Isolation = writes.count == 1 ? .sole : job.protectsItsWrites ? .selfProtected : .savepoint
                    completions.append(job.execute(store, isolation))
                }
                // A sole write that failed has rolled the transaction back: nothing to commit.
                if store.isInWriteTransaction { try store.commit() }
                commits.wrappingAdd(1, ordering: .releasing)
                notePending()
                for completion in completions { completion(nil) }
            } catch {
                let error = error
                store.rollback()
                // Jobs that never ran (BEGIN failed) fail without running: a write body must
                // never run outside the group's transaction.
                for (index, job) in writes.enumerated() {
                    if index < completions.count { completions[index](error) } else { job.fail(error) }
                }
            }
        }
        for job in jobs where !job.isWrite { job.execute(store, nil)(nil) }
        store.finishJob()
    }

    /// Stops after the queued work; blocks until the thread has checkpointed and exited.
    func shutdown() {
        condition.lock()
        if state == .running { state = .stopping }
        condition.broadcast()
        while state != .stopped { condition.wait() }
        condition.unlock()
    }
}
