import CStratosVFS
import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore

/// Export, import, verification and rebuild of spaces, on a node's data directory (the CLI's
/// `stratosdb space export|import|verify|rebuild`). Each streams: memory stays bounded by the
/// largest commit, whatever the size of the space.
public enum SpaceArchiveService {
    /// Progress: commits done and in all.
    public typealias Progress = (_ done: UInt64, _ total: UInt64) -> Void

    /// An archive record the verifier accepted, with what the importer needs from the verifier
    /// at that point: the space key, once a sealed copy opened, and the commit's decoded
    /// operations and documents (nil when its payload could not be opened).
    struct ImportItem {
        let record: ArchiveRecord
        let spaceKey: [UInt8]?
        let prepared: PreparedCommit?

        /// What it holds, roughly (its payload, once or twice), for the pipeline's bound.
        var bytes: Int {
            var total = prepared?.payload.count ?? 0
            if case .commit(_, let payload) = record { total += payload.count }
            return total
        }
    }

    /// What an export wrote.
    public struct ExportResult: Sendable {
        public var commits: UInt64
        public var bytes: Int
        public var operationBytes: UInt64
    }

    // MARK: - Export

    /// Writes `space`'s archive to `output`: header, sealed keys, grants, revocations, every
    /// commit with its payload (sealed with the space key unless `decrypt`), trailer.
    public static func export(
        dataDirectory: String, space: SpaceID, owner: SigningKey, output: String, decrypt: Bool, progress: Progress = { _, _ in }
    ) throws -> ExportResult {
        let node = try NodeFiles(dataDirectory: dataDirectory)
        guard let record = node.catalog.space(space) else { throw QueryError(.namespaceNotFound, "no space \(space) on this node") }
        guard record.controller == owner.did else { throw QueryError(.unauthorized, "only the owner of space \(space) (its current key) can export it") }
        let key = try node.catalog.spaceKey(space, openedWith: node.nodeKey)
        // Every write acknowledged before the export is in a signed commit first.
        try PendingWrites.settle(node: node, space: space, key: key)
        let connection = try node.openSpaceFile(space, key: key)
        // One read transaction: the count, the head and every commit come from the same
        // snapshot, however many writes the running node commits meanwhile.
        try connection.execute("BEGIN")
        defer { try? connection.execute("COMMIT") }
        let count = try scalar(connection, "SELECT count(*) FROM stratos_commits")
        let head = try CommitLog.lastCommits(connection, count: 1).first
        guard FileManager.default.createFile(atPath: output, contents: nil), let handle = FileHandle(forWritingAtPath: output) else {
            throw QueryError(.badValue, "cannot create \(output)")
        }
        defer { try? handle.close() }
        let buffered = BufferedWriter(handle)
        let writer = try ArchiveWriter(sink: buffered.write)
        for leading in try leadingRecords(
            catalog: node.catalog, record: record, decrypt: decrypt, commitCount: UInt64(count), headHash: head?.hash ?? [UInt8](repeating: 0, count: 32))
        {
            try writer.write(leading)
        }
        let select = try connection.statement("SELECT commit_bytes, payload FROM stratos_commits ORDER BY seq")
        defer { select.reset() }
        var done: UInt64 = 0
        var documentBytes: UInt64 = 0
        while try select.step() {
            let commit = try SignedCommit(decoding: select.blob(0))
            let payload = select.blob(1)
            documentBytes += UInt64(payload.count)
            try writer.write(commitRecord(commit, payload: payload, key: key, decrypt: decrypt))
            done += 1
            if done % 256 == 0 || done == UInt64(count) { progress(done, UInt64(count)) }
        }
        try writer.finish(space: space, owner: owner)
        try buffered.flush()
        return ExportResult(commits: done, bytes: buffered.written, operationBytes: documentBytes)
    }

