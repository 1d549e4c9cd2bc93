import ArgumentParser
import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import StratosDB

/// `stratosdb space create|list`.
struct SpaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "space", abstract: "Create and list user-owned spaces (a space is a MongoDB database).",
        subcommands: [Create.self, List.self, Export.self, Verify.self, Import.self, Rebuild.self, RotateKey.self, RotateSpaceKey.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a space owned by a key; print its id and a ready mongodb:// URI (with a 1 h session token).")
        @OptionGroup var data: DataDirectoryOptions
        @Argument(help: "The space's name, as the owner's drivers will call the database.") var name: String
        @Option(name: .long, help: "The owner's key (name in <data-dir>/keys or a path).") var key: String
        @Option(name: .long, help: "Lifetime of the token in the printed URI (30s, 15m, 2h, …; at most 24h).") var ttl = "1h"

        func run() throws {
            let owner = try data.loadKey(key)
            let address = try data.nodeAddress()
            let lifetime = try DurationText.tokenLifetime(ttl)
            let record: SpaceRecord
            let node = try DID(parsing: address.did)
            do { record = try data.catalog().registerSpace(owner: owner.did, name: name, node: node) } catch let error as QueryError {
                throw CLIError(error.message)
            }
            let audience = try DID(parsing: address.did)
            let token = SessionToken(key: owner, audience: audience, issuedAtMilliseconds: nowMilliseconds(), lifetimeMilliseconds: lifetime)
            emit(record.id.string)
            emit(tokenURI(address: address, did: owner.did, token: token.text, database: record.id.string))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print each space on this node: id, owner key, name.")
        @OptionGroup var data: DataDirectoryOptions

        func run() throws {
            for space in try data.catalog().allSpaces() { emit("\(space.id) \(space.controller) \(space.name)") }
        }
    }

    struct RotateSpaceKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-space-key",
            abstract: "Re-encrypt a space under a new key sealed only to its owner, this node and current readers (stop the node first).")
        @OptionGroup var data: DataDirectoryOptions
        @Option(name: .long, help: "The space's owner key.") var key: String
        @Option(name: .long, help: "The space: its name (owned by --key) or its id.") var space: String

        func run() throws {
            let owner = try data.loadKey(key)
            let spaceID = try SpaceID(space) ?? data.catalog().resolveSpace(name: space, for: owner.did)
            let recipients: [DID]
            do { recipients = try SpaceArchiveService.rotateSpaceKey(dataDirectory: data.path, space: spaceID, owner: owner) } catch {
                throw CLIError("\(error)")
            }
            emit(spaceID.string)
            for recipient in recipients { emit(recipient.string) }
        }
    }

    struct RotateKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Move a space's owner rights to a new key (signed by both keys); the space keeps its id, data and history.")
        @OptionGroup var data: DataDirectoryOptions
        @Option(name: .long, help: "The space's current owner key.") var key: String
        @Option(name: .long, help: "The space: its name (owned by --key) or its id.") var space: String
        @Option(name: .long, help: "The new owner key (create it first with `stratosdb key new`).") var newKey: String

        func run() throws {
            let current = try data.loadKey(key)
            let next = try data.loadKey(newKey)
            let catalog = try data.catalog()
            let spaceID = SpaceID(space) ?? catalog.resolveSpace(name: space, for: current.did)
            let nodeKey = try data.loadKey("node")
            let rotation = OwnerKeyRotation(space: spaceID, from: current, to: next, issuedAtMilliseconds: nowMilliseconds())
            do { try catalog.rotateOwnerKey(rotation, nodeKey: nodeKey) } catch { throw CLIError(error.message) }
            emit(spaceID.string)
            emit(next.did.string)
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a space's verifiable archive: header, sealed keys, grants, every signed commit with its operations.")
        @OptionGroup var data: DataDirectoryOptions
        @Option(name: .long, help: "The owner's key (only the owner exports a space).") var key: String
        @Option(name: .long, help: "The space: its name (owned by --key) or its id.") var space: String
        @Option(name: .long, help: "The archive file to write.") var out: String
        @Flag(name: .long, help: "Write documents decrypted (by default they stay sealed with the space key).") var decrypt = false
        @Option(name: .long, help: "Export through a node over the wire (HOST:PORT), instead of from the data directory; --space is then the space id.") var node: String?

        func run() throws {
            let owner = try data.loadKey(key)
            if let node {
                try exportOverWire(node: node, owner: owner)
                emit(out)
                return
            }
            let spaceID = try SpaceID(space) ?? data.catalog().resolveSpace(name: space, for: owner.did)
            let catalog = try data.catalog()
            guard let record = catalog.space(spaceID) else { throw CLIError("no space \(space) owned by \(owner.did) on this node") }
            guard record.controller == owner.did else { throw CLIError("only the owner of space \(spaceID) can export it") }
            // A running node holds its newest writes pending for a few milliseconds before it seals
            // them into a commit; asking it for the export's first page seals them at once (and
            // opens a space it has not opened since a crash). Without a reachable node (TLS, a
            // stopped node), the export waits for the node's own timer, or seals them itself.
            if NodeLock(dataDirectory: data.path) == nil, let address = NodeAddress.read(dataDirectory: data.path), address.tls != true,
                let client = try? NodeClient(address: address, key: owner, timeoutSeconds: 5)
            {
                _ = try? client.command(["exportSpace": .int32(1), "$db": .string(spaceID.string)])
            }
            let bar = ProgressBar(label: "exporting")
            let started = Date()
            let result: SpaceArchiveService.ExportResult
            do {
                result = try SpaceArchiveService.export(dataDirectory: data.path, space: spaceID, owner: owner, output: out, decrypt: decrypt, progress: bar.update)
            } catch { throw CLIError("\(error)") }
            bar.finish()
            let seconds = max(Date().timeIntervalSince(started), 0.001)
            FileHandle.standardError.write(Data(String(format: "%llu commits, %.1f MB of operations, %.1f MB/s\n", result.commits, Double(result.operationBytes) / 1e6, Double(result.operationBytes) / 1e6 / seconds).utf8))
            emit(out)
        }

        /// Pages the archive's records out of a node (`exportSpace`) and signs the trailer here:
        /// the node never holds the owner's key. The records are decoded and written again
        /// through the archive writer, so the digest the owner signs is computed here too.
        private func exportOverWire(node: String, owner: SigningKey) throws {
            guard let colon = node.lastIndex(of: ":"), let port = Int(node[node.index(after: colon)...]) else {
                throw CLIError("--node is HOST:PORT")
            }
            guard let spaceID = SpaceID(space) else { throw CLIError("with --node, --space is the space id (s + 26 characters)") }
            // The CLI's wire client has no TLS: its login token and the records would cross the
            // network in the clear, and a forger in between could have the owner sign its commits.
            let host = String(node[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            guard ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.") else {
                throw CLIError("--node must be a loopback address (the CLI has no TLS client yet): run the export on the node's machine, or through an SSH tunnel")
            }
            let client = try NodeClient(host: String(node[..<colon]), port: port, key: owner, timeoutSeconds: 120)
            guard FileManager.default.createFile(atPath: out, contents: nil, attributes: [.posixPermissions: 0o600]),
                let handle = FileHandle(forWritingAtPath: out)
            else { throw CLIError("cannot create \(out)") }
            defer { try? handle.close() }
            let writer = try ArchiveWriter(sink: { try handle.write(contentsOf: Data($0)) })
            let bar = ProgressBar(label: "exporting")
            var request: BSONDocument = ["exportSpace": .int32(1), "decrypt": .bool(decrypt), "$db": .string(spaceID.string)]
            var commits: UInt64 = 0
            while true {
                let page = try client.command(request)
                guard case .array(let records)? = page["records"], let after = page["afterSeq"]?.int64Value, let upTo = page["upToSeq"]?.int64Value else {
                    throw CLIError("the node sent a malformed exportSpace page")
                }
                for case .binary(let framed) in records {
                    let record: ArchiveRecord
                    do { record = try ArchiveRecord(framed: framed.data) } catch { throw CLIError("the node sent a malformed archive record: \(error.message)") }
                    if case .trailer = record { throw CLIError("the node sent a trailer: only the owner signs one") }
                    if case .commit = record { commits += 1 }
                    try writer.write(record)
                }
                bar.update(UInt64(after), UInt64(upTo))
                if page["done"] == .bool(true) { break }
                request = ["exportSpace": .int32(1), "decrypt": .bool(decrypt), "afterSeq": .int64(after), "upToSeq": .int64(upTo), "$db": .string(spaceID.string)]
            }
            try writer.finish(space: spaceID, owner: owner)
            bar.finish()
            FileHandle.standardError.write(Data("\(commits) commits exported through \(node)\n".utf8))
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an archive offline: every signature, hash, link and (with a key that opens it) every state root. Exit 0 only if all hold.")
        @OptionGroup var data: DataDirectoryOptions
        @Argument(help: "The archive file.") var archive: String
        @Option(name: .long, help: "A key (owner or reader) that opens the space key, to replay every commit and check its state root.") var key: [String] = []

        func run() throws {
            let holders = try key.map { try data.loadKey($0) }
            let bar = ProgressBar(label: "verifying")
            let summary: ArchiveVerifier.Summary
            do { summary = try SpaceArchiveService.verify(archive: archive, keyHolders: holders, progress: bar.update) } catch {
                bar.finish()
                throw CLIError("archive does NOT verify: \(error)")
            }
            bar.finish()
            emit("verified")
            emit("space \(summary.header.space)")
            emit("owner \(summary.header.owner)")
            emit("commits \(summary.commits)")
            emit("grants \(summary.grants) revocations \(summary.revocations)")
            emit("signedBy \(summary.controller)")
            for author in summary.commitAuthors { emit("commitsSignedBy \(author)") }
            if !holders.isEmpty && !summary.stateRootsChecked {
                FileHandle.standardError.write(Data("warning: none of the given keys opens this archive's space key\n".utf8))
            }
            emit(summary.stateRootsChecked ? "stateRoots checked" : "stateRoots not checked (payloads are encrypted: pass --key to replay them)")
            if summary.stateRootsChecked {
                emit("stateRoot \(Hex.encode(summary.headStateRoot))")
                emit("grantsInCommits \(summary.loggedGrants) revocationsInCommits \(summary.loggedRevocations)")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import an archive into this node: everything is verified before the space becomes visible.")
        @OptionGroup var data: DataDirectoryOptions
        @Argument(help: "The archive file.") var archive: String
        @Option(name: .long, help: "A key (owner or reader) that opens the space key of an encrypted archive.") var key: [String] = []

        func run() throws {
            let holders = try key.map { try data.loadKey($0) }
            // A running node imports the archive itself (it guards its own files).
            if NodeLock(dataDirectory: data.path) == nil, let address = NodeAddress.read(dataDirectory: data.path) {
                try importThroughNode(address, holders: holders)
                return
            }
            let bar = ProgressBar(label: "importing")
            let started = Date()
            let summary: ArchiveVerifier.Summary
            do { summary = try SpaceArchiveService.importArchive(dataDirectory: data.path, archive: archive, keyHolders: holders, progress: bar.update) } catch {
                bar.finish()
                throw CLIError("import refused: \(error)")
            }
            bar.finish()
            let seconds = max(Date().timeIntervalSince(started), 0.001)
            FileHandle.standardError.write(Data(String(format: "%llu commits, %.1f MB of documents, %.1f MB/s (verify and build)\n", summary.commits, Double(summary.documentBytes) / 1e6, Double(summary.documentBytes) / 1e6 / seconds).utf8))
            emit(summary.header.space.string)
        }

        /// Streams the archive to the running node (`importSpace`), logged in with the first
        /// key (the archive's owner). When one of the keys opens the archive's space key, it
        /// goes to the node sealed to the node's key, for an archive exported elsewhere.
        private func importThroughNode(_ address: NodeAddress, holders: [SigningKey]) throws {
            guard let owner = holders.first else {
                throw CLIError("the node is running: importing through it needs --key with the space owner's key")
            }
            guard let nodeDID = try? DID(parsing: address.did) else { throw CLIError("the node's address record is damaged") }
            var sealedKey: [UInt8]?
            do {
                let reader = try SpaceArchiveService.openArchive(archive)
                scan: while let record = try reader.next() {
                    switch record {
                    case .sealedKey(let recipient, let sealed):
                        if let holder = holders.first(where: { $0.did == recipient }), let key = try? SealedBox.open(sealed, with: holder) {
                            sealedKey = try SealedBox.seal(key, to: nodeDID.publicKey)
                            break scan
                        }
                    case .commit, .trailer: break scan
                    default: continue
                    }
                }
            } catch { throw CLIError("import refused: \(error)") }
            guard let handle = FileHandle(forReadingAtPath: archive) else { throw CLIError("cannot read \(archive)") }
            defer { try? handle.close() }
            let total = (try? FileManager.default.attributesOfItem(atPath: archive)[.size] as? NSNumber)?.uint64Value ?? 0
            let client = try NodeClient(address: address, key: owner, timeoutSeconds: 3600)
            let bar = ProgressBar(label: "importing")
            let started = Date()
            var offset: Int64 = 0
            var upload: String?
            var reply: BSONDocument = [:]
            while true {
                let chunk = [UInt8]((try? handle.read(upToCount: 8 << 20)) ?? Data())
                let final = offset + Int64(chunk.count) >= Int64(total)
                var request: BSONDocument = [
                    "importSpace": .int32(1), "offset": .int64(offset), "data": .binary(BSONBinary(subtype: 0, data: chunk)), "$db": .string("admin"),
                ]
                if let upload { request["upload"] = .string(upload) }
                if final {
                    request["final"] = .bool(true)
                    if let sealedKey { request["sealedKey"] = .binary(BSONBinary(subtype: 0, data: sealedKey)) }
                }
                do { reply = try client.command(request) } catch {
                    bar.finish()
                    throw CLIError("import refused: \(error)")
                }
                offset += Int64(chunk.count)
                bar.update(UInt64(offset), total)
                if final { break }
                guard case .string(let id)? = reply["upload"] else { throw CLIError("the node sent no upload id") }
                upload = id
            }
            bar.finish()
            let seconds = max(Date().timeIntervalSince(started), 0.001)
            FileHandle.standardError.write(Data(String(format: "%lld commits, %.1f MB archive, %.1f MB/s (upload, verify and build, through the node)\n", reply["commits"]?.int64Value ?? 0, Double(offset) / 1e6, Double(offset) / 1e6 / seconds).utf8))
            guard case .string(let space)? = reply["space"] else { throw CLIError("the node sent no space id") }
            emit(space)
        }
    }

    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recreate a space's tables from its commit log alone, checking every state root (stop the node first).")
        @OptionGroup var data: DataDirectoryOptions
        @Argument(help: "The space id (or name, with --key).") var space: String
        @Option(name: .long, help: "The owner's key, to name the space by its name.") var key: String?

        func run() throws {
            let spaceID: SpaceID
            if let id = SpaceID(space) { spaceID = id } else {
                guard let key else { throw CLIError("give --key to name a space by its name, or pass its id") }
                spaceID = try data.catalog().resolveSpace(name: space, for: try data.loadKey(key).did)
            }
            let bar = ProgressBar(label: "rebuilding")
            let commits: UInt64
            do { commits = try SpaceArchiveService.rebuild(dataDirectory: data.path, space: spaceID, progress: bar.update) } catch {
                bar.finish()
                throw CLIError("rebuild failed: \(error)")
            }
            bar.finish()
            emit("\(spaceID) \(commits)")
        }
    }
}

/// A one-line progress bar on standard error, drawn only when it is a terminal.
final class ProgressBar {
    private let label: String
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var drawn = false

    init(label: String) { self.label = label }

    func update(_ done: UInt64, _ total: UInt64) {
        guard isTerminal, total > 0 else { return }
        let width = 30
        let filled = Int(Double(done) / Double(total) * Double(width))
        let line = "\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: " ", count: width - filled))] \(done)/\(total) commits"
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
    }

    func finish() {
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
