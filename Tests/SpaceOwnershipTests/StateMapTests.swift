import SpaceOwnership
import StratosCore
import Testing

@Suite struct StateMapTests {
    typealias Map = StateMap<InMemoryStateMapStorage>

    static func digest(_ value: Int) -> [UInt8] { Hash256.blake2b(Array("k\(value)".utf8)).bytes }

    @Test func emptyMapHasTheEmptyRoot() throws {
        var map = Map(storage: InMemoryStateMapStorage())
        #expect(try map.root() == Map.emptyRoot)
        #expect(Map.emptyRoot.hex == "9efa77b492d6f8962daae6f780977d60f0527909320dd0a7edbd609d938fdbc7")
        #expect(try map.remove(Self.digest(1)) == false)
        #expect(try map.proof(for: Self.digest(1)) == nil)
    }

    /// The root depends only on the final contents, whatever the order and history of updates.
    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func rootIsIndependentOfHistory(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        var map = Map(storage: InMemoryStateMapStorage())
        var model: [[UInt8]: [UInt8]] = [:]
        for step in 0..<600 {
            let key = Self.digest(Int.random(in: 0..<150, using: &generator))
            if Bool.random(using: &generator) || model.isEmpty {
                let value = Self.digest(100_000 + step)
                try map.set(key, value)
                model[key] = value
            } else {
                #expect(try map.remove(key) == (model.removeValue(forKey: key) != nil))
            }
        }
        var fresh = Map(storage: InMemoryStateMapStorage())
        for (key, value) in model.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }).reversed() { try fresh.set(key, value) }
        let root = try map.root().bytes
        #expect(try fresh.root().bytes == root)
        #expect(map.storage.branches.count == fresh.storage.branches.count)
        for (key, value) in model {
            let proof = try #require(try map.proof(for: key))
            #expect(proof.value == value)
            #expect(proof.verify(root: root))
        }
        // Removing everything returns to the empty root and leaves only the root branch.
        for key in model.keys { _ = try map.remove(key) }
        #expect(try map.root() == Map.emptyRoot)
        #expect(map.storage.branches.count <= 1)
    }

    /// The root's bytes are part of every signed commit: this vector, computed by an independent
    /// Python model of the documented hash (docs/spaces.md §8), pins the format.
    @Test func rootMatchesTheReferenceVector() throws {
        var map = Map(storage: InMemoryStateMapStorage())
        for value in 0..<300 { try map.set(Self.digest(value), Self.digest(value + 1000)) }
        #expect(try map.root().hex == "660e284fec3d397a7dcd030de8fcae12e83e057e558ce9a51366aeac7f2f7c52")
    }

    @Test func tamperedProofsFail() throws {
        var map = Map(storage: InMemoryStateMapStorage())
        for value in 0..<300 { try map.set(Self.digest(value), Self.digest(value + 1000)) }
        let root = try map.root().bytes
        let proof = try #require(try map.proof(for: Self.digest(42)))
        #expect(proof.verify(root: root))
        #expect(!StateMapProof(key: proof.key, value: Self.digest(7), branches: proof.branches).verify(root: root))
        #expect(!StateMapProof(key: Self.digest(43), value: proof.value, branches: proof.branches).verify(root: root))
        #expect(!proof.verify(root: Self.digest(0)))
        #expect(!StateMapProof(key: proof.key, value: proof.value, branches: Array(proof.branches.dropFirst())).verify(root: root))
        // Flip each byte of each encoded branch: the proof must fail or not decode.
        for (index, branch) in proof.branches.enumerated() {
            let bytes = branch.encoded
            for position in bytes.indices {
                var tampered = bytes
                tampered[position] ^= 0x01
                guard let decoded = try? StateMapBranch(decoding: tampered) else { continue }
                var branches = proof.branches
                branches[index] = decoded
                #expect(!StateMapProof(key: proof.key, value: proof.value, branches: branches).verify(root: root))
            }
            #expect(try StateMapBranch(decoding: bytes) == branch)
        }
    }
}
