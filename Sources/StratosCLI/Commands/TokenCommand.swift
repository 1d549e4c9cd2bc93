import ArgumentParser
import QueryEngine
import SpaceOwnership
import StratosDB

/// `stratosdb token`.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint a signed session token for this node and print a mongodb:// URI that logs in with it (SASL PLAIN).")
    @OptionGroup var data: DataDirectoryOptions
    @Option(name: .long, help: "The key to sign with (name in <data-dir>/keys or a path).") var key: String
    @Option(name: .long, help: "Lifetime: 30s, 15m, 2h, … (the node accepts at most 24h).") var ttl = "1h"
    @Option(name: .long, help: "Database (space name or id) to put in the URI.") var space = ""

    func run() throws {
        let signer = try data.loadKey(key)
        let address = try data.nodeAddress()
        let audience = try DID(parsing: address.did)
        let token = SessionToken(key: signer, audience: audience, issuedAtMilliseconds: nowMilliseconds(), lifetimeMilliseconds: try DurationText.tokenLifetime(ttl))
        emit(tokenURI(address: address, did: signer.did, token: token.text, database: space))
    }
}
