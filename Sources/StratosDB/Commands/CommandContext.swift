import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore

/// Everything a command handler needs: the parsed command, its database, the connection and
/// the server's shared services.
struct CommandContext: Sendable {
    let command: BSONDocument
    let database: String
    let connection: ConnectionInfo
    let server: ServerState
    /// Who runs the command (nil only for the commands allowed before authentication).
    var principal: Principal?
    /// The space the command's database name means for `principal` (nil for commands that
    /// touch no space).
    var space: ResolvedSpace?

    init(command: BSONDocument, database: String, connection: ConnectionInfo, server: ServerState, principal: Principal? = nil, space: ResolvedSpace? = nil) {
        self.command = command
        self.database = database
        self.connection = connection
        self.server = server
        self.principal = principal
        self.space = space
    }

    /// The name the storage engine knows the database by: its space id.
    var storageName: String { space?.id.string ?? database }

    /// The principal's DID, for cursor ownership ("" when none).
    var principalKey: String { principal?.did.string ?? "" }

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
            // An anchored commit must never be lost locally.
            if case .string("anchored")? = concern["w"] { return true }
        }
        return false
    }

    /// An optional non-negative integer option.
    func integer(_ key: String) throws(QueryError) -> Int64? {
        guard let value = command[key], value != .null else { return nil }
        guard value.isNumber else {
            throw QueryError(.typeMismatch, "Field '\(key)' should be a number, found \(value.typeAlias)")
        }
        // A double is range-checked before it is narrowed: 1.5e300 or NaN is an error, not a crash.
        guard let integer = value.int64Value ?? value.doubleValue.flatMap({ Int64(exactly: $0.rounded(.towardZero)) }) else {
            throw QueryError(.badValue, "Field '\(key)' is out of range")
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
        if create, let space, let principal, space.owner == principal.did, let name = space.name, server.catalog.space(space.id) == nil {
            // First write to a name creates the caller's space, as MongoDB creates a database.
            try server.catalog.registerSpace(owner: principal.did, name: name, node: server.identity.nodeKey.did)
        } else if create, let space, space.owner == nil {
            throw QueryError(.unauthorized, "space \(space.id) does not exist on this node")
        }
        return try server.storage.executor(storageName, create: create)
    }

    var nowMilliseconds: Int64 { server.clock.nowMilliseconds() }

    /// `bypassDocumentValidation: true` on a write. Anyone who may write the collection may ask:
    /// a space has no MongoDB roles, and the validator protects the space's owner from mistakes
    /// of the owner's own apps, not from the owner.
    var bypassesDocumentValidation: Bool { command["bypassDocumentValidation"]?.isTruthy ?? false }

    /// Runs a read that may examine many documents on the heavy-read threads, admitted fairly
    /// between spaces (`HeavyReadScheduler`).
    func readHeavy<T: Sendable>(
        _ executor: DatabaseExecutor, _ body: @escaping @Sendable (DatabaseStore) throws(QueryError) -> T
    ) async throws(QueryError) -> T {
        let scheduler = server.heavyReads
        try await scheduler.acquire(executor.name, operation: OperationRegistry.current)
        defer { scheduler.release(executor.name) }
        return try await executor.readOffloaded(on: server.heavyReadPool, body)
    }
}

/// What the server knows about one client connection.
struct ConnectionInfo: Sendable {
    let id: Int64
    let remoteAddress: String
    /// Authentication state.
    let session: ConnectionSession
}
