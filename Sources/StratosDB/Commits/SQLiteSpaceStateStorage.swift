import QueryEngine
import SpaceOwnership
import StratosCore

/// The state map of a space, kept in the space's own SQLite file next to the rows it
/// authenticates (tables `stratos_state` and `stratos_state_trees`), so both change in one
/// transaction.
///
/// Branches are read through a cache and **written back**: a commit changes branches in the
/// cache only, and the changed branches go to SQLite every so often (`CommitLog` decides when)
/// together with the seq of the last commit they include (`stratos_state_flushed`), in that
/// commit's transaction. The top branches of a busy collection are touched by every write, so
/// they are written once per flush instead of once per commit. The commits after the flushed
/// seq hold every operation since (the log is the space's truth), so whoever opens the file
/// replays them to reach the head's state (`catchUp`): on open, after a rollback, and for proofs.
final class SQLiteSpaceStateStorage: SpaceStateStorage {
    private struct Key: Hashable {
        let tree: Int64
        let prefix: NibblePath
    }

    private let connection: SQLiteConnection
    private var cache: [Key: StateMapBranch?] = [:]
    private var dirty: Set<Key> = []
    private var stale: Set<Key> = []
    private var trees: [String: Int64]?
    private var format: StateKeyFormat?
    /// Whether a collection tree was created, dropped or renamed since the last flush: those
    /// change SQLite at once, so the branches must follow in the same transaction.
    private(set) var structureChanged = false

    /// Branches kept between commits; beyond this the cache starts over (a bound on memory per
    /// open space: about 2 KB a branch, so 8 MB for the node's default of 4,096).
    private let cachedBranchesMax: Int

    init(connection: SQLiteConnection, cachedBranchesMax: Int = 4096) {
        self.connection = connection
        self.cachedBranchesMax = cachedBranchesMax
    }

    static let schema = """
        CREATE TABLE IF NOT EXISTS stratos_state(
            tree INTEGER NOT NULL, prefix BLOB NOT NULL, node BLOB NOT NULL, PRIMARY KEY(tree, prefix)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS stratos_state_trees(name TEXT PRIMARY KEY, tree INTEGER NOT NULL UNIQUE);
        CREATE TABLE IF NOT EXISTS stratos_state_format(id INTEGER PRIMARY KEY CHECK (id = 0), format INTEGER NOT NULL);
        """

    /// The table that says which commit the stored branches reach. A file without its row
    /// (written before branches were written back, or by a rebuild, which flushes every commit)
    /// has its branches at its head; `CommitLog` adds the row when it opens such a file.
    static let flushedSchema = "CREATE TABLE IF NOT EXISTS stratos_state_flushed(id INTEGER PRIMARY KEY CHECK (id = 0), seq INTEGER NOT NULL);"

    /// Changed branches not yet written to SQLite.
    var unflushedCount: Int { dirty.count }

    /// The seq of the last commit the stored branches include; nil when the file has no row.
    func flushedSeq() throws(StratosError) -> UInt64? {
        let statement = try wrap { () throws(QueryError) in try connection.statement("SELECT seq FROM stratos_state_flushed WHERE id = 0") }
        defer { statement.reset() }
        guard try wrap({ () throws(QueryError) in try statement.step() }) else { return nil }
        return UInt64(statement.int64(0))
    }

    /// Records that the stored branches include every commit up to `seq`.
    func setFlushedSeq(_ seq: UInt64) throws(StratosError) {
        try run("INSERT OR REPLACE INTO stratos_state_flushed(id, seq) VALUES (0, ?1)") { $0.bind(1, Int64(seq)) }
    }

