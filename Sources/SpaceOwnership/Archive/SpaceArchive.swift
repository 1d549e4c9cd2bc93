import StratosCore

/// The `.stratos` archive of a space: everything needed to check it offline and to recreate it
/// on another node — its header, the sealed copies of its key, its grants and revocations, and
/// its whole signed commit log with each commit's operations.
///
/// Layout: the 16-byte magic `STRATOS-ARCHIVE1`, then records, each `type (1 byte) ‖ length
/// (4 bytes, big-endian) ‖ body`, in this order: one header, sealed keys, grants, revocations,
/// commits (oldest first) — owner key rotations, if any, come right after the header — and a
/// trailer holding the count of records before it, the
/// BLAKE2b-256 of every byte before it, and the owner's (current key's) signature over both (so truncation,
/// reordering, added records and flipped bytes are all caught, even without the space key, and
/// nobody but the owner can produce a different archive that verifies). Commit payloads are sealed with the space key (XChaCha20-Poly1305, the space
/// id and the commit's seq as additional data) unless the owner exported them decrypted.
public enum SpaceArchive {
    /// The file's first bytes.
    public static let magic: [UInt8] = Array("STRATOS-ARCHIVE1".utf8)
    /// Largest record accepted (a commit of many documents; well above a 48 MB message).
    public static let recordBytesMax = 256 << 20

    /// What the owner signs at the end of an archive.
    public static func trailerSignedBytes(space: SpaceID, records: UInt64, digest: [UInt8]) -> [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write("stratosdb/archive-trailer/v1")
        encoder.write(space.string)
        encoder.write(records)
        encoder.write(bytes: digest)
        return encoder.bytes
    }

    /// Additional data for a commit payload sealed in an archive.
    public static func payloadAdditionalData(space: SpaceID, seq: UInt64) -> [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write("stratosdb/archive-payload/v1")
        encoder.write(space.string)
        encoder.write(seq)
        return encoder.bytes
    }
}

/// The first record of an archive.
public struct ArchiveHeader: Hashable, Sendable {
    public var space: SpaceID
    public var owner: DID
    public var name: String
    /// Whether commit payloads are sealed with the space key.
    public var payloadsEncrypted: Bool
    public var commitCount: UInt64
    /// The hash of the newest commit (32 zero bytes for an empty log).
    public var headHash: [UInt8]
    public var createdAtMilliseconds: Int64

    public init(space: SpaceID, owner: DID, name: String, payloadsEncrypted: Bool, commitCount: UInt64, headHash: [UInt8], createdAtMilliseconds: Int64) {
        self.space = space
        self.owner = owner
        self.name = name
        self.payloadsEncrypted = payloadsEncrypted
        self.commitCount = commitCount
        self.headHash = headHash
        self.createdAtMilliseconds = createdAtMilliseconds
    }

    var encoded: [UInt8] {
        var encoder = CanonicalEncoder()
        encoder.write(UInt32(1))
        encoder.write(space.string)
        encoder.write(owner.string)
        encoder.write(name)
        encoder.write(payloadsEncrypted)
        encoder.write(commitCount)
        encoder.write(bytes: headHash)
        encoder.write(createdAtMilliseconds)
        return encoder.bytes
    }

    init(decoding bytes: [UInt8]) throws(StratosError) {
        var decoder = CanonicalDecoder(bytes)
        guard try decoder.readUInt32() == 1 else { throw StratosError(.invalidEncoding, "unsupported archive version") }
        guard let space = SpaceID(try decoder.readString(maxCount: 64)), let owner = try? DID(parsing: try decoder.readString(maxCount: 128)) else {
            throw StratosError(.invalidEncoding, "archive header names no valid space or owner")
        }
        self.space = space
        self.owner = owner
        name = try decoder.readString(maxCount: 64)
        payloadsEncrypted = try decoder.readBool()
        commitCount = try decoder.readUInt64()
        headHash = try decoder.readBytes(maxCount: 32)
        createdAtMilliseconds = try decoder.readInt64()
        try decoder.finish()
    }
}

