import ArgumentParser
import QueryEngine
import SpaceOwnership
import StratosDB

/// `stratosdb space create|list`.
struct SpaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "space", abstract: "Create and list user-owned spaces (a space is a MongoDB database).",
        subcommands: [Create.self, List.self])

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
        static let configuration = CommandConfiguration(abstract: "Print each space on this node: id, owner, name.")
        @OptionGroup var data: DataDirectoryOptions

        func run() throws {
            for space in try data.catalog().allSpaces() { emit("\(space.id) \(space.owner) \(space.name)") }
        }
    }
}
