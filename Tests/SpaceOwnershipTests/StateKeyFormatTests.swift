import SpaceOwnership
import StratosCore
import Testing

/// How a space's collection maps key documents (docs/spaces.md §8), and why the ordered format
/// exists: growing `_id`s touch few branches.
@Suite struct StateKeyFormatTests {
    /// The key of an ObjectId `_id`: its type tag (35) and its 12 bytes, as the query engine
    /// encodes it (IndexKey).
    static func objectIdKey(_ counter: Int) -> [UInt8] {
        [35, 0x65, 0x4f, 0x10, 0x00, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5] + [UInt8(counter >> 16 & 0xff), UInt8(counter >> 8 & 0xff), UInt8(counter & 0xff)]
    }

    static let document = Array("{a document}".utf8)

    @Test func aShortIdKeyIsItsBytesPaddedWithItsLength() {
        let idKey = Self.objectIdKey(0x010203)
        let key = StateKeyFormat.ordered.documentKey(idKey).bytes
        #expect(Array(key[0..<13]) == idKey)
        #expect(key[13..<31].allSatisfy { $0 == 0 })
        #expect(key[31] == 13)
        let longest = [UInt8](repeating: 0xab, count: 31)
        #expect(StateKeyFormat.ordered.documentKey(longest).bytes == longest + [31])
        #expect(StateKeyFormat.hashed.documentKey(idKey) == Digest32.blake2b(idKey))
    }

    /// Pinned by an independent computation (Python's hashlib), as docs/spaces.md §8 describes it.
    @Test func longIdKeysAndCollectionNamesMatchTheReferenceVectors() {
        let idKey = (0..<40).map(UInt8.init)
        #expect(StateKeyFormat.ordered.documentKey(idKey).hex == "d11f55574be237b2b24eed8da1505c0e153d379c2a151b5844c77949c4a167ff")
        #expect(StateKeyFormat.ordered.collectionKey("users").hex == "ae8d189a86fe38c07ea1aee2a667790c023d3df12245580c35ac3c06c17acdfb")
        #expect(StateKeyFormat.hashed.collectionKey("users") == Digest32.blake2b("users".utf8))
    }

    /// Keys that differ only in trailing zeros, in length, or past the kept prefix of a long
    /// key still differ.
    @Test func distinctIdKeysGetDistinctKeys() {
        var idKeys: [[UInt8]] = []
        for count in 0...34 { idKeys.append([UInt8](repeating: 0, count: count)) }
        for count in 1...34 { idKeys.append([UInt8](repeating: 0, count: count - 1) + [31]) }
        for last in 0..<8 { idKeys.append([UInt8](repeating: 0x41, count: 40) + [UInt8(last)]) }
        idKeys.append([UInt8](repeating: 0, count: 31) + [0xff])
        let keys = Set(idKeys.map { StateKeyFormat.ordered.documentKey($0) })
        #expect(keys.count == idKeys.count)
    }

    @Test func shortKeysKeepTheOrderOfTheirIdKeys() {
        // ObjectIds, and strings of different lengths (the engine's prefix-free encoding: a tag,
        // the bytes, then 00 00).
        let objectIds = [5, 6, 255, 256, 70_000, 70_001, 1 << 23].map(Self.objectIdKey)
        let strings = ["", "a", "ab", "abc", "b", "ba", "zzzzzzzzzzzzzzzzzzzzzzzzzz"].map { [UInt8(15)] + Array($0.utf8) + [0, 0] }
        for idKeys in [objectIds, strings] {
            let keys = idKeys.map { StateKeyFormat.ordered.documentKey($0).bytes }
            #expect(keys == keys.sorted { $0.lexicographicallyPrecedes($1) })
        }
    }

    /// What the format is for: after 20,000 documents, 1,000 more with growing `_id`s rewrite a
    /// few dozen branches in the ordered format, and hundreds in the hashed one.
    @Test func aBatchOfGrowingIdsTouchesFewBranches() throws {
        func branchesTouched(_ format: StateKeyFormat) throws -> Int {
            var map = StateMap(storage: InMemoryStateMapStorage())
            let value = Digest32.blake2b(Self.document)
            for counter in 0..<20_000 { try map.set(format.documentKey(Self.objectIdKey(counter)), value) }
            _ = try map.root()
            let before = map.storage.branches
            for counter in 20_000..<21_000 { try map.set(format.documentKey(Self.objectIdKey(counter)), value) }
            _ = try map.root()
            return map.storage.branches.count { before[$0.key] != $0.value }
        }
        let ordered = try branchesTouched(.ordered)
        let hashed = try branchesTouched(.hashed)
        #expect(ordered < 120)
        #expect(hashed > 500)
    }

