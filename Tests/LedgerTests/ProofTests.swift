import Ledger
import StratosCore
import Testing

/// Anchor proofs and the light client: every link is checked, and a proof with any link
/// changed is refused (the immudb lesson: verify every link, not just the ends).
@Suite struct ProofTests {
    let fixture = Fixture()

    /// A chain whose block 1 anchors a batch of `count` space heads; returns the proof for leaf `index`.
    func anchoredProof(count: Int, index: Int) throws -> (AnchorProof, AnchorLeaf) {
        let leaves = (0..<count).map { AnchorLeaf(space: "s\(String(repeating: "a", count: 25))\($0 % 10)", seq: UInt64($0 + 1), commitHash: Hash256.sha256([UInt8($0 & 0xff), UInt8($0 >> 8)]).bytes) }
        let unique = Dictionary(leaves.map { ($0.space, $0) }, uniquingKeysWith: { a, _ in a }).values
        let batch = AnchorBatch(Array(unique))
        let anchor = Transaction(chainID: Fixture.chainID, key: fixture.keys[0], nonce: 0, fee: 10, body: .anchor(root: batch.root, size: UInt64(batch.size)))
        var app = ChainApplication(state: fixture.state, proposerKey: fixture.validators.proposer, lastCommit: nil)
        let filler = Transaction(chainID: Fixture.chainID, key: fixture.keys[1], nonce: 0, fee: 10, body: .transfer(to: fixture.keys[2].publicKey, amount: 3))
        app.submit(filler.encoded)
        app.submit(anchor.encoded)
        app.nowMilliseconds = 2_000
        let block = app.proposeBlock(height: 1, round: 0)
        let commit = Commit(
            height: 1, round: 0, blockID: block.id,
            signatures: fixture.keys.map { CommitSignature(validator: $0.publicKey, signature: $0.sign(Vote.signBytes(type: .precommit, height: 1, round: 0, blockID: block.id, chainID: Fixture.chainID))) })
        let position = block.transactions.firstIndex(of: anchor.encoded)!
        let leafIndex = min(index, batch.size - 1)
        let tree = MerkleTree(leaves: block.transactions)
        let proof = AnchorProof(
            leaf: batch.leaves[leafIndex], leafIndex: UInt64(leafIndex), batchSize: UInt64(batch.size), batchPath: batch.path(leafIndex),
            transaction: anchor.encoded, transactionIndex: UInt64(position), transactionCount: UInt64(block.transactions.count),
            transactionPath: try tree.inclusionProof(leafIndex: position, treeSize: block.transactions.count), header: block.header,
            commit: commit, validators: fixture.validators)
        return (proof, batch.leaves[leafIndex])
    }

    @Test("an anchor proof verifies against the trusted validator set and survives encoding", arguments: [1, 3, 10])
    func verifies(count: Int) throws {
        let (proof, leaf) = try anchoredProof(count: count, index: count / 2)
        let verified = try proof.verify(space: leaf.space, commitHash: leaf.commitHash, trusted: fixture.validators)
        #expect(verified.height == 1 && verified.signedPower == verified.totalPower)
        let decoded = try AnchorProof(decoding: proof.encoded)
        #expect(decoded == proof)
        _ = try decoded.verify(space: leaf.space, commitHash: leaf.commitHash, trusted: fixture.validators)
    }

