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
    /// pending; with the node running, waits (up to `timeout`) until the node has sealed every
    /// operation pending now, which it does within its commit window (at most a second).
    static func settle(node: NodeFiles, space: SpaceID, key: [UInt8], timeout: TimeInterval = 10) throws {
        if let lock = NodeLock(dataDirectory: node.dataDirectory) {
            defer { withExtendedLifetime(lock) {} }
            try sealLeftPending(node: node, space: space, key: key)
            return
        }
        let connection = try node.openSpaceFile(space, key: key)
        guard let newest = newestID(connection) else { return }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.005)
            guard let oldest = oldestID(connection), oldest <= newest else { return }
        }
        throw QueryError(
            .location(7_100_014),
            "the running node did not seal space \(space)'s newest writes into a signed commit within \(Int(timeout)) s; try again")
    }

    private static func oldestID(_ connection: SQLiteConnection) -> Int64? {
        guard let select = try? connection.statement("SELECT min(id) FROM stratos_pending") else { return nil }
        defer { select.reset() }
        guard (try? select.step()) == true, !select.isNull(0) else { return nil }
        return select.int64(0)
    }
}