    @Test func theFirstCommitFixesTheFormatAndProofsCarryIt() throws {
        let idKey = Self.objectIdKey(42)
        let ordered = SpaceState(storage: InMemorySpaceStateStorage())
        let orderedRoot = try ordered.apply(
            [.stateFormat(.ordered), .put(collection: "users", idKey: idKey, document: Self.document)], isFirstCommit: true)
        #expect(try ordered.storage.keyFormat() == .ordered)
        let orderedProof = try #require(try ordered.proof(collection: "users", idKey: idKey))
        #expect(orderedProof.collectionProof.key == StateKeyFormat.ordered.documentKey(idKey).bytes)
        #expect(orderedProof.verify(document: Self.document, stateRoot: orderedRoot))
        #expect(!orderedProof.verify(document: Self.document + [0], stateRoot: orderedRoot))
        #expect(!orderedProof.verify(document: Self.document, stateRoot: Digest32.blake2b(Self.document).bytes))

        // A history that names no format is the hashed one: every space written before formats.
        let hashed = SpaceState(storage: InMemorySpaceStateStorage())
        let hashedRoot = try hashed.apply([.put(collection: "users", idKey: idKey, document: Self.document)])
        #expect(hashedRoot != orderedRoot)
        let hashedProof = try #require(try hashed.proof(collection: "users", idKey: idKey))
        #expect(hashedProof.collectionProof.key == Digest32.blake2b(idKey).bytes)
        #expect(hashedProof.verify(document: Self.document, stateRoot: hashedRoot))
        // A proof of one record does not prove another `_id`.
        let other = RecordProof(
            collection: "users", idKey: Self.objectIdKey(43), collectionProof: orderedProof.collectionProof, rootProof: orderedProof.rootProof)
        #expect(!other.verify(document: Self.document, stateRoot: orderedRoot))
    }

    /// A proof names its space's format through its root-map key, so a key of one format cannot
    /// pass for the other's: here a hashed key whose last byte is 31 looks like the ordered key of
    /// its first 31 bytes.
    @Test func aKeyOfOneFormatDoesNotPassForTheOther() throws {
        let state = SpaceState(storage: InMemorySpaceStateStorage())
        let idKey = try #require((0..<100_000).lazy.map(Self.objectIdKey).first { Digest32.blake2b($0).bytes[31] == 31 })
        let root = try state.apply([.put(collection: "users", idKey: idKey, document: Self.document)])
        let proof = try #require(try state.proof(collection: "users", idKey: idKey))
        #expect(proof.verify(document: Self.document, stateRoot: root))
        let lookalike = Array(Digest32.blake2b(idKey).bytes[0..<31])
        #expect(StateKeyFormat.ordered.documentKey(lookalike).bytes == proof.collectionProof.key)
        let forged = RecordProof(collection: "users", idKey: lookalike, collectionProof: proof.collectionProof, rootProof: proof.rootProof)
        #expect(!forged.verify(document: Self.document, stateRoot: root))
    }

    @Test func onlyTheFirstOperationOfTheFirstCommitSetsTheFormat() throws {
        let later = SpaceState(storage: InMemorySpaceStateStorage())
        _ = try later.apply([.grant(signed: [1])], isFirstCommit: true)
        #expect(throws: StratosError.self) { _ = try later.apply([.stateFormat(.ordered)]) }
        let second = SpaceState(storage: InMemorySpaceStateStorage())
        #expect(throws: StratosError.self) {
            _ = try second.apply([.createCollection(name: "users", options: []), .stateFormat(.ordered)], isFirstCommit: true)
        }
        #expect(throws: StratosError.self) {
            _ = try CommitOperation.decode(CommitOperation.encode([.dropCollection(name: "users"), .stateFormat(.ordered)]))
        }
    }

    @Test func theOperationRoundTripsAndAnUnknownFormatIsRefused() throws {
        let payload = CommitOperation.encode([.stateFormat(.ordered)])
        #expect(payload == [0, 0, 0, 1, 11, 2])
        #expect(try CommitOperation.decode(payload) == [.stateFormat(.ordered)])
        #expect(throws: StratosError.self) { _ = try CommitOperation.decode([0, 0, 0, 1, 11, 9]) }
        #expect(throws: StratosError.self) { _ = try CommitOperation.decode([0, 0, 0, 1, 11]) }
    }
}
