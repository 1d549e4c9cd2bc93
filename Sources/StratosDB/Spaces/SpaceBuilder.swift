import CStratosVFS
import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore

/// Builds a space's file by replaying commits: the documents, indexes and state map, and the
/// original signed commits themselves, checking each commit's state root on the way.
final class SpaceBuilder {
    private let store: DatabaseStore
    private let state: SQLiteSpaceStateStorage
    private let space: SpaceID
    private var pending = 0
    private var pendingOperations = 0
    private var previous: (seq: UInt64, hash: [UInt8]) = (0, [UInt8](repeating: 0, count: 32))
    /// The keys that controlled an imported space (nil: rebuilding this node's own history).
    private let controllers: Set<DID>?
    private let path: String
    /// State-map branches kept in memory while building (about 2 KB each), and how many may wait
    /// to be written: with the branches one transaction touches (at most 50,000 operations), a
    /// build peaks at a few hundred MB of branches however large the space.
    static let cachedBranchesMax = 65_536
    static let unflushedBranchesMax = 30_000

    init(node: NodeFiles, space: SpaceID, path: String, key: [UInt8], controllers: Set<DID>? = nil) throws {
        self.controllers = controllers
        self.path = path
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        stratos_vfs_set_key((path as NSString).lastPathComponent, key)
        self.space = space
        store = try DatabaseStore(name: space.string, path: path, reservedBytesPerPage: Int32(stratos_vfs_reserved_bytes()), bulkLoad: true)
        try store.sqlite.execute(SQLiteSpaceStateStorage.schema + CommitLog.schema + GrantLog.schema)
        // A bulk load into a file nobody sees until `finish` (`bulkLoad`: the rollback journal in
        // memory, so each page is written and sealed once, and no sync per transaction), with a
        // large cache; `finish` turns the write-ahead log on and syncs the file before it is moved
        // into place. A build that fails is deleted, never recovered.
        try store.sqlite.execute("PRAGMA cache_size=-131072;")
        // A bulk load touches every branch again and again: keep up to 64 K of them (~128 MB)
        // instead of re-reading them from the file after each transaction.
        state = SQLiteSpaceStateStorage(connection: store.sqlite, cachedBranchesMax: Self.cachedBranchesMax)
    }

    /// Replays one commit whose operations and documents were decoded ahead; returns its
    /// operations.
    @discardableResult
    func append(_ prepared: PreparedCommit) throws -> [CommitOperation] {
        let commit = prepared.commit
        guard commit.commit.space == space, commit.commit.seq == previous.seq + 1, commit.commit.prevHash == previous.hash else {
            throw QueryError(.location(7_100_004), "the commit chain is broken at seq \(commit.commit.seq)")
        }
        if pending == 0 { try store.begin() }
        let operations = prepared.operations
        for (position, operation) in operations.enumerated() {
            if let change = StorageChange(operation) { try store.replay(change, decoded: prepared.documents[position]) }
            try GrantLog.apply(operation, store.sqlite, space: space, controllers: controllers)
        }
        let root = try SpaceState(storage: state).apply(
            operations, isFirstCommit: commit.commit.seq == 1, documentValues: prepared.documentValues)
        // Branches are written back once per transaction (sooner on a structural change or when
        // the cache is nearly full), as the node's commit log does: a branch near the root
        // changes with every commit, and writing it each time was most of an import's cost. (The
        // node's bound, 4,096 waiting branches, made a large space flush after every commit.)
        if state.structureChanged || state.unflushedCount >= Self.unflushedBranchesMax { try state.flush() }
        guard root == commit.commit.stateRoot else {
            throw QueryError(.location(7_100_003), "replaying commit \(commit.commit.seq) does not reach its state root")
        }
        previous = (commit.commit.seq, try CommitLog.insert(commit, payload: prepared.payload, into: store.sqlite))
        pending += 1
        pendingOperations += operations.count
        // Many commits per transaction: rebuilding is a bulk load.
        if pending >= 512 || pendingOperations >= 50_000 { try flushTransaction() }
        return operations
    }

    /// Commits what is pending and moves everything from the write-ahead log into the file, so
    /// the file alone holds the space once this builder is released (and can be renamed).
    func finish() throws {
        try flushTransaction()
        store.finishJob()
        try store.sqlite.execute("PRAGMA synchronous=FULL")
        // Built without a journal on disk (`bulkLoad`): the node runs every space in WAL mode.
        let journal = try store.sqlite.statement("PRAGMA journal_mode=WAL")
        let mode = try journal.step() ? journal.text(0) : ""
        journal.reset()  // A statement left open would block the checkpoint below.
        guard mode == "wal" else {
            throw QueryError(.internalError, "cannot turn the rebuilt space's write-ahead log on")
        }
        let checkpoint = try store.sqlite.statement("PRAGMA wal_checkpoint(TRUNCATE)")
        defer { checkpoint.reset() }
        guard try checkpoint.step(), checkpoint.int64(0) == 0 else {
            throw QueryError(.internalError, "cannot checkpoint the rebuilt space")
        }
        // Written without syncs: make the whole file durable before anyone moves it into place.
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0, fsync(descriptor) == 0 else {
            if descriptor >= 0 { close(descriptor) }
            throw QueryError(.internalError, "cannot sync the rebuilt space")
        }
        close(descriptor)
    }

    private func flushTransaction() throws {
        guard pending > 0 else { return }
        try state.flush()
        try store.commit()
        pending = 0
        pendingOperations = 0
    }
}

/// A commit made ready for `SpaceBuilder`: its operations decoded, and each stored document
/// decoded and hashed for the state map. Import and rebuild prepare commits on a thread of
/// their own (`ReadAheadPipeline`), so the builder's thread only writes.
struct PreparedCommit: Sendable {
    let commit: SignedCommit
    /// The plain payload, as the commit log stores it.
    let payload: [UInt8]
    let operations: [CommitOperation]
    /// By operation: a put's document, decoded (nil for any other operation).
    let documents: [BSONDocument?]
    /// By operation: a put's state-map value (`SpaceState.documentValue`).
    let documentValues: [Digest32?]

    init(commit: SignedCommit, payload: [UInt8]) throws {
        self.commit = commit
        self.payload = payload
        operations = try CommitOperation.decode(payload)
        var documents: [BSONDocument?] = []
        var values: [Digest32?] = []
        documents.reserveCapacity(operations.count)
        values.reserveCapacity(operations.count)
        for operation in operations {
            if case .put(_, _, let bytes) = operation {
                documents.append(try BSONDecoder.decode(bytes))
                values.append(SpaceState<SQLiteSpaceStateStorage>.documentValue(bytes))
            } else {
                documents.append(nil)
                values.append(nil)
            }
        }
        self.documents = documents
        documentValues = values
    }
}
