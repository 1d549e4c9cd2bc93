import QueryEngine

/// What a command answers: a document, or a reply whose BSON bytes are already built.
///
/// Cursor replies for exact scans are assembled from the stored documents' bytes without
/// decoding them (`FindQuery.nextEncodedBatch`, `CommandReply.cursor`); they reach the socket as
/// they are. Every other reply is a document, which the router completes (`ok: 1`) before it is
/// encoded.
enum CommandReply: Sendable {
    case document(BSONDocument)
    case encoded([UInt8])

    /// The reply's BSON bytes.
    var bsonBytes: [UInt8] {
        switch self {
        case .document(let document): document.bsonBytes
        case .encoded(let bytes): bytes
        }
    }

    /// `{cursor: {firstBatch|nextBatch: [...], id, ns}, ok: 1}` with the batch's documents copied
    /// in as stored.
    static func cursor(id: Int64, namespace: String, batch: [[UInt8]], first: Bool) -> CommandReply {
        var documents: [UInt8] = []
        documents.reserveCapacity(batch.reduce(16) { $0 + $1.count + 8 })
        appendDocument(to: &documents) { array in
            for (index, document) in batch.enumerated() {
                array.append(0x03)
                appendCString(String(index), to: &array)
                array.append(contentsOf: document)
            }
        }
        var reply: [UInt8] = []
        reply.reserveCapacity(documents.count + namespace.utf8.count + 64)
        appendDocument(to: &reply) { outer in
            outer.append(0x03)
            appendCString("cursor", to: &outer)
            appendDocument(to: &outer) { cursor in
                cursor.append(0x04)
                appendCString(first ? "firstBatch" : "nextBatch", to: &cursor)
                cursor.append(contentsOf: documents)
                cursor.append(0x12)
                appendCString("id", to: &cursor)
                appendLittleEndian(UInt64(bitPattern: id), to: &cursor)
                cursor.append(0x02)
                appendCString("ns", to: &cursor)
                appendLittleEndian(UInt32(namespace.utf8.count + 1), to: &cursor)
                appendCString(namespace, to: &cursor)
            }
            outer.append(0x01)
            appendCString("ok", to: &outer)
            appendLittleEndian((1.0 as Double).bitPattern, to: &outer)
        }
        return .encoded(reply)
    }

    private static func appendDocument(to bytes: inout [UInt8], _ body: (inout [UInt8]) -> Void) {
        let start = bytes.count
        bytes.append(contentsOf: [0, 0, 0, 0])
        body(&bytes)
        bytes.append(0)
        let length = UInt32(bytes.count - start)
        for offset in 0..<4 { bytes[start + offset] = UInt8(truncatingIfNeeded: length >> (8 * offset)) }
    }

    private static func appendCString(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: text.utf8)
        bytes.append(0)
    }

    private static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var little = value.littleEndian
        withUnsafeBytes(of: &little) { bytes.append(contentsOf: $0) }
    }
}
