import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore

/// Compute jobs: a procedure run on a schedule by the node, as the identity that submitted it.
///
/// A job is a document of the space's `system.jobs`; each attempt leaves a result in
/// `system.job_results`, signed by the node that ran it. Both are ordinary documents of the
/// space (in its commits and archives). The node catalog keeps only when each job runs next,
/// so that a restarted node finds its jobs (see `JobScheduler`).
enum JobStore {
    static let jobs = "system.jobs"
    static let results = "system.job_results"
    /// Results kept per job (older ones are deleted as new ones come).
    static let resultsKeptPerJob = 50

    enum State: String {
        case scheduled, running, succeeded, failed, cancelled
    }

    /// A new job id: "j" and 20 base32 characters (100 random bits).
    static func newID() -> String { "j" + Base32.encode(SecureRandom.bytes(count: 13)).prefix(20).lowercased() }

    static func load(_ store: DatabaseStore, id: String) throws(QueryError) -> (rid: Int64, document: BSONDocument)? {
        guard let match = try store.matches(in: jobs, filter: try Filter(["_id": .string(id)]), limit: 1).first else { return nil }
        return (match.rid, match.document)
    }

    /// The newest results of a job, newest first.
    static func results(_ store: DatabaseStore, job: String, limit: Int) throws(QueryError) -> [BSONDocument] {
        try store.matches(in: results, filter: try Filter(["job": .string(job)]), sort: try SortSpecification(["finishedAt": .int32(-1)]), limit: limit)
            .map(\.document)
    }

    /// Replaces the job document (same `_id`).
    static func save(_ store: DatabaseStore, rid: Int64, old: BSONDocument, new: BSONDocument) throws(QueryError) {
        try store.replace(rid: rid, old: old, new: new, in: jobs)
    }

    /// Appends a result and trims the job's oldest beyond `resultsKeptPerJob`.
    static func append(_ store: DatabaseStore, result: BSONDocument, job: String) throws(QueryError) {
        try store.insert(result, into: results)
        let all = try store.matches(in: results, filter: try Filter(["job": .string(job)]), sort: try SortSpecification(["finishedAt": .int32(-1)]))
        for stale in all.dropFirst(resultsKeptPerJob) { try store.delete(rid: stale.rid, document: stale.document, from: results) }
    }

    /// The bytes a node signs for a job result: one field per line, so that anyone can rebuild
    /// and check them (docs/procedures.md shows how).
    static func signedText(
        space: SpaceID, job: String, run: Int64, attempt: Int64, ok: Bool, outputHash: [UInt8], fuelUsed: UInt64, codeHash: [UInt8],
        finishedAt: Int64, node: DID
    ) -> [UInt8] {
        Array(
            [
                "stratosdb-job-result-v1", space.string, job, "\(run)", "\(attempt)", ok ? "ok" : "failed", Hex.encode(outputHash),
                "\(fuelUsed)", Hex.encode(codeHash), "\(finishedAt)", node.string,
            ].joined(separator: "\n").utf8)
    }
}
