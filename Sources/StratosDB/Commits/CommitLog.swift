import QueryEngine
import SpaceOwnership
import StratosCore

/// The commit log of one space, in the space's SQLite file (`stratos_commits`): every write
/// transaction that changes the space appends one signed commit in the same transaction as its
/// rows (ARCHITECTURE §5 step 4), so the log and the view can never disagree.
///
/// Owned by the space's database executor and used only on its thread.
final class CommitLog: StoreTransactionObserver {
    let space: SpaceID
    private let signer: SigningKey
    /// The signer's DID, encoded once (base58 is not free).
    private let author: DID
    private let clock: any WallClock
    private let state: SQLiteSpaceStateStorage
    private var head: (seq: UInt64, hash: [UInt8])
    /// The newest commit whose branches are in SQLite (see `SQLiteSpaceStateStorage`).
    private var flushedSeq: UInt64 = 0
    /// A flush this transaction wrote, taking effect when it commits.
    private var flushingThrough: UInt64?
    /// After a rollback the cache is gone; the next commit first replays the log to the head.
    private var needsCatchUp = false
    /// The key format the space's first commit fixes (`.current`; tests write `.hashed`, which
    /// is recorded as no operation at all, exactly as spaces were written before formats existed).
    private let newSpaceKeyFormat: StateKeyFormat

    /// Changed branches are written to SQLite at least every this many commits, sooner when
    /// this many are waiting, and at once when a collection is created, dropped or renamed. The
    /// bound is also the most commits anyone replays to reach the head's state (on open, after
    /// a rollback, for a proof): about 30 µs each for one-document commits.
    static let flushEveryCommits: UInt64 = 128
    static let unflushedBranchesMax = 4096
    /// Told of every commit once its transaction is durable in the log (the ledger anchors it).
    private let onCommitted: (@Sendable (SpaceID, UInt64, [UInt8]) -> Void)?

    static let schema = """
        CREATE TABLE IF NOT EXISTS stratos_commits(
            seq INTEGER PRIMARY KEY, hash BLOB NOT NULL, commit_bytes BLOB NOT NULL, payload BLOB NOT NULL);
        """

    /// Opens the log of `store`, creating its tables, and checks the head: its signature, its
    /// link to the previous commit, and that its state root is the state the tables hold. A
    /// space that fails is refused with the reason, never served.
    init(
        store: DatabaseStore, space: SpaceID, signer: SigningKey, clock: any WallClock,
        onCommitted: (@Sendable (SpaceID, UInt64, [UInt8]) -> Void)? = nil, anchored: (seq: UInt64, commitHash: [UInt8])? = nil,
        newSpaceKeyFormat: StateKeyFormat = .current
    ) throws(QueryError) {
        self.space = space
        self.newSpaceKeyFormat = newSpaceKeyFormat
        self.onCommitted = onCommitted
        self.signer = signer
        self.author = signer.did
        self.clock = clock
        try store.sqlite.execute(SQLiteSpaceStateStorage.schema + SQLiteSpaceStateStorage.flushedSchema + Self.schema + GrantLog.schema)
        state = SQLiteSpaceStateStorage(connection: store.sqlite)
        let recent = try Self.lastCommits(store.sqlite, count: 2)
        guard let last = recent.first else {
            try Self.checkAnchored(anchored, headSeq: 0, space: space, connection: store.sqlite)
            head = (0, [UInt8](repeating: 0, count: 32))
            do { if try state.flushedSeq() == nil { try state.setFlushedSeq(0) } } catch {
                throw QueryError(.location(7_100_001), "space \(space) is damaged: its state map cannot be read")
            }
            store.transactionObserver = self
            return
        }
        let root: [UInt8]
        let inconsistent: String?
        do {
            // A file without the row has its branches at its head (see `flushedSchema`).
            if let stored = try state.flushedSeq() { flushedSeq = stored } else {
                try state.setFlushedSeq(last.commit.seq)
                flushedSeq = last.commit.seq
            }
        } catch {
            throw QueryError(.location(7_100_001), "space \(space) is damaged: its state map cannot be read")
        }
        guard flushedSeq <= last.commit.seq else {
            throw QueryError(.location(7_100_001), "space \(space) is damaged: its state map is newer than its last commit")
        }
        do {
            _ = try state.catchUp(fromSeq: flushedSeq)
        } catch {
            throw QueryError(.location(7_100_001), "space \(space) is damaged: its commits after seq \(flushedSeq) do not replay (\(error.message))")
        }
        do {
            let spaceState = SpaceState(storage: state)
            root = try spaceState.root()
            inconsistent = try spaceState.firstInconsistentCollection(try state.collectionNames())
        } catch {
            throw QueryError(.location(7_100_001), "space \(space) is damaged: its state map cannot be read")
        }
        if let inconsistent {
            throw QueryError(.location(7_100_001), "space \(space) is damaged: the state map of collection '\(inconsistent)' does not match its root")
        }
        // The next write keys documents by the recorded format: it must be the one the history fixed.
        let recordedFormat = try? state.keyFormat()
        guard let recordedFormat, recordedFormat == (try Self.firstCommitKeyFormat(store.sqlite)) else {
            throw QueryError(.location(7_100_001), "space \(space) is damaged: its state map format does not match its first commit")
        }
        guard last.commit.space == space else {
            throw QueryError(.location(7_100_002), "space \(space) holds commits of another space")
        }
        guard last.commit.stateRoot == root else {
            throw QueryError(.location(7_100_003), "space \(space) is damaged: its data does not match its last signed commit (seq \(last.commit.seq))")
        }
        let linked = recent.count == 2
            ? last.commit.prevHash == recent[1].hash && last.commit.seq == recent[1].commit.seq + 1
            : last.commit.seq == 1 && last.commit.prevHash == [UInt8](repeating: 0, count: 32)
        guard linked else {
            throw QueryError(.location(7_100_004), "space \(space) is damaged: its commit chain is broken at seq \(last.commit.seq)")
        }
        try Self.checkAnchored(anchored, headSeq: last.commit.seq, space: space, connection: store.sqlite)
        head = (last.commit.seq, last.hash)
        store.transactionObserver = self
    }

