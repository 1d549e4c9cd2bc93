import StratosCore

/// Where a state map keeps its branches: keyed by prefix (nibbles). The node implements it on
/// the space's SQLite file; tests use a dictionary.
public protocol StateMapStorage {
    /// The branch with `prefix`, if stored.
    mutating func branch(prefix: [UInt8]) throws(StratosError) -> StateMapBranch?
    /// Stores (or, with nil, removes) the branch with `prefix`.
    mutating func setBranch(prefix: [UInt8], _ branch: StateMapBranch?) throws(StratosError)
    /// Records that the branch's child hashes may be out of date.
    mutating func markStale(prefix: [UInt8])
    /// Whether the branch is stale.
    mutating func isStale(prefix: [UInt8]) -> Bool
    /// Clears the mark; returns whether it was set.
    mutating func takeStale(prefix: [UInt8]) -> Bool
}

/// A deterministic authenticated map from 32-byte keys to 32-byte values: a 16-way Merkle
/// Patricia trie (the shape of Ethereum's, without extension nodes).
///
/// Invariants, which make the shape — and so the root — depend only on the set of entries:
/// the root branch has depth 0; every other branch holds at least two entries and sits at the
/// depth of the longest prefix its keys share. Updating one key reads and rewrites the branches
/// on its path, about log16(n) of them; a proof is those branches (see `StateMapProof`).
///
/// Hashes are computed lazily: an update marks the branches on its path stale, and `root()`
/// recomputes each stale branch once, bottom-up. A commit of many documents hashes each
/// touched branch once instead of once per document.
public struct StateMap<Storage: StateMapStorage> {
    /// The branch storage.
    public var storage: Storage

    /// A map over `storage`.
    public init(storage: Storage) { self.storage = storage }

    /// The root hash of the empty map.
    public static var emptyRoot: [UInt8] { StateMapBranch(prefix: []).hash }

    /// The root hash (recomputing stale branches first).
    public mutating func root() throws(StratosError) -> [UInt8] {
        try resolve([])?.hash ?? Self.emptyRoot
    }

    /// Brings a stale branch's child hashes up to date, children first; returns the branch.
    private mutating func resolve(_ prefix: [UInt8]) throws(StratosError) -> StateMapBranch? {
        guard var branch = try storage.branch(prefix: prefix) else { return nil }
        guard storage.takeStale(prefix: prefix) else { return branch }
        for index in 0..<16 {
            guard case .branch(let childPrefix, _) = branch.slots[index], storage.isStale(prefix: childPrefix) else { continue }
            guard let child = try resolve(childPrefix) else {
                throw StratosError(.invalidProof, "state map is missing a branch its parent names")
            }
            branch.slots[index] = .branch(prefix: childPrefix, hash: child.hash)
        }
        try storage.setBranch(prefix: prefix, branch)
        return branch
    }

    /// A placeholder hash for a slot whose branch is stale (replaced by `resolve`).
    private static var pendingHash: [UInt8] { [UInt8](repeating: 0, count: 32) }

