import StratosCore

/// Where an anchored space commit is: the block, the anchor transaction, and the commit's
/// leaf and audit path in the anchor batch.
public struct AnchorLocation: Hashable, Sendable {
    public let height: UInt64
    public let transactionIndex: UInt64
    public let leafIndex: UInt64
    public let batchSize: UInt64
    public let path: [Hash256]
    public let leaf: AnchorLeaf

    public init(height: UInt64, transactionIndex: UInt64, leafIndex: UInt64, batchSize: UInt64, path: [Hash256], leaf: AnchorLeaf) {
        self.height = height
        self.transactionIndex = transactionIndex
        self.leafIndex = leafIndex
        self.batchSize = batchSize
        self.path = path
        self.leaf = leaf
    }

    var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(height)
        encoder.write(transactionIndex)
        encoder.write(leafIndex)
        encoder.write(batchSize)
        encoder.write(UInt32(path.count))
        for hash in path { encoder.write(hash: hash) }
        encoder.write(leaf.space)
        encoder.write(leaf.seq)
        encoder.write(bytes: leaf.commitHash)
        return encoder.bytes
    }

    init(decoding bytes: [UInt8]) throws(LedgerError) {
        self = try ledgerDecode("anchor location") { () throws(StratosError) -> AnchorLocation in
            var decoder = CanonicalDecoder(bytes)
            let height = try decoder.readUInt64()
            let transactionIndex = try decoder.readUInt64()
            let leafIndex = try decoder.readUInt64()
            let batchSize = try decoder.readUInt64()
            var path: [Hash256] = []
            for _ in 0..<(try decoder.readCount(max: 64)) { path.append(try decoder.readHash()) }
            let leaf = AnchorLeaf(space: try decoder.readString(maxCount: 64), seq: try decoder.readUInt64(), commitHash: try decoder.readBytes(maxCount: 32))
            try decoder.finish()
            return AnchorLocation(height: height, transactionIndex: transactionIndex, leafIndex: leafIndex, batchSize: batchSize, path: path, leaf: leaf)
        }
    }
}

/// The node's chain on disk (LMDB): blocks and their commits by height, the validator set that
/// decided each height, the state after the last block, a transaction index, and where each
/// anchored space commit is. One write transaction per decided block, durable on return.
public final class BlockStore: Sendable {
    private let environment: LMDBEnvironment

    static let databases = ["blocks", "commits", "validators", "state", "transactions", "anchors", "anchorHeads"]

    /// Opens (creating unless `readOnly`) the store in `directory`.
    public init(directory: String, readOnly: Bool = false) throws(LedgerError) {
        environment = try LMDBEnvironment(directory: directory, databaseNames: Self.databases, readOnly: readOnly)
    }

    static func heightKey(_ height: UInt64) -> [UInt8] { withUnsafeBytes(of: height.bigEndian) { Array($0) } }

    static func anchorKey(space: String, seq: UInt64) -> [UInt8] { Array(space.utf8) + [0] + heightKey(seq) }

    /// Stores a decided block, its commit, the set that decided it, the state after it, and the
    /// anchors it carries, in one durable transaction.
    public func save(_ committed: CommittedBlock, state: ChainState, decidedBy validators: ValidatorSet, anchors: [AnchorLocation]) throws(LedgerError) {
        let height = committed.block.height
        var commitEncoder = CanonicalEncoder()
        committed.commit.encode(into: &commitEncoder)
        var validatorEncoder = CanonicalEncoder()
        validators.encode(into: &validatorEncoder)
        try environment.withTransaction(write: true) { transaction throws(LedgerError) in
            let key = Self.heightKey(height)
            try transaction.put("blocks", key, committed.block.encoded)
            try transaction.put("commits", key, commitEncoder.bytes)
            try transaction.put("validators", key, validatorEncoder.bytes)
            try transaction.put("state", [0], state.encoded)
            for (index, bytes) in committed.block.transactions.enumerated() {
                try transaction.put("transactions", Hash256.sha256(bytes).bytes, key + Self.heightKey(UInt64(index)))
            }
            for anchor in anchors {
                try transaction.put("anchors", Self.anchorKey(space: anchor.leaf.space, seq: anchor.leaf.seq), anchor.encoded)
                try transaction.put("anchorHeads", Array(anchor.leaf.space.utf8), Self.heightKey(anchor.leaf.seq))
            }
        }
    }

