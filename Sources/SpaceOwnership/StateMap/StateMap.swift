import StratosCore

/// Where a state map keeps its branches: keyed by prefix (nibbles). The node implements it on
/// the space's SQLite file; tests use a dictionary.
public protocol StateMapStorage {
    /// The branch with `prefix`, if stored.
    mutating func branch(prefix: [UInt8]) throws(StratosError) -> StateMapBranch?
    /// Stores (or, with nil, removes) the branch with `prefix`.
    mutating func setBranch(prefix: [UInt8], _ branch: StateMapBranch?) throws(StratosError)
}

/// A deterministic authenticated map from 32-byte keys to 32-byte values: a 16-way Merkle
/// Patricia trie (the shape of Ethereum's, without extension nodes).
///
/// Invariants, which make the shape — and so the root — depend only on the set of entries:
/// the root branch has depth 0; every other branch holds at least two entries and sits at the
/// depth of the longest prefix its keys share. Updating one key reads and rewrites the branches
/// on its path, about log16(n) of them; a proof is those branches (see `StateMapProof`).
public struct StateMap<Storage: StateMapStorage> {
    /// The branch storage.
    public var storage: Storage

    /// A map over `storage`.
    public init(storage: Storage) { self.storage = storage }

    /// The root hash of the empty map.
    public static var emptyRoot: [UInt8] { StateMapBranch(prefix: []).hash }

    /// The root hash.
    public mutating func root() throws(StratosError) -> [UInt8] {
        try storage.branch(prefix: [])?.hash ?? Self.emptyRoot
    }

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
                    branch.slots[slot] = .branch(prefix: split.prefix, hash: split.hash)
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
                branch.slots[slot] = .branch(prefix: split.prefix, hash: split.hash)
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
        try proof(for: key)?.value
    }

    private mutating func storeUpwards(_ start: StateMapBranch, path: [StateMapBranch], nibbles: [UInt8]) throws(StratosError) {
        var child = start
        try storage.setBranch(prefix: child.prefix, child)
        for var parent in path.reversed() {
            parent.slots[Int(nibbles[parent.depth])] = .branch(prefix: child.prefix, hash: child.hash)
            try storage.setBranch(prefix: parent.prefix, parent)
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

    /// An empty storage.
    public init() {}

    public mutating func branch(prefix: [UInt8]) throws(StratosError) -> StateMapBranch? { branches[prefix] }
    public mutating func setBranch(prefix: [UInt8], _ branch: StateMapBranch?) throws(StratosError) { branches[prefix] = branch }
}
