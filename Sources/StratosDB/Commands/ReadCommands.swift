import NIOPosix
import QueryEngine
import Synchronization
import SpaceOwnership

// Safe: a FindQuery is only ever driven on its database's executor thread, and a cursor holding
// one is checked out by a single getMore at a time (CursorRegistry).
extension FindQuery: @unchecked Sendable {}

/// find, getMore, killCursors, count, distinct, aggregate and explain.
enum ReadCommands {
    static func register(into table: inout CommandTable) {
        table.reply("find", find)
        table.reply("getMore", getMore)
        table["killCursors"] = killCursors
        table["count"] = count
        table["distinct"] = distinct
        table["aggregate"] = aggregate
        table["explain"] = explain
    }

    struct FindArguments {
        var filter = Filter.alwaysTrue
        var filterDocument = BSONDocument()
        var sort: SortSpecification?
        var projection: Projection?
        var skip = 0
        var limit: Int?
        var batchSize: Int?
        var singleBatch = false
        /// Whether the sort or the projection reads a text search's relevance (`$meta`).
        var asksForTextScore = false
        /// A tailable cursor (capped collections only), and whether its getMores wait for data.
        var tailable = false
        var awaitData = false

        init(_ context: CommandContext) throws(QueryError) {
            if let filter = try context.document("filter") {
                filterDocument = filter
                self.filter = try ReadCommands.boundFilter(filter, context)
            }
            if let sort = try context.document("sort"), !sort.isEmpty {
                self.sort = try SortSpecification(sort)
                asksForTextScore = ReadCommands.mentionsMeta(.document(sort))
            }
            if let projection = try context.document("projection"), !projection.isEmpty {
                self.projection = try Projection(projection)
                asksForTextScore = asksForTextScore || ReadCommands.mentionsMeta(.document(projection))
            }
            if let skip = try context.integer("skip") {
                guard skip >= 0 else { throw QueryError(.location(51024), "BSON field 'skip' value must be >= 0, actual value '\(skip)'") }
                self.skip = Int(clamping: skip)
            }
            if let limit = try context.integer("limit") {
                if limit < 0 {
                    singleBatch = true
                    self.limit = Int(clamping: limit.magnitude)
                } else if limit > 0 {
                    self.limit = Int(clamping: limit)
                }
            }
            if let batchSize = try context.integer("batchSize") {
                guard batchSize >= 0 else { throw QueryError(.location(51024), "BSON field 'batchSize' value must be >= 0, actual value '\(batchSize)'") }
                self.batchSize = Int(clamping: batchSize)
            }
            singleBatch = singleBatch || (context.command["singleBatch"]?.isTruthy ?? false)
            tailable = context.command["tailable"]?.isTruthy ?? false
            awaitData = context.command["awaitData"]?.isTruthy ?? false
            if awaitData && !tailable { throw QueryError(.failedToParse, "Cannot set 'awaitData' without also setting 'tailable'") }
            if asksForTextScore && !filter.hasText {
                throw QueryError(.badValue, "query requires text score metadata, but it is not available")
            }
            if tailable {
                if singleBatch { throw QueryError(.failedToParse, "Cannot set 'singleBatch' option for a tailable cursor") }
                if let sort, sort.keys.count != 1 || sort.keys[0].path.dotted != "$natural" || !sort.keys[0].ascending {
                    throw QueryError(.badValue, "error processing query: cannot use tailable option with a sort other than {$natural: 1}")
                }
                // A tailable cursor follows insertion order: a collection scan, whatever the filter.
                sort = try SortSpecification(["$natural": .int32(1)])
            }
        }
    }

