import Benchmark
import QueryEngine

/// A ~1 KB user profile like the ones `make bench` stores.
private func profile(_ number: Int) -> BSONDocument {
    [
        "_id": .string("user\(number)"), "name": .string("User \(number)"), "email": .string("user\(number)@example.org"),
        "age": .int32(Int32(18 + number % 60)), "city": .string(["London", "Paris", "Oslo"][number % 3]),
        "tags": .array([.string("a\(number % 7)"), .string("b\(number % 11)")]),
        "address": .document(["street": .string("\(number) Main St"), "zip": .string("N\(number % 100)")]),
        "bio": .string(String(repeating: "x", count: 800)), "created": .datetime(1_700_000_000_000 + Int64(number)),
    ]
}

let benchmarks: @Sendable () -> Void = {
    let documents = (0..<1_000).map(profile)
    let encoded = documents.map(\.bsonBytes)

    Benchmark("BSON encode 1 KB profile", configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput])) { benchmark in
        for index in benchmark.scaledIterations { blackHole(encoded[index % encoded.count].count == documents[index % documents.count].bsonBytes.count) }
    }

    Benchmark("BSON decode 1 KB profile", configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput])) { benchmark in
        for index in benchmark.scaledIterations { blackHole(try BSONDecoder.decode(encoded[index % encoded.count])) }
    }

    Benchmark("Filter match (range + dotted equality)", configuration: .init(metrics: [.wallClock, .throughput])) { benchmark in
        let filter = try Filter(["age": .document(["$gte": .int32(30)]), "address.zip": .string("N42"), "tags": .string("a3")])
        for index in benchmark.scaledIterations { blackHole(filter.matches(documents[index % documents.count])) }
    }

    Benchmark("Index key encode (compound)", configuration: .init(metrics: [.wallClock, .mallocCountTotal])) { benchmark in
        for index in benchmark.scaledIterations {
            let document = documents[index % documents.count]
            blackHole(IndexKey.encode(document["email"] ?? .null) + IndexKey.encode(document["age"] ?? .null))
        }
    }

    Benchmark("Expression evaluate ($cond, $concat, $year, $map, $setUnion, $sin)", configuration: .init(metrics: [.wallClock, .mallocCountTotal])) { benchmark in
        // One computed field per operator family, as a $project would evaluate them per document.
        let expression = try Expression(.document([
            "x": .document(["$cond": .array([.document(["$gt": .array([.string("$age"), .int32(30)])]), .document(["$add": .array([.string("$age"), .int32(1)])]), .int32(0)])]),
            "y": .document(["$concat": .array([.document(["$toUpper": .string("$name")]), .string("-"), .document(["$substrCP": .array([.string("$city"), .int32(0), .int32(3)])])])]),
            "z": .document(["$year": .string("$created")]),
            "w": .document(["$allElementsTrue": .array([.document(["$map": .document(["input": .string("$tags"), "in": .document(["$ne": .array([.string("$$this"), .string("")])])])])])]),
            "v": .document(["$setUnion": .array([.string("$tags"), .array([.string("a1")])])]),
            "u": .document(["$sin": .string("$age")]),
        ]))
        for index in benchmark.scaledIterations {
            blackHole(try expression.evaluate(ExpressionContext(root: documents[index % documents.count])))
        }
    }

    Benchmark("Update apply ($set, $inc, $push)", configuration: .init(metrics: [.wallClock, .mallocCountTotal])) { benchmark in
        let update = try Update(["$set": .document(["city": .string("Rome")]), "$inc": .document(["visits": .int32(1)]), "$push": .document(["tags": .string("new")])])
        for index in benchmark.scaledIterations {
            blackHole(try update.apply(to: documents[index % documents.count], position: nil, isInsert: false, nowMilliseconds: 0))
        }
    }
}