    /// Brings the cache from the stored branches to the newest commit: replays, in order, each
    /// commit after the flushed seq, checking its payload hash and that it reaches its state
    /// root. Returns the number of commits replayed. Reads only (the replayed branches stay in
    /// the cache, unflushed), so it also serves readers that need the head's state.
    func catchUp(fromSeq flushed: UInt64) throws(StratosError) -> Int {
        let statement = try wrap { () throws(QueryError) in
            try connection.statement("SELECT commit_bytes, payload FROM stratos_commits WHERE seq > ?1 ORDER BY seq")
        }
        statement.bind(1, Int64(flushed))
        defer { statement.reset() }
        var replayed = 0
        var expected = flushed + 1
        while try wrap({ () throws(QueryError) in try statement.step() }) {
            let commit = try SignedCommit(decoding: statement.blob(0)).commit
            let payload = statement.blob(1)
            guard commit.seq == expected, commit.payloadHash == Hash256.blake2b(payload).bytes else {
                throw StratosError(.invalidProof, "commit \(commit.seq) does not match its payload")
            }
            guard try SpaceState(storage: self).apply(try CommitOperation.decode(payload), isFirstCommit: commit.seq == 1) == commit.stateRoot else {
                throw StratosError(.invalidProof, "replaying commit \(commit.seq) does not reach its state root")
            }
            replayed += 1
            expected += 1
        }
        return replayed
    }

    func branch(tree: Int64, prefix: NibblePath) throws(StratosError) -> StateMapBranch? {
        let key = Key(tree: tree, prefix: prefix)
        if let cached = cache[key] { return cached }
        let statement = try wrap { () throws(QueryError) in try connection.statement("SELECT node FROM stratos_state WHERE tree = ?1 AND prefix = ?2") }
        statement.bind(1, tree)
        statement.bind(2, prefix.nibbles)
        defer { statement.reset() }
        let branch: StateMapBranch?
        if try wrap({ () throws(QueryError) in try statement.step() }) {
            branch = try StateMapBranch(decoding: statement.blob(0))
        } else {
            branch = nil
        }
        cache[key] = .some(branch)
        return branch
    }

    func setBranch(tree: Int64, prefix: NibblePath, _ branch: StateMapBranch?) throws(StratosError) {
        let key = Key(tree: tree, prefix: prefix)
        cache[key] = .some(branch)
        dirty.insert(key)
        if branch == nil { stale.remove(key) }
    }

    func markStale(tree: Int64, prefix: NibblePath) { stale.insert(Key(tree: tree, prefix: prefix)) }
    func isStale(tree: Int64, prefix: NibblePath) -> Bool { stale.contains(Key(tree: tree, prefix: prefix)) }
    func takeStale(tree: Int64, prefix: NibblePath) -> Bool { stale.remove(Key(tree: tree, prefix: prefix)) != nil }

    func tree(of collection: String) throws(StratosError) -> Int64? { try loadTrees()[collection] }

    /// Every collection with a tree.
    func collectionNames() throws(StratosError) -> [String] { try loadTrees().keys.sorted() }

    func createTree(for collection: String) throws(StratosError) -> Int64 {
        var all = try loadTrees()
        let tree = (all.values.max() ?? 0) + 1
        try run("INSERT INTO stratos_state_trees(name, tree) VALUES (?1, ?2)") { $0.bind(1, collection); $0.bind(2, tree) }
        all[collection] = tree
        trees = all
        structureChanged = true
        return tree
    }

    func dropTree(of collection: String) throws(StratosError) {
        var all = try loadTrees()
        guard let tree = all.removeValue(forKey: collection) else { return }
        // Pending changes to this tree are moot; other trees' stay pending for the next flush.
        try run("DELETE FROM stratos_state WHERE tree = ?1") { $0.bind(1, tree) }
        try run("DELETE FROM stratos_state_trees WHERE name = ?1") { $0.bind(1, collection) }
        cache = cache.filter { $0.key.tree != tree }
        dirty = dirty.filter { $0.tree != tree }
        stale = stale.filter { $0.tree != tree }
        trees = all
        structureChanged = true
    }

    func renameTree(from: String, to: String) throws(StratosError) {
        var all = try loadTrees()
        guard let tree = all.removeValue(forKey: from) else { return }
        try run("UPDATE stratos_state_trees SET name = ?2 WHERE name = ?1") { $0.bind(1, from); $0.bind(2, to) }
        all[to] = tree
        trees = all
        structureChanged = true
    }