    static func find(_ context: CommandContext) async throws -> CommandReply {
        let collection = try context.collectionName()
        let arguments = try FindArguments(context)
        let namespace = "\(context.database).\(collection)"
        guard let executor = try context.executor(create: false) else {
            return .document(cursorDocument(id: 0, namespace: namespace, batch: [], first: true))
        }
        let countMax = min(arguments.batchSize ?? ServerLimits.firstBatchCountDefault, arguments.limit ?? Int.max)
        let deadline = MonotonicTime.deadline(afterMilliseconds: try context.integer("maxTimeMS"))
        // Plan, and for light queries produce the first batch, on this thread in one read.
        let planned = try await executor.read { store throws(QueryError) -> (FindQuery, Batch?)? in
            if store.collection(collection)?.isView == true { return nil }
            if arguments.tailable, let target = store.collection(collection) {
                guard target.capped != nil else { throw QueryError(.badValue, "error processing query: tailable cursor requested on non capped collection") }
                guard !arguments.filter.hasText else { throw QueryError(.badValue, "error processing query: $text cannot be used with a tailable cursor") }
            }
            let query = FindQuery(
                collection: store.collection(collection), filter: arguments.filter, sort: arguments.sort,
                projection: arguments.projection, skip: arguments.skip, limit: arguments.limit)
            // (A missing collection has nothing to follow: an empty, closed cursor.)
            query.scoresText = arguments.asksForTextScore
            query.isTailable = arguments.tailable && store.collection(collection) != nil
            query.awaitsData = arguments.awaitData && query.isTailable
            query.deadlineNanoseconds = deadline
            // batchSize 0 opens the cursor without returning documents, as MongoDB does.
            if countMax == 0 { return (query, Batch(documents: [], encoded: nil)) }
            if query.isHeavy { return (query, nil) }
            return (query, try nextBatch(query, store, countMax: countMax))
        }
        guard let (query, firstBatch) = planned else { return .document(try await findOnView(context, collection: collection, executor: executor)) }
        var produced = firstBatch
        if produced == nil {
            produced = try await context.readHeavy(executor) { store throws(QueryError) in
                try nextBatch(query, store, countMax: countMax)
            }
        }
        let batch = produced?.documents ?? []
        let encoded = produced?.encoded
        var cursorId: Int64 = 0
        if !query.isExhausted && !arguments.singleBatch {
            cursorId = try context.server.cursors.register(
                namespace: namespace, database: context.storageName, owner: context.principalKey, source: .find(query), nowSeconds: context.nowMilliseconds / 1000)
        }
        if let encoded { return CommandReply.cursor(id: cursorId, namespace: namespace, batch: encoded, first: true) }
        return .document(cursorDocument(id: cursorId, namespace: namespace, batch: batch, first: true))
    }

    /// `find` on a view: the view's stages, then the query's as stages, run as an aggregation.
    static func findOnView(_ context: CommandContext, collection: String, executor: DatabaseExecutor) async throws -> BSONDocument {
        var stages: [BSONValue] = []
        if let filter = try context.document("filter"), !filter.isEmpty { stages.append(.document(["$match": .document(filter)])) }
        if let sort = try context.document("sort"), !sort.isEmpty { stages.append(.document(["$sort": .document(sort)])) }
        if let skip = try context.integer("skip"), skip > 0 { stages.append(.document(["$skip": .int64(skip)])) }
        if let limit = try context.integer("limit"), limit != 0 { stages.append(.document(["$limit": .int64(Int64(clamping: limit.magnitude))])) }
        if let projection = try context.document("projection"), !projection.isEmpty { stages.append(.document(["$project": .document(projection)])) }
        var documents = try await runOnView(context, collection: collection, executor: executor, stages: stages)
        // A find's batchSize is a field of the command (an aggregate's is in `cursor`).
        let batchSize = try context.integer("batchSize").map { size throws(QueryError) -> Int in
            guard size >= 0 else { throw QueryError(.location(51024), "BSON field 'batchSize' value must be >= 0") }
            return Int(clamping: size)
        }
        if context.command["singleBatch"]?.isTruthy == true {
            // One batch and no cursor.
            documents = Array(documents.prefix(batchSize.map { $0 == 0 ? Int.max : $0 } ?? ServerLimits.firstBatchCountDefault))
            return try await cursorReply(context, namespace: "\(context.database).\(collection)", documents: documents, batchSize: Int.max)
        }
        return try await cursorReply(context, namespace: "\(context.database).\(collection)", documents: documents, batchSize: batchSize)
    }

