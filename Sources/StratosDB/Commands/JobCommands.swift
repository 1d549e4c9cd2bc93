import QueryEngine
import SpaceOwnership
import StratosCore
import StoredProcedures

/// Compute jobs (docs/procedures.md): `submitJob`, `jobStatus`, `listJobs`, `cancelJob`. A job
/// runs a procedure of the space on the node's scheduler (`JobScheduler`), as the identity that
/// submitted it, once or every interval, with retries; every attempt leaves a signed result.
enum JobCommands {
    static func register(into table: inout CommandTable) {
        table["submitJob"] = submitJob
        table["jobStatus"] = jobStatus
        table["listJobs"] = listJobs
        table["cancelJob"] = cancelJob
    }

    /// The shortest and longest interval of a recurring job.
    static let intervalMinimumMilliseconds: Int64 = 1_000
    static let intervalMaximumMilliseconds: Int64 = 366 * 86_400_000
    /// Retries a job may ask for.
    static let retriesMax: Int64 = 10

    /// `{submitJob: procedure, args?, schedule?: "once" | "every 1h", fuel?, retries?, retryDelayMS?, version?, redundancy?: 1 | 2}`.
    static func submitJob(_ context: CommandContext) async throws -> BSONDocument {
        let procedure = try ProcedureCommands.procedureName(context)
        let arguments = try context.document("args") ?? BSONDocument()
        var every: Int64?
        switch context.command["schedule"] {
        case nil, .null?, .string("once")?: break
        case .string(let text)? where text.hasPrefix("every "):
            guard let milliseconds = DurationParsing.milliseconds(String(text.dropFirst(6))),
                (intervalMinimumMilliseconds...intervalMaximumMilliseconds).contains(milliseconds)
            else {
                throw QueryError(.badValue, "schedule must be \"once\" or \"every <duration>\" from 1s to 366d (30s, 15m, 2h, 1d)")
            }
            every = milliseconds
        default: throw QueryError(.badValue, "schedule must be \"once\" or \"every <duration>\" (30s, 15m, 2h, 1d)")
        }
        let fuel = Int64(try ProcedureCommands.fuel(context))
        let retries = try context.integer("retries") ?? 2
        guard (0...retriesMax).contains(retries) else { throw QueryError(.badValue, "retries must be between 0 and \(retriesMax)") }
        let retryDelay = try context.integer("retryDelayMS") ?? 5_000
        guard (0...86_400_000).contains(retryDelay) else { throw QueryError(.badValue, "retryDelayMS must be between 0 and 86400000") }
        let version = try context.integer("version")
        let redundancy = try context.integer("redundancy") ?? 1
        guard redundancy == 1 || redundancy == 2 else {
            throw QueryError(.badValue, "redundancy must be 1 (this node runs the job) or 2 (a second node re-runs each attempt)")
        }
        guard let executor = try context.executor(create: false), let space = context.space, let principal = context.principal else {
            throw QueryError(.procedureNotFound, "no procedure '\(procedure)' in this space")
        }
        let now = context.nowMilliseconds
        let id = JobStore.newID()
        var job: BSONDocument = [
            "_id": .string(id), "procedure": .string(procedure), "args": .document(arguments), "fuel": .int64(fuel),
            "schedule": .string(every == nil ? "once" : "every \(every! / 1000)s"),
        ]
        if let every { job["everyMS"] = .int64(every) }
        if let version { job["version"] = .int64(version) }
        job["redundancy"] = .int64(redundancy)
        job["retries"] = .int64(retries)
        job["retryDelayMS"] = .int64(retryDelay)
        job["state"] = .string(JobStore.State.scheduled.rawValue)
        job["runs"] = .int64(0)
        job["attempts"] = .int64(0)
        job["submittedBy"] = .string(principal.did.string)
        job["submittedAt"] = .datetime(now)
        job["nextRunAt"] = .datetime(now)
        job["slotAt"] = .datetime(now)
        let document = job
        // Indexed first: a crash after the insert must not leave a job that never runs (an entry
        // whose job was never written is dropped when it comes due).
        try context.server.catalog.scheduleJob(space: space.id, job: id, nextRunMilliseconds: now)
        try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) in
            guard try ProcedureStore.load(store, name: procedure, version: version.map { Int($0) }) != nil else {
                throw QueryError(.procedureNotFound, "no procedure '\(procedure)' in this space")
            }
            try store.insert(document, into: JobStore.jobs)
        }
        return ["jobId": .string(id), "nextRunAt": .datetime(now)]
    }

    private static func jobID(_ context: CommandContext) throws(QueryError) -> String {
        guard case .string(let id) = context.firstValue, id.utf8.count <= 64 else {
            throw QueryError(.badValue, "\(context.name) takes a job id (as submitJob returned it)")
        }
        return id
    }

    /// Jobs carry their arguments and results (computed with the submitter's rights): the
    /// submitter and the space's owner see a job; anyone else with execute sees only their own.
    private static func mayView(_ job: BSONDocument, _ context: CommandContext) -> Bool {
        guard let principal = context.principal else { return false }
        return context.space?.owner == principal.did || job["submittedBy"] == .string(principal.did.string)
    }

    /// `{jobStatus: id, results?: n}` → the job and its newest results (default 10).
    static func jobStatus(_ context: CommandContext) async throws -> BSONDocument {
        let id = try jobID(context)
        let count = Int(clamping: try context.integer("results") ?? 10)
        guard (0...JobStore.resultsKeptPerJob).contains(count) else {
            throw QueryError(.badValue, "results must be between 0 and \(JobStore.resultsKeptPerJob)")
        }
        guard let executor = try context.executor(create: false) else { throw notFound(id) }
        let found = try await executor.read { store throws(QueryError) -> (BSONDocument, [BSONDocument])? in
            guard let job = try JobStore.load(store, id: id)?.document else { return nil }
            return (job, try JobStore.results(store, job: id, limit: count))
        }
        guard let (job, results) = found, mayView(job, context) else { throw notFound(id) }
        return ["job": .document(job), "results": .array(results.map { .document($0) })]
    }

    /// `{listJobs: 1, filter?}` → a cursor over the space's jobs (the owner's view: all of them;
    /// anyone else's: the jobs they submitted).
    static func listJobs(_ context: CommandContext) async throws -> BSONDocument {
        let filter = try Filter(try context.document("filter") ?? BSONDocument())
        var jobs: [BSONDocument] = []
        if let executor = try context.executor(create: false) {
            jobs = try await executor.read { store throws(QueryError) in
                try store.matches(in: JobStore.jobs, filter: filter, sort: try SortSpecification(["submittedAt": .int32(1)])).map(\.document)
            }
            jobs = jobs.filter { mayView($0, context) }
        }
        return try await ReadCommands.cursorReply(context, namespace: "\(context.database).system.jobs", documents: jobs)
    }

    /// `{cancelJob: id}`: no further attempts (one running now finishes). The submitter and the
    /// space's owner may cancel.
    static func cancelJob(_ context: CommandContext) async throws -> BSONDocument {
        let id = try jobID(context)
        guard let executor = try context.executor(create: false), let space = context.space else { throw notFound(id) }
        let previous = try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) -> String in
            guard let (rid, job) = try JobStore.load(store, id: id), mayView(job, context) else {
                throw notFound(id)
            }
            guard case .string(let state)? = job["state"], state == JobStore.State.scheduled.rawValue else {
                if case .string(let state)? = job["state"] { return state }
                return "unknown"
            }
            var cancelled = job
            cancelled["state"] = .string(JobStore.State.cancelled.rawValue)
            cancelled["nextRunAt"] = .null
            try JobStore.save(store, rid: rid, old: job, new: cancelled)
            return state
        }
        try context.server.catalog.unscheduleJob(space: space.id, job: id)
        return ["jobId": .string(id), "previousState": .string(previous), "state": .string(previous == "scheduled" ? "cancelled" : previous)]
    }

    private static func notFound(_ id: String) -> QueryError { QueryError(.jobNotFound, "no job '\(id)' in this space") }
}

/// Durations as `30s`, `15m`, `2h`, `1d` (and `500ms`), for commands and the CLI alike.
public enum DurationParsing {
    /// The duration in milliseconds; nil unless it is a positive number and a unit.
    public static func milliseconds(_ text: String) -> Int64? {
        // "ms" is tried before "s", so "500ms" is never read as "500m" + "s".
        let units: [(String, Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Int64(text.dropLast(suffix.count)), value > 0, value <= Int64.max / scale else { return nil }
            return value * scale
        }
        return nil
    }
}
