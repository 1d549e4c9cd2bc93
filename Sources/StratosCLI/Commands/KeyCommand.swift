import ArgumentParser
import QueryEngine
import SpaceOwnership
import StratosDB

/// `stratosdb key new|list`.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Create and list identities (Ed25519 keys named by their did:key).",
        subcommands: [New.self, List.self])

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key in <data-dir>/keys/<name>.key (mode 0600) and print its did:key.")
        @OptionGroup var data: DataDirectoryOptions
        @Option(name: .long, help: "The key's name (letters, digits, - and _).") var name: String

        func run() throws {
            do { emit(try data.keys.create(name: name).did.string) } catch { throw CLIError(error.message) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print each key's name and did:key.")
        @OptionGroup var data: DataDirectoryOptions

        func run() throws {
            for key in data.keys.list() { emit("\(key.name) \(key.did)") }
        }
    }
}
