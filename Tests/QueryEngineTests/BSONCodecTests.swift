import QueryEngine
import StratosCore
import Testing

/// A document holding every BSON type.
let everyTypeDocument: BSONDocument = [
    "double": .double(3.25), "nan": .double(.nan), "negativeZero": .double(-0.0),
    "string": .string("héllo \u{1F30D}"), "document": .document(["a": .int32(1)]),
    "array": .array([.int32(1), .string("two"), .null]),
    "binary": .binary(BSONBinary(subtype: 0, data: [1, 2, 3])),
    "uuid": .binary(BSONBinary(subtype: 4, data: [UInt8](repeating: 7, count: 16))),
    "oldBinary": .binary(BSONBinary(subtype: 2, data: [9, 9])),
    "undefined": .undefined, "objectId": .objectId(ObjectId.generate(seconds: 1_700_000_000)), "bool": .bool(true),
    "datetime": .datetime(-1), "null": .null, "regex": .regex(BSONRegex(pattern: "^a.c$", options: "im")),
    "dbPointer": .dbPointer(namespace: "db.c", id: ObjectId.generate(seconds: 1)), "code": .javascript("x = 1"),
    "symbol": .symbol("sym"), "codeWithScope": .javascriptWithScope(code: "y", scope: ["y": .int32(2)]),
    "int32": .int32(.min), "timestamp": .timestamp(BSONTimestamp(seconds: 5, increment: 6)), "int64": .int64(.max),
    "decimal": .decimal128(Decimal128(high: 0x3040_0000_0000_0000, low: 1)), "minKey": .minKey, "maxKey": .maxKey,
]

@Suite struct BSONCodecTests {
    @Test func everyTypeRoundTripsByteForByte() throws {
        let bytes = everyTypeDocument.bsonBytes
        let decoded = try BSONDecoder.decode(bytes)
        #expect(decoded.bsonBytes == bytes)
        #expect(decoded.keys == everyTypeDocument.keys)
        #expect(everyTypeDocument.encodedSize == bytes.count)
    }

    @Test(arguments: [
        (UInt64(0x3040_0000_0000_0000), UInt64(1), "1"),
        (UInt64(0x303E_0000_0000_0000), UInt64(1), "0.1"),
        (UInt64(0xB040_0000_0000_0000), UInt64(0), "-0"),
        (UInt64(0x7C00_0000_0000_0000), UInt64(0), "NaN"),
        (UInt64(0x7800_0000_0000_0000), UInt64(0), "Infinity"),
        (UInt64(0x5FFE_0000_0000_0000), UInt64(1), "1E+6111"),
    ])
    func decimal128FormatsLikeTheBSONSpecification(high: UInt64, low: UInt64, expected: String) {
        #expect(Decimal128(high: high, low: low).description == expected)
    }

    @Test(arguments: [
        ("truncated length", [UInt8]([5, 0, 0])),
        ("length larger than input", [UInt8]([10, 0, 0, 0, 0])),
        ("length smaller than minimum", [UInt8]([4, 0, 0, 0])),
        ("missing terminator", [UInt8]([5, 0, 0, 0, 1])),
        ("unknown type", [UInt8]([8, 0, 0, 0, 0x42, 0x61, 0, 0])),
        ("string not NUL terminated", [UInt8]([0x0E, 0, 0, 0, 2, 0x61, 0, 2, 0, 0, 0, 0x62, 0x62, 0])),
        ("invalid UTF-8 key", [UInt8]([0x09, 0, 0, 0, 0x0A, 0xFF, 0xFE, 0, 0])),
        ("invalid UTF-8 key after ASCII", [UInt8]([0x0A, 0, 0, 0, 0x0A, 0x61, 0xC3, 0x28, 0, 0])),
        ("invalid UTF-8 string", [UInt8]([0x0F, 0, 0, 0, 2, 0x61, 0, 3, 0, 0, 0, 0xC3, 0x28, 0, 0])),
        ("overlong UTF-8 string", [UInt8]([0x10, 0, 0, 0, 2, 0x61, 0, 4, 0, 0, 0, 0xE0, 0x80, 0x80, 0, 0])),
        ("UTF-16 surrogate in a string", [UInt8]([0x10, 0, 0, 0, 2, 0x61, 0, 4, 0, 0, 0, 0xED, 0xA0, 0x80, 0, 0])),
        ("UTF-8 sequence cut short in a string", [UInt8]([0x0F, 0, 0, 0, 2, 0x61, 0, 3, 0, 0, 0, 0x62, 0xC3, 0, 0])),
        ("bool not 0 or 1", [UInt8]([0x09, 0, 0, 0, 8, 0x62, 0, 2, 0])),
        ("negative string length", [UInt8]([0x0E, 0, 0, 0, 2, 0x61, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x62, 0, 0])),
    ])
    func rejectsMalformedInput(_ name: String, bytes: [UInt8]) {
        #expect(throws: QueryError.self, "\(name)") { try BSONDecoder.decode(bytes) }
    }

    @Test func decodesASCIIAndMultibyteUTF8Alike() throws {
        let document: BSONDocument = ["name": .string("Ada"), "città": .string("Zürich 東京 🚀"), "": .string(""), "nul": .string("a\u{0}b")]
        let decoded = try BSONDecoder.decode(document.bsonBytes)
        #expect(decoded == document)
        #expect(decoded["città"] == .string("Zürich 東京 🚀"))
    }

    @Test func rejectsTrailingBytes() {
        var bytes = (["a": .int32(1)] as BSONDocument).bsonBytes
        bytes.append(0)
        #expect(throws: QueryError.self) { try BSONDecoder.decode(bytes) }
    }

    @Test func rejectsExcessiveNesting() {
        var value = BSONValue.int32(1)
        for _ in 0..<(QueryEngineLimits.decodeDepthMax + 5) { value = .document(["a": value]) }
        let bytes = (["root": value] as BSONDocument).bsonBytes
        #expect(throws: QueryError.self) { try BSONDecoder.decode(bytes) }
    }

    /// Seeded mutation fuzzing: flipping, truncating and splicing bytes of valid documents must
    /// only ever produce a document or a thrown error, never a crash. The seed is printed on failure.
    @Test(arguments: [UInt64(1), 2, 3, 4])
    func mutatedInputNeverCrashesTheDecoder(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let seeds = [everyTypeDocument.bsonBytes, (["a": .array([.document(["b": .string("c")])])] as BSONDocument).bsonBytes]
        for iteration in 0..<2_000 {
            var bytes = seeds[Int(generator.next() % UInt64(seeds.count))]
            let mutations = 1 + Int(generator.next() % 4)
            for _ in 0..<mutations {
                let position = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 4 {
                case 0: bytes[position] ^= UInt8(truncatingIfNeeded: generator.next() | 1)
                case 1: bytes = Array(bytes.prefix(position))
                case 2: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: position)
                default: bytes[position] = [0x00, 0x7F, 0x80, 0xFF][Int(generator.next() % 4)]
                }
                if bytes.isEmpty { bytes = [0] }
            }
            if let decoded = try? BSONDecoder.decode(bytes) {
                // Whatever decodes must re-encode to something that decodes to the same value.
                // (Compared as bytes: NaN is not equal to itself as a Swift value.)
                #expect((try? BSONDecoder.decode(decoded.bsonBytes))?.bsonBytes == decoded.bsonBytes, "seed \(seed) iteration \(iteration)")
            }
        }
    }
}
