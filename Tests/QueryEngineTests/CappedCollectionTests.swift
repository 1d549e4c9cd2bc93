import QueryEngine
import StratosTestSupport
import Testing

@Suite struct CappedCollectionTests {
    private func ids(_ store: DatabaseStore, _ collection: String) throws -> [BSONValue?] {
        try store.matches(in: collection, filter: .alwaysTrue).map { $0.document["_id"] }
    }

    /// The oldest documents leave as new ones arrive; each removal is a recorded delete, so
    /// replaying the recorded changes into another file gives the same documents, and replay
    /// does not remove anything the history did not.
    @Test func evictionsAreRecordedAndReplayExactly() throws {
        let directory = try TemporaryDirectory()
        let store = try DatabaseStore(name: "log", path: directory.path + "/log.sqlite")
        try store.begin()
        try store.createCollection("events", options: ["capped": .bool(true), "size": .int32(100_000), "max": .int32(3)])
        for index in 0..<6 { try store.insert(["_id": .int32(Int32(index)), "n": .int32(Int32(index))], into: "events") }
        // A delete of the newest document: the next insert still gets a larger row id.
        let newest = try store.matches(in: "events", filter: try Filter(["_id": .int32(5)]))[0]
        try store.delete(rid: newest.rid, document: newest.document, from: "events")
        let next = try store.insert(["_id": .int32(6)], into: "events")
        #expect(next > newest.rid)
        let history = store.pendingChanges
        try store.commit()
        #expect(try ids(store, "events") == [.int32(3), .int32(4), .int32(6)])

        // Replay applies the recorded deletes, not the bound again.
        let copy = try DatabaseStore(name: "copy", path: directory.path + "/copy.sqlite")
        try copy.begin()
        for change in history { try copy.replay(change) }
        try copy.commit()
        #expect(try ids(copy, "events") == [.int32(3), .int32(4), .int32(6)])
        #expect(history.filter { if case .delete = $0 { true } else { false } }.count == 4)
    }

    @Test func boundsAreParsedAsMongoDBSizesThem() throws {
        #expect(try CappedLimits.parse(["capped": .bool(true), "size": .int32(1)]) == CappedLimits.parse(["capped": .bool(true), "size": .int32(4096)]))
        #expect(try CappedLimits.parse(["capped": .bool(true), "size": .int32(5000)])?.bytes == 5120)
        #expect(try CappedLimits.parse(["capped": .bool(true), "size": .int32(5000), "max": .int32(0)])?.documents == nil)
        #expect(try CappedLimits.parse(["size": .int32(5000)]) == nil)
        #expect(throws: QueryError.self) { try CappedLimits.parse(["capped": .bool(true)]) }
        #expect(throws: QueryError.self) { try CappedLimits.parse(["capped": .bool(true), "size": .int32(-1)]) }
    }
}
