import Foundation
import QueryEngine
import StratosCore
import StratosTestSupport
import Testing

/// Decimals in secondary indexes are keyed exactly (`IndexKey.decimalKey`): keys order as
/// `BSONComparison` orders numbers, equal numbers share a key, and different ones do not.
@Suite struct DecimalKeyTests {
    private func decimal(_ text: String) -> BSONValue { .decimal128(Decimal128(parsing: text)!) }

    @Test func equalNumbersShareAKeyAndDifferentOnesDoNot() {
        #expect(IndexKey.encode(decimal("3.00")) == IndexKey.encode(.int32(3)))
        #expect(IndexKey.encode(decimal("3.00")) == IndexKey.encode(.double(3)))
        #expect(IndexKey.encode(decimal("0.10")) == IndexKey.encode(decimal("0.1")))
        #expect(IndexKey.encode(decimal("-0")) == IndexKey.encode(.int32(0)))
        #expect(IndexKey.encode(decimal("9007199254740993")) == IndexKey.encode(.int64(9_007_199_254_740_993)))
        #expect(IndexKey.encode(decimal("-9223372036854775808")) == IndexKey.encode(.int64(.min)))
        #expect(IndexKey.encode(decimal("NaN")) == IndexKey.encode(.double(.nan)))
        #expect(IndexKey.encode(decimal("-Infinity")) == IndexKey.encode(.double(-.infinity)))
        // A double compares as its value to 34 digits, as in MongoDB.
        #expect(IndexKey.encode(.decimal128(Decimal128(exactly: 0.1))) == IndexKey.encode(.double(0.1)))
        #expect(IndexKey.encode(decimal("0.1")) != IndexKey.encode(.double(0.1)))
        #expect(IndexKey.encode(decimal("3.000000000000000000000000000000001")) != IndexKey.encode(.int32(3)))
        #expect(IndexKey.isExact(decimal("1E-300")) && IndexKey.isExact(decimal("123456789.123456789")))
        // The few that cannot be placed exactly are reported as such.
        #expect(!IndexKey.isExact(decimal("9007199254740993.5")))
        #expect(!IndexKey.isExact(decimal("1E+400")) && !IndexKey.isExact(decimal("1E-400")))
        // The `_id` key keeps the format signed histories hold.
        #expect(IndexKey.idKey(decimal("0.1")) == IndexKey.idKey(.double(0.1)))
    }

