import NIOCore
import QueryEngine
import StratosCore

/// Operation codes of the MongoDB wire protocol.
enum OpCode: Int32 {
    case reply = 1
    case query = 2004
    case compressed = 2012
    case message = 2013
}

/// A request decoded from the wire.
struct WireRequest: Sendable {
    enum Kind: Sendable {
        /// OP_MSG: the command with document sequences merged in, and whether a reply is expected.
        case message(command: BSONDocument, moreToCome: Bool, checksumPresent: Bool = false)
        /// Legacy OP_QUERY against `<db>.$cmd`.
        case query(database: String, command: BSONDocument)
    }

    let requestId: Int32
    let kind: Kind
}

/// Errors while decoding a message whose framing was valid: answered with an error reply.
struct WireProtocolError: Error {
    let requestId: Int32
    let error: QueryError
    let isLegacyQuery: Bool
}

enum WireCodec {
    static let headerSize = 16

    /// Decodes one complete frame (header included).
    /// The request id of an OP_MSG frame (nil for other opcodes), for answering it with an error.
    static func requestHeader(_ frame: ByteBuffer) -> (requestId: Int32, Void)? {
        guard let requestId = frame.getInteger(at: frame.readerIndex + 4, endianness: .little, as: Int32.self),
            frame.getInteger(at: frame.readerIndex + 12, endianness: .little, as: Int32.self) == 2013
        else { return nil }
        return (requestId, ())
    }

    static func decode(_ frame: ByteBuffer) -> Result<WireRequest, WireProtocolError> {
        var buffer = frame
        guard let _ = buffer.readInteger(endianness: .little, as: Int32.self),
            let requestId = buffer.readInteger(endianness: .little, as: Int32.self),
            let _ = buffer.readInteger(endianness: .little, as: Int32.self),
            let opCode = buffer.readInteger(endianness: .little, as: Int32.self)
        else {
            return .failure(WireProtocolError(requestId: 0, error: QueryError(.invalidLength, "message header is truncated"), isLegacyQuery: false))
        }
        do throws(QueryError) {
            switch OpCode(rawValue: opCode) {
            case .message:
                try verifyChecksum(frame)
                return .success(WireRequest(requestId: requestId, kind: try decodeMessage(&buffer)))
            case .query:
                return .success(WireRequest(requestId: requestId, kind: try decodeQuery(&buffer)))
            default:
                return .failure(WireProtocolError(requestId: requestId, error: QueryError(.location(5739101), "Unsupported opCode \(opCode)"), isLegacyQuery: false))
            }
        } catch {
            return .failure(WireProtocolError(requestId: requestId, error: error, isLegacyQuery: opCode == OpCode.query.rawValue))
        }
    }

    /// checksumPresent: the last four bytes are a CRC-32C of everything before them. A message
    /// whose checksum does not match is corrupt and never runs (OP_MSG specification).
    private static func verifyChecksum(_ frame: ByteBuffer) throws(QueryError) {
        guard let flags = frame.getInteger(at: frame.readerIndex + headerSize, endianness: .little, as: UInt32.self), flags & 1 != 0 else {
            return
        }
        let coveredCount = frame.readableBytes - 4
        guard coveredCount >= headerSize + 4,
            let stored = frame.getInteger(at: frame.readerIndex + coveredCount, endianness: .little, as: UInt32.self),
            let covered = frame.getBytes(at: frame.readerIndex, length: coveredCount)
        else { throw QueryError(.invalidLength, "OP_MSG is too short for its checksum") }
        guard CRC32C.checksum(covered) == stored else {
            throw QueryError(.failedToParse, "OP_MSG checksum does not match: the message is corrupt and was not run")
        }
    }

