import StratosCore

/// One space's head commit, as a leaf of an anchor batch.
public struct AnchorLeaf: Hashable, Sendable {
    /// The space ID text ("s" + 26 base32 characters).
    public let space: String
    public let seq: UInt64
    /// BLAKE2b-256 of the signed commit (what the next commit's `prevHash` names).
    public let commitHash: [UInt8]

    public init(space: String, seq: UInt64, commitHash: [UInt8]) {
        self.space = space
        self.seq = seq
        self.commitHash = commitHash
    }

    static let domain = "stratosdb/anchor-leaf/v1"

    /// The leaf data hashed into the batch tree (`SHA-256(0x00 ‖ bytes)`, RFC 6962).
    public var bytes: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(Self.domain)
        encoder.write(space)
        encoder.write(seq)
        encoder.write(bytes: commitHash)
        return encoder.bytes
    }
}

/// A batch of space heads anchored by one transaction: an RFC 6962 tree over the leaves, of
/// which only the root and size go on chain.
public struct AnchorBatch: Sendable {
    public let leaves: [AnchorLeaf]
    private let tree: MerkleTree

    /// Builds the tree; leaves are sorted by space so the batch is canonical.
    public init(_ leaves: [AnchorLeaf]) {
        self.leaves = leaves.sorted { $0.space < $1.space }
        tree = MerkleTree(leaves: self.leaves.map(\.bytes))
    }

    public var root: Hash256 { (try? tree.root()) ?? MerkleTree.emptyRoot }
    public var size: Int { leaves.count }

    /// The audit path of leaf `index`.
    public func path(_ index: Int) -> [Hash256] { (try? tree.inclusionProof(leafIndex: index, treeSize: size)) ?? [] }

    /// Every leaf's audit path at once, in O(n log n).
    public var allPaths: [[Hash256]] { tree.allInclusionProofs() }
}