    /// Sets `key` to `value`.
    public mutating func set(_ key: [UInt8], _ value: [UInt8]) throws(StratosError) {
        precondition(key.count == 32 && value.count == 32, "state map keys and values are 32-byte digests")
        let nibbles = StateMapKey.nibbles(key)
        var path: [StateMapBranch] = []
        var branch = try storage.branch(prefix: []) ?? StateMapBranch(prefix: [])
        while true {
            let slot = Int(nibbles[branch.depth])
            switch branch.slots[slot] {
            case .empty:
                branch.slots[slot] = .leaf(key: key, value: value)
            case .leaf(let existingKey, let existingValue):
                if existingKey == key {
                    branch.slots[slot] = .leaf(key: key, value: value)
                } else {
                    let existingNibbles = StateMapKey.nibbles(existingKey)
                    let shared = StateMapKey.commonPrefixCount(nibbles, existingNibbles)
                    var split = StateMapBranch(prefix: Array(nibbles[0..<shared]))
                    split.slots[Int(nibbles[shared])] = .leaf(key: key, value: value)
                    split.slots[Int(existingNibbles[shared])] = .leaf(key: existingKey, value: existingValue)
                    try storage.setBranch(prefix: split.prefix, split)
                    storage.markStale(prefix: split.prefix)
                    branch.slots[slot] = .branch(prefix: split.prefix, hash: Self.pendingHash)
                }
            case .branch(let childPrefix, let childHash):
                if nibbles.starts(with: childPrefix) {
                    guard let child = try storage.branch(prefix: childPrefix) else {
                        throw StratosError(.invalidProof, "state map is missing a branch its parent names")
                    }
                    path.append(branch)
                    branch = child
                    continue
                }
                // The new key leaves the child's prefix early: a branch at the split point holds both.
                let shared = StateMapKey.commonPrefixCount(nibbles, childPrefix)
                var split = StateMapBranch(prefix: Array(nibbles[0..<shared]))
                split.slots[Int(childPrefix[shared])] = .branch(prefix: childPrefix, hash: childHash)
                split.slots[Int(nibbles[shared])] = .leaf(key: key, value: value)
                try storage.setBranch(prefix: split.prefix, split)
                storage.markStale(prefix: split.prefix)
                branch.slots[slot] = .branch(prefix: split.prefix, hash: Self.pendingHash)
            }
            break
        }
        try storeUpwards(branch, path: path, nibbles: nibbles)
    }

    /// Removes `key`; false when it was absent.
    @discardableResult
    public mutating func remove(_ key: [UInt8]) throws(StratosError) -> Bool {
        precondition(key.count == 32, "state map keys are 32-byte digests")
        let nibbles = StateMapKey.nibbles(key)
        var path: [StateMapBranch] = []
        guard var branch = try storage.branch(prefix: []) else { return false }
        while true {
            let slot = Int(nibbles[branch.depth])
            switch branch.slots[slot] {
            case .empty:
                return false
            case .leaf(let existingKey, _):
                guard existingKey == key else { return false }
                branch.slots[slot] = .empty
            case .branch(let childPrefix, _):
                guard nibbles.starts(with: childPrefix), let child = try storage.branch(prefix: childPrefix) else { return false }
                path.append(branch)
                branch = child
                continue
            }
            break
        }
        // A non-root branch left with one entry dissolves into its parent's slot.
        if branch.depth > 0 && branch.occupiedCount == 1, var parent = path.popLast() {
            let survivor = branch.slots.first { $0 != .empty } ?? .empty
            try storage.setBranch(prefix: branch.prefix, nil)
            parent.slots[Int(nibbles[parent.depth])] = survivor
            branch = parent
        }
        try storeUpwards(branch, path: path, nibbles: nibbles)
        return true
    }

    /// The branches from the root to the one holding `key`'s slot; nil when `key` is absent.
    public mutating func proof(for key: [UInt8]) throws(StratosError) -> StateMapProof? {
        _ = try root()  // Proofs need current hashes.
        let nibbles = StateMapKey.nibbles(key)
        var branches: [StateMapBranch] = []
        guard var branch = try storage.branch(prefix: []) else { return nil }
        while true {
            branches.append(branch)
            switch branch.slots[Int(nibbles[branch.depth])] {
            case .leaf(let existingKey, let value):
                return existingKey == key ? StateMapProof(key: key, value: value, branches: branches) : nil
            case .branch(let childPrefix, _):
                guard nibbles.starts(with: childPrefix), let child = try storage.branch(prefix: childPrefix) else { return nil }
                branch = child
            case .empty:
                return nil
            }
        }
    }

    /// The value stored at `key`.
    public mutating func value(for key: [UInt8]) throws(StratosError) -> [UInt8]? {
        let nibbles = StateMapKey.nibbles(key)
        guard var branch = try storage.branch(prefix: []) else { return nil }
        while true {
            switch branch.slots[Int(nibbles[branch.depth])] {
            case .leaf(let existingKey, let value): return existingKey == key ? value : nil
            case .branch(let childPrefix, _):
                guard nibbles.starts(with: childPrefix), let child = try storage.branch(prefix: childPrefix) else { return nil }
                branch = child
            case .empty: return nil
            }
        }
    }

