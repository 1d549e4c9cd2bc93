import StratosCore

/// Where a state map keeps its branches: keyed by prefix. The node implements it on the space's
/// SQLite file; tests use a dictionary.
public protocol StateMapStorage {
    /// The branch with `prefix`, if stored.
    mutating func branch(prefix: NibblePath) throws(StratosError) -> StateMapBranch?
    /// Stores (or, with nil, removes) the branch with `prefix`.
    mutating func setBranch(prefix: NibblePath, _ branch: StateMapBranch?) throws(StratosError)
    /// Records that the branch's child hashes may be out of date.
    mutating func markStale(prefix: NibblePath)
    /// Whether the branch is stale.
    mutating func isStale(prefix: NibblePath) -> Bool
    /// Clears the mark; returns whether it was set.
    mutating func takeStale(prefix: NibblePath) -> Bool
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
///
/// Keys, values, hashes and prefixes are inline values (`Digest32`, `NibblePath`): an update
/// allocates only the branches it rewrites.
public struct StateMap<Storage: StateMapStorage> {
    /// The branch storage.
    public var storage: Storage

    /// A map over `storage`.
    public init(storage: Storage) { self.storage = storage }

    /// The root hash of the empty map.
    public static var emptyRoot: Digest32 { StateMapBranch(prefix: .empty).hash }

    /// The root hash (recomputing stale branches first).
    public mutating func root() throws(StratosError) -> Digest32 {
        try resolve(.empty)?.hash ?? Self.emptyRoot
    }

    /// Brings a stale branch's child hashes up to date, children first; returns the branch.
    private mutating func resolve(_ prefix: NibblePath) throws(StratosError) -> StateMapBranch? {
        guard var branch = try storage.branch(prefix: prefix) else { return nil }
        guard storage.takeStale(prefix: prefix) else { return branch }
        for index in 0..<16 {
            guard case .branch(let childPrefix, _) = branch.slots[index], storage.isStale(prefix: childPrefix) else { continue }
            guard let child = try resolve(childPrefix) else {
                throw StratosError(.invalidProof, "state map is missing a branch its parent names")
            }
            branch.setSlot(index, .branch(prefix: childPrefix, hash: child.hash))
        }
        branch.computeDigests()
        try storage.setBranch(prefix: prefix, branch)
        return branch
    }

    /// Sets `key` to `value`.
    public mutating func set(_ key: Digest32, _ value: Digest32) throws(StratosError) {
        var path: [StateMapBranch] = []
        var branch = try storage.branch(prefix: .empty) ?? StateMapBranch(prefix: .empty)
        while true {
            let slot = Int(StateMapKey.nibble(key, branch.depth))
            switch branch.slots[slot] {
            case .empty:
                branch.setSlot(slot, .leaf(key: key, value: value))
            case .leaf(let existingKey, let existingValue):
                if existingKey == key {
                    branch.setSlot(slot, .leaf(key: key, value: value))
                } else {
                    let shared = StateMapKey.sharedCount(key, existingKey)
                    var split = StateMapBranch(prefix: NibblePath(prefixOf: key, count: shared))
                    split.setSlot(Int(StateMapKey.nibble(key, shared)), .leaf(key: key, value: value))
                    split.setSlot(Int(StateMapKey.nibble(existingKey, shared)), .leaf(key: existingKey, value: existingValue))
                    try storage.setBranch(prefix: split.prefix, split)
                    storage.markStale(prefix: split.prefix)
                    branch.setSlot(slot, .branch(prefix: split.prefix, hash: .zero))
                }
            case .branch(let childPrefix, let childHash):
                if childPrefix.isPrefix(of: key) {
                    guard let child = try storage.branch(prefix: childPrefix) else {
                        throw StratosError(.invalidProof, "state map is missing a branch its parent names")
                    }
                    path.append(branch)
                    branch = child
                    continue
                }
                // The new key leaves the child's prefix early: a branch at the split point holds both.
                let shared = childPrefix.sharedCount(with: key)
                var split = StateMapBranch(prefix: NibblePath(prefixOf: key, count: shared))
                split.setSlot(Int(childPrefix[shared]), .branch(prefix: childPrefix, hash: childHash))
                split.setSlot(Int(StateMapKey.nibble(key, shared)), .leaf(key: key, value: value))
                try storage.setBranch(prefix: split.prefix, split)
                storage.markStale(prefix: split.prefix)
                // The hash is a placeholder until `resolve` recomputes the stale branch.
                branch.setSlot(slot, .branch(prefix: split.prefix, hash: .zero))
            }
            break
        }
        try storeUpwards(branch, path: path, key: key)
    }

