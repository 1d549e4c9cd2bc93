import QueryEngine

/// insert, update, delete and findAndModify. Each command is one write job on the database's
/// executor (one savepoint per statement inside the group commit), so ordered batches stop at
/// the first error and everything before it is kept, as in MongoDB.
enum WriteCommands {
    static func register(into table: inout CommandTable) {
        table["insert"] = insert
        table["update"] = update
        table["delete"] = delete
        table["findAndModify"] = findAndModify
        table["findandmodify"] = findAndModify
    }

    private static func statements(_ context: CommandContext, _ key: String) throws(QueryError) -> [BSONDocument] {
        guard case .array(let items)? = context.command[key] else {
            throw QueryError(.failedToParse, "BSON field '\(context.name).\(key)' is missing but a required field")
        }
        guard (1...ServerLimits.writeBatchSizeMax).contains(items.count) else {
            throw QueryError(.invalidLength, "Write batch sizes must be between 1 and \(ServerLimits.writeBatchSizeMax). Got \(items.count) operations.")
        }
        var documents: [BSONDocument] = []
        documents.reserveCapacity(items.count)
        let allowed = statementFields[key]
        for item in items {
            guard case .document(let document) = item else {
                throw QueryError(.typeMismatch, "BSON field '\(context.name).\(key)' must be an array of objects")
            }
            // As mongod's command parser: a field it does not know fails the whole command (an
            // option of a newer server, such as 8.0's `sort` in an update, is not ignored).
            if let allowed, let unknown = document.keys.first(where: { !allowed.contains($0) }) {
                throw QueryError(.location(40415), "BSON field '\(context.name).\(key).\(unknown)' is an unknown field.")
            }
            documents.append(document)
        }
        return documents
    }

    /// The fields MongoDB 7.0 accepts in each update and delete statement.
    private static let statementFields: [String: Set<String>] = [
        "updates": ["q", "u", "c", "upsert", "multi", "arrayFilters", "hint", "collation", "upsertSupplied", "sampleId"],
        "deletes": ["q", "limit", "hint", "collation", "sampleId"],
    ]

    private static func writeReply(n: Int, errors: [BSONValue], extra: BSONDocument = [:]) -> BSONDocument {
        var reply: BSONDocument = ["n": .int32(Int32(clamping: n))]
        for element in extra.elements { reply[element.key] = element.value }
        if !errors.isEmpty { reply["writeErrors"] = .array(errors) }
        return reply
    }

    static func insert(_ context: CommandContext) async throws -> BSONDocument {
        let collection = try context.collectionName(forWrite: true)
        var documents = try statements(context, "documents")
        for index in documents.indices where documents[index]["_id"] == nil {
            documents[index].prepend("_id", .objectId(ObjectId.generate(seconds: UInt32(truncatingIfNeeded: context.nowMilliseconds / 1000))))
        }
        let ordered = context.command["ordered"]?.isTruthy ?? true
        context.server.countOperations("insert", documents.count)
        guard let executor = try context.executor(create: true) else { return [:] }
        let batch = documents
        let bypass = context.bypassesDocumentValidation
        let (inserted, errors) = try await executor.write(durable: context.isDurableWrite, protectsItsWrites: true) { store throws(QueryError) -> (Int, [BSONValue]) in
            store.bypassDocumentValidation = bypass
            defer { store.bypassDocumentValidation = false }
            var inserted = 0
            var errors: [BSONValue] = []
            for (index, document) in batch.enumerated() {
                do throws(QueryError) {
                    try store.withSavepoint { () throws(QueryError) in _ = try store.insert(document, into: collection) }
                    inserted += 1
                } catch {
                    errors.append(CommandRouter.writeError(index: index, error))
                    if ordered { break }
                }
            }
            return (inserted, errors)
        }
        return writeReply(n: inserted, errors: errors)
    }

    /// A statement's own `collation` (nil: the collection's default; `.some(nil)`: simple).
    static func statementCollation(_ statement: BSONDocument) throws(QueryError) -> Collation?? {
        guard let given = statement["collation"] else { return nil }
        return .some(try Collation.parse(given))
    }