    @Test("every byte of an encoded anchor proof matters: each mutation is refused or changes nothing it proves")
    func mutations() throws {
        let (proof, leaf) = try anchoredProof(count: 7, index: 3)
        let bytes = proof.encoded
        var refused = 0
        for position in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 400)) {
            var mutated = bytes
            mutated[position] ^= 0x01
            guard let decoded = try? AnchorProof(decoding: mutated),
                (try? decoded.verify(space: leaf.space, commitHash: leaf.commitHash, trusted: fixture.validators)) != nil
            else {
                refused += 1
                continue
            }
            // A proposer-priority byte is not part of any hash; nothing else may slip through.
            #expect(decoded.validators.hash == proof.validators.hash && decoded.leaf == proof.leaf && decoded.header == proof.header,
                "mutation at byte \(position) was accepted")
        }
        #expect(refused > 0)
    }

    @Test("the proof fails for another commit, an unknown validator set, or a commit short of 2/3")
    func wrongInputs() throws {
        let (proof, leaf) = try anchoredProof(count: 4, index: 1)
        #expect(throws: LedgerError.self) { try proof.verify(space: leaf.space, commitHash: Hash256.sha256([0]).bytes, trusted: fixture.validators) }
        let strangers = Fixture(validatorCount: 4, powers: [1, 1, 1, 1])
        let otherKeys = (0..<4).map { try! SigningKey(seed: [UInt8](repeating: UInt8(40 + $0), count: 32)) }
        let foreign = try ValidatorSet.genesis(otherKeys.map { ($0.publicKey, 10) })
        _ = strangers
        #expect(throws: LedgerError.self) { try proof.verify(space: leaf.space, commitHash: leaf.commitHash, trusted: foreign) }
        let thin = AnchorProof(
            leaf: proof.leaf, leafIndex: proof.leafIndex, batchSize: proof.batchSize, batchPath: proof.batchPath, transaction: proof.transaction,
            transactionIndex: proof.transactionIndex, transactionCount: proof.transactionCount, transactionPath: proof.transactionPath,
            header: proof.header, commit: Commit(height: 1, round: 0, blockID: proof.commit.blockID, signatures: Array(proof.commit.signatures.prefix(2))),
            validators: proof.validators)
        #expect(throws: LedgerError.self) { try thin.verify(space: leaf.space, commitHash: leaf.commitHash, trusted: nil) }
    }

    @Test("skipping verification: a changed set is accepted when more than 1/3 of the trusted power signed, refused otherwise")
    func skipping() throws {
        // Header validators: keys 0-3 and a newcomer; trusted: keys 0-3.
        let newcomer = try SigningKey(seed: [UInt8](repeating: 77, count: 32))
        let trusted = fixture.validators
        let changed = try ValidatorSet.genesis(fixture.keys.map { ($0.publicKey, 10) } + [(newcomer.publicKey, 10)])
        var header = fixture.block(time: 2_000).header
        header.validatorsHash = changed.hash
        let id = header.hash
        func commit(_ signers: [SigningKey]) -> Commit {
            Commit(height: 1, round: 0, blockID: id, signatures: signers.map { CommitSignature(validator: $0.publicKey, signature: $0.sign(Vote.signBytes(type: .precommit, height: 1, round: 0, blockID: id, chainID: Fixture.chainID))) })
        }
        // Keys 1,2,3 and the newcomer: 40 of 50 (> 2/3 of the new set), 30 of 40 trusted (> 1/3).
        try LightClient.verify(header: header, commit: commit(Array(fixture.keys[1...]) + [newcomer]), headerValidators: changed, trusted: trusted, chainID: Fixture.chainID)
        // Without the header's own set, a changed set cannot be checked.
        #expect(throws: LedgerError.self) { try LightClient.verify(header: header, commit: commit(fixture.keys + [newcomer]), headerValidators: nil, trusted: trusted, chainID: Fixture.chainID) }
        // A set of strangers with one trusted signer (10 of 40, not > 1/3) is refused.
        let strangers = (0..<4).map { try! SigningKey(seed: [UInt8](repeating: UInt8(50 + $0), count: 32)) }
        let takeover = try ValidatorSet.genesis([(fixture.keys[0].publicKey, 10)] + strangers.map { ($0.publicKey, 10) })
        header.validatorsHash = takeover.hash
        let takeoverID = header.hash
        let forged = Commit(height: 1, round: 0, blockID: takeoverID, signatures: ([fixture.keys[0]] + strangers).map { CommitSignature(validator: $0.publicKey, signature: $0.sign(Vote.signBytes(type: .precommit, height: 1, round: 0, blockID: takeoverID, chainID: Fixture.chainID))) })
        #expect(throws: LedgerError.self) { try LightClient.verify(header: header, commit: forged, headerValidators: takeover, trusted: trusted, chainID: Fixture.chainID) }
    }
}