    /// Runs `stages` on the view `collection`: its own stages first, over the collection it reads.
    static func runOnView(_ context: CommandContext, collection: String, executor: DatabaseExecutor, stages: [BSONValue]) async throws(QueryError) -> [BSONDocument] {
        let run = try viewRunner(context, collection: collection, stages: stages)
        return try await context.readHeavy(executor) { store throws(QueryError) -> [BSONDocument] in try run(store) ?? [] }
    }

    /// What running `stages` on the view `collection` gives, read in the caller's transaction;
    /// nil when `collection` is not a view.
    static func viewRunner(
        _ context: CommandContext, collection: String, stages: [BSONValue]
    ) throws(QueryError) -> @Sendable (DatabaseStore) throws(QueryError) -> [BSONDocument]? {
        let now = context.nowMilliseconds
        let variables = try letVariables(context)
        let deadline = MonotonicTime.deadline(afterMilliseconds: try context.integer("maxTimeMS"))
        return { store throws(QueryError) -> [BSONDocument]? in
            guard let (source, viewStages) = try store.resolveView(collection) else { return nil }
            let pipeline = try Pipeline(viewStages + stages)
            return try ExpressionScope.with(variables: variables, now: now) { () throws(QueryError) in
                try pipeline.run(store, collection: source, nowMilliseconds: now, deadlineNanoseconds: deadline)
            }
        }
    }

    /// Whether a sort, projection or pipeline holds `$meta` anywhere.
    static func mentionsMeta(_ value: BSONValue) -> Bool { mentions("$meta", value) }

    /// Whether `value` holds the key `key` at any depth (not inside a `$literal`, which is data).
    static func mentions(_ key: String, _ value: BSONValue) -> Bool {
        switch value {
        case .document(let document): document.elements.contains { $0.key == key || ($0.key != "$literal" && mentions(key, $0.value)) }
        case .array(let elements): elements.contains { mentions(key, $0) }
        default: false
        }
    }

    /// One batch of a find cursor: decoded documents, or stored bytes for exact scans.
    struct Batch: Sendable {
        var documents: [BSONDocument]
        var encoded: [[UInt8]]?
    }

    static func nextBatch(_ query: FindQuery, _ store: DatabaseStore, countMax: Int) throws(QueryError) -> Batch {
        if query.canReturnEncoded {
            return Batch(documents: [], encoded: try query.nextEncodedBatch(store, countMax: countMax, bytesMax: ServerLimits.batchBytesMax))
        }
        return Batch(documents: try query.nextBatch(store, countMax: countMax, bytesMax: ServerLimits.batchBytesMax), encoded: nil)
    }

    static func cursorDocument(id: Int64, namespace: String, batch: [BSONDocument], first: Bool) -> BSONDocument {
        [
            "cursor": .document([
                first ? "firstBatch" : "nextBatch": .array(batch.map { .document($0) }), "id": .int64(id),
                "ns": .string(namespace),
            ])
        ]
    }

    /// A reply for results computed in full (aggregate, listCollections, listIndexes): the first
    /// batch now, the rest through getMore.
    static func cursorReply(
        _ context: CommandContext, namespace: String, documents: [BSONDocument], batchSize given: Int? = nil
    ) async throws(QueryError) -> BSONDocument {
        var batchSize = given ?? ServerLimits.firstBatchCountDefault
        if case .document(let cursor)? = context.command["cursor"], let size = cursor["batchSize"]?.int64Value {
            guard size >= 0 else { throw QueryError(.location(51024), "BSON field 'batchSize' value must be >= 0") }
            batchSize = Int(clamping: size)
        }
        // Results computed in full are small (catalog listings, aggregation output): batchSize 0
        // returns them all at once, which legacy tools such as the mgo-based exporter rely on.
        let (batch, consumed) = takeBatch(documents, from: 0, countMax: batchSize)
        var id: Int64 = 0
        if consumed < documents.count {
            id = try context.server.cursors.register(
                namespace: namespace, database: context.storageName, owner: context.principalKey, source: .buffered(documents, offset: consumed),
                nowSeconds: context.nowMilliseconds / 1000)
        }
        return cursorDocument(id: id, namespace: namespace, batch: batch, first: true)
    }