    static func update(_ context: CommandContext) async throws -> BSONDocument {
        let collection = try context.collectionName(forWrite: true)
        let updates = try statements(context, "updates")
        context.server.countOperations("update", updates.count)
        let ordered = context.command["ordered"]?.isTruthy ?? true
        guard let executor = try context.executor(create: true) else { return [:] }
        let now = context.nowMilliseconds
        let variables = try ReadCommands.letVariables(context)
        let bypass = context.bypassesDocumentValidation
        let result = try await executor.write(durable: context.isDurableWrite, protectsItsWrites: true) { store throws(QueryError) -> (Int, Int, [BSONValue], [BSONValue]) in
            store.bypassDocumentValidation = bypass
            defer { store.bypassDocumentValidation = false }
            return try ExpressionScope.with(variables: variables, now: now) { () throws(QueryError) -> (Int, Int, [BSONValue], [BSONValue]) in
                var matched = 0
                var modified = 0
                var upserted: [BSONValue] = []
                var errors: [BSONValue] = []
                for (index, statement) in updates.enumerated() {
                    do throws(QueryError) {
                        let collation = CollationRequest(explicit: try statementCollation(statement), collection: collection)
                        // `c`: the statement's own variables (constants), seen by its pipeline.
                        var constants: [String: BSONValue] = [:]
                        switch statement["c"] {
                        case nil: break
                        case .document(let specification)?:
                            guard case .array? = statement["u"] else {
                                throw QueryError(.location(51198), "Constant values may only be specified for pipeline updates")
                            }
                            constants = try ExpressionScope.evaluate(specification, in: ExpressionContext(root: [:]))
                        default: throw QueryError(.typeMismatch, "BSON field 'update.updates.c' is the wrong type, expected type 'object'")
                        }
                        let outcome = try ExpressionScope.with(variables: constants) { () throws(QueryError) -> UpdateOutcome in
                            try Collation.with(collation, in: store) { () throws(QueryError) -> UpdateOutcome in
                                try store.withSavepoint { () throws(QueryError) -> UpdateOutcome in
                                    try applyUpdate(statement, collection: collection, store: store, nowMilliseconds: now)
                                }
                            }
                        }
                        matched += outcome.matched
                        modified += outcome.modified
                        if let id = outcome.upsertedId {
                            upserted.append(.document(["index": .int32(Int32(index)), "_id": id]))
                        }
                    } catch {
                        errors.append(CommandRouter.writeError(index: index, error))
                        if ordered { break }
                    }
                }
                return (matched, modified, upserted, errors)
            }
        }
        var extra: BSONDocument = ["nModified": .int32(Int32(clamping: result.1))]
        if !result.2.isEmpty { extra["upserted"] = .array(result.2) }
        return writeReply(n: result.0 + result.2.count, errors: result.3, extra: extra)
    }

    struct UpdateOutcome {
        var matched = 0
        var modified = 0
        var upsertedId: BSONValue?
        var before: BSONDocument?
        var after: BSONDocument?
    }

