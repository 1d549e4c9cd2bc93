import QueryEngine
import StratosTestSupport
import Testing

@Suite struct StoreAndPlannerTests {
    private func makeStore(_ directory: TemporaryDirectory) throws -> DatabaseStore {
        let store = try DatabaseStore(name: "profiles", path: directory.path + "/profiles.sqlite")
        try store.begin()
        for index in 0..<200 {
            try store.insert(
                ["_id": .string("u\(1000 + index)"), "email": .string("e\(index)@x.org"), "age": .int32(Int32(index % 50)),
                 "tags": .array([.string("t\(index % 3)"), .string("all")])], into: "users")
        }
        try store.createIndex(["key": .document(["email": .int32(1)]), "name": .string("email_1"), "unique": .bool(true)], on: "users")
        try store.createIndex(["key": .document(["age": .int32(-1)]), "name": .string("age_-1")], on: "users")
        try store.createIndex(["key": .document(["tags": .int32(1)]), "name": .string("tags_1")], on: "users")
        try store.commit()
        return store
    }

    private func ids(_ query: FindQuery, _ store: DatabaseStore) throws -> [BSONValue?] {
        var all: [BSONValue?] = []
        while !query.isExhausted {
            let batch = try query.nextBatch(store, countMax: 7, bytesMax: 1 << 20)
            if batch.isEmpty { break }
            all += batch.map { $0["_id"] }
        }
        return all
    }

    @Test func idLookupIsAPointProbe() throws {
        let directory = try TemporaryDirectory()
        let store = try makeStore(directory)
        let query = FindQuery(collection: store.collection("users"), filter: try Filter(["_id": .string("u1005")]), sort: nil, projection: nil, skip: 0, limit: nil)
        #expect(query.plan.stageName == "IDHACK")
        #expect(try ids(query, store) == [.string("u1005")])
        #expect(query.documentsExamined == 1)
    }

    @Test func indexedRangeWithSortAndLimitStopsEarlyAndMatchesAFullScan() throws {
        let directory = try TemporaryDirectory()
        let store = try makeStore(directory)
        let filter = try Filter(["age": .document(["$gte": .int32(10), "$lt": .int32(20)])])
        let sort = try SortSpecification(["age": .int32(-1)])
        let indexed = FindQuery(collection: store.collection("users"), filter: filter, sort: sort, projection: nil, skip: 3, limit: 10)
        #expect(indexed.plan.stageName == "IXSCAN")
        #expect(indexed.plan.providesSort)
        let got = try ids(indexed, store)
        // skip + limit = 13 documents, plus the 4 documents of age 20 that the descending index's
        // superset bound reads and the filter then rejects; never the other 183.
        #expect(indexed.documentsExamined <= 17)
        // The same query answered by a full scan and an in-memory sort.
        let all = try store.matches(in: "users", filter: filter)
        let expected = sort.sort(all.map(\.document)).dropFirst(3).prefix(10).map { $0["_id"] }
        #expect(got.map { $0.map { BSONComparison.compare($0, .null) } } .count == 10)
        #expect(got.count == expected.count)
        for (gotId, expectedId) in zip(got, expected) {
            let gotAge = all.first { $0.document["_id"] == gotId }?.document["age"]
            let expectedAge = all.first { $0.document["_id"] == expectedId }?.document["age"]
            #expect(gotAge == expectedAge)
        }
    }

    @Test func multikeyIndexDeduplicatesAndCountsExactly() throws {
        let directory = try TemporaryDirectory()
        let store = try makeStore(directory)
        let filter = try Filter(["tags": .document(["$in": .array([.string("t1"), .string("all")])])])
        let query = FindQuery(collection: store.collection("users"), filter: filter, sort: nil, projection: nil, skip: 0, limit: nil)
        #expect(Set(try ids(query, store).compactMap { $0?.stringValue }).count == 200)
        #expect(try ids(FindQuery(collection: store.collection("users"), filter: filter, sort: nil, projection: nil, skip: 0, limit: nil), store).count == 200)
        #expect(try store.countMatches(in: "users", filter: try Filter(["age": .document(["$lt": .int32(5)])])) == 20)
        // Several key ranges, each counted from the index: every range must be counted once.
        let several = try Filter(["age": .document(["$in": .array([.int32(1), .int32(2), .int32(99)])])])
        #expect(try store.countMatches(in: "users", filter: several) == 8)
        #expect(try store.matches(in: "users", filter: several).count == 8)
    }

