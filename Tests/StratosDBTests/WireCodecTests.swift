import NIOCore
import QueryEngine
import Testing

@testable import StratosDB

/// Builds wire messages byte by byte, as a driver would.
private struct MessageBuilder {
    var bytes: [UInt8] = []

    mutating func int32(_ value: Int32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func uint32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func cString(_ text: String) {
        bytes.append(contentsOf: text.utf8)
        bytes.append(0)
    }

    /// Prepends the 16-byte header.
    func frame(requestId: Int32 = 7, opCode: Int32) -> ByteBuffer {
        var header = MessageBuilder()
        header.int32(Int32(16 + bytes.count))
        header.int32(requestId)
        header.int32(0)
        header.int32(opCode)
        return ByteBuffer(bytes: header.bytes + bytes)
    }
}

@Suite struct WireCodecTests {
    @Test func opMsgMergesDocumentSequencesIntoTheBody() throws {
        var message = MessageBuilder()
        message.uint32(0)
        message.bytes.append(0)
        message.bytes += (["insert": .string("users"), "$db": .string("app")] as BSONDocument).bsonBytes
        let documents = [(["_id": .int32(1)] as BSONDocument).bsonBytes, (["_id": .int32(2)] as BSONDocument).bsonBytes]
        var sequence = MessageBuilder()
        sequence.cString("documents")
        for document in documents { sequence.bytes += document }
        message.bytes.append(1)
        message.int32(Int32(4 + sequence.bytes.count))
        message.bytes += sequence.bytes
        guard case .success(let request) = WireCodec.decode(message.frame(opCode: 2013)),
            case .message(let command, let moreToCome, _) = request.kind
        else {
            Issue.record("OP_MSG did not decode")
            return
        }
        #expect(request.requestId == 7)
        #expect(!moreToCome)
        #expect(command["documents"] == .array([.document(["_id": .int32(1)]), .document(["_id": .int32(2)])]))
    }

    @Test func moreToComeFlagIsReported() {
        var message = MessageBuilder()
        message.uint32(0b10)
        message.bytes.append(0)
        message.bytes += (["ping": .int32(1), "$db": .string("admin")] as BSONDocument).bsonBytes
        guard case .success(let request) = WireCodec.decode(message.frame(opCode: 2013)),
            case .message(_, let moreToCome, _) = request.kind
        else {
            Issue.record("OP_MSG did not decode")
            return
        }
        #expect(moreToCome)
    }

    @Test func unknownRequiredFlagBitsAndSectionKindsAreErrors() {
        var flags = MessageBuilder()
        flags.uint32(1 << 5)
        flags.bytes.append(0)
        flags.bytes += (["ping": .int32(1)] as BSONDocument).bsonBytes
        guard case .failure = WireCodec.decode(flags.frame(opCode: 2013)) else {
            Issue.record("an unknown required flag bit was accepted")
            return
        }
        var kind = MessageBuilder()
        kind.uint32(0)
        kind.bytes.append(7)
        guard case .failure = WireCodec.decode(kind.frame(opCode: 2013)) else {
            Issue.record("an unknown section kind was accepted")
            return
        }
    }

    @Test func truncatedAndMalformedBodiesAreErrorsNotCrashes() {
        var truncated = MessageBuilder()
        truncated.uint32(0)
        truncated.bytes.append(0)
        truncated.bytes += Array((["ping": .int32(1)] as BSONDocument).bsonBytes.prefix(6))
        if case .success = WireCodec.decode(truncated.frame(opCode: 2013)) {
            Issue.record("a truncated body was accepted")
        }
        var empty = MessageBuilder()
        empty.uint32(0)
        if case .success = WireCodec.decode(empty.frame(opCode: 2013)) {
            Issue.record("an OP_MSG without a body was accepted")
        }
        if case .success = WireCodec.decode(MessageBuilder().frame(opCode: 9999)) {
            Issue.record("an unknown opcode was accepted")
        }
    }

    @Test func legacyQueryUnwrapsReadPreferenceEnvelope() {
        var query = MessageBuilder()
        query.int32(0)
        query.cString("admin.$cmd")
        query.int32(0)
        query.int32(-1)
        query.bytes += (["$query": .document(["isMaster": .int32(1)]), "$readPreference": .document(["mode": .string("primary")])] as BSONDocument).bsonBytes
        guard case .success(let request) = WireCodec.decode(query.frame(opCode: 2004)),
            case .query(let database, let command) = request.kind
        else {
            Issue.record("OP_QUERY did not decode")
            return
        }
        #expect(database == "admin")
        #expect(command.firstKey == "isMaster")
    }

    @Test func legacyReplyCarriesOneDocument() throws {
        let reply = WireCodec.encodeLegacyReply(.document(["ok": .double(1)]), responseTo: 9, requestId: 3, allocator: ByteBufferAllocator())
        var buffer = reply
        #expect(buffer.readInteger(endianness: .little, as: Int32.self) == Int32(reply.readableBytes))
        buffer.moveReaderIndex(forwardBy: 4)
        #expect(buffer.readInteger(endianness: .little, as: Int32.self) == 9)
        #expect(buffer.readInteger(endianness: .little, as: Int32.self) == 1)  // OP_REPLY
        buffer.moveReaderIndex(forwardBy: 16)
        #expect(buffer.readInteger(endianness: .little, as: Int32.self) == 1)  // numberReturned
        #expect(try BSONDecoder.decode(Array(buffer.readableBytesView)) == ["ok": .double(1)])
    }

    @Test func encodedCursorReplyIsTheSameBSONAsTheDecodedOne() throws {
        let documents: [BSONDocument] = [["_id": .int32(1), "a": .string("x")], ["_id": .int32(2)]]
        let encoded = CommandReply.cursor(id: 42, namespace: "db.c", batch: documents.map(\.bsonBytes), first: true)
        var expected = ReadCommands.cursorDocument(id: 42, namespace: "db.c", batch: documents, first: true)
        expected.append("ok", .double(1))
        guard case .encoded(let bytes) = encoded else {
            Issue.record("a cursor built from stored bytes is an encoded reply")
            return
        }
        #expect(bytes == expected.bsonBytes)
    }
}
