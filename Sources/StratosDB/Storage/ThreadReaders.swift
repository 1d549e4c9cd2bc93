import Foundation
import QueryEngine

/// Per-thread read-only connections, one per open database.
///
/// A SQLite connection must be used by one thread at a time; keeping one per thread per
/// database satisfies that without locks. Entries are keyed by the executor's identity, so a
/// dropped and re-created database never reuses a connection to the deleted file. The cache is
/// found through a pthread key (Foundation's `threadDictionary` cost about 3% of a point read).
enum ThreadReaders {
    private final class Cache {
        var readers: [String: (generation: UInt64, store: DatabaseStore)] = [:]
    }

    /// `STRATOSDB_INLINE_READS=0` sends reads through the executor instead (for A/B measurements).
    static let isEnabled = ProcessInfo.processInfo.environment["STRATOSDB_INLINE_READS"] != "0"

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // The destructor releases a thread's cache (and closes its connections) when it exits.
        let status = pthread_key_create(&key) { pointer in
            guard let pointer else { return }
            Unmanaged<AnyObject>.fromOpaque(pointer).release()
        }
        precondition(status == 0, "pthread_key_create failed")
        return key
    }()

    private static func cache() -> Cache {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<Cache>.fromOpaque(pointer).takeUnretainedValue()
        }
        let cache = Cache()
        pthread_setspecific(key, Unmanaged.passRetained(cache).toOpaque())
        return cache
    }

    static func reader(for executor: DatabaseExecutor) -> DatabaseStore? {
        let cache = cache()
        // By generation, not object address: a recreated database's executor may live at the
        // address of the dropped one, and must never read through a connection to the old file.
        let identity = executor.generation
        if let entry = cache.readers[executor.name], entry.generation == identity { return entry.store }
        cache.readers[executor.name] = nil  // closes a connection to a dropped file at once
        // Bound the open connections per thread: past 64 databases, close one to make room.
        if cache.readers.count >= 64 && cache.readers[executor.name] == nil, let victim = cache.readers.keys.first {
            cache.readers[victim] = nil
        }
        guard let store = try? DatabaseStore(name: executor.name, path: executor.path, readOnly: true) else { return nil }
        cache.readers[executor.name] = (identity, store)
        return store
    }
}
