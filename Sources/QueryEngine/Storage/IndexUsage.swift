import Foundation
import Synchronization

/// How many operations used each index since this process started, for `$indexStats`
/// (MongoDB's `accesses.ops` and `accesses.since`). Kept in memory for the whole process, as
/// mongod keeps them: a restart starts the counts again.
public enum IndexUsage {
    struct Key: Hashable {
        let database: String
        let collection: String
        let index: String
    }

    private static let counts = Mutex<[Key: Int64]>([:])
    private static let origin = Mutex<(host: String, since: Int64)>(
        (ProcessInfo.processInfo.hostName, Int64(Date().timeIntervalSince1970 * 1000)))

    /// Starts counting now, for a node reachable at `host` (its host name and port).
    public static func start(host: String, nowMilliseconds: Int64) {
        origin.withLock { $0 = (host, nowMilliseconds) }
    }

    /// `host` of each `$indexStats` result.
    static var host: String { origin.withLock { $0.host } }
    /// When counting began (`accesses.since`).
    static var since: Int64 { origin.withLock { $0.since } }

    /// Forgets the counts of an index, or of every index of a collection (`index` nil), when it
    /// is dropped: one created again under the same name starts from zero, as in MongoDB.
    static func forget(database: String, collection: String, index: String? = nil) {
        counts.withLock { counts in
            counts = counts.filter { key, _ in
                !(key.database == database && key.collection == collection && (index == nil || key.index == index))
            }
        }
    }

    /// Counts one operation that read `index` of `collection`.
    static func record(database: String, collection: String, index: String) {
        let key = Key(database: database, collection: collection, index: index)
        counts.withLock { $0[key, default: 0] += 1 }
    }

    /// Operations that read `index` so far.
    static func operations(database: String, collection: String, index: String) -> Int64 {
        counts.withLock { $0[Key(database: database, collection: collection, index: index)] ?? 0 }
    }
}