    /// The records before the commits: header, owner key rotations, sealed copies of the
    /// space key, grants and revocations.
    static func leadingRecords(
        catalog: NodeCatalog, record: SpaceRecord, decrypt: Bool, commitCount: UInt64, headHash: [UInt8]
    ) throws -> [ArchiveRecord] {
        var records: [ArchiveRecord] = [.header(ArchiveHeader(
            space: record.id, owner: record.owner, name: record.name, payloadsEncrypted: !decrypt, commitCount: commitCount,
            headHash: headHash, createdAtMilliseconds: SystemWallClock().nowMilliseconds()))]
        for rotation in try catalog.rotations(record.id) { records.append(.rotation(rotation.encoded)) }
        for (recipient, sealed) in try catalog.sealedSpaceKeys(record.id) { records.append(.sealedKey(recipient: recipient, sealed: sealed)) }
        let grants = try catalog.grants(space: record.id)
        for grant in grants { records.append(.grant(grant.signed.encoded)) }
        for grant in grants { if let revocation = grant.revocation { records.append(.revocation(revocation.encoded)) } }
        return records
    }

    /// A commit's record, its payload sealed with the space key unless `decrypt`.
    static func commitRecord(_ commit: SignedCommit, payload: [UInt8], key: [UInt8], decrypt: Bool) -> ArchiveRecord {
        let stored = decrypt ? payload : AEAD.seal(payload, key: key, additionalData: SpaceArchive.payloadAdditionalData(space: commit.commit.space, seq: commit.commit.seq))
        return .commit(commit, payload: stored)
    }

    // MARK: - Verify

    /// Checks an archive offline; `keyHolders` may open its space key (to replay payloads and
    /// recompute every state root).
    public static func verify(archive: String, keyHolders: [SigningKey], progress: Progress = { _, _ in }) throws -> ArchiveVerifier.Summary {
        let reader = try openArchive(archive)
        let verifier = ArchiveVerifier(keyHolders: keyHolders)
        var total: UInt64 = 0
        var done: UInt64 = 0
        while let record = try reader.next() {
            if case .header(let header) = record { total = header.commitCount }
            try verifier.check(record)
            if case .commit = record {
                done += 1
                if done % 256 == 0 || done == total { progress(done, total) }
            }
        }
        return try verifier.finish()
    }

    // MARK: - Import

    /// Imports an archive into this data directory: verifies all of it first (every signature,
    /// link, payload and state root — so the space key must open, with `keyHolders` or this
    /// node's key), then builds the space's file from its commits (the same signed commits, so
    /// the same history), and only then makes the space visible.
    public static func importArchive(
        dataDirectory: String, archive: String, keyHolders: [SigningKey], progress: Progress = { _, _ in }
    ) throws -> ArchiveVerifier.Summary {
        let node = try NodeFiles(dataDirectory: dataDirectory)
        // A running node could create the space's file meanwhile (a write to that name), and a
        // file moved in under a live node loses what it wrote: offline, import into a stopped
        // node (a running node imports through `importSpace`, which guards its own files).
        guard let lock = NodeLock(dataDirectory: dataDirectory) else {
            throw QueryError(.illegalOperation, "the node using \(dataDirectory) is running: import through it (`stratosdb space import` does when it finds the node's address) or stop it")
        }
        defer { _ = lock }
        let verifier = ArchiveVerifier(keyHolders: keyHolders + [node.nodeKey], replaysStateRoots: false)
        return try importArchive(node: node, archive: archive, verifier: verifier, authorize: { _ in }, install: { try $0() }, progress: progress)
    }

