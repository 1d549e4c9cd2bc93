import Foundation
import Logging
import QueryEngine
import StratosCore
import Synchronization

/// Deletes the documents of TTL indexes (`expireAfterSeconds`) whose indexed date is older than
/// their lifetime, as MongoDB's TTL monitor does: one pass every `ttlMonitorSleepSecs` (60 s by
/// default; `serve --ttl-monitor-sleep-secs`).
///
/// A pass visits the databases the node catalog notes as possibly holding TTL indexes
/// (`ttl_databases`: noted by `createIndexes` and by imports), reads their current indexes (so
/// dropped or renamed collections need no bookkeeping), and deletes expired documents in
/// batches of 1,000, each batch one write transaction: in a space, one signed commit by this
/// node. A document whose field is not a date, or an array without one, never expires, as in
/// MongoDB. Expired documents may stay visible until the next pass.
struct TTLMonitor: Sendable {
    let server: ServerState

    static let batchSize = 1_000
    /// Batches per index and pass: a backlog bigger than this waits for the next pass, so one
    /// collection cannot hold its space's writer for long.
    static let batchesPerPass = 50

    func run() async {
        let interval = max(1, server.configuration.ttlMonitorSleepSeconds)
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(interval))
            guard !Task.isCancelled else { return }
            await pass()
        }
    }

    /// One pass over every noted database.
    func pass() async {
        server.ttlPasses.wrappingAdd(1, ordering: .relaxed)
        for database in server.catalog.ttlDatabases() where !Task.isCancelled {
            do {
                guard let executor = try server.storage.executor(database, create: false) else {
                    server.catalog.forgetTTLDatabase(database)
                    continue
                }
                let indexes = try await executor.read { store throws(QueryError) -> [(String, FieldPath, Int64)] in
                    store.collectionDescriptors.flatMap { collection in
                        collection.indexes.compactMap { index in index.timeToLive.map { (collection.name, $0.path, $0.seconds) } }
                    }
                }
                if indexes.isEmpty {
                    server.catalog.forgetTTLDatabase(database)
                    continue
                }
                for (collection, path, seconds) in indexes {
                    let cutoff = server.clock.nowMilliseconds() - seconds * 1000
                    let filter = Filter.field(path, [.lessThan(.datetime(cutoff))])
                    for _ in 0..<Self.batchesPerPass {
                        let removed = try await executor.write(durable: false) { store throws(QueryError) -> Int in
                            let expired = try store.matches(in: collection, filter: filter, limit: Self.batchSize)
                            for match in expired { try store.delete(rid: match.rid, document: match.document, from: collection) }
                            return expired.count
                        }
                        server.ttlDeletedDocuments.wrappingAdd(Int64(removed), ordering: .relaxed)
                        if removed < Self.batchSize { break }
                    }
                }
            } catch {
                // A space being dropped, a damaged space: it is reported where it is used; try again next pass.
                server.logger.debug("TTL monitor skipped a database", metadata: ["stratos_error": "\(error.message)"])
            }
        }
    }
}
