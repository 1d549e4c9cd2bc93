/// Verification of RFC 6962 proofs, following the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.
///
/// Verifiers need only the proof and the roots; they never hold the tree.
public enum MerkleProof {
    /// Checks that `leafHash` is leaf `leafIndex` of the tree of `treeSize` leaves whose root is `root`.
    public static func verifyInclusion(
        leafHash: Hash256, leafIndex: Int, treeSize: Int, path: [Hash256], root: Hash256
    ) throws(StratosError) {
        guard try rootFromInclusion(leafHash: leafHash, leafIndex: leafIndex, treeSize: treeSize, path: path) == root
        else {
            throw StratosError(.invalidProof, "inclusion proof does not lead to the expected root")
        }
    }

    /// Recomputes the root implied by an inclusion proof (RFC 9162 §2.1.3.2).
    public static func rootFromInclusion(
        leafHash: Hash256, leafIndex: Int, treeSize: Int, path: [Hash256]
    ) throws(StratosError) -> Hash256 {
        guard leafIndex >= 0, leafIndex < treeSize else {
            throw StratosError(.invalidProof, "leaf index \(leafIndex) is outside a tree of \(treeSize) leaves")
        }
        var index = leafIndex
        var lastIndex = treeSize - 1
        var result = leafHash
        for sibling in path {
            guard lastIndex != 0 else { throw StratosError(.invalidProof, "inclusion proof is too long") }
            if index & 1 == 1 || index == lastIndex {
                result = MerkleTree.nodeHash(sibling, result)
                if index & 1 == 0 {
                    while index & 1 == 0 && index != 0 {
                        index >>= 1
                        lastIndex >>= 1
                    }
                }
            } else {
                result = MerkleTree.nodeHash(result, sibling)
            }
            index >>= 1
            lastIndex >>= 1
        }
        guard lastIndex == 0 else { throw StratosError(.invalidProof, "inclusion proof is too short") }
        return result
    }

    /// Checks that the tree of `newSize` leaves with root `newRoot` extends the tree of `oldSize`
    /// leaves with root `oldRoot` (RFC 9162 §2.1.4.2).
    public static func verifyConsistency(
        oldSize: Int, newSize: Int, oldRoot: Hash256, newRoot: Hash256, proof: [Hash256]
    ) throws(StratosError) {
        guard oldSize >= 0, oldSize <= newSize else {
            throw StratosError(.invalidProof, "old size \(oldSize) is larger than new size \(newSize)")
        }
        if oldSize == newSize {
            guard proof.isEmpty, oldRoot == newRoot else {
                throw StratosError(.invalidProof, "equal sizes need an empty proof and equal roots")
            }
            return
        }
        if oldSize == 0 {
            guard proof.isEmpty else { throw StratosError(.invalidProof, "a proof from the empty tree is empty") }
            return
        }
        guard !proof.isEmpty else { throw StratosError(.invalidProof, "consistency proof is empty") }

        var path = proof
        // When the old tree is a complete subtree, its root is the implicit first proof element.
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        var first = oldSize - 1
        var second = newSize - 1
        while first & 1 == 1 {
            first >>= 1
            second >>= 1
        }
        var oldResult = path[0]
        var newResult = path[0]
        for element in path.dropFirst() {
            guard second != 0 else { throw StratosError(.invalidProof, "consistency proof is too long") }
            if first & 1 == 1 || first == second {
                oldResult = MerkleTree.nodeHash(element, oldResult)
                newResult = MerkleTree.nodeHash(element, newResult)
                if first & 1 == 0 {
                    while first & 1 == 0 && first != 0 {
                        first >>= 1
                        second >>= 1
                    }
                }
            } else {
                newResult = MerkleTree.nodeHash(newResult, element)
            }
            first >>= 1
            second >>= 1
        }
        guard second == 0 else { throw StratosError(.invalidProof, "consistency proof is too short") }
        guard oldResult == oldRoot, newResult == newRoot else {
            throw StratosError(.invalidProof, "consistency proof does not match the roots")
        }
    }
}