    /// Imports an archive into `node`'s files. `authorize` sees the verified summary before
    /// anything becomes visible; `install` runs the steps that make the space visible (so a
    /// running node can hold its storage lock around them).
    static func importArchive(
        node: NodeFiles, archive: String, verifier: ArchiveVerifier, authorizeOwner: (DID, SpaceID) throws -> Void = { _, _ in },
        authorize: (ArchiveVerifier.Summary) throws -> Void, install: (() throws -> Void) throws -> Void, progress: Progress
    ) throws -> ArchiveVerifier.Summary {
        // One pass: the verifier checks signatures, links, payload hashes and (at the end) the
        // owner-signed trailer; the builder replays each commit into a file nobody can see yet
        // and checks its state root. Only when all of it held does the space become visible.
        // Reading, verifying and decoding run a few records ahead on a thread of their own,
        // which owns the reader and the verifier until `next()` returns nil.
        let reader = try openArchive(archive)
        let pipeline = ReadAheadPipeline<ImportItem>(name: "stratosdb-import", weight: \.bytes) {
            guard let record = try reader.next() else { return nil }
            try verifier.check(record)
            guard case .commit(let commit, let payload) = record else {
                return ImportItem(record: record, spaceKey: verifier.openedSpaceKey, prepared: nil)
            }
            // A payload that does not decode is left to the builder's thread, which decodes it
            // again and fails there, in order: after the owner's authorization, as before.
            if let plain = verifier.lastPayload, let prepared = try? PreparedCommit(commit: commit, payload: plain) {
                // The archive's copy of the payload is not needed any more.
                return ImportItem(record: .commit(commit, payload: []), spaceKey: verifier.openedSpaceKey, prepared: prepared)
            }
            return ImportItem(record: .commit(commit, payload: payload), spaceKey: verifier.openedSpaceKey, prepared: nil)
        }
        defer { pipeline.close() }
        var header: ArchiveHeader?
        var key: [UInt8]?
        var grants: [SignedGrant] = []
        var revocations: [SignedRevocation] = []
        var rotations: [OwnerKeyRotation] = []
        var builder: SpaceBuilder?
        var building = ""
        defer { if !building.isEmpty { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: building + suffix) } } }
        var done: UInt64 = 0
        // The space's jobs as its commits leave them, so the node's scheduler learns of them.
        var jobs: [[UInt8]: [UInt8]] = [:]
        while let item = try pipeline.next() {
            switch item.record {
            case .header(let found):
                header = found
                guard !FileManager.default.fileExists(atPath: node.spacePath(found.space)) else {
                    throw QueryError(.namespaceExists, "space \(found.space) already exists on this node; drop it first")
                }
                // Its own name: two imports of one space (a retry, or an upload by someone else
                // naming the same space) never share or delete each other's file.
                building = node.spacePath(found.space) + ".importing-" + Hex.encode(SecureRandom.bytes(count: 8))
            case .grant(let bytes): grants.append(try SignedGrant(decoding: bytes))
            case .revocation(let bytes): revocations.append(try SignedRevocation(decoding: bytes))
            case .rotation(let bytes): rotations.append(try OwnerKeyRotation(decoding: bytes))
            case .commit(let commit, let payload):
                guard let header else { break }
                if builder == nil {
                    // Before anything is built: whoever may not import this space stops here (the reading
                    // thread only verified and decoded a few records ahead).
                    let chain = OwnerKeyRotation.controller(owner: header.owner, rotations: rotations)
                    try authorizeOwner(chain?.current ?? header.owner, header.space)
                    if header.payloadsEncrypted && item.spaceKey == nil {
                        throw QueryError(.unauthorized, "the archive's payloads are encrypted and no given key opens them: pass --key with the owner's or a reader's key")
                    }
                    key = item.spaceKey ?? SecureRandom.bytes(count: 32)
                    builder = try SpaceBuilder(node: node, space: header.space, path: building, key: key!, controllers: Set(chain?.all ?? [header.owner]))
                }
                // The verifier opened the payload while checking its hash (with the same key), and
                // the reading thread decoded it.
                let prepared = try item.prepared ?? PreparedCommit(commit: commit, payload: header.payloadsEncrypted
                    ? AEAD.open(payload, key: key!, additionalData: SpaceArchive.payloadAdditionalData(space: header.space, seq: commit.commit.seq))
                    : payload)
                for operation in try builder!.append(prepared) {
                    switch operation {
                    case .put(JobStore.jobs, let idKey, let document): jobs[idKey] = document
                    case .delete(JobStore.jobs, let idKey): jobs[idKey] = nil
                    case .dropCollection(JobStore.jobs), .renameCollection(JobStore.jobs, _): jobs = [:]
                    default: break
                    }
                }
                pipeline.recycle(item)
                done += 1
                if done % 256 == 0 || done == header.commitCount { progress(done, header.commitCount) }
            default: break
            }
        }
        let summary = try verifier.finish()  // The pipeline's thread is done with it.
        guard let header else { throw QueryError(.badValue, "the archive has no header") }
        try authorize(summary)
        let spaceKey = key ?? verifier.openedSpaceKey ?? SecureRandom.bytes(count: 32)
        let built = builder != nil
        try builder?.finish()
        builder = nil  // Closes the file.
        // The key is sealed again only to the owner, this node, and grantees whose owner-signed
        // grants let them read (not to every recipient the archive lists: a reader revoked since
        // keeps no copy here).
        let revoked = Set(revocations.map(\.grantID))
        let readers = grants.filter { $0.grant.actions.contains(.read) && !revoked.contains($0.id) }.map(\.grant.grantee)
        try install {
            guard !FileManager.default.fileExists(atPath: node.spacePath(header.space)) else {
                throw QueryError(.namespaceExists, "space \(header.space) already exists on this node; drop it first")
            }
            try node.catalog.importSpace(header: header, key: spaceKey, node: node.nodeKey.did, readers: readers, rotations: rotations)
            for grant in grants { try node.catalog.addGrant(grant, fromHistory: true) }
            for revocation in revocations { try node.catalog.revoke(revocation, fromHistory: true) }
            // Scheduled jobs run here from now on (a slot that passed meanwhile runs at once).
            for document in jobs.values {
                guard let job = try? BSONDecoder.decode(document), job["state"] == .string(JobStore.State.scheduled.rawValue),
                    case .string(let id)? = job["_id"]
                else { continue }
                let due: Int64 = job["nextRunAt"].flatMap { if case .datetime(let at) = $0 { at } else { nil } } ?? 0
                try node.catalog.scheduleJob(space: header.space, job: id, nextRunMilliseconds: due)
            }
            // Its TTL indexes, if any, expire documents here too (the monitor checks and forgets).
            try node.catalog.noteTTLDatabase(header.space.string)
            // Visible only now: the catalog knows the space and its key, then the file moves in
            // (never over an existing file), and the directory entry is synced.
            let finalPath = node.spacePath(header.space)
            if built {
                for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: finalPath + suffix) }
                guard link(building, finalPath) == 0 else { throw QueryError(.internalError, "cannot move the imported space into place") }
                unlink(building)
                let directory = open((finalPath as NSString).deletingLastPathComponent, O_RDONLY)
                if directory >= 0 {
                    fsync(directory)
                    close(directory)
                }
            }
        }
        return summary
    }

    // MARK: - Rebuild

    /// Recreates a space's tables from its commit log alone, checks that replaying every commit
    /// reaches its state root, and replaces the space's file with the rebuilt one. The node must
    /// not be serving the space meanwhile (stop it, or run this on a copy).
    public static func rebuild(dataDirectory: String, space: SpaceID, progress: Progress = { _, _ in }) throws -> UInt64 {
        let node = try NodeFiles(dataDirectory: dataDirectory)
        // Replacing the file under a running node would lose what it writes meanwhile.
        guard let lock = NodeLock(dataDirectory: dataDirectory) else {
            throw QueryError(.illegalOperation, "the node using \(dataDirectory) is running: stop it before rebuilding a space")
        }
        defer { _ = lock }
        guard node.catalog.space(space) != nil else { throw QueryError(.namespaceNotFound, "no space \(space) on this node") }
        let key = try node.catalog.spaceKey(space, openedWith: node.nodeKey)
        return try rebuildFile(node: node, space: space, sourceKey: key, targetKey: key, progress: progress)
    }

    /// Replays a space's commit log into a new file sealed with `targetKey`, checking every
    /// state root, and puts it in place of the old one. The node must be stopped.
    static func rebuildFile(node: NodeFiles, space: SpaceID, sourceKey: [UInt8], targetKey: [UInt8], progress: Progress) throws -> UInt64 {
        // The tables are rebuilt from signed commits alone: what the node left pending goes into one first.
        try PendingWrites.sealLeftPending(node: node, space: space, key: sourceKey)
        var source: SQLiteConnection? = try node.openSpaceFile(space, key: sourceKey)
        let total = UInt64(try scalar(source!, "SELECT count(*) FROM stratos_commits"))
        let path = node.spacePath(space)
        let building = path + ".rebuilding"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: building + suffix) } }
        var done: UInt64 = 0
        do {
            let builder = try SpaceBuilder(node: node, space: space, path: building, key: targetKey)
            let select = try source!.statement("SELECT commit_bytes, payload FROM stratos_commits ORDER BY seq")
            // Reading the log (opening its pages), checking each payload's hash and decoding it
            // run a few commits ahead on a thread of their own, which owns `select` until
            // `next()` returns nil.
            let pipeline = ReadAheadPipeline<PreparedCommit>(name: "stratosdb-rebuild", weight: { $0.payload.count }) {
                guard try select.step() else { return nil }
                let commit = try SignedCommit(decoding: select.blob(0))
                let payload = select.blob(1)
                guard Hash256.blake2b(payload).bytes == commit.commit.payloadHash else {
                    throw QueryError(.location(7_100_010), "commit \(commit.commit.seq) does not match its payload: the log is damaged")
                }
                return try PreparedCommit(commit: commit, payload: payload)
            }
            defer { pipeline.close() }
            while let prepared = try pipeline.next() {
                try builder.append(prepared)
                pipeline.recycle(prepared)
                done += 1
                if done % 256 == 0 || done == total { progress(done, total) }
            }
            select.reset()
            try builder.finish()
        }  // The builder closes its file here, before the rename.
        source = nil
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        stratos_vfs_set_key((path as NSString).lastPathComponent, targetKey)
        guard rename(building, path) == 0 else { throw QueryError(.internalError, "cannot replace the space's file") }
        return done
    }

    // MARK: - Space key rotation

    /// Re-encrypts a space under a new random key (rebuilt from its commit log), and
    /// seals the new key only to the owner's current key, this node and current readers
    /// (unrevoked, unexpired grants with `read`): readers whose grants ended lose access to
    /// everything written from now on. Archives made before keep opening with the old key. The
    /// node must be stopped.
    public static func rotateSpaceKey(dataDirectory: String, space: SpaceID, owner: SigningKey) throws -> [DID] {
        let node = try NodeFiles(dataDirectory: dataDirectory)
        guard let lock = NodeLock(dataDirectory: dataDirectory) else {
            throw QueryError(.illegalOperation, "the node using \(dataDirectory) is running: stop it before rotating a space's key")
        }
        defer { _ = lock }
        guard let record = node.catalog.space(space) else { throw QueryError(.namespaceNotFound, "no space \(space) on this node") }
        guard record.controller == owner.did else { throw QueryError(.unauthorized, "only the owner of space \(space) (its current key) can rotate its key") }
        let oldKey = try node.catalog.spaceKey(space, openedWith: node.nodeKey)
        var newKey = SecureRandom.bytes(count: 32)
        defer { for index in newKey.indices { newKey[index] = 0 } }
        // Rebuilt from the commit log under the new key: every state root is checked on the way;
        // the new file's rollback journal stays in memory while it is built (one on disk would
        // hold plaintext page images), and it is in WAL mode when done.
        // Until the catalog holds the new key, the space under its old key is kept beside it: if
        // the swap is interrupted, moving `<id>.sqlite.before-rotation` back restores the space.
        let path = node.spacePath(space)
        let backup = path + ".before-rotation"
        let hasFile = FileManager.default.fileExists(atPath: path)
        if hasFile {
            try? FileManager.default.removeItem(atPath: backup)
            guard link(path, backup) == 0 else { throw QueryError(.internalError, "cannot keep a copy of the space before rotating its key") }
            do {
                _ = try rebuildFile(node: node, space: space, sourceKey: oldKey, targetKey: newKey, progress: { _, _ in })
            } catch {
                try? FileManager.default.removeItem(atPath: backup)
                throw error
            }
        }
        let now = SystemWallClock().nowMilliseconds()
        let revoked = Set(try node.catalog.grants(space: space).compactMap { $0.revocation?.grantID })
        let readers = try node.catalog.grants(space: space)
            .filter { !revoked.contains($0.signed.id) && $0.signed.grant.actions.contains(.read) && !$0.signed.grant.isExpired(nowMilliseconds: now) }
            .map(\.signed.grant.grantee)
        let recipients = Array(Set([record.controller, node.nodeKey.did] + readers)).sorted()
        do {
            try node.catalog.replaceSpaceKey(space, key: newKey, recipients: recipients)
        } catch {
            if hasFile { _ = rename(backup, path) }  // The old file, under the key the catalog still holds.
            stratos_vfs_set_key((path as NSString).lastPathComponent, oldKey)
            throw error
        }
        if hasFile { unlink(backup) }
        return recipients
    }

    // MARK: - Helpers

    static func scalar(_ connection: SQLiteConnection, _ sql: String) throws(QueryError) -> Int64 {
        let statement = try connection.statement(sql)
        defer { statement.reset() }
        _ = try statement.step()
        return statement.int64(0)
    }

    public static func openArchive(_ path: String) throws -> ArchiveReader {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw QueryError(.badValue, "cannot read \(path)") }
        let buffered = BufferedReader(handle)
        return try ArchiveReader(source: buffered.read)
    }
}

