import Foundation
import StratosCore
import Testing

/// RFC 6962 test vectors as published by transparency-dev/merkle (see the fixture's `source`).
struct RFC6962Vectors: Decodable {
    struct Inclusion: Decodable {
        let leafIndex: Int
        let treeSize: Int
        let path: [String]
    }
    struct Consistency: Decodable {
        let size1: Int
        let size2: Int
        let proof: [String]
    }
    let leaves: [String]
    let roots: [String]
    let emptyRoot: String
    let inclusion: [Inclusion]
    let consistency: [Consistency]

    static func load() throws -> RFC6962Vectors {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/rfc6962-vectors", withExtension: "json"))
        return try JSONDecoder().decode(RFC6962Vectors.self, from: Data(contentsOf: url))
    }

    func tree() throws -> MerkleTree {
        try MerkleTree(leaves: leaves.map { try Hex.decode($0) })
    }
}

@Suite struct MerkleTreeTests {
    @Test func rootsMatchVectorsForEverySize() throws {
        let vectors = try RFC6962Vectors.load()
        let tree = try vectors.tree()
        #expect(try tree.root(size: 0).hex == vectors.emptyRoot)
        for (index, root) in vectors.roots.enumerated() {
            #expect(try tree.root(size: index + 1).hex == root, "size \(index + 1)")
        }
    }

    @Test func inclusionProofsMatchAndVerify() throws {
        let vectors = try RFC6962Vectors.load()
        let tree = try vectors.tree()
        for vector in vectors.inclusion {
            let proof = try tree.inclusionProof(leafIndex: vector.leafIndex, treeSize: vector.treeSize)
            #expect(proof.map(\.hex) == vector.path, "leaf \(vector.leafIndex) of \(vector.treeSize)")
            try MerkleProof.verifyInclusion(
                leafHash: tree.leafHashes[vector.leafIndex], leafIndex: vector.leafIndex, treeSize: vector.treeSize,
                path: proof, root: tree.root(size: vector.treeSize))
        }
    }

    @Test func consistencyProofsMatchAndVerify() throws {
        let vectors = try RFC6962Vectors.load()
        let tree = try vectors.tree()
        for vector in vectors.consistency {
            let proof = try tree.consistencyProof(oldSize: vector.size1, newSize: vector.size2)
            #expect(proof.map(\.hex) == vector.proof, "\(vector.size1) → \(vector.size2)")
            try MerkleProof.verifyConsistency(
                oldSize: vector.size1, newSize: vector.size2, oldRoot: tree.root(size: vector.size1),
                newRoot: tree.root(size: vector.size2), proof: proof)
        }
    }

    /// Every proof the tree produces verifies, and none verifies for a neighbouring leaf or a wrong root.
    @Test func allProofsUpToSixtyFourLeavesVerifyAndRejectTampering() throws {
        let tree = MerkleTree(leaves: (0..<64).map { [UInt8($0), 0xAA] })
        for size in 1...64 {
            let root = try tree.root(size: size)
            for index in 0..<size {
                let path = try tree.inclusionProof(leafIndex: index, treeSize: size)
                try MerkleProof.verifyInclusion(
                    leafHash: tree.leafHashes[index], leafIndex: index, treeSize: size, path: path, root: root)
                if size > 1 {
                    let wrong = (index + 1) % size
                    #expect(throws: StratosError.self) {
                        try MerkleProof.verifyInclusion(
                            leafHash: tree.leafHashes[wrong], leafIndex: index, treeSize: size, path: path, root: root)
                    }
                }
            }
            for oldSize in 1...size {
                let proof = try tree.consistencyProof(oldSize: oldSize, newSize: size)
                let oldRoot = try tree.root(size: oldSize)
                try MerkleProof.verifyConsistency(
                    oldSize: oldSize, newSize: size, oldRoot: oldRoot, newRoot: root, proof: proof)
                if oldSize < size {
                    #expect(throws: StratosError.self) {
                        try MerkleProof.verifyConsistency(
                            oldSize: oldSize, newSize: size, oldRoot: root, newRoot: root, proof: proof)
                    }
                }
            }
        }
    }

    @Test("every leaf's path at once equals each leaf's path alone", arguments: [1, 2, 3, 5, 8, 13, 64, 100, 1_000])
    func allInclusionProofsAtOnce(count: Int) throws {
        let tree = MerkleTree(leaves: (0..<count).map { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] })
        let all = tree.allInclusionProofs()
        #expect(all.count == count)
        for index in Set([0, count / 3, count / 2, count - 1]) {
            #expect(all[index] == (try tree.inclusionProof(leafIndex: index, treeSize: count)))
        }
    }

    @Test func rejectsOutOfRangeRequests() {
        let tree = MerkleTree(leaves: [[1], [2]])
        #expect(throws: StratosError.self) { try tree.inclusionProof(leafIndex: 2, treeSize: 2) }
        #expect(throws: StratosError.self) { try tree.consistencyProof(oldSize: 3, newSize: 2) }
        #expect(throws: StratosError.self) { try tree.root(size: 3) }
    }
}
