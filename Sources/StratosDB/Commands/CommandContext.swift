import Foundation
import QueryEngine
import StratosCore

/// Everything a command handler needs: the parsed command, its database, the connection and
/// the server's shared services.
struct CommandContext: Sendable {
    let command: BSONDocument
    let database: String
    let connection: ConnectionInfo
    let server: ServerState

    var name: String { command.firstKey ?? "" }

    /// The command's first value (the collection name for most commands).
    var firstValue: BSONValue { command.isEmpty ? .null : command[0].value }

    /// The collection named by the command's first field.
    ///
    /// Reads may name `system.*` collections (monitoring tools count `system.profile`); they
    /// simply do not exist here. Writes to them are refused.
    func collectionName(forWrite: Bool = false) throws(QueryError) -> String {
        guard case .string(let collection) = firstValue else {
            throw QueryError(.invalidNamespace, "collection name has invalid type \(firstValue.typeAlias)")
        }
        if !forWrite && collection.hasPrefix("system.") && collection.count > 7 { return collection }
        try NamespaceRules.validateCollection(collection)
        return collection
    }

    /// Whether the write must be synced to stable storage before it is acknowledged.
    var isDurableWrite: Bool {
        if server.configuration.syncFull { return true }
        if case .document(let concern)? = command["writeConcern"] {
            if concern["j"]?.isTruthy == true { return true }
            if case .string("majority")? = concern["w"] { return true }
        }
        return false
    }

    /// An optional non-negative integer option.
    func integer(_ key: String) throws(QueryError) -> Int64? {
        guard let value = command[key], value != .null else { return nil }
        guard value.isNumber, let integer = value.int64Value ?? value.doubleValue.map({ Int64($0.rounded(.towardZero)) }) else {
            throw QueryError(.typeMismatch, "Field '\(key)' should be a number, found \(value.typeAlias)")
        }
        return integer
    }

    /// An optional document option.
    func document(_ key: String) throws(QueryError) -> BSONDocument? {
        guard let value = command[key], value != .null else { return nil }
        guard case .document(let document) = value else {
            throw QueryError(.typeMismatch, "Field '\(key)' should be an object, found \(value.typeAlias)")
        }
        return document
    }

    /// The executor of this command's database, creating the database when `create`.
    func executor(create: Bool) throws(QueryError) -> DatabaseExecutor? {
        try server.storage.executor(database, create: create)
    }

    var nowMilliseconds: Int64 { server.clock.nowMilliseconds() }
}

/// What the server knows about one client connection.
struct ConnectionInfo: Sendable {
    let id: Int64
    let remoteAddress: String
}
