import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import Synchronization

/// What the node remembers about the contents of its spaces, outside them: how far a dropped
/// space's history reached (for the ledger's rollback check), when each scheduled job is due
/// (so a restarted node finds its jobs without opening every space), and which databases may
/// hold TTL indexes (so the TTL monitor opens only those).
extension NodeCatalog {
    // MARK: - Dropped spaces

    /// Records the last commit a space had when its owner dropped it (the highest, over every
    /// drop). The chain keeps anchoring that history for a block or two after the drop; those
    /// anchors must not be taken for a rollback of the space written again under the same id.
    func recordDrop(space: SpaceID, lastSeq: UInt64) throws(QueryError) {
        try state.withLock { state throws(QueryError) in
            let upsert = try state.connection.statement("""
                INSERT INTO dropped_spaces(space, seq) VALUES (?1, ?2)
                ON CONFLICT(space) DO UPDATE SET seq = max(seq, excluded.seq)
                """)
            upsert.bind(1, space.string)
            upsert.bind(2, Int64(clamping: lastSeq))
            try upsert.run()
        }
    }

    /// The highest commit seq any dropped incarnation of the space reached.
    func droppedThrough(space: SpaceID) -> UInt64? {
        try? state.withLock { state throws(QueryError) -> UInt64? in
            let select = try state.connection.statement("SELECT seq FROM dropped_spaces WHERE space = ?1")
            select.bind(1, space.string)
            defer { select.reset() }
            guard try select.step() else { return nil }
            return UInt64(select.int64(0))
        }
    }

    // MARK: - Scheduled jobs

    /// Records when a space's job runs next (the scheduler's index; the job itself is a document
    /// of the space's `system.jobs`), so a restarted node finds its jobs without opening every space.
    func scheduleJob(space: SpaceID, job: String, nextRunMilliseconds: Int64) throws(QueryError) {
        try state.withLock { state throws(QueryError) in
            let upsert = try state.connection.statement("INSERT OR REPLACE INTO scheduled_jobs(space, job, next_run) VALUES (?1, ?2, ?3)")
            upsert.bind(1, space.string)
            upsert.bind(2, job)
            upsert.bind(3, nextRunMilliseconds)
            try upsert.run()
        }
    }

    /// Forgets a job (finished, cancelled or gone).
    func unscheduleJob(space: SpaceID, job: String) throws(QueryError) {
        try state.withLock { state throws(QueryError) in
            let delete = try state.connection.statement("DELETE FROM scheduled_jobs WHERE space = ?1 AND job = ?2")
            delete.bind(1, space.string)
            delete.bind(2, job)
            try delete.run()
        }
    }

    /// Jobs due at `nowMilliseconds`, soonest first, and when the next one after them is due.
    func dueJobs(nowMilliseconds: Int64, limit: Int) throws(QueryError) -> (due: [(space: SpaceID, job: String)], next: Int64?) {
        try state.withLock { state throws(QueryError) in
            let select = try state.connection.statement("SELECT space, job, next_run FROM scheduled_jobs ORDER BY next_run LIMIT ?1")
            select.bind(1, Int64(limit + 1))
            defer { select.reset() }
            var due: [(space: SpaceID, job: String)] = []
            var next: Int64?
            while try select.step() {
                let at = select.int64(2)
                guard at <= nowMilliseconds, due.count < limit else {
                    next = at
                    break
                }
                if let space = SpaceID(select.text(0)) { due.append((space, select.text(1))) }
            }
            return (due, next)
        }
    }

    // MARK: - TTL indexes

    /// Notes that `database` may hold a TTL index (a `createIndexes` with `expireAfterSeconds`,
    /// or an imported space). The TTL monitor forgets it once it finds none there.
    func noteTTLDatabase(_ database: String) throws(QueryError) {
        try state.withLock { state throws(QueryError) in
            let insert = try state.connection.statement("INSERT OR IGNORE INTO ttl_databases(name) VALUES (?1)")
            insert.bind(1, database)
            try insert.run()
        }
    }

    func forgetTTLDatabase(_ database: String) {
        try? state.withLock { state throws(QueryError) in
            let delete = try state.connection.statement("DELETE FROM ttl_databases WHERE name = ?1")
            delete.bind(1, database)
            try delete.run()
        }
    }

    /// The databases that may hold TTL indexes.
    func ttlDatabases() -> [String] {
        (try? state.withLock { state throws(QueryError) -> [String] in
            let select = try state.connection.statement("SELECT name FROM ttl_databases ORDER BY name")
            defer { select.reset() }
            var names: [String] = []
            while try select.step() { names.append(select.text(0)) }
            return names
        }) ?? []
    }
}
