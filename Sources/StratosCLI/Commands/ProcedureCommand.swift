import ArgumentParser
import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import StratosDB

/// `stratosdb procedure create|list|call|drop`: a space's stored procedures, on its running
/// node, as the identity `--key` (the space's owner, or a grantee with admin / execute).
struct ProcedureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "procedure", abstract: "Create, list, call and drop a space's stored procedures (WebAssembly).",
        subcommands: [Create.self, List.self, Call.self, Drop.self])

    /// Where the procedures live and who acts.
    struct Target: ParsableArguments {
        @OptionGroup var directory: DataDirectoryOptions
        @Option(name: .long, help: "Who acts: a key name in the data directory (or a key file's path).") var key: String
        @Option(name: .long, help: "The space: its name (one of the key's own spaces) or its id.") var space: String

        /// Logs in to the running node as `key` and runs `command` on the space.
        func run(_ command: BSONDocument) throws -> BSONDocument {
            let signer = try directory.loadKey(key)
            let address = try directory.nodeAddress()
            let client = try NodeClient(address: address, key: signer)
            var document = command
            document["$db"] = .string(space)
            return try client.command(document)
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a WebAssembly module and store it as the procedure's next version; prints name@version and the code hash.")
        @OptionGroup var target: Target
        @Option(name: .long, help: "The procedure's name (letters, digits, _ - .).") var name: String
        @Option(name: .long, help: "What it does (shown by list).") var description: String?
        @Argument(help: "The module (.wasm), built against sdk/include/stratos.h.") var module: String

        func run() throws {
            guard let code = FileManager.default.contents(atPath: module) else { throw CLIError("cannot read \(module)") }
            var command: BSONDocument = ["createProcedure": .string(name), "code": .binary(BSONBinary(subtype: 0, data: Array(code)))]
            if let description { command["description"] = .string(description) }
            let reply = try target.run(command)
            emit("\(name)@\(reply["version"]?.int64Value ?? 0)")
            if case .string(let hash)? = reply["codeHash"] { emit(hash) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per procedure: name, version, size, calls, fuel used.")
        @OptionGroup var target: Target

        func run() throws {
            let reply = try target.run(["listProcedures": .int32(1)])
            guard case .document(let cursor)? = reply["cursor"], case .array(let batch)? = cursor["firstBatch"] else { return }
            for case .document(let entry) in batch {
                let name = entry["name"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? "?"
                let fields = ["version", "size", "calls", "fuelUsed"].map { "\($0)=\(entry[$0]?.int64Value ?? 0)" }
                emit(([name] + fields).joined(separator: " "))
            }
        }
    }

    struct Call: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a procedure; prints its reply (result, fuelUsed, logs) as JSON.")
        @OptionGroup var target: Target
        @Option(name: .long, help: "The procedure's name.") var name: String
        @Option(name: .long, help: "Arguments as a JSON object, for example '{\"city\": \"London\"}'.") var args: String = "{}"
        @Option(name: .long, help: "The fuel budget (default: the node's).") var fuel: Int64?

        func run() throws {
            guard let object = try? JSONSerialization.jsonObject(with: Data(args.utf8)), case .document(let arguments) = JSONBridge.bson(object) else {
                throw CLIError("--args must be a JSON object")
            }
            var command: BSONDocument = ["callProcedure": .string(name), "args": .document(arguments)]
            if let fuel { command["fuel"] = .int64(fuel) }
            var reply = try target.run(command)
            reply.removeValue(forKey: "ok")
            let data = try JSONSerialization.data(withJSONObject: JSONBridge.json(.document(reply)), options: [.sortedKeys])
            emit(String(decoding: data, as: UTF8.self))
        }
    }

    struct Drop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every version of a procedure.")
        @OptionGroup var target: Target
        @Option(name: .long, help: "The procedure's name.") var name: String

        func run() throws {
            let reply = try target.run(["dropProcedure": .string(name)])
            emit("\(reply["versionsDropped"]?.int64Value ?? 0)")
        }
    }
}

/// Plain JSON ↔ BSON for command-line arguments and output (numbers without a fraction become
/// int64; dates and binaries print as strings).
enum JSONBridge {
    static func bson(_ object: Any) -> BSONValue {
        switch object {
        case let dictionary as [String: Any]:
            var document = BSONDocument()
            for key in dictionary.keys.sorted() { document[key] = bson(dictionary[key]!) }
            return .document(document)
        case let array as [Any]: return .array(array.map(bson))
        case let text as String: return .string(text)
        case let number as NSNumber:
            // JSON's true and false arrive as NSNumbers of type "c" (char).
            if String(cString: number.objCType) == "c" { return .bool(number.boolValue) }
            let double = number.doubleValue
            if double == double.rounded(), abs(double) < 9e15 { return .int64(number.int64Value) }
            return .double(double)
        default: return .null
        }
    }

    static func json(_ value: BSONValue) -> Any {
        switch value {
        case .document(let document):
            var object: [String: Any] = [:]
            for element in document.elements { object[element.key] = json(element.value) }
            return object
        case .array(let values): return values.map(json)
        case .string(let text): return text
        case .bool(let flag): return flag
        case .null: return NSNull()
        default:
            if let integer = value.int64Value { return integer }
            if let double = value.doubleValue { return double.isFinite ? double : String(describing: double) }
            return String(describing: value)
        }
    }
}