    private static func decodeMessage(_ buffer: inout ByteBuffer) throws(QueryError) -> WireRequest.Kind {
        guard let flags = buffer.readInteger(endianness: .little, as: UInt32.self) else {
            throw QueryError(.invalidLength, "OP_MSG is truncated")
        }
        // Bits 0-15 are required: a receiver must reject unknown ones (OP_MSG specification).
        let knownRequired: UInt32 = 0b11
        guard flags & 0xFFFF & ~knownRequired == 0 else {
            throw QueryError(.failedToParse, "Unrecognized OP_MSG flag bits set")
        }
        var end = buffer.writerIndex
        if flags & 1 != 0 { end -= 4 }  // checksumPresent: a CRC-32C trails the sections (checked in `decode`).
        var body: BSONDocument?
        var sequences: [(String, [BSONValue])] = []
        while buffer.readerIndex < end {
            guard let kind = buffer.readInteger(as: UInt8.self) else { break }
            switch kind {
            case 0:
                guard body == nil else { throw QueryError(.failedToParse, "OP_MSG has more than one body section") }
                body = try readDocument(&buffer, limit: end)
            case 1:
                guard let size = buffer.readInteger(endianness: .little, as: Int32.self), size >= 5,
                    Int(size) - 4 <= end - buffer.readerIndex
                else { throw QueryError(.invalidLength, "OP_MSG document sequence has an invalid size") }
                let sectionEnd = buffer.readerIndex + Int(size) - 4
                guard let nameEnd = buffer.readableBytesView.firstIndex(of: 0), nameEnd < sectionEnd,
                    let name = buffer.readString(length: nameEnd - buffer.readerIndex)
                else { throw QueryError(.failedToParse, "OP_MSG document sequence has no identifier") }
                buffer.moveReaderIndex(forwardBy: 1)
                var documents: [BSONValue] = []
                while buffer.readerIndex < sectionEnd {
                    documents.append(.document(try readDocument(&buffer, limit: sectionEnd)))
                }
                sequences.append((name, documents))
            default:
                throw QueryError(.failedToParse, "Unknown OP_MSG section kind \(kind)")
            }
        }
        guard var command = body else { throw QueryError(.failedToParse, "OP_MSG has no body section") }
        for (name, documents) in sequences {
            guard !command.contains(key: name) else {
                throw QueryError(.failedToParse, "Duplicate field \(name) in OP_MSG body and document sequence")
            }
            command.append(name, .array(documents))
        }
        return .message(command: command, moreToCome: flags & 0b10 != 0, checksumPresent: flags & 1 != 0)
    }

    private static func decodeQuery(_ buffer: inout ByteBuffer) throws(QueryError) -> WireRequest.Kind {
        guard buffer.readInteger(endianness: .little, as: Int32.self) != nil,
            let nameEnd = buffer.readableBytesView.firstIndex(of: 0),
            let namespace = buffer.readString(length: nameEnd - buffer.readerIndex)
        else { throw QueryError(.failedToParse, "OP_QUERY is truncated") }
        buffer.moveReaderIndex(forwardBy: 1)
        guard buffer.readInteger(endianness: .little, as: Int32.self) != nil,
            buffer.readInteger(endianness: .little, as: Int32.self) != nil
        else { throw QueryError(.failedToParse, "OP_QUERY is truncated") }
        var query = try readDocument(&buffer, limit: buffer.writerIndex)
        guard namespace.hasSuffix(".$cmd") else {
            throw QueryError(.location(5739101), "OP_QUERY is supported only for commands (namespace <db>.$cmd)")
        }
        // Drivers wrap commands with read preferences as {$query: {...}, $readPreference: ...}.
        if case .document(let inner)? = query["$query"] ?? query["query"], query.firstKey?.hasPrefix("$") == true || query.firstKey == "query" {
            query = inner
        }
        return .query(database: String(namespace.dropLast(5)), command: query)
    }

