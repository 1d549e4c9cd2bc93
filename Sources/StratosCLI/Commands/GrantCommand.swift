import ArgumentParser
import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import StratosDB

/// `stratosdb grant`, `stratosdb revoke`.
struct GrantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant", abstract: "Sign a grant with the space owner's key, store it on the node and print the grant id.",
        subcommands: [Give.self, List.self], defaultSubcommand: Give.self)

    struct Give: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "give", abstract: "Grant access (the default subcommand).")
        @OptionGroup var data: DataDirectoryOptions
        @Option(name: .long, help: "The owner's key.") var key: String
        @Option(name: .long, help: "The space: its name (owned by --key) or its id.") var space: String
        @Option(name: .long, help: "The grantee's did:key.") var to: String
        @Option(name: .long, help: "Comma-separated actions: read, write, admin, execute.") var actions: String
        @Option(name: .long, help: "Comma-separated collection names (default: every collection).") var collections: String?
        @Option(name: .long, help: "Lifetime: 30s, 15m, 2h, 30d (default: until revoked).") var expires: String?

        func run() throws {
            let owner = try data.loadKey(key)
            let spaceID = try SpaceID(space) ?? data.catalog().resolveSpace(name: space, for: owner.did)
            let grantee: DID
            let parsedActions: GrantActions
            do {
                grantee = try DID(parsing: to)
                parsedActions = try GrantActions(parsing: actions)
            } catch { throw CLIError(error.message) }
            let now = nowMilliseconds()
            let names = collections.map { $0.split(separator: ",").map(String.init) } ?? []
            guard names.count <= SpaceOwnershipLimits.grantCollectionsMax, names.allSatisfy({ (1...255).contains($0.utf8.count) }) else {
                throw CLIError("a grant names at most \(SpaceOwnershipLimits.grantCollectionsMax) collections of 1 to 255 bytes each")
            }
            let expiry = try expires.map { now + (try DurationText.milliseconds($0)) }
            let grant = Grant(
                space: spaceID, issuer: owner.did, grantee: grantee, actions: parsedActions, collections: names,
                issuedAtMilliseconds: now, expiresAtMilliseconds: expiry)
            let signed: SignedGrant
            do { signed = try grant.signed(by: owner) } catch { throw CLIError(error.message) }
            // A running node stores it and appends it to the space's log before it answers.
            if let client = try runningNode(data, key: owner) {
                let request: BSONDocument = [
                    "grantAccess": .int32(1), "grant": .binary(BSONBinary(subtype: 0, data: signed.encoded)), "$db": .string("admin"),
                ]
                _ = try client.command(request)
                emit(signed.id)
                return
            }
            do {
                // Stopped: the catalog now, the space's log when the node next opens the space.
                // The node's key (in this data directory) opens the space key to seal it to a reader.
                let nodeKey = try? data.keys.load("node")
                try data.catalog().addGrant(signed, nodeKey: nodeKey)
                if nodeKey == nil && parsedActions.contains(.read) {
                    FileHandle.standardError.write(Data("warning: this data directory's node key is not readable: the space key was not sealed to the grantee (its exports stay closed to it)\n".utf8))
                }
                emit(signed.id)
            } catch let error as SpaceOwnershipError {
                throw CLIError(error.message)
            } catch let error as QueryError {
                throw CLIError(error.message)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a space's grants: id, grantee, actions, collections, expiry, state.")
        @OptionGroup var data: DataDirectoryOptions
        @Option(name: .long, help: "The owner's key (to resolve a space name).") var key: String?
        @Option(name: .long, help: "The space: name (with --key) or id.") var space: String

        func run() throws {
            let spaceID: SpaceID
            if let id = SpaceID(space) { spaceID = id } else {
                guard let key else { throw CLIError("give --key to name a space by its name, or pass its id") }
                spaceID = try data.catalog().resolveSpace(name: space, for: try data.loadKey(key).did)
            }
            let now = nowMilliseconds()
            for record in try data.catalog().grants(space: spaceID) {
                let grant = record.signed.grant
                let state = record.revocation != nil ? "revoked" : grant.isExpired(nowMilliseconds: now) ? "expired" : "active"
                let collections = grant.collections.isEmpty ? "*" : grant.collections.joined(separator: ",")
                emit("\(record.signed.id) \(grant.grantee) \(grant.actions) \(collections) \(grant.expiresAtMilliseconds.map(String.init) ?? "never") \(state)")
            }
        }
    }
}

struct RevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke a grant with the space owner's key; it stops working on the grantee's next command.")
    @OptionGroup var data: DataDirectoryOptions
    @Option(name: .long, help: "The owner's key.") var key: String
    @Option(name: .long, help: "The space: its name (owned by --key) or its id.") var space: String
    @Option(name: .long, help: "The grant id `stratosdb grant` printed.") var grant: String

    func run() throws {
        let owner = try data.loadKey(key)
        let spaceID = try SpaceID(space) ?? data.catalog().resolveSpace(name: space, for: owner.did)
        let revocation = SignedRevocation(space: spaceID, grantID: grant, key: owner, issuedAtMilliseconds: nowMilliseconds())
        if let client = try runningNode(data, key: owner) {
            let request: BSONDocument = [
                "revokeAccess": .int32(1), "revocation": .binary(BSONBinary(subtype: 0, data: revocation.encoded)), "$db": .string("admin"),
            ]
            _ = try client.command(request)
            emit(grant)
            return
        }
        let catalog = try data.catalog()
        do { try catalog.revoke(revocation) } catch { throw CLIError(error.message) }
        emit(grant)
    }
}

/// A connection to the node running on this data directory, logged in as `key`; nil when no
/// node runs there (grants and revocations then go to the catalog directly, and into the
/// space's log when the node next opens the space).
private func runningNode(_ data: DataDirectoryOptions, key: SigningKey) throws -> NodeClient? {
    guard NodeLock(dataDirectory: data.path) == nil, let address = NodeAddress.read(dataDirectory: data.path) else { return nil }
    guard address.tls != true else {
        // The CLI has no TLS client: the catalog takes it now (the node sees it on the grantee's
        // next command), and the space's log when the node next opens the space.
        FileHandle.standardError.write(Data("note: the node speaks TLS, so this goes to its catalog directly; the space's log records it when the node next opens the space\n".utf8))
        return nil
    }
    return try NodeClient(address: address, key: key)
}
