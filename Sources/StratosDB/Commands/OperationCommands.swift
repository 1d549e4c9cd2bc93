import QueryEngine
import SpaceOwnership

/// `currentOp` and `killOp`, shaped as MongoDB's so `db.currentOp()` and `db.killOp(opid)`
/// work from any driver. A principal sees and kills its own operations; the node's local owner
/// sees and kills every one. Commands are shown by name and namespace only, never with their
/// arguments (they may hold document contents).
enum OperationCommands {
    static func register(into table: inout CommandTable) {
        table["currentOp"] = { context in currentOp(context) }
        table["killOp"] = { context in try killOp(context) }
    }

    static func isNodeOwner(_ context: CommandContext) -> Bool {
        context.server.configuration.authenticationDisabled || context.principal?.did == context.server.identity.ownerKey.did
    }

    static func visible(_ entry: OperationRegistry.Entry, to context: CommandContext) -> Bool {
        isNodeOwner(context) || entry.principal == context.principal?.did.string
    }

    static func currentOp(_ context: CommandContext) -> BSONDocument {
        let now = MonotonicTime.nowNanoseconds()
        let entries = context.server.operations.running.filter { visible($0, to: context) }
        let inprog: [BSONValue] = entries.map { entry in
            let micros = Int64((now &- entry.startedNanoseconds) / 1_000)
            let kind: String =
                switch entry.command {
                case "find", "getMore", "count", "distinct": "query"
                case "insert": "insert"
                case "update", "findAndModify": "update"
                case "delete": "remove"
                default: "command"
                }
            var command = BSONDocument()
            let collection = entry.namespace.split(separator: ".", maxSplits: 1).dropFirst().first.map(String.init)
            command[entry.command] = collection.map { .string($0) } ?? .int32(1)
            return .document([
                "type": .string("op"), "opid": .int64(entry.opid), "active": .bool(true), "op": .string(kind),
                "ns": .string(entry.namespace), "command": .document(command), "client": .string(entry.client),
                "connectionId": .int64(entry.connectionID), "desc": .string("conn\(entry.connectionID)"),
                "secs_running": .int64(micros / 1_000_000), "microsecs_running": .int64(micros),
                "killPending": .bool(entry.operation.isCancelled),
                "effectiveUsers": .array(entry.principal.isEmpty ? [] : [.document(["user": .string(entry.principal), "db": .string("$external")])]),
            ])
        }
        return ["inprog": .array(inprog)]
    }

    static func killOp(_ context: CommandContext) throws -> BSONDocument {
        guard let value = context.command["op"], let opid = value.int64Value ?? value.doubleValue.flatMap({ Int64(exactly: $0.rounded(.towardZero)) }) else {
            throw QueryError(.failedToParse, "killOp requires the opid of the operation to kill in 'op'")
        }
        // MongoDB answers ok even for an operation that has already finished.
        if let entry = context.server.operations.entry(opid) {
            guard visible(entry, to: context) else { throw QueryError(.unauthorized, "not authorized to kill operation \(opid)") }
            entry.operation.cancel(.killed)
        }
        return ["info": .string("attempting to kill op")]
    }
}