    private static func readDocument(_ buffer: inout ByteBuffer, limit: Int) throws(QueryError) -> BSONDocument {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: Int32.self),
            length >= 5, Int(length) <= limit - buffer.readerIndex
        else { throw QueryError(.invalidBSON, "BSON document length is invalid") }
        guard Int(length) <= ServerLimits.documentSizeBytesMax + 16 * 1024 else {
            throw QueryError(.documentTooLarge, "BSON document is larger than the maximum size")
        }
        let view = buffer.readableBytesView.prefix(Int(length))
        let document = try BSONDecoder.decode(view)
        buffer.moveReaderIndex(forwardBy: Int(length))
        return document
    }

    // MARK: - Replies

    /// An OP_MSG reply with one body section; with `checksum`, it carries a CRC-32C (the request
    /// carried one).
    static func encodeMessageReply(
        _ reply: CommandReply, responseTo: Int32, requestId: Int32, allocator: ByteBufferAllocator, checksum: Bool = false
    ) -> ByteBuffer {
        let bytes = reply.bsonBytes
        let length = headerSize + 5 + bytes.count + (checksum ? 4 : 0)
        var buffer = allocator.buffer(capacity: length)
        buffer.writeInteger(Int32(length), endianness: .little)
        buffer.writeInteger(requestId, endianness: .little)
        buffer.writeInteger(responseTo, endianness: .little)
        buffer.writeInteger(OpCode.message.rawValue, endianness: .little)
        buffer.writeInteger(UInt32(checksum ? 1 : 0), endianness: .little)
        buffer.writeInteger(UInt8(0))
        buffer.writeBytes(bytes)
        if checksum {
            let covered = buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) ?? []
            buffer.writeInteger(CRC32C.checksum(covered), endianness: .little)
        }
        return buffer
    }

    /// An OP_REPLY carrying one document, the answer to a legacy OP_QUERY command.
    static func encodeLegacyReply(_ reply: CommandReply, responseTo: Int32, requestId: Int32, allocator: ByteBufferAllocator) -> ByteBuffer {
        let bytes = reply.bsonBytes
        let length = headerSize + 20 + bytes.count
        var buffer = allocator.buffer(capacity: length)
        buffer.writeInteger(Int32(length), endianness: .little)
        buffer.writeInteger(requestId, endianness: .little)
        buffer.writeInteger(responseTo, endianness: .little)
        buffer.writeInteger(OpCode.reply.rawValue, endianness: .little)
        buffer.writeInteger(Int32(8), endianness: .little)  // AwaitCapable, as servers set it.
        buffer.writeInteger(Int64(0), endianness: .little)
        buffer.writeInteger(Int32(0), endianness: .little)
        buffer.writeInteger(Int32(1), endianness: .little)
        buffer.writeBytes(bytes)
        return buffer
    }
}

/// Splits the byte stream into whole wire messages, rejecting impossible lengths before
/// buffering anything (a hostile length must not make the server allocate 2 GiB).
///
/// Until the connection has logged in, a message may be at most
/// `ServerLimits.unauthenticatedMessageBytesMax`: the handshake and SASL messages are small, and
/// a client that has not proven who it is must not make the node buffer 48 MB per socket.
struct MessageFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    struct InvalidFrameLength: Error {}

    /// The connection's login state; nil when authentication is off (`--dev-insecure`).
    var session: ConnectionSession?
    /// Whether part of a message is waiting for the rest (shared with the stall check).
    var partial = PartialMessage()

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        partial.isPending = buffer.readableBytes > 0
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: Int32.self) else {
            return .needMoreData
        }
        let limit = session.map { $0.principal == nil } == true ? ServerLimits.unauthenticatedMessageBytesMax : ServerLimits.messageSizeBytesMax
        guard length >= Int32(WireCodec.headerSize), Int(length) <= limit else {
            throw InvalidFrameLength()
        }
        guard let frame = buffer.readSlice(length: Int(length)) else { return .needMoreData }
        partial.isPending = buffer.readableBytes > 0
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.clear()  // A truncated trailing message is dropped with the connection.
        return .needMoreData
    }
}

/// Keeps a connection's `ConnectionSession` in its pipeline, where the frame decoder and the
/// request loop both reach it. It forwards every read unchanged.
final class ConnectionSessionHandler: ChannelInboundHandler, @unchecked Sendable {
    // Safe: the only stored property is immutable and itself Sendable.
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let session: ConnectionSession
    let partial: PartialMessage

    init(session: ConnectionSession, partial: PartialMessage = PartialMessage()) {
        self.session = session
        self.partial = partial
    }

    /// A message that stops arriving half-way (slowloris) closes its connection: after
    /// `ServerLimits.stalledMessageSeconds` without a byte while part of a message waits.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            if partial.isPending { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Whether a connection holds part of a message (used on its event loop only).
final class PartialMessage: @unchecked Sendable {
    // Safe: read and written only on the connection's event loop.
    var isPending = false
}
