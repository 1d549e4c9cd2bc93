import StratosCore

/// Branch storage for every map of a space: tree 0 is the root map (collection name digest →
/// collection map root); each collection has its own tree.
public protocol SpaceStateStorage: AnyObject {
    func branch(tree: Int64, prefix: NibblePath) throws(StratosError) -> StateMapBranch?
    func setBranch(tree: Int64, prefix: NibblePath, _ branch: StateMapBranch?) throws(StratosError)
    /// Stale marks (see `StateMap`): kept by the storage so they survive between map values.
    func markStale(tree: Int64, prefix: NibblePath)
    func isStale(tree: Int64, prefix: NibblePath) -> Bool
    func takeStale(tree: Int64, prefix: NibblePath) -> Bool
    /// The tree of a collection, nil when it has none.
    func tree(of collection: String) throws(StratosError) -> Int64?
    /// Gives a collection a new, empty tree.
    func createTree(for collection: String) throws(StratosError) -> Int64
    /// Deletes a collection's tree and every branch in it.
    func dropTree(of collection: String) throws(StratosError)
    /// Moves a collection's tree to a new name.
    func renameTree(from: String, to: String) throws(StratosError)
    /// How the state map keys collections and documents: the format the space's first commit
    /// fixed, or `.hashed` when its history names none.
    func keyFormat() throws(StratosError) -> StateKeyFormat
    /// Records the space's key format (replaying a `stateFormat` operation).
    func setKeyFormat(_ format: StateKeyFormat) throws(StratosError)
}

/// The authenticated state of a space: a two-level state map. The root map holds, for each
/// collection, `key(name) → root of the collection map`; each collection map holds
/// `key(_id key) → BLAKE2b(document BSON)`, keys as the space's `StateKeyFormat` derives them.
/// Dropping or renaming a collection touches one root-map entry, however many documents it holds.
public struct SpaceState<Storage: SpaceStateStorage> {
    public let storage: Storage

    /// The state over `storage`.
    public init(storage: Storage) { self.storage = storage }

    /// Digest of a document's bytes (collection-map value).
    public static func documentValue(_ document: [UInt8]) -> Digest32 { Digest32.blake2b(document) }

    /// The state root.
    public func root() throws(StratosError) -> [UInt8] {
        var map = StateMap(storage: TreeStorage(storage: storage, tree: 0))
        return try map.root().bytes
    }

    /// Checks that each collection's map root is the one the root map records for it (cheap: one
    /// branch per collection); returns the name of the first collection that disagrees.
    public func firstInconsistentCollection(_ names: [String]) throws(StratosError) -> String? {
        var rootMap = StateMap(storage: TreeStorage(storage: storage, tree: 0))
        let format = try storage.keyFormat()
        for name in names {
            guard let tree = try storage.tree(of: name) else { return name }
            var map = StateMap(storage: TreeStorage(storage: storage, tree: tree))
            guard try rootMap.value(for: format.collectionKey(name)) == (try map.root()) else { return name }
        }
        return nil
    }

    /// Applies a commit's operations and returns the new state root. `isFirstCommit` says whether
    /// this is the space's commit 1, the only one that may fix the key format (its first
    /// operation). `documentValues`, when given, holds each put's `documentValue` at the
    /// operation's position (computed ahead, on another thread, by a bulk loader).
    public func apply(
        _ operations: [CommitOperation], isFirstCommit: Bool = false, documentValues: [Digest32?]? = nil
    ) throws(StratosError) -> [UInt8] {
        precondition(documentValues == nil || documentValues?.count == operations.count, "one document value per operation")
        var rootMap = StateMap(storage: TreeStorage(storage: storage, tree: 0))
        var dirty: [String: Int64] = [:]
        var format = try storage.keyFormat()
        func flush() throws(StratosError) {
            for (name, tree) in dirty {
                var map = StateMap(storage: TreeStorage(storage: storage, tree: tree))
                try rootMap.set(format.collectionKey(name), try map.root())
            }
            dirty.removeAll()
        }
        func collectionTree(_ name: String) throws(StratosError) -> Int64 {
            if let tree = try storage.tree(of: name) { return tree }
            // A document for a collection the payload never created: create it, as the engine does.
            let tree = try storage.createTree(for: name)
            try rootMap.set(format.collectionKey(name), StateMap<TreeStorage<Storage>>.emptyRoot)
            return tree
        }
        for (position, operation) in operations.enumerated() {
            switch operation {
            case .put(let collection, let idKey, let document):
                let tree = try collectionTree(collection)
                var map = StateMap(storage: TreeStorage(storage: storage, tree: tree))
                try map.set(format.documentKey(idKey), documentValues?[position] ?? Self.documentValue(document))
                dirty[collection] = tree
            case .delete(let collection, let idKey):
                guard let tree = try storage.tree(of: collection) else { continue }
                var map = StateMap(storage: TreeStorage(storage: storage, tree: tree))
                try map.remove(format.documentKey(idKey))
                dirty[collection] = tree
            case .createCollection(let name, _):
                try flush()
                if try storage.tree(of: name) == nil {
                    _ = try storage.createTree(for: name)
                    try rootMap.set(format.collectionKey(name), StateMap<TreeStorage<Storage>>.emptyRoot)
                }
            case .dropCollection(let name):
                try flush()
                try rootMap.remove(format.collectionKey(name))
                try storage.dropTree(of: name)
            case .renameCollection(let from, let to):
                try flush()
                if try storage.tree(of: to) != nil {
                    try rootMap.remove(format.collectionKey(to))
                    try storage.dropTree(of: to)
                }
                guard let tree = try storage.tree(of: from) else { continue }
                var map = StateMap(storage: TreeStorage(storage: storage, tree: tree))
                try rootMap.remove(format.collectionKey(from))
                try rootMap.set(format.collectionKey(to), try map.root())
                try storage.renameTree(from: from, to: to)
            case .createIndex, .dropIndex, .setCollectionOptions:
                continue
            case .grant, .revocation:
                // Bound to the chain by the commit's payload hash; the state map holds documents.
                continue
            case .stateFormat(let newFormat):
                // One format per space, fixed before anything is keyed: no map mixes two.
                guard isFirstCommit, position == 0, try rootMap.root() == StateMap<TreeStorage<Storage>>.emptyRoot else {
                    throw StratosError(.invalidProof, "only the first operation of a space's first commit may set its state map format")
                }
                try storage.setKeyFormat(newFormat)
                format = newFormat
            }
        }
        try flush()
        return try rootMap.root().bytes
    }