    /// Stores the changed branch and marks it and every ancestor on the path stale; a parent's
    /// slot keeps naming the child (its hash is recomputed by `resolve`).
    private mutating func storeUpwards(_ start: StateMapBranch, path: [StateMapBranch], nibbles: [UInt8]) throws(StratosError) {
        var child = start
        try storage.setBranch(prefix: child.prefix, child)
        storage.markStale(prefix: child.prefix)
        for var parent in path.reversed() {
            let index = Int(nibbles[parent.depth])
            if case .branch(let named, _) = parent.slots[index], named == child.prefix, storage.isStale(prefix: parent.prefix) {
                child = parent  // Already stale and already naming this child: nothing to rewrite.
                continue
            }
            if case .branch(let named, _) = parent.slots[index], named == child.prefix {
                // Same child, hash pending: only the stale mark is needed.
            } else {
                parent.slots[index] = .branch(prefix: child.prefix, hash: Self.pendingHash)
                try storage.setBranch(prefix: parent.prefix, parent)
            }
            storage.markStale(prefix: parent.prefix)
            child = parent
        }
    }
}

/// A proof that `key` maps to `value` under a root: the branches on the key's path.
public struct StateMapProof: Hashable, Sendable {
    /// The key digest.
    public let key: [UInt8]
    /// The value digest.
    public let value: [UInt8]
    /// Branches from the root down to the one holding the record.
    public let branches: [StateMapBranch]

    /// Creates a proof (as read from storage or decoded from a client).
    public init(key: [UInt8], value: [UInt8], branches: [StateMapBranch]) {
        self.key = key
        self.value = value
        self.branches = branches
    }

    /// Whether the proof shows `key → value` under `root`: the first branch is the root (depth
    /// 0), each branch's prefix is a prefix of the key and deeper than its parent, each
    /// parent's slot for the key names the child's prefix and hash, and the last branch's slot
    /// holds exactly this record. Every link is checked (the immudb advisory GHSA-672p-m5jq-mrh8
    /// was a verifier that checked only the ends).
    public func verify(root: [UInt8]) -> Bool {
        guard key.count == 32, value.count == 32, let first = branches.first, first.depth == 0, first.hash == root,
            branches.count <= StateMapKey.nibbleCount
        else { return false }
        let nibbles = StateMapKey.nibbles(key)
        for (index, branch) in branches.enumerated() {
            guard branch.prefix.count == branch.depth, branch.depth < nibbles.count, nibbles.starts(with: branch.prefix),
                branch.slots.count == 16
            else { return false }
            let slot = branch.slots[Int(nibbles[branch.depth])]
            if index + 1 < branches.count {
                let child = branches[index + 1]
                guard child.depth > branch.depth, slot == .branch(prefix: child.prefix, hash: child.hash) else { return false }
            } else {
                guard slot == .leaf(key: key, value: value) else { return false }
            }
        }
        return true
    }
}

/// A state map kept in memory (tests, verification tools, rebuilds).
public struct InMemoryStateMapStorage: StateMapStorage, Sendable {
    /// Branches by prefix.
    public private(set) var branches: [[UInt8]: StateMapBranch] = [:]
    private var stale: Set<[UInt8]> = []

    /// An empty storage.
    public init() {}

    public mutating func branch(prefix: [UInt8]) throws(StratosError) -> StateMapBranch? { branches[prefix] }
    public mutating func setBranch(prefix: [UInt8], _ branch: StateMapBranch?) throws(StratosError) {
        branches[prefix] = branch
        if branch == nil { stale.remove(prefix) }
    }
    public mutating func markStale(prefix: [UInt8]) { stale.insert(prefix) }
    public mutating func isStale(prefix: [UInt8]) -> Bool { stale.contains(prefix) }
    public mutating func takeStale(prefix: [UInt8]) -> Bool { stale.remove(prefix) != nil }
}