    /// Applies one `{q, u, multi, upsert}` statement.
    static func applyUpdate(
        _ statement: BSONDocument, collection: String, store: DatabaseStore, nowMilliseconds: Int64,
        sort: SortSpecification? = nil
    ) throws(QueryError) -> UpdateOutcome {
        guard case .document(let query)? = statement["q"] ?? .document([:]) else {
            throw QueryError(.typeMismatch, "BSON field 'update.updates.q' is the wrong type, expected type 'object'")
        }
        try store.requireCollection(collection)
        let update: Update
        switch statement["u"] {
        case .document(let document)?: update = try Update(document)
        case .array(let stages)?: update = try Update(pipeline: stages)
        default: throw QueryError(.failedToParse, "BSON field 'update.updates.u' is missing but a required field")
        }
        var arrayFilters = ArrayFilters.none
        switch statement["arrayFilters"] {
        case nil, .null?: break
        case .array(let values)?: arrayFilters = try ArrayFilters(values)
        default: throw QueryError(.typeMismatch, "BSON field 'arrayFilters' is the wrong type, expected type 'array'")
        }
        let multi = statement["multi"]?.isTruthy ?? false
        let upsert = statement["upsert"]?.isTruthy ?? false
        let filter = try Filter(query)
        try update.validate(arrayFilters)
        if multi, !update.isOperatorUpdate {
            throw QueryError(.failedToParse, "multi update is not supported for replacement-style update")
        }
        var outcome = UpdateOutcome()
        let matches = try store.matches(in: collection, filter: filter, sort: sort, limit: multi ? nil : 1)
        for match in matches {
            outcome.matched += 1
            let updated = try update.apply(
                to: match.document, position: match.position, isInsert: false, nowMilliseconds: nowMilliseconds,
                arrayFilters: arrayFilters)
            if outcome.before == nil {
                outcome.before = match.document
                outcome.after = updated
            }
            if updated != match.document {
                try store.replace(rid: match.rid, old: match.document, new: updated, in: collection)
                outcome.modified += 1
            }
        }
        if matches.isEmpty && upsert {
            // Operator updates start from the query's equality fields; a replacement keeps only
            // the query's `_id` (Update.apply carries the seed's `_id` into a replacement).
            let equalities = upsertSeed(from: filter)
            var seed = update.isOperatorUpdate ? equalities : BSONDocument()
            if !update.isOperatorUpdate, let id = equalities["_id"] { seed["_id"] = id }
            var document = try update.apply(
                to: seed, position: nil, isInsert: true, nowMilliseconds: nowMilliseconds, arrayFilters: arrayFilters)
            if let id = document.removeValue(forKey: "_id") {
                document.prepend("_id", id)
            } else {
                document.prepend("_id", .objectId(ObjectId.generate(seconds: UInt32(truncatingIfNeeded: nowMilliseconds / 1000))))
            }
            try store.insert(document, into: collection)
            outcome.upsertedId = document["_id"]
            outcome.after = document
        }
        return outcome
    }

    /// The equality fields of a query, which become the base of an upserted document.
    static func upsertSeed(from filter: Filter) -> BSONDocument {
        var root = BSONValue.document(BSONDocument())
        func visit(_ node: Filter) {
            switch node {
            case .field(let path, let operators):
                for case .equal(let value) in operators {
                    try? UpdatePaths.set(path.components, value, in: &root)
                }
            case .and(let clauses): clauses.forEach(visit)
            default: break
            }
        }
        visit(filter)
        return root.documentValue ?? BSONDocument()
    }

    static func delete(_ context: CommandContext) async throws -> BSONDocument {
        let collection = try context.collectionName(forWrite: true)
        let deletes = try statements(context, "deletes")
        context.server.countOperations("delete", deletes.count)
        let ordered = context.command["ordered"]?.isTruthy ?? true
        guard let executor = try context.executor(create: false) else { return ["n": .int32(0)] }
        let variables = try ReadCommands.letVariables(context)
        let now = context.nowMilliseconds
        let (removed, errors) = try await executor.write(durable: context.isDurableWrite, protectsItsWrites: true) { store throws(QueryError) -> (Int, [BSONValue]) in
            try ExpressionScope.with(variables: variables, now: now) { () throws(QueryError) -> (Int, [BSONValue]) in
                var removed = 0
                var errors: [BSONValue] = []
                for (index, statement) in deletes.enumerated() {
                    do throws(QueryError) {
                        let collation = CollationRequest(explicit: try statementCollation(statement), collection: collection)
                        removed += try Collation.with(collation, in: store) { () throws(QueryError) -> Int in try store.withSavepoint { () throws(QueryError) -> Int in
                            guard case .document(let query)? = statement["q"] else {
                                throw QueryError(.failedToParse, "BSON field 'delete.deletes.q' is missing but a required field")
                            }
                            try store.requireCollection(collection)
                            guard let limit = statement["limit"]?.int64Value, limit == 0 || limit == 1 else {
                                throw QueryError(.failedToParse, "The limit field in delete objects must be 0 or 1.")
                            }
                            let matches = try store.matches(in: collection, filter: try Filter(query), limit: limit == 1 ? 1 : nil)
                            for match in matches { try store.delete(rid: match.rid, document: match.document, from: collection) }
                            return matches.count
                        } }
                    } catch {
                        errors.append(CommandRouter.writeError(index: index, error))
                        if ordered { break }
                    }
                }
                return (removed, errors)
            }
        }
        return writeReply(n: removed, errors: errors)
    }