    private static func takeBatch(_ documents: [BSONDocument], from offset: Int, countMax: Int) -> ([BSONDocument], Int) {
        var batch: [BSONDocument] = []
        var bytes = 0
        var index = offset
        let limit = countMax == 0 ? Int.max : countMax
        while index < documents.count, batch.count < limit {
            let size = documents[index].encodedSize
            if !batch.isEmpty && bytes + size > ServerLimits.batchBytesMax { break }
            bytes += size
            batch.append(documents[index])
            index += 1
        }
        return (batch, index)
    }

    static func getMore(_ context: CommandContext) async throws -> CommandReply {
        guard case .int64(let id) = context.firstValue else {
            throw QueryError(.typeMismatch, "Field 'getMore' must be of type long in: { getMore: ... }")
        }
        guard case .string(let collection)? = context.command["collection"] else {
            throw QueryError(.typeMismatch, "BSON field 'getMore.collection' is missing but a required field")
        }
        let namespace = "\(context.database).\(collection)"
        let countMax = Int(clamping: try context.integer("batchSize") ?? 0)
        // A listing cursor ($cmd.listCollections) was filtered when it was opened; a collection
        // cursor needs read on its collection still (a revoked grant stops it).
        if let principal = context.principal, let space = context.space, !collection.hasPrefix("$cmd.") {
            try context.server.authorizer.authorize(.read, collection: collection, space: space, principal: principal, nowMilliseconds: context.nowMilliseconds)
        } else if context.space == nil && !context.server.configuration.authenticationDisabled {
            throw QueryError(.unauthorized, "Command getMore requires authentication")
        }
        let cursor = try context.server.cursors.checkOut(id, namespace: namespace, database: context.storageName, owner: context.principalKey)
        cursor.running.withLock { $0 = OperationRegistry.current }
        defer { cursor.running.withLock { $0 = nil } }
        let now = context.nowMilliseconds / 1000
        do {
            switch cursor.source {
            case .buffered(let documents, let offset):
                let (batch, consumed) = takeBatch(documents, from: offset, countMax: countMax)
                cursor.source = .buffered(documents, offset: consumed)
                let exhausted = consumed >= documents.count
                context.server.cursors.checkIn(cursor, exhausted: exhausted, nowSeconds: now)
                return .document(cursorDocument(id: exhausted ? 0 : id, namespace: namespace, batch: batch, first: false))
            case .find(let query):
                guard let executor = try context.server.storage.executor(cursor.database, create: false) else {
                    context.server.cursors.checkIn(cursor, exhausted: true, nowSeconds: now)
                    throw QueryError(.cursorNotFound, "cursor id \(id) not found")
                }
                let limit = countMax == 0 ? Int.max : countMax
                // An awaitData cursor's maxTimeMS is how long a getMore waits for new documents
                // (1 s by default), not a deadline that fails it.
                let waitMilliseconds = query.awaitsData ? max(0, try context.integer("maxTimeMS") ?? 1_000) : 0
                if query.isTailable && !query.awaitsData && context.command["maxTimeMS"] != nil {
                    throw QueryError(.badValue, "cannot set maxTimeMS on getMore command for a non-awaitData cursor")
                }
                query.deadlineNanoseconds = query.awaitsData ? nil : MonotonicTime.deadline(afterMilliseconds: try context.integer("maxTimeMS"))
                let defaultReadTime = context.server.configuration.defaultReadTimeMilliseconds
                func read() async throws -> Batch {
                    if query.awaitsData {
                        // Its maxTimeMS is a wait, not a deadline; the node's default for reads
                        // still bounds each read, counted from that read's start.
                        OperationRegistry.current?.deadlineNanoseconds = MonotonicTime.deadline(afterMilliseconds: defaultReadTime)
                    }
                    return query.isHeavy
                        ? try await context.readHeavy(executor) { store throws(QueryError) in try nextBatch(query, store, countMax: limit) }
                        : try await executor.read { store throws(QueryError) in try nextBatch(query, store, countMax: limit) }
                }
                var seenCommits = executor.commits.load(ordering: .acquiring)
                var produced = try await read()
                if waitMilliseconds > 0 {
                    // Reads again only after a write committed to the database.
                    let until = MonotonicTime.nowNanoseconds() + UInt64(min(waitMilliseconds, 60_000)) * 1_000_000
                    while produced.documents.isEmpty && (produced.encoded?.isEmpty ?? true) && MonotonicTime.nowNanoseconds() < until
                        && !Task.isCancelled
                    {
                        try? await Task.sleep(for: .milliseconds(ServerLimits.tailablePollMilliseconds))
                        let commits = executor.commits.load(ordering: .acquiring)
                        guard commits != seenCommits else { continue }
                        seenCommits = commits
                        produced = try await read()
                    }
                }
                let batch = produced.documents
                let encoded = produced.encoded
                let exhausted = query.isExhausted
                context.server.cursors.checkIn(cursor, exhausted: exhausted, nowSeconds: now)
                if let encoded {
                    return CommandReply.cursor(id: exhausted ? 0 : id, namespace: namespace, batch: encoded, first: false)
                }
                return .document(cursorDocument(id: exhausted ? 0 : id, namespace: namespace, batch: batch, first: false))
            }
        } catch {
            context.server.cursors.checkIn(cursor, exhausted: true, nowSeconds: now)
            throw error
        }
    }

