/// An append-only Merkle tree with the hashing of RFC 6962 §2.1 (also RFC 9162 §2.1).
///
/// Leaves are hashed as `SHA-256(0x00 ‖ data)` and interior nodes as `SHA-256(0x01 ‖ left ‖ right)`;
/// the different prefixes stop a leaf from being passed off as an interior node (second-preimage
/// attack). A tree of `n` leaves splits at `k`, the largest power of two smaller than `n`.
public struct MerkleTree: Sendable {
    /// The leaf hashes, in order.
    public private(set) var leafHashes: [Hash256] = []

    /// Creates an empty tree.
    public init() {}

    /// Creates a tree over raw leaf data.
    public init<Leaves: Sequence<[UInt8]>>(leaves: Leaves) {
        for leaf in leaves { append(leaf) }
    }

    /// The number of leaves.
    public var size: Int { leafHashes.count }

    /// Appends raw leaf data.
    public mutating func append(_ data: [UInt8]) { leafHashes.append(MerkleTree.leafHash(data)) }

    /// Appends an already computed leaf hash.
    public mutating func append(leafHash: Hash256) { leafHashes.append(leafHash) }

    /// `SHA-256(0x00 ‖ data)` (RFC 6962 §2.1).
    public static func leafHash<Bytes: Collection<UInt8>>(_ data: Bytes) -> Hash256 {
        var hasher = SHA256Hasher()
        hasher.update([0x00])
        hasher.update(data)
        return hasher.finalize()
    }

    /// `SHA-256(0x01 ‖ left ‖ right)` (RFC 6962 §2.1).
    public static func nodeHash(_ left: Hash256, _ right: Hash256) -> Hash256 {
        var hasher = SHA256Hasher()
        hasher.update([0x01])
        hasher.update(left.bytes)
        hasher.update(right.bytes)
        return hasher.finalize()
    }

    /// The hash of the empty tree: `SHA-256()` of no bytes (RFC 6962 §2.1).
    public static let emptyRoot = Hash256.sha256([UInt8]())

    /// The root of the tree made of the first `size` leaves (defaults to all of them).
    public func root(size requested: Int? = nil) throws(StratosError) -> Hash256 {
        let size = requested ?? self.size
        guard size >= 0, size <= self.size else {
            throw StratosError(.invalidArgument, "tree size \(size) is outside 0...\(self.size)")
        }
        if size == 0 { return MerkleTree.emptyRoot }
        return subtreeHash(0..<size)
    }

    /// The audit path for leaf `index` in the tree of the first `size` leaves (RFC 6962 §2.1.1).
    public func inclusionProof(leafIndex index: Int, treeSize size: Int) throws(StratosError) -> [Hash256] {
        guard size <= self.size, index >= 0, index < size else {
            throw StratosError(.invalidArgument, "leaf \(index) is not in a tree of \(size) leaves")
        }
        var path: [Hash256] = []
        collectPath(index: index, range: 0..<size, into: &path)
        return path
    }

    /// The consistency proof between the trees of `oldSize` and `newSize` leaves (RFC 6962 §2.1.2).
    public func consistencyProof(oldSize: Int, newSize: Int) throws(StratosError) -> [Hash256] {
        guard oldSize >= 0, oldSize <= newSize, newSize <= self.size else {
            throw StratosError(.invalidArgument, "no consistency proof from size \(oldSize) to \(newSize)")
        }
        if oldSize == 0 || oldSize == newSize { return [] }
        var proof: [Hash256] = []
        collectSubproof(oldSize: oldSize, range: 0..<newSize, isCompleteSubtree: true, into: &proof)
        return proof
    }

    /// The audit path of every leaf of the whole tree, in O(n log n) hashes (asking
    /// `inclusionProof` for each leaf in turn would rehash subtrees: O(n²) for n leaves).
    public func allInclusionProofs() -> [[Hash256]] {
        guard !leafHashes.isEmpty else { return [] }
        var paths = [[Hash256]](repeating: [], count: leafHashes.count)
        _ = collectAllPaths(0..<leafHashes.count, into: &paths)
        return paths
    }

    /// Returns the subtree's hash; appends the sibling hashes to the paths of its leaves,
    /// innermost first (the order of RFC 6962 §2.1.1 paths).
    private func collectAllPaths(_ range: Range<Int>, into paths: inout [[Hash256]]) -> Hash256 {
        if range.count == 1 { return leafHashes[range.lowerBound] }
        let middle = range.lowerBound + MerkleTree.splitPoint(range.count)
        let left = collectAllPaths(range.lowerBound..<middle, into: &paths)
        let right = collectAllPaths(middle..<range.upperBound, into: &paths)
        for index in range.lowerBound..<middle { paths[index].append(right) }
        for index in middle..<range.upperBound { paths[index].append(left) }
        return MerkleTree.nodeHash(left, right)
    }

    // MARK: - Recursive definitions of RFC 6962 §2.1

    /// The largest power of two strictly smaller than `count` (`count` ≥ 2).
    static func splitPoint(_ count: Int) -> Int {
        precondition(count >= 2)
        var split = 1
        while split << 1 < count { split <<= 1 }
        return split
    }

    private func subtreeHash(_ range: Range<Int>) -> Hash256 {
        if range.count == 1 { return leafHashes[range.lowerBound] }
        let middle = range.lowerBound + MerkleTree.splitPoint(range.count)
        return MerkleTree.nodeHash(subtreeHash(range.lowerBound..<middle), subtreeHash(middle..<range.upperBound))
    }

    private func collectPath(index: Int, range: Range<Int>, into path: inout [Hash256]) {
        if range.count == 1 { return }
        let middle = range.lowerBound + MerkleTree.splitPoint(range.count)
        if index < middle {
            collectPath(index: index, range: range.lowerBound..<middle, into: &path)
            path.append(subtreeHash(middle..<range.upperBound))
        } else {
            collectPath(index: index, range: middle..<range.upperBound, into: &path)
            path.append(subtreeHash(range.lowerBound..<middle))
        }
    }

    /// SUBPROOF(m, D[n], b) of RFC 6962 §2.1.2, with `range` standing for D[n].
    private func collectSubproof(oldSize: Int, range: Range<Int>, isCompleteSubtree: Bool, into proof: inout [Hash256]) {
        if oldSize == range.count {
            if !isCompleteSubtree { proof.append(subtreeHash(range)) }
            return
        }
        let split = MerkleTree.splitPoint(range.count)
        let middle = range.lowerBound + split
        if oldSize <= split {
            collectSubproof(
                oldSize: oldSize, range: range.lowerBound..<middle, isCompleteSubtree: isCompleteSubtree, into: &proof)
            proof.append(subtreeHash(middle..<range.upperBound))
        } else {
            collectSubproof(
                oldSize: oldSize - split, range: middle..<range.upperBound, isCompleteSubtree: false, into: &proof)
            proof.append(subtreeHash(range.lowerBound..<middle))
        }
    }
}
