import Foundation
import Ledger
import StratosCore
import StratosTestSupport
import Testing

/// The write-ahead log and the LMDB block store, on real files.
@Suite struct StorageTests {
    let fixture = Fixture()

    func records() -> [WALRecord] {
        let block = fixture.block(time: 2_000)
        let vote = fixture.vote(.prevote, round: 0, block, by: fixture.keys[1])
        return [
            .proposal(fixture.proposal(block, round: 0), block), .vote(vote), .timeout(ConsensusTimeout(height: 1, round: 0, step: .propose)),
            .signed(SignedRecord(height: 1, round: 0, step: .prevote, signBytes: vote.signBytes(chainID: Fixture.chainID), signature: vote.signature)),
        ]
    }

    @Test("the log reads back what was appended, and a torn tail is cut at the last whole record")
    func tornTail() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/consensus.wal"
        let written = records()
        do {
            let wal = try WriteAheadLog(path: path)
            for (index, record) in written.enumerated() { try wal.append(record, sync: index == written.count - 1) }
        }
        #expect(try WriteAheadLog(path: path).readAll() == written)
        // A crash in the middle of the last append: its frame is cut short.
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(size - 7))
        try handle.close()
        let wal = try WriteAheadLog(path: path)
        #expect(try wal.readAll() == Array(written.dropLast()))
        // The file was cut at the boundary, so the next append lands cleanly.
        try wal.append(written.last!, sync: true)
        #expect(try WriteAheadLog(path: path).readAll() == written)
        // A flipped byte in a record fails its checksum: everything from it on is dropped.
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try WriteAheadLog(path: path).readAll().count < written.count)
        try wal.reset()
        #expect(try WriteAheadLog(path: path).readAll().isEmpty)
    }

    @Test("the block store keeps blocks, commits, validator sets, state and anchors, and reads them from another handle")
    func blockStore() throws {
        let directory = try TemporaryDirectory()
        let store = try BlockStore(directory: directory.path)
        let solo = Fixture(validatorCount: 1)
        var machine = LedgerMachine(state: solo.state, lastCommit: nil, key: solo.keys[0], timeouts: .loopback)
        let leaves = (0..<5).map { AnchorLeaf(space: "s\(String(repeating: "b", count: 25))\($0)", seq: UInt64($0 + 1), commitHash: Hash256.sha256([UInt8($0)]).bytes) }
        let batch = AnchorBatch(leaves)
        let anchor = Transaction(chainID: Fixture.chainID, key: solo.keys[0], nonce: 0, fee: 10, body: .anchor(root: batch.root, size: UInt64(batch.size)))
        _ = machine.handle(.submit(anchor.encoded), nowMilliseconds: 5_000)
        let actions = machine.handle(.start, nowMilliseconds: 5_001)
        guard let (committed, state) = actions.compactMap({ if case .store(let block, let state) = $0 { (block, state) } else { nil } }).first else {
            Issue.record("no block decided")
            return
        }
        let index = UInt64(committed.block.transactions.firstIndex(of: anchor.encoded)!)
        let paths = batch.allPaths
        let locations = batch.leaves.enumerated().map { AnchorLocation(height: 1, transactionIndex: index, leafIndex: UInt64($0), batchSize: 5, path: paths[$0], leaf: $1) }
        try store.save(committed, state: state, decidedBy: state.lastValidators!, anchors: locations)
        let reader = try BlockStore(directory: directory.path, readOnly: true)
        #expect(try reader.block(at: 1) == committed.block)
        #expect(try reader.commit(at: 1) == committed.commit)
        #expect(try reader.latestState()?.appHash == state.appHash)
        #expect(try reader.transactionLocation(anchor.hash)?.height == 1)
        #expect(try reader.anchoredSeq(space: leaves[3].space) == 4)
        for leaf in leaves {
            let proof = try #require(try reader.anchorProof(space: leaf.space, seq: leaf.seq))
            _ = try proof.verify(space: leaf.space, commitHash: leaf.commitHash, trusted: solo.validators)
        }
        #expect(try reader.anchorProof(space: leaves[0].space, seq: 99) == nil)
        #expect(try reader.block(at: 2) == nil)
    }
}