    static func killCursors(_ context: CommandContext) async throws -> BSONDocument {
        guard case .array(let items)? = context.command["cursors"] else {
            throw QueryError(.failedToParse, "BSON field 'killCursors.cursors' is missing but a required field")
        }
        let ids = items.compactMap { $0.int64Value }
        let (killed, notFound) = context.server.cursors.kill(ids, owner: context.principalKey)
        return [
            "cursorsKilled": .array(killed.map { .int64($0) }), "cursorsNotFound": .array(notFound.map { .int64($0) }),
            "cursorsAlive": .array([]), "cursorsUnknown": .array([]),
        ]
    }

    static func count(_ context: CommandContext) async throws -> BSONDocument {
        let collection = try context.collectionName()
        let filter = try context.document("query").map { document throws(QueryError) in try boundFilter(document, context) } ?? .alwaysTrue
        let skip = max(0, Int(clamping: try context.integer("skip") ?? 0))
        let limit = try context.integer("limit").map { Int(clamping: $0.magnitude) }
        guard let executor = try context.executor(create: false) else { return ["n": .int32(0)] }
        let deadline = MonotonicTime.deadline(afterMilliseconds: try context.integer("maxTimeMS"))
        // A count the index answers stays on this thread; one that must scan documents runs on
        // the heavy-read pool.
        // One read: whether it is a view, and else the count when an index answers it.
        let first = try await executor.read { store throws(QueryError) -> (isView: Bool, counted: Int?) in
            if store.collection(collection)?.isView == true { return (true, nil) }
            return (false, try store.indexOnlyCount(in: collection, filter: filter, skip: skip, limit: limit))
        }
        if first.isView {
            var stages: [BSONValue] = []
            if let query = try context.document("query"), !query.isEmpty { stages.append(.document(["$match": .document(query)])) }
            if skip > 0 { stages.append(.document(["$skip": .int64(Int64(skip))])) }
            if let limit, limit > 0 { stages.append(.document(["$limit": .int64(Int64(limit))])) }
            let total = try await runOnView(context, collection: collection, executor: executor, stages: stages).count
            return ["n": total <= Int(Int32.max) ? .int32(Int32(total)) : .int64(Int64(total))]
        }
        var counted = first.counted
        if counted == nil {
            counted = try await context.readHeavy(executor) { store throws(QueryError) in
                try store.countMatches(in: collection, filter: filter, skip: skip, limit: limit, deadlineNanoseconds: deadline)
            }
        }
        let total = counted ?? 0
        return ["n": total <= Int(Int32.max) ? .int32(Int32(total)) : .int64(Int64(total))]
    }

