import Foundation
import QueryEngine

/// Dispatches a command document to its handler and shapes errors as MongoDB does
/// (`{ok: 0, errmsg, code, codeName}`).
enum CommandRouter {
    typealias Handler = @Sendable (CommandContext) async throws -> BSONDocument

    static let handlers: [String: Handler] = {
        var table: [String: Handler] = [:]
        AdminCommands.register(into: &table)
        CollectionCommands.register(into: &table)
        WriteCommands.register(into: &table)
        ReadCommands.register(into: &table)
        return table
    }()

    /// Command names are case-sensitive except for the legacy handshake spellings.
    private static let aliases: [String: String] = ["ismaster": "isMaster", "buildinfo": "buildInfo"]

    static func handle(_ command: BSONDocument, database: String, connection: ConnectionInfo, server: ServerState) async -> BSONDocument {
        guard let rawName = command.firstKey else {
            return errorReply(QueryError(.failedToParse, "no command name given"))
        }
        let name = aliases[rawName] ?? rawName
        guard let handler = handlers[name] else {
            server.count("unknown")
            return errorReply(QueryError(.commandNotFound, "no such command: '\(rawName)'"))
        }
        server.count(name)
        if command["startTransaction"] != nil || command["autocommit"] != nil {
            // Running a transaction's writes immediately would make abortTransaction a lie.
            return errorReply(QueryError(.illegalOperation, "multi-document transactions are not supported by StratosDB yet"))
        }
        let context = CommandContext(command: command, database: database, connection: connection, server: server)
        do {
            var reply = try await handler(context)
            if reply["ok"] == nil && EncodedReply.bytes(of: reply) == nil { reply.append("ok", .double(1)) }
            return reply
        } catch let error as QueryError {
            return errorReply(error)
        } catch {
            return errorReply(QueryError(.internalError, "internal error"))
        }
    }

    static func errorReply(_ error: QueryError) -> BSONDocument {
        var reply: BSONDocument = [
            "ok": .double(0), "errmsg": .string(error.message), "code": .int32(error.code.number),
            "codeName": .string(error.code.name),
        ]
        if let info = error.info {
            for element in info.elements { reply[element.key] = element.value }
        }
        return reply
    }

    /// The `writeErrors` entry for a failed write.
    static func writeError(index: Int, _ error: QueryError) -> BSONValue {
        var entry: BSONDocument = [
            "index": .int32(Int32(index)), "code": .int32(error.code.number), "codeName": .string(error.code.name),
            "errmsg": .string(error.message),
        ]
        if let info = error.info {
            for element in info.elements { entry[element.key] = element.value }
        }
        return .document(entry)
    }
}