    /// The proof that `collection` holds the document with `idKey` and exactly these bytes.
    public func proof(collection: String, idKey: [UInt8]) throws(StratosError) -> RecordProof? {
        guard let tree = try storage.tree(of: collection) else { return nil }
        var collectionMap = StateMap(storage: TreeStorage(storage: storage, tree: tree))
        var rootMap = StateMap(storage: TreeStorage(storage: storage, tree: 0))
        let format = try storage.keyFormat()
        guard let inner = try collectionMap.proof(for: format.documentKey(idKey)),
            let outer = try rootMap.proof(for: format.collectionKey(collection))
        else { return nil }
        return RecordProof(collection: collection, idKey: idKey, collectionProof: inner, rootProof: outer)
    }
}

/// One tree of a space's storage, seen as a `StateMapStorage`.
public struct TreeStorage<Storage: SpaceStateStorage>: StateMapStorage {
    let storage: Storage
    let tree: Int64

    public mutating func branch(prefix: NibblePath) throws(StratosError) -> StateMapBranch? { try storage.branch(tree: tree, prefix: prefix) }
    public mutating func setBranch(prefix: NibblePath, _ branch: StateMapBranch?) throws(StratosError) { try storage.setBranch(tree: tree, prefix: prefix, branch) }
    public mutating func markStale(prefix: NibblePath) { storage.markStale(tree: tree, prefix: prefix) }
    public mutating func isStale(prefix: NibblePath) -> Bool { storage.isStale(tree: tree, prefix: prefix) }
    public mutating func takeStale(prefix: NibblePath) -> Bool { storage.takeStale(tree: tree, prefix: prefix) }
}

/// Proof that a document is in a space's state: document → collection root → state root.
public struct RecordProof: Hashable, Sendable {
    public let collection: String
    public let idKey: [UInt8]
    public let collectionProof: StateMapProof
    public let rootProof: StateMapProof

    public init(collection: String, idKey: [UInt8], collectionProof: StateMapProof, rootProof: StateMapProof) {
        self.collection = collection
        self.idKey = idKey
        self.collectionProof = collectionProof
        self.rootProof = rootProof
    }

    /// Whether the proof shows that `document` (its BSON bytes) is the record with `idKey` in
    /// `collection` under `stateRoot`.
    ///
    /// The root-map key says which `StateKeyFormat` the space uses (the formats key collections
    /// by unrelated functions), and the document's key must be that format's key of `idKey`.
    public func verify(document: [UInt8], stateRoot: [UInt8]) -> Bool {
        guard let format = StateKeyFormat.allCases.first(where: { rootProof.key == $0.collectionKey(collection).bytes }),
            collectionProof.key == format.documentKey(idKey).bytes,
            collectionProof.value == Hash256.blake2b(document).bytes,
            let collectionRoot = collectionProof.branches.first?.hash.bytes, rootProof.value == collectionRoot
        else { return false }
        return collectionProof.verify(root: collectionRoot) && rootProof.verify(root: stateRoot)
    }
}

/// A `SpaceStateStorage` in memory: for verifying archives and rebuilding offline.
public final class InMemorySpaceStateStorage: SpaceStateStorage {
    private var branches: [Int64: [NibblePath: StateMapBranch]] = [:]
    private var stale: [Int64: Set<NibblePath>] = [:]
    private var trees: [String: Int64] = [:]
    private var nextTree: Int64 = 1
    private var format = StateKeyFormat.hashed

    public init() {}

    public func keyFormat() throws(StratosError) -> StateKeyFormat { format }
    public func setKeyFormat(_ format: StateKeyFormat) throws(StratosError) { self.format = format }

    public func markStale(tree: Int64, prefix: NibblePath) { stale[tree, default: []].insert(prefix) }
    public func isStale(tree: Int64, prefix: NibblePath) -> Bool { stale[tree]?.contains(prefix) ?? false }
    public func takeStale(tree: Int64, prefix: NibblePath) -> Bool { stale[tree]?.remove(prefix) != nil }

    public func branch(tree: Int64, prefix: NibblePath) throws(StratosError) -> StateMapBranch? { branches[tree]?[prefix] }
    public func setBranch(tree: Int64, prefix: NibblePath, _ branch: StateMapBranch?) throws(StratosError) { branches[tree, default: [:]][prefix] = branch }
    public func tree(of collection: String) throws(StratosError) -> Int64? { trees[collection] }
    public func createTree(for collection: String) throws(StratosError) -> Int64 {
        defer { nextTree += 1 }
        trees[collection] = nextTree
        return nextTree
    }
    public func dropTree(of collection: String) throws(StratosError) {
        if let tree = trees.removeValue(forKey: collection) {
            branches[tree] = nil
            stale[tree] = nil
        }
    }
    public func renameTree(from: String, to: String) throws(StratosError) {
        if let tree = trees.removeValue(forKey: from) { trees[to] = tree }
    }
}