    static func distinct(_ context: CommandContext) async throws -> BSONDocument {
        let collection = try context.collectionName()
        guard case .string(let key)? = context.command["key"] else {
            throw QueryError(.typeMismatch, "BSON field 'distinct.key' is missing but a required field")
        }
        let path = try FieldPath(key)
        let filter = try context.document("query").map { document throws(QueryError) in try boundFilter(document, context) } ?? .alwaysTrue
        guard let executor = try context.executor(create: false) else { return ["values": .array([])] }
        var viewStages: [BSONValue] = []
        if let query = try context.document("query"), !query.isEmpty { viewStages.append(.document(["$match": .document(query)])) }
        let onView = try viewRunner(context, collection: collection, stages: viewStages)
        let values = try await context.readHeavy(executor) { store throws(QueryError) -> [BSONValue] in
            var seen = Set<OrderedBSON>()
            var values: [BSONValue] = []
            // A view's results, or the collection's matching documents: one read either way.
            let documents: [BSONDocument]
            if let viewDocuments = try onView(store) {
                documents = viewDocuments
            } else {
                documents = try store.matches(in: collection, filter: filter).map(\.document)
            }
            for document in documents {
                let found = path.leafValues(in: document).compactMap { $0 }
                for value in found where seen.insert(OrderedBSON(value)).inserted { values.append(value) }
            }
            return values.sorted { BSONComparison.compare($0, $1) < 0 }
        }
        return ["values": .array(values)]
    }

    static func aggregate(_ context: CommandContext) async throws -> BSONDocument {
        if context.firstValue.isNumber, context.firstValue.int64Value == 1 {
            return try await collectionlessAggregate(context)
        }
        guard case .string(let collection) = context.firstValue else {
            throw QueryError(.invalidNamespace, "collection-less aggregate (aggregate: 1) is not supported by StratosDB")
        }
        try NamespaceRules.validateCollection(collection)
        guard case .array(let stages)? = context.command["pipeline"] else {
            throw QueryError(.failedToParse, "'pipeline' option must be specified as an array")
        }
        if context.command["explain"]?.isTruthy == true {
            return try await explainAggregate(context, collection: collection, stages: stages)
        }
        guard context.command["cursor"] != nil else {
            throw QueryError(.failedToParse, "The 'cursor' option is required, except for aggregate with the explain argument")
        }
        let pipeline = try Pipeline(stages)
        if pipeline.startsWithDocuments {
            throw QueryError(.location(40602), "$documents is only valid as the first stage of a collection-less aggregate (aggregate: 1)")
        }
        // A relevance needs a text search, as in MongoDB.
        if mentionsMeta(.array(stages)) && !mentions("$text", .array(stages)) {
            throw QueryError(.location(40218), "query requires text score metadata, but it is not available")
        }
        try requireOutputInThisDatabase(pipeline, context)
        let namespace = "\(context.database).\(collection)"
        let now = context.nowMilliseconds
        let variables = try letVariables(context)
        var documents: [BSONDocument] = []
        let deadline = MonotonicTime.deadline(afterMilliseconds: try context.integer("maxTimeMS"))
        if let executor = try context.executor(create: false) {
            let run: @Sendable (DatabaseStore) throws(QueryError) -> [BSONDocument] = { store throws(QueryError) in
                try ExpressionScope.with(variables: variables, now: now) { () throws(QueryError) in
                    // On a view: its stages first, over the collection it reads.
                    if let (source, viewStages) = try store.resolveView(collection) {
                        return try Pipeline(viewStages + stages).run(store, collection: source, nowMilliseconds: now, deadlineNanoseconds: deadline)
                    }
                    return try pipeline.run(store, collection: collection, nowMilliseconds: now, deadlineNanoseconds: deadline)
                }
            }
            // count_documents answered from an index stays on this thread; anything else may
            // examine many documents and runs on the heavy-read pool.
            var counted: Int?
            if let filter = pipeline.countOnlyFilter {
                counted = try await executor.read { store throws(QueryError) in
                    store.collection(collection)?.isView == true ? nil : try store.indexOnlyCount(in: collection, filter: filter)
                }
            }
            if let counted {
                documents = pipeline.countResult(counted)
            } else {
                documents = try await context.readHeavy(executor, run)
            }
        }
        else if case .document(let first)? = stages.first, first.firstKey == "$collStats" {
            throw QueryError(.namespaceNotFound, "Unable to retrieve storageStats in $collStats stage :: caused by :: Collection [\(namespace)] not found.")
        }
        if pipeline.outputTarget != nil {
            guard let writer = try context.executor(create: true) else { return [:] }
            try await writeOutput(pipeline, documents, into: writer, context, variables: variables, now: now)
            documents = []
        }
        return try await cursorReply(context, namespace: namespace, documents: documents)
    }