/// A node's data directory, opened for offline work by the CLI.
struct NodeFiles {
    let dataDirectory: String
    let catalog: NodeCatalog
    let nodeKey: SigningKey

    /// The files of the node running in this process (its own catalog and key).
    init(dataDirectory: String, catalog: NodeCatalog, nodeKey: SigningKey) {
        self.dataDirectory = dataDirectory
        self.catalog = catalog
        self.nodeKey = nodeKey
    }

    init(dataDirectory: String) throws {
        self.dataDirectory = dataDirectory
        guard FileManager.default.fileExists(atPath: (dataDirectory as NSString).appendingPathComponent("keys/node.key")) else {
            throw QueryError(.badValue, "no node in \(dataDirectory): start one with `stratosdb serve` first")
        }
        catalog = try NodeCatalog(dataDirectory: dataDirectory)
        nodeKey = try KeyStore(dataDirectory: dataDirectory).load("node")
        guard stratos_vfs_register() == 0 else { throw QueryError(.internalError, "cannot register the encrypting SQLite VFS") }
        try FileManager.default.createDirectory(atPath: (dataDirectory as NSString).appendingPathComponent("databases"), withIntermediateDirectories: true)
    }

    func spacePath(_ space: SpaceID) -> String {
        (dataDirectory as NSString).appendingPathComponent("databases/\(space).sqlite")
    }

