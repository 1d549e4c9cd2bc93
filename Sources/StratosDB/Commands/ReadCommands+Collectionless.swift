import NIOPosix
import QueryEngine
import SpaceOwnership

/// `{aggregate: 1, pipeline: [...]}`: aggregation without a collection, whose first stage makes
/// the documents — `$documents`, `$listLocalSessions`, or `$currentOp` on admin.
extension ReadCommands {
    static func collectionlessAggregate(_ context: CommandContext) async throws -> BSONDocument {
        guard case .array(let stages)? = context.command["pipeline"], case .document(let first)? = stages.first,
            let source = first.firstKey, ["$currentOp", "$documents", "$listLocalSessions"].contains(source)
        else {
            throw QueryError(.invalidNamespace, "collection-less aggregate (aggregate: 1) supports only $currentOp, $documents or $listLocalSessions as its first stage")
        }
        // Only `$documents` can be explained (it is the only one that can be a whole pipeline).
        let explain = context.command["explain"]?.isTruthy == true
        guard context.command["cursor"] != nil || (explain && source == "$documents") else {
            throw QueryError(.failedToParse, "The 'cursor' option is required, except for aggregate with the explain argument")
        }
        let namespace = "\(context.database).$cmd.aggregate"
        if source == "$documents" {
            return try await documentsAggregate(context, stages: stages, explain: explain, namespace: namespace)
        }
        if source == "$currentOp", context.database != "admin" {
            throw QueryError(.invalidNamespace, "$currentOp must be run against the 'admin' database with {aggregate: 1}")
        }
        // The rest of the pipeline runs over the sessions or operations the caller may see.
        let pipeline = try Pipeline(Array(stages.dropFirst()))
        guard pipeline.outputTarget == nil else {
            throw QueryError(.location(40602), "$out and $merge are not allowed after \(source)")
        }
        let input: [BSONDocument]
        if source == "$listLocalSessions" {
            input = try localSessions(context, first[0].value)
        } else {
            guard case .array(let operations)? = OperationCommands.currentOp(context)["inprog"] else { return [:] }
            input = operations.compactMap(\.documentValue)
        }
        let documents = try pipeline.run(over: input, nowMilliseconds: context.nowMilliseconds)
        return try await cursorReply(context, namespace: namespace, documents: documents)
    }

    /// `$documents` and the stages after it. Stages that read collections (`$lookup`,
    /// `$unionWith`) are refused: no space is resolved to read for a collection-less aggregate.
    /// It may end in `$out`/`$merge` into this database (the router authorized the targets as
    /// writes); an explain shows the documents and writes nothing.
    private static func documentsAggregate(
        _ context: CommandContext, stages: [BSONValue], explain: Bool, namespace: String
    ) async throws -> BSONDocument {
        let pipeline = try Pipeline(stages)
        try requireOutputInThisDatabase(pipeline, context)
        let variables = try letVariables(context)
        let now = context.nowMilliseconds
        // On a heavy-read thread, not the event loop: a pipeline can compute for a while
        // (maxTimeMS and killOp reach it through the bound operation).
        let operation = OperationRegistry.current
        let documents: [BSONDocument]
        do {
            documents = try await context.server.heavyReadPool.runIfActive { () throws -> [BSONDocument] in
                try OperationContext.withCurrent(operation) { () throws(QueryError) -> [BSONDocument] in
                    try operation?.check()
                    return try ExpressionScope.with(variables: variables, now: now) { () throws(QueryError) in
                        try pipeline.run(over: [], nowMilliseconds: now)
                    }
                }
            }
        } catch let error as QueryError {
            throw error
        } catch {
            throw QueryError(.interruptedAtShutdown, "the server is shutting down")
        }
        guard pipeline.outputTarget != nil, !explain else {
            return try await cursorReply(context, namespace: namespace, documents: documents)
        }
        guard context.space != nil, let writer = try context.executor(create: true) else {
            throw QueryError(.unauthorized, "$out and $merge in a collection-less aggregate need a database the caller may write")
        }
        try await writeOutput(pipeline, documents, into: writer, context, variables: variables, now: now)
        return try await cursorReply(context, namespace: namespace, documents: [])
    }

    /// `$listLocalSessions`: `{}` lists the caller's own sessions; `{allUsers: true}` and
    /// `{users: [{user, db}]}` list everyone's or the named users', for the node's operator only.
    private static func localSessions(_ context: CommandContext, _ specification: BSONValue) throws(QueryError) -> [BSONDocument] {
        guard case .document(let spec) = specification else {
            throw QueryError(.typeMismatch, "$listLocalSessions options must be specified in an object")
        }
        for key in spec.keys where key != "allUsers" && key != "users" {
            throw QueryError(.location(40415), "BSON field '$listLocalSessions.\(key)' is an unknown field.")
        }
        let principal = context.principal
        let mayListOthers = principal?.isOperator ?? true
        var named: Set<String>?
        if case .array(let users)? = spec["users"] {
            named = Set(users.compactMap { value -> String? in
                guard case .document(let user) = value, case .string(let name)? = user["user"] else { return nil }
                return name
            })
        }
        let all = spec["allUsers"]?.isTruthy ?? false
        if (all || named != nil) && !mayListOthers {
            throw QueryError(.unauthorized, "only the node's operator may list other users' sessions")
        }
        return context.server.sessions.list(nowMilliseconds: context.nowMilliseconds).compactMap { session in
            if let named { guard named.contains(session.entry.user) else { return nil } }
            else if !all, let principal { guard session.entry.did == principal.did.string else { return nil } }
            return LogicalSessions.document(session.id, session.entry)
        }
    }
}
