import Foundation
import QueryEngine

/// Per-thread read-only connections, one per open database.
///
/// A SQLite connection must be used by one thread at a time; keeping one per thread per
/// database satisfies that without locks. Entries are keyed by the executor's identity, so a
/// dropped and re-created database never reuses a connection to the deleted file.
enum ThreadReaders {
    private final class Cache {
        var readers: [String: (executor: ObjectIdentifier, store: DatabaseStore)] = [:]
    }

    private static let key = "stratosdb.readers"

    /// `STRATOSDB_INLINE_READS=0` sends reads through the executor instead (for A/B measurements).
    static let isEnabled = ProcessInfo.processInfo.environment["STRATOSDB_INLINE_READS"] != "0"

    static func reader(for executor: DatabaseExecutor) -> DatabaseStore? {
        let dictionary = Thread.current.threadDictionary
        let cache: Cache
        if let existing = dictionary[key] as? Cache {
            cache = existing
        } else {
            cache = Cache()
            dictionary[key] = cache
        }
        let identity = ObjectIdentifier(executor)
        if let entry = cache.readers[executor.name], entry.executor == identity { return entry.store }
        guard cache.readers.count < 64 || cache.readers[executor.name] != nil else { return nil }
        guard let store = try? DatabaseStore(name: executor.name, path: executor.path, readOnly: true) else { return nil }
        cache.readers[executor.name] = (identity, store)
        return store
    }
}
