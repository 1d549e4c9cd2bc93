import Foundation
import QueryEngine
import SpaceOwnership

/// Dispatches a command document to its handler and shapes errors as MongoDB does
/// (`{ok: 0, errmsg, code, codeName}`).
enum CommandRouter {
    static let handlers: CommandTable = {
        var table = CommandTable()
        AdminCommands.register(into: &table)
        AuthenticationCommands.register(into: &table)
        ProofCommands.register(into: &table)
        ArchiveCommands.register(into: &table)
        GrantCommands.register(into: &table)
        ProcedureCommands.register(into: &table)
        JobCommands.register(into: &table)
        LedgerCommands.register(into: &table)
        OperationCommands.register(into: &table)
        CollectionCommands.register(into: &table)
        WriteCommands.register(into: &table)
        ReadCommands.register(into: &table)
        TestCommands.register(into: &table)
        return table
    }()

    /// Command names are case-sensitive except for the legacy handshake spellings.
    private static let aliases: [String: String] = ["ismaster": "isMaster", "buildinfo": "buildInfo"]

    static func handle(_ received: BSONDocument, database: String, connection: ConnectionInfo, server: ServerState) async -> CommandReply {
        switch await run(received, database: database, connection: connection, server: server) {
        case .success(let reply): reply
        case .failure(let error): .document(errorReply(error))
        }
    }

    private static func run(_ received: BSONDocument, database: String, connection: ConnectionInfo, server: ServerState) async -> Result<CommandReply, QueryError> {
        var command = received
        if command.firstKey == "_id", command.count > 1 {
            // BSON encoders (pymongo's among them) move a top-level `_id` to the front, so
            // `db.command("proveRecord", "users", _id=…)` arrives with `_id` first: the command
            // name is then the second field.
            let first = command.elements[0]
            command = BSONDocument(elements: Array(command.elements.dropFirst()))
            command.append(first.key, first.value)
        }
        guard let rawName = command.firstKey else {
            return .failure(QueryError(.failedToParse, "no command name given"))
        }
        let name = aliases[rawName] ?? rawName
        guard let handler = handlers.entry(name) else {
            server.count("unknown")
            return .failure(QueryError(.commandNotFound, "no such command: '\(rawName)'"))
        }
        server.count(name)
        if command["startTransaction"] != nil || command["autocommit"] != nil {
            // Running a transaction's writes immediately would make abortTransaction a lie.
            return .failure(QueryError(.illegalOperation, "multi-document transactions are not supported by StratosDB yet"))
        }
        var context = CommandContext(command: command, database: database, connection: connection, server: server)
        let operation = OperationContext()
        var opid: Int64?
        defer {
            if let opid { server.operations.finish(opid) }
            operation.releaseMemory()
        }
        do {
            try authorize(&context, name: name)
            // The handshake names the client's application (read by the failCommand fail point,
            // which applies to the handshake itself too).
            if name == "hello" || name == "isMaster", case .document(let client)? = command["client"],
                case .document(let application)? = client["application"], case .string(let appName)? = application["name"]
            {
                connection.session.appName = String(appName.prefix(128))
            }
            var injectedConcernError: BSONDocument?
            if server.configuration.testCommandsEnabled, let fault = server.commandFailPoint.fire(for: name, appName: connection.session.appName) {
                if fault.blockMilliseconds > 0 { try? await Task.sleep(for: .milliseconds(fault.blockMilliseconds)) }
                if fault.closeConnection {
                    connection.session.closeWithoutReplying()
                    return .failure(QueryError(.internalError, "connection closed by the failCommand fail point"))
                }
                if let code = fault.errorCode {
                    var info = BSONDocument()
                    if !fault.errorLabels.isEmpty { info["errorLabels"] = .array(fault.errorLabels) }
                    return .failure(QueryError(CommandFailPoint.code(code), "Failing command via 'failCommand' failpoint", info: info.isEmpty ? nil : info))
                }
                injectedConcernError = fault.writeConcernError
            }
            // Sessions of authenticated principals only: an anonymous client cannot fill the cache.
            if let principal = context.principal, case .document(let lsid)? = command["lsid"], case .binary(let id)? = lsid["id"], id.data.count == 16 {
                server.sessions.touch(id: id.data, user: principal.userName, did: principal.did.string, nowMilliseconds: context.nowMilliseconds)
            }
            // `explain` runs the command it holds: that command's collation.
            // (An update's or delete's statements each apply their own, in `WriteCommands`.)
            var collated = (name, command, false)
            if name == "explain", case .document(let inner)? = command["explain"], let innerName = inner.firstKey {
                collated = (aliases[innerName] ?? innerName, inner, true)
            }
            if Self.collatingCommands.contains(collated.0), case .string(let collection)? = collated.1.elements.first?.value {
                operation.collation = CollationRequest(
                    explicit: try Self.collation(of: collated.1, name: collated.0, firstStatement: collated.2), collection: collection)
            }
            if !untrackedCommands.contains(name) {
                operation.deadlineNanoseconds = try deadline(context, name: name)
                operation.documentsExaminedMax = server.configuration.documentsExaminedMax
                var namespace = database
                if case .string(let collection) = context.firstValue { namespace += "." + collection }
                opid = server.operations.register(
                    connection: connection, principal: context.principal?.did.string ?? "", command: name, namespace: namespace,
                    nowMilliseconds: context.nowMilliseconds, operation: operation)
            }
            let answer = try await OperationRegistry.$current.withValue(operation) { () async throws -> CommandReply in
                switch handler {
                case .document(let body): .document(try await body(context))
                case .reply(let body): try await body(context)
                }
            }
            guard case .document(var reply) = answer else { return .success(answer) }
            if let injectedConcernError { reply["writeConcernError"] = .document(injectedConcernError) }
            if reply["ok"] == nil { reply.append("ok", .double(1)) }
            if case .document(let concern)? = command["writeConcern"], case .string("anchored")? = concern["w"] {
                await waitForAnchoring(&reply, context: context, concern: concern)
            }
            return .success(.document(reply))
        } catch let error as QueryError {
            return .failure(error)
        } catch {
            return .failure(QueryError(.internalError, "internal error"))
        }
    }

