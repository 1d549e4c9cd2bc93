import QueryEngine
import StratosCore
import Synchronization

/// The logical sessions this node has seen (the `lsid` drivers send with each command), for
/// `$listLocalSessions` and `endSessions`: each session's id, who used it, and when. Kept in
/// memory and bounded, as mongod's local session cache is: a session idle for 30 minutes (the
/// drivers' session timeout) is forgotten, and at most `countMax` are kept.
final class LogicalSessions: Sendable {
    struct Entry: Sendable {
        var lastUseMilliseconds: Int64
        /// The principal's user name (SCRAM) or DID (tokens), as `$listLocalSessions` shows it.
        let user: String
        /// The principal's DID, so each principal lists only its own sessions.
        let did: String?
    }

    static let countMax = 10_000
    static let idleMilliseconds: Int64 = 30 * 60 * 1000

    private let sessions = Mutex<[[UInt8]: Entry]>([:])

    /// Records a command of session `id` (a UUID's 16 bytes).
    func touch(id: [UInt8], user: String, did: String?, nowMilliseconds: Int64) {
        sessions.withLock { sessions in
            if sessions[id] != nil {
                sessions[id]?.lastUseMilliseconds = nowMilliseconds
                return
            }
            if sessions.count >= Self.countMax {
                // Full: idle sessions go, then the oldest until a tenth is free, so this pass runs
                // at most once per thousand new sessions however many a client sends.
                sessions = sessions.filter { nowMilliseconds - $0.value.lastUseMilliseconds < Self.idleMilliseconds }
                let target = Self.countMax - Self.countMax / 10
                if sessions.count > target {
                    let oldest = sessions.sorted { $0.value.lastUseMilliseconds < $1.value.lastUseMilliseconds }.prefix(sessions.count - target)
                    for (key, _) in oldest { sessions[key] = nil }
                }
            }
            sessions[id] = Entry(lastUseMilliseconds: nowMilliseconds, user: user, did: did)
        }
    }

    /// Forgets sessions the driver ended (`endSessions`).
    func end(ids: [[UInt8]]) {
        sessions.withLock { sessions in for id in ids { sessions[id] = nil } }
    }

    /// The sessions used in the last 30 minutes, most recent first.
    func list(nowMilliseconds: Int64) -> [(id: [UInt8], entry: Entry)] {
        sessions.withLock { sessions in
            sessions.filter { nowMilliseconds - $0.value.lastUseMilliseconds < Self.idleMilliseconds }
                .map { (id: $0.key, entry: $0.value) }
                .sorted { $0.entry.lastUseMilliseconds > $1.entry.lastUseMilliseconds }
        }
    }

    /// `$listLocalSessions`'s document for a session: `_id` holds the id and `uid` (the SHA-256 of
    /// the user name, as mongod derives it), then `lastUse` and `user`.
    static func document(_ id: [UInt8], _ entry: Entry) -> BSONDocument {
        [
            "_id": .document([
                "id": .binary(BSONBinary(subtype: 4, data: id)),
                "uid": .binary(BSONBinary(subtype: 0, data: Hash256.sha256(Array(entry.user.utf8)).bytes)),
            ]),
            "lastUse": .datetime(entry.lastUseMilliseconds),
            "user": .document(["name": .string(entry.user)]),
        ]
    }
}