    /// A file that is internally consistent may still be an older copy (a restored backup, a
    /// replaced file): the ledger's anchor of the space's newest commit tells. The file must
    /// reach that commit, and hold exactly it.
    private static func checkAnchored(
        _ anchored: (seq: UInt64, commitHash: [UInt8])?, headSeq: UInt64, space: SpaceID, connection: SQLiteConnection
    ) throws(QueryError) {
        guard let anchored else { return }
        guard anchored.seq <= headSeq else {
            throw QueryError(
                .location(7_100_009),
                "space \(space) was rolled back: the ledger anchored its commit \(anchored.seq), but its file ends at commit \(headSeq); restore the space from an archive or a backup that reaches that commit (docs/threat_model.md)")
        }
        let select = try connection.statement("SELECT hash FROM stratos_commits WHERE seq = ?1")
        select.bind(1, Int64(anchored.seq))
        defer { select.reset() }
        guard try select.step(), select.blob(0) == anchored.commitHash else {
            throw QueryError(
                .location(7_100_010),
                "space \(space) does not match the ledger: its commit \(anchored.seq) is not the commit the ledger anchored (the file was replaced or forked)")
        }
    }

    /// Applies the transaction's changes to the state map and appends its signed commit; every
    /// so often (`flushEveryCommits`) also writes the changed branches.
    func willCommit(_ store: DatabaseStore, changes: [StorageChange]) throws(QueryError) {
        stateTouched = true
        let seq = head.seq + 1
        var operations = changes.map(CommitOperation.init)
        // A space's first commit fixes how its state map keys documents (`StateKeyFormat`).
        if seq == 1, newSpaceKeyFormat != .hashed { operations.insert(.stateFormat(newSpaceKeyFormat), at: 0) }
        let payload = CommitOperation.encode(operations)
        let root: [UInt8]
        do {
            if needsCatchUp {
                let stored = try state.flushedSeq() ?? head.seq
                _ = try state.catchUp(fromSeq: stored)
                flushedSeq = stored
                needsCatchUp = false
            }
            root = try SpaceState(storage: state).apply(operations, isFirstCommit: seq == 1)
            if state.structureChanged || seq - flushedSeq >= Self.flushEveryCommits || state.unflushedCount >= Self.unflushedBranchesMax {
                try state.flush(throughSeq: seq)
                flushingThrough = seq
            }
        } catch {
            state.discard()
            needsCatchUp = true
            throw QueryError(.internalError, "cannot update the state map of space \(space): \(error.message)")
        }
        let commit = SpaceCommit(
            space: space, seq: seq, prevHash: head.hash, stateRoot: root, payloadHash: Hash256.blake2b(payload).bytes,
            author: author, timestampMilliseconds: clock.nowMilliseconds()
        ).signed(by: signer)
        let hash = try Self.insert(commit, payload: payload, into: store.sqlite)
        // The head moves now; if COMMIT fails, didRollBack restores it.
        headBeforeTransaction = head
        head = (commit.commit.seq, hash)
    }