    static func findAndModify(_ context: CommandContext) async throws -> BSONDocument {
        let collection = try context.collectionName(forWrite: true)
        let query = try context.document("query") ?? BSONDocument()
        let sortDocument = try context.document("sort")
        let sort = try sortDocument.flatMap { document throws(QueryError) in document.isEmpty ? nil : try SortSpecification(document) }
        let remove = context.command["remove"]?.isTruthy ?? false
        let returnNew = context.command["new"]?.isTruthy ?? false
        let upsert = context.command["upsert"]?.isTruthy ?? false
        let projection = try context.document("fields").flatMap { document throws(QueryError) in document.isEmpty ? nil : try Projection(document) }
        // A relevance needs a text search, as in `find`.
        let scoresText = ReadCommands.mentionsMeta(context.command["fields"] ?? .null)
        if ReadCommands.mentionsMeta(.array([context.command["sort"] ?? .null, context.command["fields"] ?? .null])),
            !ReadCommands.mentions("$text", .document(query))
        {
            throw QueryError(.badValue, "query requires text score metadata, but it is not available")
        }
        let updateValue = context.command["update"]
        let arrayFilters = context.command["arrayFilters"]
        if remove && updateValue != nil {
            throw QueryError(.failedToParse, "Cannot specify both an update and remove=true")
        }
        if !remove && updateValue == nil {
            throw QueryError(.failedToParse, "Either an update or remove=true must be specified")
        }
        if remove && (upsert || returnNew) {
            throw QueryError(.failedToParse, "Cannot specify both upsert=true and remove=true")
        }
        guard let executor = try context.executor(create: !remove) else {
            return ["lastErrorObject": .document(["n": .int32(0)]), "value": .null]
        }
        let now = context.nowMilliseconds
        let variables = try ReadCommands.letVariables(context)
        let bypass = context.bypassesDocumentValidation
        let reply = try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) -> BSONDocument in
            store.bypassDocumentValidation = bypass
            defer { store.bypassDocumentValidation = false }
            return try ExpressionScope.with(variables: variables, now: now) { () throws(QueryError) -> BSONDocument in
                try store.requireCollection(collection)
                let filter = try Filter(query)
                if remove {
                    guard let match = try store.matches(in: collection, filter: filter, sort: sort, limit: 1).first else {
                        return ["lastErrorObject": .document(["n": .int32(0)]), "value": .null]
                    }
                    try store.delete(rid: match.rid, document: match.document, from: collection)
                    let found = scoresText ? try store.withTextScore(match.document, filter: filter, collection: collection) : match.document
                    var value = try projection?.apply(to: found) ?? match.document
                    if scoresText { value.removeValue(forKey: TextQuery.scoreField) }
                    return ["lastErrorObject": .document(["n": .int32(1)]), "value": .document(value)]
                }
                var statement: BSONDocument = ["q": .document(query), "u": updateValue ?? .null, "upsert": .bool(upsert)]
                if let arrayFilters { statement["arrayFilters"] = arrayFilters }
                let outcome = try applyUpdate(statement, collection: collection, store: store, nowMilliseconds: now, sort: sort)
                var lastError: BSONDocument = ["n": .int32(outcome.matched > 0 || outcome.upsertedId != nil ? 1 : 0)]
                lastError["updatedExisting"] = .bool(outcome.matched > 0)
                if let id = outcome.upsertedId { lastError["upserted"] = id }
                let chosen = returnNew ? outcome.after : outcome.before
                var value = BSONValue.null
                if var chosen, !(outcome.upsertedId != nil && !returnNew) {
                    // The relevance is the matched document's, as the search found it.
                    if scoresText, let before = outcome.before, let score = try store.withTextScore(before, filter: filter, collection: collection)[TextQuery.scoreField] {
                        chosen[TextQuery.scoreField] = score
                    }
                    var projected = try projection?.apply(to: chosen) ?? chosen
                    if scoresText { projected.removeValue(forKey: TextQuery.scoreField) }
                    value = .document(projected)
                }
                return ["lastErrorObject": .document(lastError), "value": value]
            }
        }
        return reply
    }
}