/// One record of an archive.
public enum ArchiveRecord: Sendable {
    case header(ArchiveHeader)
    /// The space key sealed to `recipient`.
    case sealedKey(recipient: DID, sealed: [UInt8])
    /// A signed grant (its encoded bytes).
    case grant([UInt8])
    /// A signed revocation (its encoded bytes).
    case revocation([UInt8])
    /// An owner key rotation (its encoded bytes), oldest first, before any grant.
    case rotation([UInt8])
    /// A signed commit and its payload (sealed or plain, as the header says).
    case commit(SignedCommit, payload: [UInt8])
    /// The number of records before it, the BLAKE2b-256 of every byte before it, and the
    /// owner's signature over `SpaceArchive.trailerSignedBytes`.
    case trailer(records: UInt64, digest: [UInt8], signature: [UInt8])

    var type: UInt8 {
        switch self {
        case .header: 1
        case .sealedKey: 2
        case .grant: 3
        case .revocation: 4
        case .commit: 5
        case .rotation: 6
        case .trailer: 9
        }
    }

    var body: [UInt8] {
        var encoder = CanonicalEncoder()
        switch self {
        case .header(let header): return header.encoded
        case .sealedKey(let recipient, let sealed):
            encoder.write(recipient.string)
            encoder.write(bytes: sealed)
        case .grant(let bytes), .revocation(let bytes), .rotation(let bytes):
            encoder.write(bytes: bytes)
        case .commit(let commit, let payload):
            encoder.write(bytes: commit.encoded)
            encoder.write(bytes: payload)
        case .trailer(let records, let digest, let signature):
            encoder.write(records)
            encoder.write(bytes: digest)
            encoder.write(bytes: signature)
        }
        return encoder.bytes
    }

    static func decode(type: UInt8, body: [UInt8]) throws(StratosError) -> ArchiveRecord {
        if type == 1 { return .header(try ArchiveHeader(decoding: body)) }
        var decoder = CanonicalDecoder(body)
        let record: ArchiveRecord
        switch type {
        case 2:
            guard let recipient = try? DID(parsing: try decoder.readString(maxCount: 128)) else {
                throw StratosError(.invalidEncoding, "sealed key names no valid recipient")
            }
            record = .sealedKey(recipient: recipient, sealed: try decoder.readBytes(maxCount: 1024))
        case 3: record = .grant(try decoder.readBytes(maxCount: 1 << 17))
        case 4: record = .revocation(try decoder.readBytes(maxCount: 1 << 12))
        case 6: record = .rotation(try decoder.readBytes(maxCount: 1 << 12))
        case 5:
            let commit = try SignedCommit(decoding: try decoder.readBytes(maxCount: 8192))
            record = .commit(commit, payload: try decoder.readBytes(maxCount: SpaceArchive.recordBytesMax))
        case 9:
            record = .trailer(records: try decoder.readUInt64(), digest: try decoder.readBytes(maxCount: 32), signature: try decoder.readBytes(maxCount: 64))
        default: throw StratosError(.invalidEncoding, "unknown archive record type \(type)")
        }
        try decoder.finish()
        return record
    }
}

extension ArchiveRecord {
    /// The record as the archive frames it: its type, its length (4 bytes, big-endian), its body.
    public var framed: [UInt8] {
        let body = self.body
        var frame: [UInt8] = [type]
        withUnsafeBytes(of: UInt32(body.count).bigEndian) { frame.append(contentsOf: $0) }
        return frame + body
    }

    /// Decodes one framed record (as `framed` gives it), rejecting trailing bytes.
    public init(framed bytes: [UInt8]) throws(StratosError) {
        guard bytes.count >= 5 else { throw StratosError(.invalidEncoding, "archive record is truncated") }
        let length = bytes[1...4].reduce(0) { $0 << 8 | Int($1) }
        guard length == bytes.count - 5, length <= SpaceArchive.recordBytesMax else {
            throw StratosError(.invalidEncoding, "archive record length does not match its frame")
        }
        self = try ArchiveRecord.decode(type: bytes[0], body: Array(bytes[5...]))
    }
}

