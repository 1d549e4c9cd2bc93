import Foundation
import Logging
import NIOPosix
import QueryEngine
import SpaceOwnership
import StratosCore

/// Space archives over the wire (docs/spaces.md §9).
///
/// - `exportSpace` pages a space's archive records out to its owner: the first call gives the
///   records before the commits and fixes the head; each next call gives commits after
///   `afterSeq`, up to that head. The commit log is append-only, so the pages form one
///   consistent archive however many writes land meanwhile. The node holds no owner key, so it
///   sends no trailer: the owner's client signs it (`stratosdb space export --node`).
/// - `importSpace` receives an archive in chunks and imports it into the running node: verified
///   in full first (as the offline import does), authorized for the archive's owner, and made
///   visible under the storage lock, so no write can create the space's file meanwhile.
enum ArchiveCommands {
    static func register(into table: inout CommandTable) {
        table["exportSpace"] = { context in try await exportSpace(context) }
        table["importSpace"] = { context in try await importSpace(context) }
    }

    /// The most record bytes one `exportSpace` reply carries (one larger commit still goes alone).
    static let pageBytesMax = 8 << 20
    /// The most bytes one `importSpace` chunk may carry, and an upload in all.
    static let chunkBytesMax = 16 << 20
    static let uploadBytesMax: Int64 = 64 << 30

    // MARK: - Export

    static func exportSpace(_ context: CommandContext) async throws -> BSONDocument {
        guard let space = context.space?.id, let principal = context.principal else {
            throw QueryError(.unauthorized, "exportSpace requires authentication")
        }
        guard let record = context.server.catalog.space(space) else {
            throw QueryError(.namespaceNotFound, "space \(space) has no data on this node")
        }
        guard record.controller == principal.did else {
            throw QueryError(.unauthorized, "only the owner of space \(space) (its current key) can export it")
        }
        let decrypt = context.command["decrypt"]?.isTruthy ?? false
        let key = try context.server.catalog.spaceKey(space, openedWith: context.server.identity.nodeKey)
        guard let executor = try context.executor(create: false) else {
            throw QueryError(.namespaceNotFound, "space \(space) has no data on this node")
        }
        guard let afterValue = context.command["afterSeq"] else {
            // The first page: the records before the commits, and the head this export stops at
            // (every acknowledged write sealed into a commit first).
            try await executor.sealPendingCommits()
            let head = try await executor.read { store throws(QueryError) in try CommitLog.lastCommits(store.sqlite, count: 1).first }
            let headSeq = head?.commit.seq ?? 0
            let leading = try SpaceArchiveService.leadingRecords(
                catalog: context.server.catalog, record: record, decrypt: decrypt, commitCount: headSeq,
                headHash: head?.hash ?? [UInt8](repeating: 0, count: 32))
            return [
                "records": .array(leading.map { .binary(BSONBinary(subtype: 0, data: $0.framed)) }),
                "space": .string(space.string), "afterSeq": .int64(0), "upToSeq": .int64(Int64(headSeq)), "done": .bool(headSeq == 0),
            ]
        }
        guard let after = afterValue.int64Value, after >= 0, let upTo = context.command["upToSeq"]?.int64Value, upTo >= after else {
            throw QueryError(.badValue, "exportSpace needs afterSeq and upToSeq from the previous page (0 ≤ afterSeq ≤ upToSeq)")
        }
        let page = try await executor.read { store throws(QueryError) -> (records: [[UInt8]], last: Int64) in
            let select = try store.sqlite.statement("SELECT commit_bytes, payload FROM stratos_commits WHERE seq > ?1 AND seq <= ?2 ORDER BY seq")
            select.bind(1, after)
            select.bind(2, upTo)
            defer { select.reset() }
            var records: [[UInt8]] = []
            var bytes = 0
            var last = after
            while bytes < pageBytesMax, try select.step() {
                try OperationContext.checkpoint()
                let commit: SignedCommit
                do { commit = try SignedCommit(decoding: select.blob(0)) } catch {
                    throw QueryError(.location(7_100_005), "a commit of space \(space) has an invalid signature: the space is refused")
                }
                let framed = SpaceArchiveService.commitRecord(commit, payload: select.blob(1), key: key, decrypt: decrypt).framed
                bytes += framed.count
                records.append(framed)
                last = Int64(commit.commit.seq)
            }
            return (records, last)
        }
        guard page.last > after || after == upTo else {
            throw QueryError(.location(7_100_004), "space \(space) no longer holds commit \(after + 1) (it was dropped and recreated since the export began)")
        }
        return [
            "records": .array(page.records.map { .binary(BSONBinary(subtype: 0, data: $0)) }), "space": .string(space.string),
            "afterSeq": .int64(page.last), "upToSeq": .int64(upTo), "done": .bool(page.last == upTo),
        ]
    }

