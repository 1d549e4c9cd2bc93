import ArgumentParser
import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import StratosDB

/// The data-directory option every offline command shares.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .long, help: "The node's data directory.")
    var dataDir: String = "./.stratosdb"

    var path: String { URL(fileURLWithPath: dataDir).standardizedFileURL.path }
    var keys: KeyStore { KeyStore(dataDirectory: path) }

    func catalog() throws -> NodeCatalog {
        do { return try NodeCatalog(dataDirectory: path) } catch { throw CLIError(error.message) }
    }

    func loadKey(_ reference: String) throws -> SigningKey {
        do { return try keys.load(reference) } catch { throw CLIError(error.message) }
    }

    /// The node's address: from node.json once it has started, else its key and the default port.
    func nodeAddress() throws -> NodeAddress {
        // The node's identity comes from its key file (node.json is only where it listens).
        let key = try? keys.load("node")
        if var address = NodeAddress.read(dataDirectory: path) {
            if let key { address.did = key.did.string }
            return address
        }
        guard let key else {
            throw CLIError("no node in \(path): start one with `stratosdb serve --data-dir \(dataDir)` first")
        }
        return NodeAddress(did: key.did.string, host: "127.0.0.1", port: 27017)
    }
}

/// An error the CLI prints on stderr before exiting non-zero.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Durations as `30s`, `15m`, `2h`, `30d` (also `500ms`).
enum DurationText {
    /// A token lifetime: a duration the node accepts (at most 24 h).
    static func tokenLifetime(_ text: String) throws -> Int64 {
        let milliseconds = try self.milliseconds(text)
        guard milliseconds <= SpaceOwnershipLimits.tokenLifetimeMillisecondsMax else {
            throw CLIError("--ttl \(text) is longer than the 24h a node accepts for a session token")
        }
        return milliseconds
    }

    static func milliseconds(_ text: String) throws -> Int64 {
        if let milliseconds = DurationParsing.milliseconds(text) { return milliseconds }
        throw CLIError("'\(text)' is not a duration: use a positive number followed by s, m, h or d (30s, 15m, 2h, 30d)")
    }
}

/// Standard output, one value per line, for scripts.
func emit(_ line: String) { print(line) }

func nowMilliseconds() -> Int64 { SystemWallClock().nowMilliseconds() }

/// The URI that reaches `database` on the node as `did` with `token`.
func tokenURI(address: NodeAddress, did: DID, token: String, database: String = "") -> String {
    let user = did.string.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? did.string
    let tls = address.tls == true ? "&tls=true" : ""
    return "mongodb://\(user):\(token)@\(address.host):\(address.port)/\(database)?authMechanism=PLAIN&authSource=%24external\(tls)"
}
