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
    /// When counting began (`accesses.since` of every index).
    static let since = Int64(Date().timeIntervalSince1970 * 1000)
    private static let hostName = Mutex<String>(ProcessInfo.processInfo.hostName)

    /// `host` of each `$indexStats` result: the node's host name and port (the server sets it when
    /// it starts listening).
    public static var host: String {
        get { hostName.withLock { $0 } }
        set { hostName.withLock { $0 = newValue } }
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