    // MARK: - Import

    /// `{importSpace: 1, upload?: <id>, offset: <bytes so far>, data: BinData, final?: true,
    /// sealedKey?: BinData}` on `admin`. The first chunk (offset 0, no upload) starts an upload
    /// and returns its id; chunks must arrive in order. With `final`, the node imports the
    /// archive: `sealedKey` is the space key sealed to this node (when the archive holds no copy
    /// for it), and only the archive's owner (its current key) may import it.
    static func importSpace(_ context: CommandContext) async throws -> BSONDocument {
        guard let principal = context.principal else { throw QueryError(.unauthorized, "importSpace requires authentication") }
        guard context.database == "admin" else {
            throw QueryError(.unauthorized, "importSpace may only be run against the admin database")
        }
        guard case .binary(let chunk)? = context.command["data"] else {
            throw QueryError(.typeMismatch, "importSpace needs 'data': the next chunk of the archive, as binary data")
        }
        guard chunk.data.count <= chunkBytesMax else { throw QueryError(.badValue, "an importSpace chunk holds at most \(chunkBytesMax >> 20) MiB") }
        guard let offset = context.command["offset"]?.int64Value, offset >= 0 else {
            throw QueryError(.badValue, "importSpace needs 'offset': the number of archive bytes sent before this chunk")
        }
        let uploads = Uploads(dataDirectory: context.server.storage.dataDirectory)
        let upload: String
        if case .string(let given)? = context.command["upload"] {
            upload = given
        } else {
            guard offset == 0 else { throw QueryError(.badValue, "an upload starts at offset 0; pass 'upload' to continue one") }
            upload = try uploads.start(owner: principal.did)
        }
        let size = try uploads.append(upload, owner: principal.did, offset: offset, bytes: chunk.data)
        guard size <= uploadBytesMax else {
            uploads.remove(upload)
            throw QueryError(.badValue, "an archive upload holds at most \(uploadBytesMax >> 30) GiB")
        }
        guard context.command["final"]?.isTruthy == true else {
            return ["upload": .string(upload), "received": .int64(size)]
        }
        defer { uploads.remove(upload) }
        let server = context.server
        let nodeKey = server.identity.nodeKey
        var spaceKey: [UInt8]?
        if case .binary(let sealed)? = context.command["sealedKey"] {
            do { spaceKey = try SealedBox.open(sealed.data, with: nodeKey) } catch {
                throw QueryError(.badValue, "'sealedKey' does not open with this node's key: seal the space key to \(nodeKey.did)")
            }
        }
        let path = uploads.path(upload)
        let importer = principal.did
        let summary: ArchiveVerifier.Summary
        do {
            summary = try await server.heavyReadPool.runIfActive { [spaceKey] () throws -> ArchiveVerifier.Summary in
                let verifier = spaceKey.map { ArchiveVerifier(spaceKey: $0, replaysStateRoots: false) }
                    ?? ArchiveVerifier(keyHolders: [nodeKey], replaysStateRoots: false)
                let node = NodeFiles(dataDirectory: server.storage.dataDirectory, catalog: server.catalog, nodeKey: nodeKey)
                return try SpaceArchiveService.importArchive(
                    node: node, archive: path, verifier: verifier,
                    authorizeOwner: { controller, space in
                        guard controller == importer else {
                            throw QueryError(.unauthorized, "only the owner of space \(space) (its current key) can import it")
                        }
                    },
                    authorize: { summary in
                        guard summary.controller == importer else {
                            throw QueryError(.unauthorized, "only the owner of space \(summary.header.space) (its current key) can import it")
                        }
                    },
                    install: { body in try server.storage.install(body) }, progress: { _, _ in })
            }
        } catch let error as QueryError {
            throw error
        } catch let error as StratosError {
            throw QueryError(.location(7_100_012), "the archive was refused: \(error.message)")
        } catch {
            throw QueryError(.location(7_100_012), "the archive was refused: \(error)")
        }
        server.logger.info("space imported over the wire", metadata: ["space": .string(summary.header.space.string), "commits": .stringConvertible(summary.commits)])
        return [
            "space": .string(summary.header.space.string), "name": .string(summary.header.name), "commits": .int64(Int64(summary.commits)),
            "grants": .int32(Int32(summary.grants)), "revocations": .int32(Int32(summary.revocations)),
        ]
    }