    /// Numbers of every kind near the hard places (doubles' neighbours to 34 digits, integers
    /// beyond 2^53, powers of two, tiny and huge magnitudes), sorted by keys and by comparison.
    @Test(arguments: [UInt64(21), 22, 23])
    func keysOrderDecimalsAsComparisonDoes(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        var values: [BSONValue] = []
        func random(_ bound: UInt64) -> UInt64 { generator.next() % bound }
        for _ in 0..<600 {
            switch random(7) {
            case 0:
                let double = Double(sign: random(2) == 0 ? .plus : .minus, exponent: Int(random(200)) - 100, significand: 1 + Double(random(1 << 52)) / 0x1p52)
                values.append(.double(double))
                // The decimal nearest that double, and its neighbours one unit in the 34th digit away.
                let near = Decimal128(exactly: double)
                let unit = Decimal128(parsing: "1E\(Int((log10(abs(double))).rounded(.down)) - 33)")!
                values.append(.decimal128(near))
                values.append(.decimal128(near + unit))
            case 1:
                let base = Int64(bitPattern: generator.next()) >> Int(random(12))
                values.append(.int64(base))
                values.append(.decimal128(Decimal128(parsing: "\(base)")!))
                values.append(decimal("\(base).\(random(10))"))
            case 2:
                let digits = (0..<Int(1 + random(34))).map { _ in String(random(10)) }.joined()
                values.append(decimal("\(random(2) == 0 ? "" : "-")\(digits)E\(Int(random(80)) - 60)"))
            case 3:
                values.append(decimal("\(random(2) == 0 ? "" : "-")1.\(String(repeating: "0", count: Int(random(32))))1E\(Int(random(40)) - 20)"))
            case 4:
                values.append(.int32(Int32(truncatingIfNeeded: generator.next() % 2000) - 1000))
                values.append(.double(Double(Int64(bitPattern: generator.next())) / 1_000))
            case 5:
                let power = Double(sign: .plus, exponent: Int(random(120)) - 60, significand: 1)
                values.append(.double(power))
                values.append(.decimal128(Decimal128(exactly: power)))
                values.append(.decimal128(Decimal128(exactly: power.nextDown)))
            default:
                values.append(decimal("\(random(10))E\(Int(random(12000)) - 6000)"))
            }
        }
        var checked = 0
        for _ in 0..<20_000 {
            let a = values[Int(random(UInt64(values.count)))]
            let b = values[Int(random(UInt64(values.count)))]
            let order = BSONComparison.compare(a, b)
            let keyA = IndexKey.encode(a)
            let keyB = IndexKey.encode(b)
            let exact = IndexKey.isExact(a) && IndexKey.isExact(b)
            if order == 0 {
                #expect(keyA == keyB, "seed \(seed): \(a) == \(b)")
            } else if order < 0 {
                if exact { #expect(keyA.lexicographicallyPrecedes(keyB), "seed \(seed): \(a) < \(b)") } else { #expect(!keyB.lexicographicallyPrecedes(keyA)) }
            }
            checked += exact ? 1 : 0
        }
        #expect(checked > 15_000)
    }

    /// An index written when a decimal's key was a nearby double (catalog flag 1 without 4) is
    /// rebuilt when its file opens, and then answers exactly, in index order.
    @Test func anApproximateIndexIsRebuiltOnOpen() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/shop.sqlite"
        let prices: [BSONValue] = [decimal("19.99"), .double(19.99), decimal("0.1"), .double(0.1), .int32(20), decimal("19.990000000000000000000000000001")]
        do {
            let store = try DatabaseStore(name: "shop", path: path)
            try store.begin()
            for (index, price) in prices.enumerated() { try store.insert(["_id": .int32(Int32(index)), "price": price], into: "items") }
            try store.createIndex(["key": .document(["price": .int32(1)]), "name": .string("price_1")], on: "items")
            try store.commit()
            let index = store.collection("items")!.indexes[0]
            #expect(!index.holdsInexactKeys)
            // Write the index back as the earlier format kept it.
            store.finishJob()
            try store.sqlite.execute("BEGIN; DELETE FROM \(index.tableName); UPDATE stratos_indexes SET decimal_keys = 1")
            let insert = try store.sqlite.statement("INSERT INTO \(index.tableName)(key, rid) VALUES (?1, ?2)")
            for (rid, price) in prices.enumerated() {
                insert.bind(1, IndexKey.idKey(price))
                insert.bind(2, Int64(rid + 1))
                try insert.run()
            }
            try store.sqlite.execute("COMMIT")
        }
        let reopened = try DatabaseStore(name: "shop", path: path)
        let index = reopened.collection("items")!.indexes[0]
        #expect(!index.holdsInexactKeys && !index.legacyDecimalKeys)
        // Its keys are the exact ones now.
        let keys = try reopened.sqlite.statement("SELECT key FROM \(index.tableName) ORDER BY key")
        var stored: [[UInt8]] = []
        while try keys.step() { stored.append(keys.blob(0)) }
        keys.reset()
        #expect(stored == prices.map { IndexKey.encode($0) }.sorted { $0.lexicographicallyPrecedes($1) })
        let query = FindQuery(
            collection: reopened.collection("items"), filter: try Filter(["price": .document(["$gte": decimal("19.99")])]),
            sort: try SortSpecification(["price": .int32(1)]), projection: nil, skip: 0, limit: nil)
        #expect(query.plan.stageName == "IXSCAN" && query.plan.providesSort)
        let found = try query.nextBatch(reopened, countMax: 100, bytesMax: 1 << 20).map { $0["_id"] }
        #expect(found == [.int32(0), .int32(5), .int32(4)])
    }

    /// A unique index whose old keys told apart two equal numbers cannot be rebuilt: it keeps
    /// the first format for good, every write uses it, and queries still find both documents.
    @Test func aUniqueIndexThatCannotBeRebuiltKeepsItsFormat() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/shop.sqlite"
        let prices: [BSONValue] = [decimal("0.3"), decimal("0.30")]
        #expect(IndexKey.idKey(prices[0]) != IndexKey.idKey(prices[1]))
        do {
            let store = try DatabaseStore(name: "shop", path: path)
            try store.begin()
            try store.createIndex(["key": .document(["price": .int32(1)]), "name": .string("price_1"), "unique": .bool(true)], on: "items")
            try store.commit()
            let index = store.collection("items")!.indexes[0]
            store.finishJob()
            try store.sqlite.execute("BEGIN; UPDATE stratos_indexes SET decimal_keys = 1")
            let insert = try store.sqlite.statement("INSERT INTO \(index.tableName)(key, rid) VALUES (?1, ?2)")
            for (rid, price) in prices.enumerated() {
                let document: BSONDocument = ["_id": .int32(Int32(rid)), "price": price]
                let row = try store.sqlite.statement("INSERT INTO \(store.collection("items")!.tableName)(rid, id_key, doc) VALUES (?1, ?2, ?3)")
                row.bind(1, Int64(rid + 1))
                row.bind(2, IndexKey.idKey(.int32(Int32(rid))))
                row.bind(3, document.bsonBytes)
                try row.run()
                insert.bind(1, IndexKey.idKey(price))
                insert.bind(2, Int64(rid + 1))
                try insert.run()
            }
            try store.sqlite.execute("COMMIT")
        }
        for _ in 0..<2 {
            let reopened = try DatabaseStore(name: "shop", path: path)
            let index = reopened.collection("items")!.indexes[0]
            #expect(index.legacyDecimalKeys && index.holdsInexactKeys)
            let found = try reopened.matches(in: "items", filter: try Filter(["price": decimal("0.3")]))
            #expect(found.count == 2)
            // Writes keep the old format: a delete removes its key, and the value can come back.
            try reopened.begin()
            try reopened.delete(rid: found[0].rid, document: found[0].document, from: "items")
            _ = try reopened.insert(found[0].document, into: "items")
            try reopened.commit()
            reopened.finishJob()
        }
    }
}