/// Writes an archive through `sink`, hashing as it goes.
public final class ArchiveWriter {
    private let sink: ([UInt8]) throws -> Void
    private let hasher = Blake2bHasher()
    private var records: UInt64 = 0

    /// Starts an archive (writes the magic).
    public init(sink: @escaping ([UInt8]) throws -> Void) throws {
        self.sink = sink
        try emit(SpaceArchive.magic)
    }

    /// Appends a record.
    public func write(_ record: ArchiveRecord) throws {
        let body = record.body
        var frame: [UInt8] = [record.type]
        let length = UInt32(body.count).bigEndian
        withUnsafeBytes(of: length) { frame.append(contentsOf: $0) }
        try emit(frame)
        try emit(body)
        records += 1
    }

    /// Appends the trailer, signed by the space's owner; the writer must not be used afterwards.
    public func finish(space: SpaceID, owner: SigningKey) throws {
        let digest = hasher.finalize().bytes
        let signature = owner.sign(SpaceArchive.trailerSignedBytes(space: space, records: records, digest: digest))
        let record = ArchiveRecord.trailer(records: records, digest: digest, signature: signature.bytes)
        let body = record.body
        var frame: [UInt8] = [record.type]
        withUnsafeBytes(of: UInt32(body.count).bigEndian) { frame.append(contentsOf: $0) }
        try sink(frame + body)
    }

    private func emit(_ bytes: [UInt8]) throws {
        hasher.update(bytes)
        try sink(bytes)
    }
}

/// Reads an archive's records from `source` (which returns up to `count` bytes, fewer only at
/// the end), checking the framing and, at the trailer, the digest of everything before it.
public final class ArchiveReader {
    private let source: (Int) throws -> [UInt8]
    private let hasher = Blake2bHasher()
    private var records: UInt64 = 0
    private var finished = false
    /// Bytes read so far.
    public private(set) var bytesRead = 0

    public init(source: @escaping (Int) throws -> [UInt8]) throws {
        self.source = source
        let magic = try read(SpaceArchive.magic.count)
        guard magic == SpaceArchive.magic else { throw StratosError(.invalidEncoding, "not a StratosDB space archive") }
        hasher.update(magic)
    }

    /// The next record; nil after the trailer, which must be followed by nothing.
    public func next() throws -> ArchiveRecord? {
        guard !finished else { return nil }
        let frame = try read(5)
        let length = frame[1...4].reduce(0) { $0 << 8 | Int($1) }
        guard length <= SpaceArchive.recordBytesMax else { throw StratosError(.limitExceeded, "archive record of \(length) bytes is too large") }
        let body = try read(length)
        let record = try ArchiveRecord.decode(type: frame[0], body: body)
        if case .trailer(let count, let digest, _) = record {
            finished = true
            guard count == records, digest == hasher.finalize().bytes else {
                throw StratosError(.invalidProof, "the archive's trailer does not match its contents (truncated, reordered or altered)")
            }
            guard try source(1).isEmpty else { throw StratosError(.invalidEncoding, "bytes after the archive's trailer") }
            return record
        }
        // Hashed in two parts: a record can be megabytes, and joining them would copy it.
        hasher.update(frame)
        hasher.update(body)
        records += 1
        return record
    }

    private func read(_ count: Int) throws -> [UInt8] {
        // Usually the source has it all at once: keep its array rather than copy it.
        let first = try source(count)
        if first.count == count {
            bytesRead += count
            return first
        }
        guard !first.isEmpty else { throw StratosError(.invalidEncoding, "the archive ends early (truncated)") }
        var bytes = first
        bytes.reserveCapacity(count)
        while bytes.count < count {
            let chunk = try source(count - bytes.count)
            guard !chunk.isEmpty else { throw StratosError(.invalidEncoding, "the archive ends early (truncated)") }
            bytes += chunk
        }
        bytesRead += count
        return bytes
    }
}