    /// Archive uploads in progress: files in `<data-dir>/imports/`, named by a random id and
    /// owned by the principal that started them. Uploads left for more than a day are removed
    /// when the next one starts.
    struct Uploads {
        let directory: String

        init(dataDirectory: String) {
            directory = (dataDirectory as NSString).appendingPathComponent("imports")
        }

        func path(_ upload: String) -> String { (directory as NSString).appendingPathComponent("\(upload).stratos") }

        /// Uploads in progress at once: per principal, and on the node.
        static let perPrincipalMax = 2
        static let nodeMax = 8

        func start(owner: DID) throws(QueryError) -> String {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
                throw QueryError(.internalError, "cannot create the uploads directory")
            }
            let stale = Date().addingTimeInterval(-86_400)
            var mine = 0
            var all = 0
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".owner") {
                let file = (directory as NSString).appendingPathComponent(name)
                if let modified = (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date, modified < stale {
                    try? FileManager.default.removeItem(atPath: file)
                    try? FileManager.default.removeItem(atPath: String(file.dropLast(".owner".count)) + ".stratos")
                    continue
                }
                all += 1
                if let recorded = FileManager.default.contents(atPath: file), String(decoding: recorded, as: UTF8.self) == owner.string { mine += 1 }
            }
            guard mine < Self.perPrincipalMax, all < Self.nodeMax else {
                throw QueryError(.location(7_100_013), "too many archive uploads in progress (\(Self.perPrincipalMax) per identity, \(Self.nodeMax) per node): finish or abandon one (an upload is removed a day after its last chunk)")
            }
            let upload = SecureRandom.bytes(count: 16).map { String(format: "%02x", $0) }.joined()
            guard FileManager.default.createFile(atPath: path(upload), contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw QueryError(.internalError, "cannot create an upload file")
            }
            guard FileManager.default.createFile(atPath: path(upload) + ".owner", contents: Data(owner.string.utf8), attributes: [.posixPermissions: 0o600]) else {
                try? FileManager.default.removeItem(atPath: path(upload))
                throw QueryError(.internalError, "cannot create an upload file")
            }
            return upload
        }

        /// Appends a chunk at `offset` (which must be the upload's size) and returns the new size.
        func append(_ upload: String, owner: DID, offset: Int64, bytes: [UInt8]) throws(QueryError) -> Int64 {
            guard upload.count == 32, upload.allSatisfy(\.isHexDigit),
                let recorded = FileManager.default.contents(atPath: path(upload) + ".owner"), String(decoding: recorded, as: UTF8.self) == owner.string,
                let handle = FileHandle(forUpdatingAtPath: path(upload))
            else {
                throw QueryError(.badValue, "no upload \(upload) of yours on this node (it may have expired)")
            }
            defer { try? handle.close() }
            let size = Int64((try? handle.seekToEnd()) ?? 0)
            guard size == offset else {
                throw QueryError(.badValue, "upload \(upload) holds \(size) bytes, not \(offset): send the chunks in order")
            }
            do { try handle.write(contentsOf: Data(bytes)) } catch {
                throw QueryError(.location(14031), "cannot store the upload (is the disk full?)")
            }
            // The day an abandoned upload is kept counts from its last chunk.
            try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: path(upload) + ".owner")
            return size + Int64(bytes.count)
        }

        func remove(_ upload: String) {
            try? FileManager.default.removeItem(atPath: path(upload))
            try? FileManager.default.removeItem(atPath: path(upload) + ".owner")
        }
    }
}
