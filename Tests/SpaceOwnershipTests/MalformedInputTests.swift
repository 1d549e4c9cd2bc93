import SpaceOwnership
import StratosCore
import Testing

/// Seeded mutations of valid proofs, archives and grants: every mutant is rejected with an
/// error (or, when the mutation happens to be harmless, still verifies); none crashes.
@Suite struct MalformedInputTests {
    let owner = SigningKey.generate()
    let node = SigningKey.generate()

    func sampleBundle() throws -> RecordProofBundle {
        let space = SpaceID(owner: owner.did, name: "profile")
        let state = SpaceState(storage: InMemorySpaceStateStorage())
        var operations: [CommitOperation] = [.createCollection(name: "users", options: [5, 0, 0, 0, 0])]
        for index in 0..<40 {
            operations.append(.put(collection: "users", idKey: [UInt8(index)], document: Array("document \(index)".utf8)))
        }
        let root = try state.apply(operations)
        let commit = SpaceCommit(
            space: space, seq: 1, prevHash: [UInt8](repeating: 0, count: 32), stateRoot: root,
            payloadHash: Hash256.blake2b(CommitOperation.encode(operations)).bytes, author: node.did, timestampMilliseconds: 1
        ).signed(by: node)
        let proof = try #require(try state.proof(collection: "users", idKey: [7]))
        return RecordProofBundle(space: space, document: Array("document 7".utf8), proof: proof, commit: commit)
    }

    @Test(arguments: [11, 12, 13, 14] as [UInt64])
    func mutatedProofsAreRejected(seed: UInt64) throws {
        let bundle = try sampleBundle()
        _ = try bundle.verify()
        let bytes = bundle.encoded
        var generator = SeededGenerator(seed: seed)
        var accepted = 0
        for _ in 0..<1_500 {
            var mutant = bytes
            switch Int.random(in: 0..<3, using: &generator) {
            case 0:
                mutant[Int.random(in: 0..<mutant.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            case 1:
                mutant.removeSubrange(Int.random(in: 0..<mutant.count, using: &generator)...)
            default:
                mutant.insert(UInt8.random(in: 0...255, using: &generator), at: Int.random(in: 0..<mutant.count, using: &generator))
            }
            if let decoded = try? RecordProofBundle(decoding: mutant), (try? decoded.verify()) != nil {
                // Only a mutation that changes nothing the signature or hashes cover may pass,
                // and then it must prove the same document.
                #expect(decoded.document == bundle.document)
                accepted += 1
            }
        }
        #expect(accepted == 0)
    }

    @Test func mutatedPayloadsAndBranchesNeverCrash() throws {
        var generator = SeededGenerator(seed: 99)
        let payload = CommitOperation.encode([
            .put(collection: "c", idKey: [1, 2], document: [9, 9, 9]), .renameCollection(from: "a", to: "b"),
            .createIndex(collection: "c", specification: [1, 2, 3]), .dropIndex(collection: "c", name: "x"),
        ])
        for _ in 0..<3_000 {
            var mutant = payload
            mutant[Int.random(in: 0..<mutant.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            _ = try? CommitOperation.decode(mutant)
            _ = try? StateMapBranch(decoding: mutant)
            _ = try? SignedGrant(decoding: mutant)
            _ = try? OwnerKeyRotation(decoding: mutant)
            _ = try? SignedCommit(decoding: mutant)
        }
    }
}
