import Synchronization

/// Admission to the heavy-read threads, fair between databases (spaces).
///
/// Reads that may examine many documents (collection scans, in-memory sorts, aggregations) run
/// on a small pool so they never stall the event loops, where point reads, writes and the
/// handshake run. This gate in front of the pool keeps one space's runaway queries from
/// taking every heavy thread from the others: when a thread frees up, the next query comes
/// from the space running the fewest, round-robin among spaces with queries waiting. It is work
/// conserving: one space alone still uses every thread. (A connection's requests run one at a
/// time already, so a connection never holds more than one.)
final class HeavyReadScheduler: Sendable {
    private struct State {
        var running = 0
        var runningByDatabase: [String: Int] = [:]
        var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]
        /// Databases with waiters, in round-robin order.
        var turn: [String] = []
    }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    /// Waits for a heavy thread for `database`; call `release` when done.
    func acquire(_ database: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = state.withLock { state -> Bool in
                if state.running < capacity && state.turn.isEmpty {
                    state.running += 1
                    state.runningByDatabase[database, default: 0] += 1
                    return true
                }
                if state.waiting[database] == nil { state.turn.append(database) }
                state.waiting[database, default: []].append(continuation)
                return false
            }
            if admitted { continuation.resume() }
        }
    }

    func release(_ database: String) {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
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
            let continuation = queue.removeFirst()
            if queue.isEmpty {
                state.waiting[database] = nil
            } else {
                state.waiting[database] = queue
                state.turn.append(database)  // to the back of the line
            }
            state.running += 1
            state.runningByDatabase[database, default: 0] += 1
            return continuation
        }
        next?.resume()
    }

    /// Queries waiting for a heavy thread (for serverStatus).
    var waitingCount: Int { state.withLock { $0.waiting.values.reduce(0) { $0 + $1.count } } }
}