    /// The format the space's first commit recorded (`stratos_state_format`); `.hashed` when the
    /// table has no row (a space written before formats existed, or one with no commit yet).
    func keyFormat() throws(StratosError) -> StateKeyFormat {
        if let format { return format }
        let statement = try wrap { () throws(QueryError) in try connection.statement("SELECT format FROM stratos_state_format WHERE id = 0") }
        defer { statement.reset() }
        let loaded: StateKeyFormat
        if try wrap({ () throws(QueryError) in try statement.step() }) {
            let raw = statement.int64(0)
            guard (0...255).contains(raw), let known = StateKeyFormat(rawValue: UInt8(raw)) else {
                throw StratosError(.invalidEncoding, "state map format \(raw) is unknown")
            }
            loaded = known
        } else {
            loaded = .hashed
        }
        format = loaded
        return loaded
    }

    /// Records the format at once, in the open transaction (as a tree's creation is), and has the
    /// commit's branches flushed with it: the stored branches then always include commit 1, so
    /// a reader's replay never needs to write the format.
    func setKeyFormat(_ format: StateKeyFormat) throws(StratosError) {
        structureChanged = true
        try run("INSERT OR REPLACE INTO stratos_state_format(id, format) VALUES (0, ?1)") { $0.bind(1, Int64(format.rawValue)) }
        self.format = format
    }

    /// Writes the changed branches to SQLite (inside the caller's transaction), and with
    /// `throughSeq` records that they include every commit up to it. Every stale branch must
    /// have been resolved (by computing the roots) first.
    func flush(throughSeq: UInt64? = nil) throws(StratosError) {
        guard stale.isEmpty else { throw StratosError(.invalidProof, "state map flushed with stale hashes") }
        for key in dirty {
            if case .some(.some(let branch)) = cache[key] {
                try run("INSERT OR REPLACE INTO stratos_state(tree, prefix, node) VALUES (?1, ?2, ?3)") {
                    $0.bind(1, key.tree)
                    $0.bind(2, key.prefix.nibbles)
                    $0.bind(3, branch.encoded)
                }
            } else {
                try run("DELETE FROM stratos_state WHERE tree = ?1 AND prefix = ?2") { $0.bind(1, key.tree); $0.bind(2, key.prefix.nibbles) }
            }
        }
        if let throughSeq { try setFlushedSeq(throughSeq) }
        dirty.removeAll(keepingCapacity: true)
        structureChanged = false
        if cache.count > cachedBranchesMax { cache.removeAll(keepingCapacity: true) }
    }

    /// Forgets everything cached, unflushed branches included (after a rollback, the cache may
    /// hold undone branches; `catchUp` rebuilds the rest from the log).
    func discard() {
        cache.removeAll()
        dirty.removeAll()
        stale.removeAll()
        trees = nil
        format = nil
        structureChanged = false
    }

    private func loadTrees() throws(StratosError) -> [String: Int64] {
        if let trees { return trees }
        var loaded: [String: Int64] = [:]
        let statement = try wrap { () throws(QueryError) in try connection.statement("SELECT name, tree FROM stratos_state_trees") }
        defer { statement.reset() }
        while try wrap({ () throws(QueryError) in try statement.step() }) { loaded[statement.text(0)] = statement.int64(1) }
        trees = loaded
        return loaded
    }

    private func run(_ sql: String, _ bind: (SQLiteStatement) -> Void) throws(StratosError) {
        let statement = try wrap { () throws(QueryError) in try connection.statement(sql) }
        bind(statement)
        try wrap { () throws(QueryError) in try statement.run() }
    }

    private func wrap<T>(_ body: () throws(QueryError) -> T) throws(StratosError) -> T {
        do { return try body() } catch { throw StratosError(.invalidEncoding, "state map storage: \(error.message)", underlying: error) }
    }
}