    /// The head before this transaction's append, restored if the transaction rolls back.
    private var headBeforeTransaction: (seq: UInt64, hash: [UInt8])?

    /// Whether this transaction has changed the state map or its cache (`willCommit`, or the
    /// flush in `willClose`). A transaction rolled back before that (a write that failed, the
    /// usual case) leaves the cache as valid as it was.
    private var stateTouched = false

    func didRollBack() {
        guard stateTouched else { return }
        stateTouched = false
        // The cache may hold this transaction's branches: rebuild it from the log next time.
        state.discard()
        needsCatchUp = true
        flushingThrough = nil
        if let headBeforeTransaction { head = headBeforeTransaction }
        headBeforeTransaction = nil
    }

    func didCommit() {
        stateTouched = false
        if let flushingThrough { flushedSeq = flushingThrough }
        flushingThrough = nil
        if headBeforeTransaction != nil { onCommitted?(space, head.seq, head.hash) }
        headBeforeTransaction = nil
    }

    /// Writes the branches still in the cache, so the next open replays nothing.
    func willClose(_ store: DatabaseStore) {
        guard !needsCatchUp, flushedSeq < head.seq || state.unflushedCount > 0 else { return }
        do {
            try store.begin()
            stateTouched = true
            do { try state.flush(throughSeq: head.seq) } catch { throw QueryError(.internalError, error.message) }
            flushingThrough = head.seq
            try store.commit()
        } catch {
            store.rollback()  // The log still holds every commit: the next open replays them.
        }
    }

    /// The state map at the newest commit, read through `connection` (a reader's, inside its read
    /// transaction): the stored branches plus the commits after them, replayed in memory.
    static func currentState(_ connection: SQLiteConnection) throws(StratosError) -> SQLiteSpaceStateStorage {
        let state = SQLiteSpaceStateStorage(connection: connection)
        if let flushed = try state.flushedSeq() { _ = try state.catchUp(fromSeq: flushed) }
        return state
    }

    /// The key format the space's first commit fixed: `.hashed` unless its payload starts with a
    /// `stateFormat` operation (reads only the payload's first bytes).
    static func firstCommitKeyFormat(_ connection: SQLiteConnection) throws(QueryError) -> StateKeyFormat {
        let select = try connection.statement("SELECT substr(payload, 1, ?1) FROM stratos_commits WHERE seq = 1")
        select.bind(1, Int64(CommitOperation.leadingFormatBytes))
        defer { select.reset() }
        guard try select.step() else {
            throw QueryError(.location(7_100_004), "a space's commit chain does not start at seq 1")
        }
        do {
            return try CommitOperation.leadingStateFormat(select.blob(0)) ?? .hashed
        } catch {
            throw QueryError(.location(7_100_001), "a space's first commit names an unknown state map format")
        }
    }

    /// Appends a signed commit and its payload to the log table; returns the commit's hash.
    /// (The node's appends and rebuilds/imports share it: one row format, encoded once.)
    static func insert(_ commit: SignedCommit, payload: [UInt8], into connection: SQLiteConnection) throws(QueryError) -> [UInt8] {
        let encoded = commit.encoded
        let hash = Hash256.blake2b(encoded).bytes  // What `SignedCommit.hash` computes, without encoding twice.
        let insert = try connection.statement("INSERT INTO stratos_commits(seq, hash, commit_bytes, payload) VALUES (?1, ?2, ?3, ?4)")
        insert.bind(1, Int64(commit.commit.seq))
        insert.bind(2, hash)
        insert.bind(3, encoded)
        insert.bind(4, payload)
        try insert.run()
        return hash
    }

    /// The newest `count` commits, newest first, each signature checked.
    static func lastCommits(_ connection: SQLiteConnection, count: Int) throws(QueryError) -> [SignedCommit] {
        let statement = try connection.statement("SELECT commit_bytes, hash FROM stratos_commits ORDER BY seq DESC LIMIT ?1")
        statement.bind(1, Int64(count))
        defer { statement.reset() }
        var commits: [SignedCommit] = []
        while try statement.step() {
            guard let commit = try? SignedCommit(decoding: statement.blob(0)), commit.hash == statement.blob(1) else {
                throw QueryError(.location(7_100_005), "a commit of this space has an invalid signature or hash: the space is refused")
            }
            commits.append(commit)
        }
        return commits
    }
}
