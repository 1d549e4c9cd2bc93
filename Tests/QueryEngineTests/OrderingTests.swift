import QueryEngine
import StratosCore
import Testing

@Suite struct OrderingTests {
    /// MongoDB's documented cross-type sort order, lowest first.
    static let ascending: [BSONValue] = [
        .minKey, .null, .double(.nan), .double(-.infinity), .int64(-5), .int32(-1), .double(0), .int32(1),
        .decimal128(Decimal128(2)), .int64(1 << 53 + 1), .double(.infinity), .string(""), .string("A"), .string("a"),
        .string("a\u{0}b"), .string("ab"), .document([:]), .document(["a": .int32(1)]), .array([]), .array([.int32(1)]),
        .binary(BSONBinary(subtype: 5, data: [])), .binary(BSONBinary(subtype: 0, data: [1])), .objectId(try! ObjectId(hex: "000000000000000000000000")),
        .bool(false), .bool(true), .datetime(-10), .datetime(10), .timestamp(BSONTimestamp(seconds: 1, increment: 0)),
        .regex(BSONRegex(pattern: "a", options: "")), .maxKey,
    ]

    @Test func comparisonFollowsMongoDBTypeOrder() {
        for (index, lower) in Self.ascending.enumerated() {
            for higher in Self.ascending[(index + 1)...] {
                #expect(BSONComparison.compare(lower, higher) < 0, "\(lower) < \(higher)")
                #expect(BSONComparison.compare(higher, lower) > 0, "\(higher) > \(lower)")
            }
        }
    }

    @Test func numbersCompareByValueAcrossTypes() {
        #expect(BSONComparison.equal(.int32(1), .double(1.0)))
        #expect(BSONComparison.equal(.int64(1), .decimal128(Decimal128(1))))
        #expect(BSONComparison.compare(.int64(Int64.max), .double(9.3e18)) < 0)
        #expect(BSONComparison.compare(.int64(9_007_199_254_740_993), .double(9_007_199_254_740_992)) > 0)
    }

    /// The index key encoding must order exactly as BSONComparison does, so SQLite's BLOB order
    /// is the query order.
    @Test func indexKeysOrderLikeBSONComparison() {
        for (index, lower) in Self.ascending.enumerated() {
            for higher in Self.ascending[(index + 1)...] {
                #expect(IndexKey.encode(lower).lexicographicallyPrecedes(IndexKey.encode(higher)), "\(lower) < \(higher)")
            }
        }
        #expect(IndexKey.encode(.int32(7)) == IndexKey.encode(.double(7)))
        #expect(IndexKey.encode(.double(-0.0)) == IndexKey.encode(.double(0)))
    }

    @Test(arguments: [UInt64(11), 12])
    func randomIntegersAndDoublesKeepTheirOrderInKeys(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        var values: [BSONValue] = []
        for _ in 0..<400 {
            switch generator.next() % 3 {
            case 0: values.append(.int64(Int64(bitPattern: generator.next())))
            case 1: values.append(.int32(Int32(truncatingIfNeeded: generator.next())))
            default: values.append(.double(Double(Int64(bitPattern: generator.next())) / 1_000))
            }
        }
        for _ in 0..<2_000 {
            let a = values[Int(generator.next() % 400)]
            let b = values[Int(generator.next() % 400)]
            let order = BSONComparison.compare(a, b)
            let keyA = IndexKey.encode(a)
            let keyB = IndexKey.encode(b)
            if order < 0 { #expect(keyA.lexicographicallyPrecedes(keyB), "seed \(seed): \(a) < \(b)") }
            if order == 0 { #expect(keyA == keyB, "seed \(seed): \(a) == \(b)") }
        }
    }

    @Test func sortUsesSmallestArrayElementAscendingAndLargestDescending() throws {
        let documents: [BSONDocument] = [
            ["_id": .int32(1), "v": .array([.int32(5), .int32(1)])], ["_id": .int32(2), "v": .int32(3)],
            ["_id": .int32(3)],
        ]
        let ascending = try SortSpecification(["v": .int32(1)]).sort(documents).map { $0["_id"] }
        #expect(ascending == [.int32(3), .int32(1), .int32(2)])
        let descending = try SortSpecification(["v": .int32(-1)]).sort(documents).map { $0["_id"] }
        #expect(descending == [.int32(1), .int32(2), .int32(3)])
    }
}