    /// Removes `key`; false when it was absent.
    @discardableResult
    public mutating func remove(_ key: Digest32) throws(StratosError) -> Bool {
        var path: [StateMapBranch] = []
        guard var branch = try storage.branch(prefix: .empty) else { return false }
        while true {
            let slot = Int(StateMapKey.nibble(key, branch.depth))
            switch branch.slots[slot] {
            case .empty:
                return false
            case .leaf(let existingKey, _):
                guard existingKey == key else { return false }
                branch.setSlot(slot, .empty)
            case .branch(let childPrefix, _):
                guard childPrefix.isPrefix(of: key), let child = try storage.branch(prefix: childPrefix) else { return false }
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
            parent.setSlot(Int(StateMapKey.nibble(key, parent.depth)), survivor)
            branch = parent
        }
        try storeUpwards(branch, path: path, key: key)
        return true
    }

    /// The branches from the root to the one holding `key`'s slot; nil when `key` is absent.
    public mutating func proof(for key: Digest32) throws(StratosError) -> StateMapProof? {
        _ = try root()  // Proofs need current hashes.
        var branches: [StateMapBranch] = []
        guard var branch = try storage.branch(prefix: .empty) else { return nil }
        while true {
            branches.append(branch)
            switch branch.slots[Int(StateMapKey.nibble(key, branch.depth))] {
            case .leaf(let existingKey, let value):
                return existingKey == key ? StateMapProof(key: key.bytes, value: value.bytes, branches: branches) : nil
            case .branch(let childPrefix, _):
                guard childPrefix.isPrefix(of: key), let child = try storage.branch(prefix: childPrefix) else { return nil }
                branch = child
            case .empty:
                return nil
            }
        }
    }

    /// The value stored at `key`.
    public mutating func value(for key: Digest32) throws(StratosError) -> Digest32? {
        guard var branch = try storage.branch(prefix: .empty) else { return nil }
        while true {
            switch branch.slots[Int(StateMapKey.nibble(key, branch.depth))] {
            case .leaf(let existingKey, let value): return existingKey == key ? value : nil
            case .branch(let childPrefix, _):
                guard childPrefix.isPrefix(of: key), let child = try storage.branch(prefix: childPrefix) else { return nil }
                branch = child
            case .empty: return nil
            }
        }
    }

    /// Stores the changed branch and marks it and every ancestor on the path stale; a parent's
    /// slot keeps naming the child (its hash is recomputed by `resolve`).
    private mutating func storeUpwards(_ start: StateMapBranch, path: [StateMapBranch], key: Digest32) throws(StratosError) {
        var child = start
        try storage.setBranch(prefix: child.prefix, child)
        storage.markStale(prefix: child.prefix)
        for var parent in path.reversed() {
            let index = Int(StateMapKey.nibble(key, parent.depth))
            if case .branch(let named, _) = parent.slots[index], named == child.prefix, storage.isStale(prefix: parent.prefix) {
                child = parent  // Already stale and already naming this child: nothing to rewrite.
                continue
            }
            if case .branch(let named, _) = parent.slots[index], named == child.prefix {
                // Same child, hash pending: only the stale mark is needed.
            } else {
                parent.setSlot(index, .branch(prefix: child.prefix, hash: .zero))
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
        guard key.count == 32, value.count == 32, root.count == 32, let first = branches.first, first.depth == 0,
            first.hash == Digest32(root), branches.count <= StateMapKey.nibbleCount
        else { return false }
        let key = Digest32(self.key)
        let value = Digest32(self.value)
        for (index, branch) in branches.enumerated() {
            guard branch.depth < StateMapKey.nibbleCount, branch.prefix.isPrefix(of: key), branch.slots.count == 16 else { return false }
            let slot = branch.slots[Int(StateMapKey.nibble(key, branch.depth))]
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
    public private(set) var branches: [NibblePath: StateMapBranch] = [:]
    private var stale: Set<NibblePath> = []

    /// An empty storage.
    public init() {}

    public mutating func branch(prefix: NibblePath) throws(StratosError) -> StateMapBranch? { branches[prefix] }
    public mutating func setBranch(prefix: NibblePath, _ branch: StateMapBranch?) throws(StratosError) {
        branches[prefix] = branch
        if branch == nil { stale.remove(prefix) }
    }
    public mutating func markStale(prefix: NibblePath) { stale.insert(prefix) }
    public mutating func isStale(prefix: NibblePath) -> Bool { stale.contains(prefix) }
    public mutating func takeStale(prefix: NibblePath) -> Bool { stale.remove(prefix) != nil }
}

extension StateMap {
    /// Sets `key` to `value` (32-byte digests).
    public mutating func set(_ key: [UInt8], _ value: [UInt8]) throws(StratosError) {
        precondition(key.count == 32 && value.count == 32, "state map keys and values are 32-byte digests")
        try set(Digest32(key), Digest32(value))
    }

    /// Removes `key` (a 32-byte digest); false when it was absent.
    @discardableResult
    public mutating func remove(_ key: [UInt8]) throws(StratosError) -> Bool {
        precondition(key.count == 32, "state map keys are 32-byte digests")
        return try remove(Digest32(key))
    }

    /// The proof for `key` (a 32-byte digest).
    public mutating func proof(for key: [UInt8]) throws(StratosError) -> StateMapProof? {
        guard key.count == 32 else { return nil }
        return try proof(for: Digest32(key))
    }

    /// The value stored at `key` (a 32-byte digest).
    public mutating func value(for key: [UInt8]) throws(StratosError) -> [UInt8]? {
        guard key.count == 32 else { return nil }
        return try value(for: Digest32(key))?.bytes
    }
}
