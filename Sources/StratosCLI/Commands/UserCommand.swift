import ArgumentParser
import Foundation
import QueryEngine
import SpaceOwnership
import StratosDB

/// `stratosdb user add|list|remove|passwd`: SCRAM users bound to identities.
struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage the node's SCRAM users (name + password bound to a did:key).",
        subcommands: [Add.self, List.self, Remove.self, Passwd.self])

    /// Reads a password from standard input (one line), prompting without echo on a terminal.
    static func readPassword() throws -> String {
        let password: String?
        if isatty(STDIN_FILENO) != 0 {
            password = getpass("password: ").map { String(cString: $0) }
        } else {
            password = readLine(strippingNewline: true)
        }
        guard let password, !password.isEmpty else { throw CLIError("no password given on standard input") }
        return password
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user; the password is read from standard input or prompted.")
        @OptionGroup var data: DataDirectoryOptions
        @Argument(help: "The user name.") var name: String
        @Option(name: .long, help: "The identity the user acts as.") var did: String

        func run() throws {
            let identity: DID
            do { identity = try DID(parsing: did) } catch { throw CLIError(error.message) }
            let password = try UserCommand.readPassword()
            let catalog = try data.catalog()
            do { try catalog.addUser(name: name, did: identity, password: password) } catch { throw CLIError(error.message) }
            emit(name)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print each user's name and did:key.")
        @OptionGroup var data: DataDirectoryOptions
        func run() throws {
            let catalog = try data.catalog()
            do { for user in try catalog.users() { emit("\(user.name) \(user.did)") } } catch { throw CLIError(error.message) }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user.")
        @OptionGroup var data: DataDirectoryOptions
        @Argument(help: "The user name.") var name: String
        func run() throws {
            guard try data.catalog().removeUser(name: name) else { throw CLIError("no user '\(name)'") }
            emit(name)
        }
    }

    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a user's password (read from standard input or prompted).")
        @OptionGroup var data: DataDirectoryOptions
        @Argument(help: "The user name.") var name: String
        func run() throws {
            let password = try UserCommand.readPassword()
            let catalog = try data.catalog()
            do { try catalog.setPassword(name: name, password: password) } catch { throw CLIError(error.message) }
            // Keep the local owner's password file (what `serve` prints) in step.
            let file = NodeIdentity.passwordFile(dataDirectory: data.path)
            if name == NodeIdentity.ownerUserName, FileManager.default.fileExists(atPath: file) {
                do { try KeyStore.writePrivateFile(file, contents: password + "\n", exclusive: false) } catch { throw CLIError(error.message) }
            }
            emit(name)
        }
    }
}
