import Logging
import QueryEngine
import SpaceOwnership
import StratosCore
import StoredProcedures

/// Stored procedures (ARCHITECTURE §8, docs/procedures.md): `createProcedure`, `dropProcedure`,
/// `listProcedures` and `callProcedure`.
///
/// A call runs on the space's executor thread (never an event loop) inside one write job: what
/// the procedure writes becomes one signed commit, or nothing when it fails. While it runs,
/// other writes to that space wait; other spaces are not affected. Fuel bounds its work, and
/// every host call checks the operation's deadline and `killOp`.
enum ProcedureCommands {
    static func register(into table: inout CommandTable) {
        table["createProcedure"] = createProcedure
        table["dropProcedure"] = dropProcedure
        table["listProcedures"] = listProcedures
        table["callProcedure"] = callProcedure
    }

    /// The procedure a command names first (also `submitJob`'s).
    static func procedureName(_ context: CommandContext) throws(QueryError) -> String {
        guard case .string(let name) = context.firstValue, ProcedureLimits.validateName(name) else {
            throw QueryError(.badValue, "\(context.name) takes a procedure name: 1 to 64 letters, digits, '_', '-' or '.'")
        }
        return name
    }

    /// The command's `fuel`, within the node's maximum, or the node's default (also `submitJob`'s).
    static func fuel(_ context: CommandContext) throws(QueryError) -> UInt64 {
        let limits = context.server.configuration.procedureLimits
        guard let requested = try context.integer("fuel") else { return limits.fuelDefault }
        guard requested > 0, UInt64(requested) <= limits.fuelMax else {
            throw QueryError(.badValue, "fuel must be between 1 and \(limits.fuelMax) (serve --procedure-fuel-max)")
        }
        return UInt64(requested)
    }

    /// `{createProcedure: name, code: BinData, description?}`: validates the module and stores
    /// it as the procedure's next version.
    static func createProcedure(_ context: CommandContext) async throws -> BSONDocument {
        let name = try procedureName(context)
        guard case .binary(let code)? = context.command["code"] else {
            throw QueryError(.typeMismatch, "createProcedure requires 'code': the WebAssembly module as BinData")
        }
        var description: String?
        switch context.command["description"] {
        case nil, .null?: break
        case .string(let text)? where text.utf8.count <= 1_024: description = text
        default: throw QueryError(.badValue, "'description' must be a string of at most 1024 bytes")
        }
        let limits = context.server.configuration.procedureLimits
        // Validated before the space is touched: a bad module leaves nothing behind.
        let module = try ProcedureModule.compile(code.data, limits: limits)
        guard let executor = try context.executor(create: true) else { return [:] }
        let author = context.principalKey
        let now = context.nowMilliseconds
        let bytes = code.data
        let note = description
        let version = try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) -> Int in
            try ProcedureStore.create(store, name: name, code: bytes, module: module, description: note, author: author, nowMilliseconds: now)
        }
        context.server.logger.info("procedure created", metadata: ["space": "\(context.storageName)", "procedure": "\(name)", "version": "\(version)"])
        return [
            "name": .string(name), "version": .int64(Int64(version)), "codeHash": .string(Hex.encode(module.codeHash)),
            "size": .int64(Int64(module.byteCount)),
        ]
    }

    /// `{dropProcedure: name}`: removes every version.
    static func dropProcedure(_ context: CommandContext) async throws -> BSONDocument {
        let name = try procedureName(context)
        guard let executor = try context.executor(create: false) else { throw notFound(name, context) }
        let dropped = try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) -> Int in
            try ProcedureStore.drop(store, name: name)
        }
        guard dropped > 0 else { throw notFound(name, context) }
        return ["versionsDropped": .int64(Int64(dropped))]
    }

    /// `{listProcedures: 1}`: each procedure's newest version (no code), its version count, and
    /// its calls and fuel since the node started.
    static func listProcedures(_ context: CommandContext) async throws -> BSONDocument {
        var entries: [BSONValue] = []
        if let executor = try context.executor(create: false) {
            let listed = try await executor.read { store throws(QueryError) in try ProcedureStore.list(store) }
            for (latest, versions) in listed {
                var entry = latest
                entry["versions"] = .int64(Int64(versions))
                if case .string(let name)? = latest["name"] {
                    let usage = context.server.procedureUsage(space: context.storageName, name: name)
                    entry["calls"] = .int64(usage.calls)
                    entry["failures"] = .int64(usage.failures)
                    entry["fuelUsed"] = .int64(usage.fuel)
                }
                entries.append(.document(entry))
            }
        }
        return try await ReadCommands.cursorReply(context, namespace: "\(context.database).system.procedures", documents: entries.compactMap {
            if case .document(let document) = $0 { document } else { nil }
        })
    }

    /// `{callProcedure: name, args?: {...}, fuel?: n, version?: n}` → `{result, fuelUsed, …}`.
    static func callProcedure(_ context: CommandContext) async throws -> BSONDocument {
        let name = try procedureName(context)
        let arguments = try context.document("args") ?? BSONDocument()
        let limits = context.server.configuration.procedureLimits
        let fuel = try fuel(context)
        let version = try context.integer("version").map { Int(clamping: $0) }
        guard let executor = try context.executor(create: false), let space = context.space, let principal = context.principal else {
            throw notFound(name, context)
        }
        let invocation = ProcedureInvocation(
            name: name, version: version, arguments: arguments.bsonBytes, fuel: fuel, space: space, principal: principal.did,
            nowMilliseconds: context.nowMilliseconds)
        let server = context.server
        let storage = context.storageName
        if let operation = OperationRegistry.current, operation.deadlineNanoseconds == nil {
            operation.deadlineNanoseconds = MonotonicTime.deadline(afterMilliseconds: limits.timeMillisecondsMax)
        }
        let finished: ProcedureInvocation.Finished
        do {
            finished = try await executor.write(durable: context.isDurableWrite, inline: false) { store throws(QueryError) in
                try invocation.run(in: store, server: server)
            }
        } catch {
            // Calls to a procedure that does not exist are not counted (the table would grow with every name tried).
            if error.code != .procedureNotFound {
                server.recordProcedureCall(space: storage, name: name, fuel: error.code == .exceededFuel ? fuel : 0, failed: true)
            }
            throw error
        }
        let result = finished.outcome
        server.recordProcedureCall(space: storage, name: name, fuel: result.fuelUsed, failed: false)
        return [
            "result": .document(result.result),
            "procedure": .string(name), "version": .int64(Int64(finished.version)), "codeHash": .string(Hex.encode(finished.codeHash)),
            "fuelUsed": .int64(Int64(clamping: result.fuelUsed)), "fuelLimit": .int64(Int64(clamping: result.fuelLimit)),
            "documentsRead": .int64(Int64(result.documentsRead)), "documentsWritten": .int64(Int64(result.documentsWritten)),
            "memoryBytes": .int64(Int64(result.memoryBytes)),
            "logs": .array(result.logs.map { .string($0) }),
        ]
    }

    private static func notFound(_ name: String, _ context: CommandContext) -> QueryError {
        QueryError(.procedureNotFound, "no procedure '\(name)' in this space")
    }
}
