import QueryEngine
import Synchronization

/// Admission to the heavy-read threads, fair between databases (spaces).
///
/// Reads that may examine many documents (collection scans, in-memory sorts, aggregations) run
/// on a small pool so they never stall the event loops, where point reads, writes and the
/// handshake run. This gate in front of the pool keeps one space's runaway queries from
/// taking every heavy thread from the others: when a thread frees up, the next query comes
/// from the space running the fewest, round-robin among spaces with queries waiting. It is work
/// conserving: one space alone still uses every thread. (A connection's requests run one at a
/// time already, so a connection never holds more than one.) A query waiting here leaves the
/// queue when its deadline passes or it is killed.
final class HeavyReadScheduler: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var running = 0
        var runningByDatabase: [String: Int] = [:]
        var waiting: [String: [Waiter]] = [:]
        /// Databases with waiters, in round-robin order.
        var turn: [String] = []
        var nextID: UInt64 = 0
    }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    /// Waits for a heavy thread for `database`; call `release` when done. Throws when the
    /// operation's deadline passes or it is cancelled while it waits.
    func acquire(_ database: String, operation: OperationContext?) async throws(QueryError) {
        let admitted = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let queued = state.withLock { state -> UInt64? in
                if state.running < capacity && state.turn.isEmpty {
                    state.running += 1
                    state.runningByDatabase[database, default: 0] += 1
                    return nil
                }
                state.nextID += 1
                if state.waiting[database] == nil { state.turn.append(database) }
                state.waiting[database, default: []].append(Waiter(id: state.nextID, continuation: continuation))
                return state.nextID
            }
            guard let queued else {
                continuation.resume(returning: true)
                return
            }
            guard let operation else { return }
            // Watch the waiting operation: its deadline or a kill takes it out of the queue.
            Task.detached {
                while true {
                    try? await Task.sleep(for: .milliseconds(20))
                    guard self.isWaiting(queued) else { return }
                    if (try? operation.check()) == nil {
                        if let waiter = self.removeWaiter(queued) { waiter.continuation.resume(returning: false) }
                        return
                    }
                }
            }
        }
        if !admitted {
            try operation?.check()
            throw QueryError(.interrupted, "operation was interrupted while waiting for a heavy-read thread")
        }
    }

    private func isWaiting(_ id: UInt64) -> Bool {
        state.withLock { state in state.waiting.values.contains { $0.contains { $0.id == id } } }
    }

    private func removeWaiter(_ id: UInt64) -> Waiter? {
        state.withLock { state -> Waiter? in
            for (database, queue) in state.waiting {
                guard let index = queue.firstIndex(where: { $0.id == id }) else { continue }
                var remaining = queue
                let waiter = remaining.remove(at: index)
                if remaining.isEmpty {
                    state.waiting[database] = nil
                    state.turn.removeAll { $0 == database }
                } else {
                    state.waiting[database] = remaining
                }
                return waiter
            }
            return nil
        }
    }

    func release(_ database: String) {
        let next = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.running -= 1
            state.runningByDatabase[database, default: 1] -= 1
            if state.runningByDatabase[database] == 0 { state.runningByDatabase[database] = nil }
            guard !state.turn.isEmpty else { return nil }
            // The waiting database running the fewest heavy reads; ties go in turn order.
            var chosen = 0
            for (index, candidate) in state.turn.enumerated()
            where state.runningByDatabase[candidate, default: 0] < state.runningByDatabase[state.turn[chosen], default: 0] {
                chosen = index
            }
            let database = state.turn.remove(at: chosen)
            var queue = state.waiting[database] ?? []
            let waiter = queue.removeFirst()
            if queue.isEmpty {
                state.waiting[database] = nil
            } else {
                state.waiting[database] = queue
                state.turn.append(database)  // to the back of the line
            }
            state.running += 1
            state.runningByDatabase[database, default: 0] += 1
            return waiter.continuation
        }
        next?.resume(returning: true)
    }

    /// Queries waiting for a heavy thread (for serverStatus).
    var waitingCount: Int { state.withLock { $0.waiting.values.reduce(0) { $0 + $1.count } } }
}