    /// A database is a space: `$out` and `$merge` into another would be an ownership change,
    /// not an output.
    static func requireOutputInThisDatabase(_ pipeline: Pipeline, _ context: CommandContext) throws(QueryError) {
        if let target = pipeline.outputTarget, let database = target.database, database != context.database {
            throw QueryError(.illegalOperation, "$out and $merge write into a collection of this database only (a database is a user's space)")
        }
    }

    /// `$out` / `$merge`: the results go into the target in one write transaction (one commit).
    static func writeOutput(
        _ pipeline: Pipeline, _ documents: [BSONDocument], into writer: DatabaseExecutor, _ context: CommandContext,
        variables: [String: BSONValue], now: Int64
    ) async throws(QueryError) {
        try await writer.write(durable: context.isDurableWrite) { store throws(QueryError) in
            try ExpressionScope.with(variables: variables, now: now) { () throws(QueryError) in
                try pipeline.applyOutput(documents, store: store, nowMilliseconds: now)
            }
        }
    }

    /// A query filter whose `$expr`s see the command's `let` variables and `$$NOW` (bound now:
    /// a cursor's later batches run outside this command).
    static func boundFilter(_ document: BSONDocument, _ context: CommandContext) throws(QueryError) -> Filter {
        let filter = try Filter(document)
        let variables = try letVariables(context)  // Checked even when nothing uses them.
        guard filter.containsExpression else { return filter }
        return filter.binding(variables, now: context.nowMilliseconds)
    }

    /// The command's `let` variables, evaluated once (they may use `$$NOW`, not fields).
    static func letVariables(_ context: CommandContext) throws(QueryError) -> [String: BSONValue] {
        guard let given = context.command["let"] else { return [:] }
        guard case .document(let specification) = given else {
            throw QueryError(.typeMismatch, "BSON field 'let' is the wrong type '\(given.typeAlias)', expected type 'object'")
        }
        var scope = ExpressionContext(root: BSONDocument())
        scope.now = context.nowMilliseconds
        return try ExpressionScope.evaluate(specification, in: scope)
    }