    /// Opens a space's file through the encrypting VFS (alongside a running node: WAL allows it).
    func openSpaceFile(_ space: SpaceID, key: [UInt8]) throws -> SQLiteConnection {
        let path = spacePath(space)
        guard FileManager.default.fileExists(atPath: path) else { throw QueryError(.namespaceNotFound, "space \(space) has no data on this node") }
        stratos_vfs_set_key("\(space).sqlite", key)
        return try SQLiteConnection(path: path)
    }
}

/// Writes through a 1 MiB buffer.
final class BufferedWriter {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private(set) var written = 0

    init(_ handle: FileHandle) {
        self.handle = handle
        buffer.reserveCapacity(1 << 20)
    }

    func write(_ bytes: [UInt8]) throws {
        buffer += bytes
        written += bytes.count
        if buffer.count >= 1 << 20 { try flush() }
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Reads through one buffer of at least 1 MiB, filled with `read(2)` and kept for the whole
/// file: refilling it allocates nothing, so reading a large archive does not fault in fresh
/// pages for every megabyte (which had cost several percent of an import).
final class BufferedReader {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var filled = 0
    private var offset = 0

    init(_ handle: FileHandle) { self.handle = handle }

    func read(_ count: Int) throws -> [UInt8] {
        if offset == filled {
            let size = max(count, 1 << 20)
            if buffer.count < size { buffer = [UInt8](repeating: 0, count: size) }
            offset = 0
            filled = try fill()
            if filled == 0 { return [] }
        }
        let end = min(filled, offset + count)
        defer { offset = end }
        return Array(buffer[offset..<end])
    }

    /// Reads what the file has (up to the buffer's size); 0 at its end.
    private func fill() throws -> Int {
        let descriptor = handle.fileDescriptor
        while true {
            let got = buffer.withUnsafeMutableBytes { Foundation.read(descriptor, $0.baseAddress, $0.count) }
            if got >= 0 { return got }
            if errno != EINTR { throw QueryError(.internalError, "cannot read the archive (errno \(errno))") }
        }
    }
}