@Suite struct ValidatorSetTests {
    @Test("weighted round robin: over many heights each validator proposes in proportion to its power")
    func proposerFairness() throws {
        let keys = (0..<3).map { try! SigningKey(seed: [UInt8](repeating: UInt8(10 + $0), count: 32)) }
        var set = try ValidatorSet.genesis([(keys[0].publicKey, 1), (keys[1].publicKey, 2), (keys[2].publicKey, 3)])
        var counts: [PublicKey: Int] = [:]
        for _ in 0..<600 {
            counts[set.proposer, default: 0] += 1
            set.incrementProposerPriority(times: 1)
        }
        #expect(counts[keys[0].publicKey] == 100 && counts[keys[1].publicKey] == 200 && counts[keys[2].publicKey] == 300)
    }

    @Test("quorums are integer math: 3 · power > 2 · total, and 3 · power > total for 1/3")
    func quorums() throws {
        let keys = (0..<4).map { try! SigningKey(seed: [UInt8](repeating: UInt8(20 + $0), count: 32)) }
        let set = try ValidatorSet.genesis(keys.map { ($0.publicKey, 1) })
        #expect(!set.isQuorum(2) && set.isQuorum(3))
        #expect(!set.isOneThird(1) && set.isOneThird(2))
        #expect(throws: LedgerError.self) { try ValidatorSet([Validator(publicKey: keys[0].publicKey, power: 0)]) }
        #expect(throws: LedgerError.self) { try ValidatorSet([Validator(publicKey: keys[0].publicKey, power: 1), Validator(publicKey: keys[0].publicKey, power: 2)]) }
    }

    @Test("a new validator starts at priority -1.125 · total and cannot propose at once")
    func newValidatorPriority() throws {
        let keys = (0..<4).map { try! SigningKey(seed: [UInt8](repeating: UInt8(30 + $0), count: 32)) }
        let set = try ValidatorSet.genesis(keys.prefix(3).map { ($0.publicKey, 10) })
        let grown = try set.applying([keys[3].publicKey: 10])
        #expect(grown.validators.first { $0.publicKey == keys[3].publicKey }?.proposerPriority == -(40 + 5))
        #expect(grown.proposer != keys[3].publicKey)
    }
}

@Suite struct EncodingTests {
    let fixture = Fixture()

    @Test("blocks, messages and log records round-trip; truncated bytes are refused")
    func roundTrips() throws {
        let block = fixture.block(time: 2_000)
        #expect(try Block(decoding: block.encoded) == block)
        let vote = fixture.vote(.precommit, round: 2, block, by: fixture.keys[1])
        let proposal = fixture.proposal(block, round: 0)
        let messages: [LedgerMessage] = [
            .proposal(proposal, block), .vote(vote), .status(height: 9), .syncRequest(fromHeight: 3),
            .syncResponse([CommittedBlock(block: block, commit: Commit(height: 1, round: 0, blockID: block.id, signatures: []))]),
            .transaction([1, 2, 3]), .evidence(DuplicateVoteEvidence(vote, fixture.vote(.precommit, round: 2, nil, by: fixture.keys[1]))),
        ]
        for message in messages {
            #expect(try LedgerMessage(decoding: message.encoded) == message)
            #expect(throws: LedgerError.self) { try LedgerMessage(decoding: Array(message.encoded.dropLast())) }
        }
        let records: [WALRecord] = [
            .proposal(proposal, block), .vote(vote), .timeout(ConsensusTimeout(height: 1, round: 3, step: .prevote)),
            .signed(SignedRecord(height: 1, round: 0, step: .prevote, signBytes: [1, 2], signature: vote.signature)),
        ]
        for record in records { #expect(try WALRecord(decoding: record.encoded) == record) }
        #expect(throws: LedgerError.self) { try LedgerMessage(decoding: [99]) }
    }
}