    @Test func uniqueIndexRejectsDuplicatesWithCode11000() throws {
        let directory = try TemporaryDirectory()
        let store = try makeStore(directory)
        try store.begin()
        #expect {
            try store.withSavepoint { () throws(QueryError) in
                try store.insert(["_id": .string("new"), "email": .string("e1@x.org")], into: "users")
            }
        } throws: { error in
            (error as? QueryError)?.code.number == 11000
        }
        try store.commit()
        #expect(try store.count("users") == 200)
    }

    @Test func catalogSurvivesReopen() throws {
        let directory = try TemporaryDirectory()
        do { _ = try makeStore(directory) }
        let reopened = try DatabaseStore(name: "profiles", path: directory.path + "/profiles.sqlite")
        #expect(reopened.collection("users")?.indexes.map(\.name) == ["email_1", "age_-1", "tags_1"])
        #expect(reopened.collection("users")?.indexes.last?.isMultikey == true)
        #expect(try reopened.count("users") == 200)
    }
}

@Suite struct EncodedBatchTests {
    /// Exact plans may skip decoding; the bytes they return must be exactly the documents the
    /// decoding path returns, in the same order.
    static let filters: [BSONDocument] = [
        ["_id": .document(["$gte": .string("u1100")])], ["email": .string("e7@x.org")], ["tags": .string("t1")],
        BSONDocument(),
    ]

    @Test(arguments: filters)
    func encodedBatchesEqualDecodedBatches(filter: BSONDocument) throws {
        let directory = try TemporaryDirectory()
        let store = try DatabaseStore(name: "profiles", path: directory.path + "/profiles.sqlite")
        try store.begin()
        for index in 0..<150 {
            try store.insert(
                ["_id": .string("u\(1000 + index)"), "email": .string("e\(index)@x.org"),
                 "tags": .array([.string("t\(index % 3)"), .string("all")])], into: "users")
        }
        try store.createIndex(["key": .document(["email": .int32(1)]), "name": .string("email_1"), "unique": .bool(true)], on: "users")
        try store.createIndex(["key": .document(["tags": .int32(1)]), "name": .string("tags_1")], on: "users")
        try store.commit()
        let sort: SortSpecification? = filter.keys.first == "_id" ? try SortSpecification(["_id": .int32(1)]) : nil
        let skip = filter.keys.first == "email" ? 0 : 2  // The email filter matches one document.
        let encodedQuery = FindQuery(collection: store.collection("users"), filter: try Filter(filter), sort: sort, projection: nil, skip: skip, limit: 30)
        let decodedQuery = FindQuery(collection: store.collection("users"), filter: try Filter(filter), sort: sort, projection: nil, skip: skip, limit: 30)
        #expect(encodedQuery.canReturnEncoded)
        var encoded: [[UInt8]] = []
        while !encodedQuery.isExhausted {
            let batch = try encodedQuery.nextEncodedBatch(store, countMax: 7, bytesMax: 1 << 20)
            if batch.isEmpty { break }
            encoded += batch
        }
        var decoded: [[UInt8]] = []
        while !decodedQuery.isExhausted {
            let batch = try decodedQuery.nextBatch(store, countMax: 7, bytesMax: 1 << 20)
            if batch.isEmpty { break }
            decoded += batch.map(\.bsonBytes)
        }
        #expect(encoded == decoded)
        #expect(!encoded.isEmpty)
    }
}