    /// The state after the last stored block, or nil for a new chain.
    public func latestState() throws(LedgerError) -> ChainState? {
        guard let bytes = try environment.withTransaction(write: false, { transaction throws(LedgerError) in try transaction.get("state", [0]) }) else { return nil }
        return try ChainState(decoding: bytes)
    }

    public func block(at height: UInt64) throws(LedgerError) -> Block? {
        guard let bytes = try environment.withTransaction(write: false, { transaction throws(LedgerError) in try transaction.get("blocks", Self.heightKey(height)) }) else { return nil }
        return try Block(decoding: bytes)
    }

    public func commit(at height: UInt64) throws(LedgerError) -> Commit? {
        guard let bytes = try environment.withTransaction(write: false, { transaction throws(LedgerError) in try transaction.get("commits", Self.heightKey(height)) }) else { return nil }
        return try ledgerDecode("commit") { () throws(StratosError) -> Commit in
            var decoder = CanonicalDecoder(bytes)
            let commit = try Commit(from: &decoder)
            try decoder.finish()
            return commit
        }
    }

    /// The validator set that decided `height`.
    public func validators(at height: UInt64) throws(LedgerError) -> ValidatorSet? {
        guard let bytes = try environment.withTransaction(write: false, { transaction throws(LedgerError) in try transaction.get("validators", Self.heightKey(height)) }) else { return nil }
        var decoder = CanonicalDecoder(bytes)
        return try ValidatorSet(from: &decoder)
    }

    /// Decided blocks from `height` on, with their commits, at most `limit`.
    public func committedBlocks(from height: UInt64, limit: Int) throws(LedgerError) -> [CommittedBlock] {
        var result: [CommittedBlock] = []
        var next = height
        while result.count < limit, let block = try block(at: next), let commit = try commit(at: next) {
            result.append(CommittedBlock(block: block, commit: commit))
            next += 1
        }
        return result
    }

    /// The height and index of a transaction by its hash.
    public func transactionLocation(_ hash: Hash256) throws(LedgerError) -> (height: UInt64, index: UInt64)? {
        guard let bytes = try environment.withTransaction(write: false, { transaction throws(LedgerError) in try transaction.get("transactions", hash.bytes) }),
            bytes.count == 16
        else { return nil }
        let height = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let index = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (height, index)
    }

    /// Where commit `seq` of `space` was anchored, if it was.
    public func anchor(space: String, seq: UInt64) throws(LedgerError) -> AnchorLocation? {
        guard let bytes = try environment.withTransaction(write: false, { transaction throws(LedgerError) in try transaction.get("anchors", Self.anchorKey(space: space, seq: seq)) }) else { return nil }
        return try AnchorLocation(decoding: bytes)
    }

    /// The highest anchored commit of `space`.
    public func anchoredSeq(space: String) throws(LedgerError) -> UInt64? {
        guard let bytes = try environment.withTransaction(write: false, { transaction throws(LedgerError) in try transaction.get("anchorHeads", Array(space.utf8)) }),
            bytes.count == 8
        else { return nil }
        return bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    /// The full anchor proof of commit `seq` of `space` (nil when it is not anchored yet).
    public func anchorProof(space: String, seq: UInt64) throws(LedgerError) -> AnchorProof? {
        guard let location = try anchor(space: space, seq: seq), let block = try block(at: location.height),
            let commit = try commit(at: location.height), let validators = try validators(at: location.height),
            location.transactionIndex < UInt64(block.transactions.count)
        else { return nil }
        let tree = MerkleTree(leaves: block.transactions)
        let index = Int(location.transactionIndex)
        let transactionPath: [Hash256]
        do { transactionPath = try tree.inclusionProof(leafIndex: index, treeSize: block.transactions.count) } catch {
            throw LedgerError(.storage, "stored block \(location.height) cannot prove its transaction \(index)")
        }
        return AnchorProof(
            leaf: location.leaf, leafIndex: location.leafIndex, batchSize: location.batchSize, batchPath: location.path,
            transaction: block.transactions[index], transactionIndex: location.transactionIndex,
            transactionCount: UInt64(block.transactions.count), transactionPath: transactionPath, header: block.header, commit: commit,
            validators: validators)
    }
}
