import CStratosVFS
import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore

/// A node holds a space's newest write transactions as pending operations for up to its commit
/// window before it seals them into a signed commit (`CommitLog`). Whatever reads a space's
/// commits from its file, outside the node, first makes them cover every acknowledged write.
enum PendingWrites {
    /// The newest pending operation's id in the space's file; nil when none wait (or the file
    /// predates pending operations).
    static func newestID(_ connection: SQLiteConnection) -> Int64? {
        guard let select = try? connection.statement("SELECT max(id) FROM stratos_pending") else { return nil }
        defer { select.reset() }
        guard (try? select.step()) == true, !select.isNull(0) else { return nil }
        return select.int64(0)
    }

    /// Seals what a stopped node left pending, as the node does when it opens the space. The
    /// caller makes sure no node is running on the directory.
    static func sealLeftPending(node: NodeFiles, space: SpaceID, key: [UInt8]) throws {
        let waiting = newestID(try node.openSpaceFile(space, key: key)) != nil
        guard waiting else { return }
        stratos_vfs_set_key("\(space).sqlite", key)
        // Opening the space's commit log seals them; closing writes the state map back, as the
        // node's executor does.
        let store = try DatabaseStore(name: space.string, path: node.spacePath(space), reservedBytesPerPage: Int32(stratos_vfs_reserved_bytes()))
        let log = try CommitLog(store: store, space: space, signer: node.nodeKey, clock: SystemWallClock())
        log.willClose(store)
        store.checkpoint()
    }

    /// Before reading `space`'s commits from its file: with the node stopped, seals what it left
    /// pending; with the node running, waits (up to `timeout`) until the node has made a commit
    /// after the operations pending now (every seal takes everything pending), which it does
    /// within two commit windows, or at once when asked over the wire (`stratosdb space export`
    /// asks first). A space the running node has not opened since a crash seals when it opens.
    static func settle(node: NodeFiles, space: SpaceID, key: [UInt8], timeout: TimeInterval = 10) throws {
        if let lock = NodeLock(dataDirectory: node.dataDirectory) {
            defer { withExtendedLifetime(lock) {} }
            try sealLeftPending(node: node, space: space, key: key)
            return
        }
        let connection = try node.openSpaceFile(space, key: key)
        let unreadable = QueryError(.location(7_100_001), "space \(space)'s commit log cannot be read")
        guard let start = snapshot(connection) else { throw unreadable }
        guard start.pending else { return }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.005)
            guard let now = snapshot(connection) else { throw unreadable }
            guard now.pending, now.headSeq == start.headSeq else { return }
        }
        throw QueryError(
            .location(7_100_014),
            "space \(space) has writes the running node has not sealed into a signed commit within \(Int(timeout)) s (it seals them when it next opens the space); try again")
    }

    /// The head seq and whether operations are pending, read in one transaction.
    private static func snapshot(_ connection: SQLiteConnection) -> (headSeq: Int64, pending: Bool)? {
        guard (try? connection.execute("BEGIN")) != nil else { return nil }
        defer { try? connection.execute("COMMIT") }
        guard let head = try? connection.statement("SELECT coalesce(max(seq), 0) FROM stratos_commits") else { return nil }
        defer { head.reset() }
        guard (try? head.step()) == true else { return nil }
        let seq = head.int64(0)
        return (seq, newestID(connection) != nil)
    }
}