    /// Commands whose string comparisons follow a collation: their own `collation`, else the
    /// collection's default (an explained update or delete: its first statement's).
    static let collatingCommands: Set<String> = ["find", "aggregate", "count", "distinct", "findAndModify", "findandmodify", "update", "delete"]

    /// The `collation` a command gives: nil when none; `.some(nil)` for the simple one.
    static func collation(of command: BSONDocument, name: String, firstStatement: Bool) throws(QueryError) -> Collation?? {
        guard collatingCommands.contains(name) else { return nil }
        var given = command["collation"]
        if given == nil, firstStatement, let list = name == "update" ? command["updates"] : name == "delete" ? command["deletes"] : nil, case .array(let statements) = list {
            given = statements.lazy.compactMap { statement -> BSONValue? in
                if case .document(let document) = statement { return document["collation"] }
                return nil
            }.first
        }
        guard let given else { return nil }
        return .some(try Collation.parse(given))
    }

    /// Handshake, authentication and monitoring commands are not listed in currentOp.
    private static let untrackedCommands: Set<String> = [
        "hello", "isMaster", "ping", "buildInfo", "saslStart", "saslContinue", "logout", "getnonce", "currentOp", "killOp", "serverStatus",
        "endSessions", "connectionStatus",
    ]

    /// Commands that only read: the server's default deadline (`--max-operation-time`) applies
    /// to them when they give no `maxTimeMS`.
    private static let readCommands: Set<String> = ["find", "getMore", "count", "distinct", "aggregate", "proveRecord"]

    /// The operation's deadline: its `maxTimeMS` (0 means none, as in MongoDB), else the
    /// server's default for reads.
    private static func deadline(_ context: CommandContext, name: String) throws(QueryError) -> UInt64? {
        if let milliseconds = try context.integer("maxTimeMS") {
            // MongoDB's range: a non-negative 32-bit integer.
            guard milliseconds >= 0, milliseconds <= Int64(Int32.max) else { throw QueryError(.badValue, "maxTimeMS out of range") }
            return MonotonicTime.deadline(afterMilliseconds: milliseconds)
        }
        if readCommands.contains(name), let milliseconds = context.server.configuration.defaultReadTimeMilliseconds {
            return MonotonicTime.deadline(afterMilliseconds: milliseconds)
        }
        return nil
    }

