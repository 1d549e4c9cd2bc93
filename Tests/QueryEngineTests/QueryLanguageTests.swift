import QueryEngine
import Testing

@Suite struct FilterTests {
    static let profile: BSONDocument = [
        "_id": .string("u1"), "age": .int32(36), "tags": .array([.string("math"), .string("poetry")]),
        "address": .document(["city": .string("London")]),
        "jobs": .array([.document(["title": .string("engineer"), "years": .int32(3)]), .document(["title": .string("poet"), "years": .int32(9)])]),
    ]

    static let cases: [(BSONDocument, Bool)] = {
        var cases: [(BSONDocument, Bool)] = []
        cases.append(((["age": .document(["$gte": .int32(30)])] as BSONDocument), true))
        cases.append(((["age": .document(["$gt": .string("30")])] as BSONDocument), false))
        cases.append(((["address.city": .string("London")] as BSONDocument), true))
        cases.append(((["tags": .string("math")] as BSONDocument), true))
        cases.append(((["tags": .document(["$all": .array([.string("poetry"), .string("math")])])] as BSONDocument), true))
        cases.append(((["tags": .document(["$size": .int32(2)])] as BSONDocument), true))
        cases.append(((["jobs.title": .string("poet")] as BSONDocument), true))
        cases.append(((["jobs": .document(["$elemMatch": .document(["title": .string("poet"), "years": .document(["$lt": .int32(5)])])])] as BSONDocument), false))
        cases.append(((["missing": .null] as BSONDocument), true))
        cases.append(((["missing": .document(["$exists": .bool(false)])] as BSONDocument), true))
        cases.append(((["age": .document(["$in": .array([.int64(36), .double(1)])])] as BSONDocument), true))
        cases.append(((["age": .document(["$nin": .array([.int32(36)])])] as BSONDocument), false))
        cases.append(((["$or": .array([.document(["age": .int32(1)]), .document(["tags": .regex(BSONRegex(pattern: "^po", options: ""))])])] as BSONDocument), true))
        cases.append(((["$nor": .array([.document(["age": .int32(36)])])] as BSONDocument), false))
        cases.append(((["age": .document(["$not": .document(["$lt": .int32(30)])])] as BSONDocument), true))
        cases.append(((["age": .document(["$type": .string("number")])] as BSONDocument), true))
        cases.append(((["age": .document(["$mod": .array([.int32(5), .int32(1)])])] as BSONDocument), true))
        cases.append(((["$expr": .document(["$gt": .array([.string("$age"), .int32(35)])])] as BSONDocument), true))
        return cases
    }()

    @Test(arguments: cases)
    func filtersMatchLikeMongoDB(filter: BSONDocument, expected: Bool) throws {
        #expect(try Filter(filter).matches(Self.profile) == expected, "\(filter)")
    }

    @Test func unknownOperatorsAreBadValue() {
        #expect(throws: QueryError.self) { try Filter(["a": .document(["$foo": .int32(1)])]) }
        #expect(throws: QueryError.self) { try Filter(["$foo": .int32(1)]) }
    }
}

@Suite struct UpdateTests {
    @Test func operatorsApplyInOneUpdate() throws {
        let update = try Update([
            "$set": .document(["bio": .string("..."), "address.zip": .string("N1")]), "$inc": .document(["visits": .int32(1)]),
            "$push": .document(["tags": .document(["$each": .array([.string("b"), .string("a")]), "$sort": .int32(1)])]),
            "$unset": .document(["old": .string("")]),
        ])
        let before: BSONDocument = ["_id": .int32(1), "tags": .array([.string("c")]), "old": .bool(true), "address": .document([:])]
        let after = try update.apply(to: before, position: nil, isInsert: false, nowMilliseconds: 0)
        #expect(after["visits"] == .int32(1))
        #expect(after["tags"] == .array([.string("a"), .string("b"), .string("c")]))
        #expect(after["old"] == nil)
        #expect(after["address"] == .document(["zip": .string("N1")]))
    }

    @Test func changingIdIsImmutableField() throws {
        let update = try Update(["$set": .document(["_id": .int32(2)])])
        #expect(throws: QueryError.self) {
            try update.apply(to: ["_id": .int32(1)], position: nil, isInsert: false, nowMilliseconds: 0)
        }
    }

    @Test func conflictingPathsAreRejected() {
        #expect(throws: QueryError.self) { try Update(["$set": .document(["a": .int32(1)]), "$inc": .document(["a.b": .int32(1)])]) }
    }

    @Test func positionalOperatorUsesMatchedIndex() throws {
        let filter = try Filter(["grades": .document(["$gte": .int32(90)])])
        let document: BSONDocument = ["_id": .int32(1), "grades": .array([.int32(80), .int32(95), .int32(99)])]
        var position: Int?
        #expect(filter.matches(document, position: &position))
        let update = try Update(["$set": .document(["grades.$": .int32(100)])])
        let after = try update.apply(to: document, position: position, isInsert: false, nowMilliseconds: 0)
        #expect(after["grades"] == .array([.int32(80), .int32(100), .int32(99)]))
    }
}

@Suite struct ArrayFilterTests {
    @Test func identifiersSelectMatchingElements() throws {
        let update = try Update(["$set": .document(["grades.$[high]": .int32(100)])])
        let filters = try ArrayFilters([.document(["high": .document(["$gte": .int32(85)])])])
        try update.validate(filters)
        let before: BSONDocument = ["_id": .int32(1), "grades": .array([.int32(80), .int32(85), .int32(90)])]
        let after = try update.apply(to: before, position: nil, isInsert: false, nowMilliseconds: 0, arrayFilters: filters)
        #expect(after["grades"] == .array([.int32(80), .int32(100), .int32(100)]))
    }

    @Test func missingAndUnusedFiltersAreRejected() throws {
        let update = try Update(["$set": .document(["grades.$[x]": .int32(1)])])
        #expect(throws: QueryError.self) { try update.validate(try ArrayFilters([.document(["y": .int32(1)])])) }
        let plain = try Update(["$set": .document(["grades.0": .int32(1)])])
        #expect(throws: QueryError.self) { try plain.validate(try ArrayFilters([.document(["y": .int32(1)])])) }
        #expect(throws: QueryError.self) { try ArrayFilters([.document(["Bad": .int32(1)])]) }
        #expect(throws: QueryError.self) { try ArrayFilters([.document(["a": .int32(1), "b": .int32(2)])]) }
    }
}

@Suite struct FieldPathTests {
    @Test func splitsOnDotsAndKeepsSingleFieldsWhole() throws {
        #expect(try FieldPath("_id").components == ["_id"])
        #expect(try FieldPath("città").components == ["città"])
        #expect(try FieldPath("address.city").components == ["address", "city"])
        #expect(try FieldPath("tags.0.name").dotted == "tags.0.name")
    }

    @Test(arguments: ["", ".", "a.", ".a", "a..b"])
    func refusesEmptyComponents(_ dotted: String) {
        #expect(throws: QueryError.self) { try FieldPath(dotted) }
    }
}
