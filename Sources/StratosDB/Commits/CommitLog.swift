import QueryEngine
import SpaceOwnership
import StratosCore

/// The commit log of one space, in the space's SQLite file (`stratos_commits`): every write
/// transaction that changes the space appends its operations in the same transaction as its
/// rows (ARCHITECTURE §5 step 4), so the log and the view can never disagree.
///
/// **Commits per time window.** Without a `window`, each write transaction appends one signed
/// commit. With one, a transaction appends its operations to `stratos_pending` instead (in the
/// same SQLite transaction, so nothing acknowledged is lost), and the pending operations are
/// sealed into one signed commit, with the state map updated once for all of them, by the first
/// transaction that finds the oldest pending operation `window` old, by the executor's timer
/// when no write comes, at once when something needs the commit (`requestSeal`: a proof, an
/// export, an anchored write, closing the space), and on open after a crash. A transaction that
/// carries a grant or a revocation is sealed at once, with what is pending before it. The
/// commit format does not change: a commit already holds several transactions' operations when
/// group commit merges overlapping writes.
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

    /// How long operations may wait to be sealed into a commit; nil seals every transaction.
    let window: Duration?
    /// Operations of committed transactions not yet in a signed commit (mirrors `stratos_pending`).
    private var pending = Pending()
    /// What this transaction appended to `stratos_pending`, added to `pending` when it commits.
    private var appended: (operations: [CommitOperation], payload: [UInt8], mac: [UInt8])?
    /// This transaction sealed the pending operations: `pending` empties when it commits.
    private var sealedPending = false
    /// The next `willCommit` seals whatever is pending (`requestSeal`).
    private var sealRequested = false

    /// Pending operations, by transaction, with their encoded payloads.
    private struct Pending {
        var operations: [CommitOperation] = []
        var payloads: [[UInt8]] = []
        var bytes = 0
        /// When the oldest pending transaction committed.
        var since: ContinuousClock.Instant?
        /// The newest row's MAC (see `pendingMAC`).
        var lastMAC: [UInt8]?
    }

    /// The key of the pending rows' MACs: derived from the node's secret key (keyed BLAKE2b of a
    /// domain tag and the space id), so whoever can write the space's file but does not hold the
    /// node's key cannot add an operation the node would then sign into a commit.
    private let pendingKey: [UInt8]

    /// A pending row's MAC: keyed BLAKE2b of the previous row's MAC (the head commit's hash for
    /// the first row after it) and the row's payload, so rows can be neither forged, reordered,
    /// removed from the middle, nor replayed on top of a later head. (Removing the newest rows is
    /// not detected: those writes are then lost, as anyone who can write the file can destroy data.)
    private func pendingMAC(previous: [UInt8], payload: [UInt8]) -> [UInt8] {
        Hash256.blake2b(previous + payload, outputCount: 32, key: pendingKey)
    }

    /// A commit is sealed once this many bytes of operations, or this many transactions, wait.
    static let pendingBytesMax = 1 << 20
    static let pendingTransactionsMax = 1024
    /// A transaction whose operations encode to more than this is sealed at once: waiting would
    /// write its operations twice (pending, then in the commit) for a signature that is a small
    /// part of its cost (about what sealing 40 KB of pages costs).
    static let deferredTransactionBytesMax = 16 << 10

    static let schema = """
        CREATE TABLE IF NOT EXISTS stratos_commits(
            seq INTEGER PRIMARY KEY, hash BLOB NOT NULL, commit_bytes BLOB NOT NULL, payload BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS stratos_pending(id INTEGER PRIMARY KEY, payload BLOB NOT NULL, mac BLOB NOT NULL);
        """

    /// Opens the log of `store`, creating its tables, and checks the head: its signature, its
    /// link to the previous commit, and that its state root is the state the tables hold. A
    /// space that fails is refused with the reason, never served.
    init(
        store: DatabaseStore, space: SpaceID, signer: SigningKey, clock: any WallClock,
        onCommitted: (@Sendable (SpaceID, UInt64, [UInt8]) -> Void)? = nil, anchored: (seq: UInt64, commitHash: [UInt8])? = nil,
        newSpaceKeyFormat: StateKeyFormat = .current, window: Duration? = nil
    ) throws(QueryError) {
        self.space = space
        self.window = window
        pendingKey = Hash256.blake2b(Array("stratosdb/pending-mac/v1 \(space.string)".utf8), outputCount: 32, key: signer.seed)
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
        try sealLeftPending(store)
    }

    /// Seals the operations a previous run left pending (it stopped before its timer fired),
    /// so the space opens at a signed commit that covers every row.
    private func sealLeftPending(_ store: DatabaseStore) throws(QueryError) {
        let select = try store.sqlite.statement("SELECT payload, mac FROM stratos_pending ORDER BY id")
        defer { select.reset() }
        var loaded = Pending()
        var previous = head.hash
        var follows = true
        do {
            while try select.step() {
                let payload = select.blob(0)
                guard select.blob(1) == pendingMAC(previous: previous, payload: payload) else {
                    follows = false
                    break
                }
                previous = select.blob(1)
                loaded.operations += try CommitOperation.decode(payload)
                loaded.payloads.append(payload)
                loaded.bytes += payload.count
            }
        } catch {
            throw QueryError(.location(7_100_001), "space \(space) is damaged: its pending operations cannot be read")
        }
        guard follows else {
            throw QueryError(
                .location(7_100_001),
                "space \(space) is damaged: its pending operations do not follow its last commit (written by another program, another node or another version of StratosDB)")
        }
        loaded.lastMAC = loaded.payloads.isEmpty ? nil : previous
        guard !loaded.payloads.isEmpty else { return }
        pending = loaded
        pending.since = .now
        do { try sealInOwnTransaction(store) } catch {
            throw QueryError(.location(7_100_001), "space \(space) cannot seal its pending operations into a commit: \(error.message)")
        }
    }

    /// Seals what is pending in a transaction of its own on `store` (nothing else open on it);
    /// on failure rolls back, and the operations stay pending.
    func sealInOwnTransaction(_ store: DatabaseStore) throws(QueryError) {
        do {
            try store.begin()
            try requestSeal(store)
            try store.commit()
        } catch {
            store.rollback()
            throw error
        }
    }

    /// Whether operations wait to be sealed into a commit.
    var hasPending: Bool { !pending.payloads.isEmpty }

    /// When the executor's timer seals the pending operations if no write has: the oldest
    /// one's time plus twice the window. A write that comes after one window seals them itself
    /// (`defers`), so while writes keep coming the timer never competes with them for the
    /// writer, and when they stop the last ones wait at most two windows.
    var sealDeadline: ContinuousClock.Instant? {
        guard let window, let since = pending.since else { return nil }
        return since + window * 2
    }

    /// Has this transaction (open on `store`) seal what is pending into a commit when it commits.
    func requestSeal(_ store: DatabaseStore) throws(QueryError) {
        sealRequested = true
        try store.observeThisCommit()
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

    /// Appends the transaction's operations to the pending ones, or seals them (with what is
    /// pending before them) into a signed commit: see the type's comment.
    func willCommit(_ store: DatabaseStore, changes: [StorageChange]) throws(QueryError) {
        let operations = changes.map(CommitOperation.init)
        let requested = sealRequested
        sealRequested = false
        var encoded: [UInt8]?
        // A durable transaction (`j: true`, `--sync full`, an anchored write) is sealed in itself:
        // its commit must be as durable as its rows before the ledger may anchor it.
        if !requested, !store.isDurableTransaction, defers(operations) {
            let payload = CommitOperation.encode(operations)
            if payload.count <= Self.deferredTransactionBytesMax {
                let mac = pendingMAC(previous: pending.lastMAC ?? head.hash, payload: payload)
                let insert = try store.sqlite.statement("INSERT INTO stratos_pending(payload, mac) VALUES (?1, ?2)")
                insert.bind(1, payload)
                insert.bind(2, mac)
                try insert.run()
                appended = (operations, payload, mac)
                return
            }
            encoded = payload
        }
        guard hasPending else {
            if !operations.isEmpty { try appendCommit(store, operations: operations, payload: encoded) }
            return
        }
        // The pending transactions' payloads, then this one's, under one operation count: the
        // bytes `CommitOperation.encode` gives for all of them, without encoding them again.
        var prefix = CanonicalEncoder()
        prefix.write(UInt32(pending.operations.count + operations.count))
        var payload = prefix.bytes
        for pendingPayload in pending.payloads { payload += pendingPayload.dropFirst(4) }
        if !operations.isEmpty { payload += (encoded ?? CommitOperation.encode(operations)).dropFirst(4) }
        try appendCommit(store, operations: pending.operations + operations, payload: payload)
        try store.sqlite.statement("DELETE FROM stratos_pending").run()
        sealedPending = true
    }

    /// Whether this transaction's operations wait for a later commit.
    private func defers(_ operations: [CommitOperation]) -> Bool {
        guard let window, head.seq > 0, !operations.isEmpty else { return false }
        if operations.contains(where: { if case .grant = $0 { true } else if case .revocation = $0 { true } else { false } }) { return false }
        if pending.payloads.count >= Self.pendingTransactionsMax || pending.bytes >= Self.pendingBytesMax { return false }
        if let since = pending.since, since.duration(to: .now) >= window { return false }
        return true
    }

    /// Applies `operations` to the state map and appends their signed commit; every so often
    /// (`flushEveryCommits`) also writes the changed branches. `payload`, when given, is the
    /// operations' encoding.
    private func appendCommit(_ store: DatabaseStore, operations: [CommitOperation], payload given: [UInt8]? = nil) throws(QueryError) {
        stateTouched = true
        let seq = head.seq + 1
        var operations = operations
        // A space's first commit fixes how its state map keys documents (`StateKeyFormat`).
        var payload = given
        if seq == 1, newSpaceKeyFormat != .hashed {
            operations.insert(.stateFormat(newSpaceKeyFormat), at: 0)
            payload = nil
        }
        let encoded = payload ?? CommitOperation.encode(operations)
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
            space: space, seq: seq, prevHash: head.hash, stateRoot: root, payloadHash: Hash256.blake2b(encoded).bytes,
            author: author, timestampMilliseconds: clock.nowMilliseconds()
        ).signed(by: signer)
        let hash = try Self.insert(commit, payload: encoded, into: store.sqlite)
        // The head moves now; if COMMIT fails, didRollBack restores it.
        if headBeforeTransaction == nil { headBeforeTransaction = head }
        head = (commit.commit.seq, hash)
    }

    /// The head before this transaction's append, restored if the transaction rolls back.
    private var headBeforeTransaction: (seq: UInt64, hash: [UInt8])?

    /// Whether this transaction has changed the state map or its cache (`willCommit`, or the
    /// flush in `willClose`). A transaction rolled back before that (a write that failed, the
    /// usual case) leaves the cache as valid as it was.
    private var stateTouched = false

    func didRollBack() {
        appended = nil
        sealedPending = false
        sealRequested = false
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
        if sealedPending { pending = Pending() }
        sealedPending = false
        if let appended {
            pending.operations += appended.operations
            pending.payloads.append(appended.payload)
            pending.bytes += appended.payload.count
            pending.lastMAC = appended.mac
            if pending.since == nil { pending.since = .now }
            self.appended = nil
        }
        stateTouched = false
        if let flushingThrough { flushedSeq = flushingThrough }
        flushingThrough = nil
        if headBeforeTransaction != nil { onCommitted?(space, head.seq, head.hash) }
        headBeforeTransaction = nil
    }

    /// Seals what is pending, then writes the branches still in the cache, so the next open
    /// replays nothing.
    func willClose(_ store: DatabaseStore) {
        // On failure the operations stay pending: the next open seals them.
        if hasPending { try? sealInOwnTransaction(store) }
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