    /// Authenticates and authorizes a command before its handler runs (ARCHITECTURE §5 step 2):
    /// sets the context's principal and the space its database name means, or throws
    /// Unauthorized (13).
    private static func authorize(_ context: inout CommandContext, name: String) throws(QueryError) {
        let server = context.server
        let catalog = server.catalog
        context.principal = server.configuration.authenticationDisabled
            ? server.identity.developmentPrincipal
            : context.connection.session.currentPrincipal(nowMilliseconds: context.nowMilliseconds) { principal in
                catalog.userStillBinds(principal)
            }
        let access = CommandAccess.of(name)
        if case .open = access { return }
        guard let principal = context.principal else {
            throw QueryError(.unauthorized, "Command \(name) requires authentication")
        }
        let now = context.nowMilliseconds
        let authorizer = server.authorizer
        // A collection-less aggregate reads no space ($currentOp filters what it shows per
        // principal); one that writes (`$documents` into `$out`/`$merge`) needs write access to
        // its target collections, as any aggregate does.
        if name == "aggregate", context.firstValue.isNumber {
            guard case .array(let stages)? = context.command["pipeline"] else { return }
            let writes = PipelineReferences(stages).writes
            guard !writes.isEmpty else { return }
            let space = try authorizer.resolve(database: context.database, for: principal)
            for collection in writes {
                try authorizer.authorize(.write, collection: collection, space: space, principal: principal, nowMilliseconds: now)
            }
            context.space = space
            return
        }
        switch access {
        case .open, .authenticated:
            return
        case .handler:
            context.space = try authorizer.resolve(database: context.database, for: principal)
        case .owner:
            let space = try authorizer.resolve(database: context.database, for: principal)
            guard space.owner == principal.did else {
                throw QueryError(.unauthorized, "only the owner of space \(space.id) may run \(name)")
            }
            context.space = space
        case .space(let action):
            let space = try authorizer.resolve(database: context.database, for: principal)
            try authorizer.authorize(action, collection: nil, space: space, principal: principal, nowMilliseconds: now)
            context.space = space
        case .collection(let action):
            // renameCollection is sent to admin and names its space in the namespaces.
            var database = context.database
            if name == "renameCollection", case .string(let namespace) = context.firstValue, let dot = namespace.firstIndex(of: ".") {
                database = String(namespace[..<dot])
            }
            let space = try authorizer.resolve(database: database, for: principal)
            var collections: [String] = []
            if name == "renameCollection" {
                // Both namespaces must be in this command's space; the handler refuses others.
                for key in [name, "to"] {
                    if case .string(let namespace)? = context.command[key], let dot = namespace.firstIndex(of: ".") {
                        collections.append(String(namespace[namespace.index(after: dot)...]))
                    }
                }
            } else if case .string(let collection) = context.firstValue {
                collections.append(collection)
                // cloneCollectionAsCapped writes a second collection of the space.
                if name == "cloneCollectionAsCapped", case .string(let target)? = context.command["toCollection"] { collections.append(target) }
            }
            if name == "aggregate", case .array(let stages)? = context.command["pipeline"] {
                let referenced = PipelineReferences(stages)
                for collection in referenced.reads {
                    try authorizer.authorize(.read, collection: collection, space: space, principal: principal, nowMilliseconds: now)
                }
                for collection in referenced.writes {
                    try authorizer.authorize(.write, collection: collection, space: space, principal: principal, nowMilliseconds: now)
                }
            }
            if collections.isEmpty {
                try authorizer.authorize(action, collection: nil, space: space, principal: principal, nowMilliseconds: now)
            }
            for collection in collections {
                try authorizer.authorize(action, collection: collection, space: space, principal: principal, nowMilliseconds: now)
            }
            // A clone gives its target's readers the source's documents: its caller must read them.
            if name == "cloneCollectionAsCapped", let source = collections.first {
                try authorizer.authorize(.read, collection: source, space: space, principal: principal, nowMilliseconds: now)
            }
            context.space = space
        }
    }

    /// `w: "anchored"`: the reply waits until the space's newest commit is in a decided block.
    /// On timeout (`wtimeout`, else 60 s) the write stands and the reply carries a
    /// `writeConcernError` (64), as MongoDB reports a replication timeout.
    private static func waitForAnchoring(_ reply: inout BSONDocument, context: CommandContext, concern: BSONDocument) async {
        guard reply["ok"] == .double(1) || reply["ok"] == .int32(1) else { return }
        guard let ledger = context.server.ledger else {
            reply["writeConcernError"] = .document([
                "code": .int32(79), "codeName": .string("UnknownReplWriteConcern"),
                "errmsg": .string("w: \"anchored\" needs the ledger, which this node runs without"),
            ])
            return
        }
        // An anchored write is durable, and a durable write is sealed into a commit in its own
        // transaction (`CommitLog`): the newest commit the ledger knows holds it.
        guard let space = context.space?.id.string, let seq = ledger.latestSeq(space: space) else { return }
        var timeout: Int64 = 60_000
        if let value = concern["wtimeout"], let milliseconds = value.int64Value ?? value.doubleValue.flatMap({ Int64(exactly: $0.rounded(.towardZero)) }), milliseconds > 0 {
            timeout = min(milliseconds, 600_000)
        }
        if await !ledger.waitAnchored(space: space, seq: seq, timeoutMilliseconds: timeout) {
            reply["writeConcernError"] = .document([
                "code": .int32(64), "codeName": .string("WriteConcernFailed"),
                "errmsg": .string("waiting for the write to be anchored in a decided block timed out"),
                "errInfo": .document(["wtimeout": .bool(true)]),
            ])
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

/// The command handlers, by name. Most answer a document (`table["ping"] = { _ in [:] }`);
/// `find` and `getMore` may answer finished bytes (`table.reply("find", find)`).
struct CommandTable: Sendable {
    typealias DocumentHandler = @Sendable (CommandContext) async throws -> BSONDocument
    typealias ReplyHandler = @Sendable (CommandContext) async throws -> CommandReply

    enum Entry: Sendable {
        case document(DocumentHandler)
        case reply(ReplyHandler)
    }

    private var entries: [String: Entry] = [:]

    /// A handler that answers a document (nil for a name registered with `reply`: look names up
    /// with `entry`).
    subscript(name: String) -> DocumentHandler? {
        get {
            if case .document(let handler)? = entries[name] { return handler }
            return nil
        }
        set { entries[name] = newValue.map(Entry.document) }
    }

    /// Registers a handler that answers a `CommandReply`.
    mutating func reply(_ name: String, _ handler: @escaping ReplyHandler) { entries[name] = .reply(handler) }

    func entry(_ name: String) -> Entry? { entries[name] }

    /// Every command name.
    var keys: Dictionary<String, Entry>.Keys { entries.keys }
}