    static func explain(_ context: CommandContext) async throws -> BSONDocument {
        guard case .document(let inner) = context.firstValue, let innerName = inner.firstKey else {
            throw QueryError(.failedToParse, "explain command requires a nested object")
        }
        // The explained command is authorized as if it ran: read on its collection.
        guard inner["$db"] == nil || inner["$db"]?.stringValue == context.database else {
            throw QueryError(.invalidNamespace, "explain must name the same database as the command it explains")
        }
        let innerContext = CommandContext(
            command: inner, database: context.database, connection: context.connection, server: context.server,
            principal: context.principal, space: context.space)
        if let principal = context.principal, let space = context.space, case .string(let collection) = inner.isEmpty ? BSONValue.null : inner[0].value {
            try context.server.authorizer.authorize(.read, collection: collection, space: space, principal: principal, nowMilliseconds: context.nowMilliseconds)
        }
        let collection = try innerContext.collectionName()
        var filterDocument = BSONDocument()
        var sort: SortSpecification?
        switch innerName {
        case "find":
            filterDocument = try innerContext.document("filter") ?? BSONDocument()
            if let sortDocument = try innerContext.document("sort"), !sortDocument.isEmpty { sort = try SortSpecification(sortDocument) }
        case "count":
            filterDocument = try innerContext.document("query") ?? BSONDocument()
        case "aggregate":
            guard case .array(let stages)? = inner["pipeline"] else { throw QueryError(.failedToParse, "'pipeline' option must be specified as an array") }
            return try await explainAggregate(innerContext, collection: collection, stages: stages)
        case "distinct":
            filterDocument = try innerContext.document("query") ?? BSONDocument()
        case "update", "delete":
            let key = innerName == "update" ? "updates" : "deletes"
            if case .array(let statements)? = inner[key], case .document(let first)? = statements.first, case .document(let query)? = first["q"] {
                filterDocument = query
            }
        case "findAndModify", "findandmodify":
            filterDocument = try innerContext.document("query") ?? BSONDocument()
        default:
            throw QueryError(.illegalOperation, "Explain for \(innerName) is not supported")
        }
        return try await explainDocument(context, collection: collection, filterDocument: filterDocument, sort: sort)
    }

    private static func explainAggregate(_ context: CommandContext, collection: String, stages: [BSONValue]) async throws(QueryError) -> BSONDocument {
        var filterDocument = BSONDocument()
        if case .document(let first)? = stages.first, case .document(let match)? = first["$match"] { filterDocument = match }
        _ = try Pipeline(stages)
        return try await explainDocument(context, collection: collection, filterDocument: filterDocument, sort: nil)
    }

    private static func explainDocument(
        _ context: CommandContext, collection: String, filterDocument: BSONDocument, sort: SortSpecification?
    ) async throws(QueryError) -> BSONDocument {
        let filter = try Filter(filterDocument)
        let namespace = "\(context.database).\(collection)"
        let verbosity = context.command["verbosity"]?.stringValue ?? "allPlansExecution"
        let executor = try context.executor(create: false)
        let (plan, examined, returned) = try await (executor?.read { store throws(QueryError) -> (BSONDocument, Int, Int) in
            let query = FindQuery(collection: store.collection(collection), filter: filter, sort: sort, projection: nil, skip: 0, limit: nil)
            var returned = 0
            var examined = 0
            if verbosity != "queryPlanner" {
                while !query.isExhausted {
                    let batch = try query.nextBatch(store, countMax: 10_000, bytesMax: Int.max)
                    returned += batch.count
                    if batch.isEmpty { break }
                }
                examined = query.documentsExamined
            }
            return (query.plan.explainDocument(sortStage: sort != nil, filter: filterDocument), examined, returned)
        } ?? (FindQuery(collection: nil, filter: filter, sort: nil, projection: nil, skip: 0, limit: nil).plan.explainDocument(sortStage: false, filter: filterDocument), 0, 0))
        var reply: BSONDocument = [
            "explainVersion": .string("1"),
            "queryPlanner": .document([
                "namespace": .string(namespace), "parsedQuery": .document(filterDocument), "winningPlan": .document(plan),
                "rejectedPlans": .array([]),
            ]),
        ]
        if verbosity != "queryPlanner" {
            reply["executionStats"] = .document([
                "executionSuccess": .bool(true), "nReturned": .int32(Int32(clamping: returned)),
                "totalDocsExamined": .int32(Int32(clamping: examined)),
            ])
        }
        reply["serverInfo"] = .document(["host": .string("stratosdb"), "version": .string(StratosVersion.mongoCompatible)])
        return reply
    }
}
