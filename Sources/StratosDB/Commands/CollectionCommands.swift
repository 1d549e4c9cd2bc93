import QueryEngine
import SpaceOwnership

/// Catalog commands: collections, indexes, statistics.
enum CollectionCommands {
    static func register(into table: inout CommandTable) {
        table["listCollections"] = listCollections
        table["create"] = create
        table["collMod"] = collMod
        table["convertToCapped"] = convertToCapped
        table["cloneCollectionAsCapped"] = cloneCollectionAsCapped
        table["drop"] = drop
        table["dropDatabase"] = dropDatabase
        table["renameCollection"] = renameCollection
        table["collStats"] = collStats
        table["dbStats"] = dbStats
        table["createIndexes"] = createIndexes
        table["listIndexes"] = listIndexes
        table["dropIndexes"] = dropIndexes
        table["deleteIndexes"] = dropIndexes
    }

    static func listCollections(_ context: CommandContext) async throws -> BSONDocument {
        let filter = try context.document("filter").map { document throws(QueryError) in try Filter(document) }
        let nameOnly = context.command["nameOnly"]?.isTruthy ?? false
        var entries: [BSONDocument] = []
        if let executor = try context.executor(create: false) {
            let descriptors = try await executor.read { store throws(QueryError) in store.collectionDescriptors }
            // A grantee sees only the collections its grants cover.
            let readable = context.principal.flatMap { principal in
                context.space.flatMap { context.server.authorizer.readableCollections(space: $0, principal: principal, nowMilliseconds: context.nowMilliseconds) }
            }
            for descriptor in descriptors where readable?.contains(descriptor.name) ?? true {
                var entry: BSONDocument = ["name": .string(descriptor.name), "type": .string(descriptor.isView ? "view" : "collection")]
                if !nameOnly {
                    entry["options"] = .document(descriptor.options)
                    if descriptor.isView {
                        entry["info"] = .document(["readOnly": .bool(true)])
                    } else {
                        entry["info"] = .document(["readOnly": .bool(false), "uuid": .binary(BSONBinary(subtype: 4, data: descriptor.uuid))])
                        entry["idIndex"] = .document(DatabaseStore.idIndexSpecification)
                    }
                }
                if let filter, !filter.matches(entry) { continue }
                entries.append(entry)
            }
        }
        return try await ReadCommands.cursorReply(context, namespace: "\(context.database).$cmd.listCollections", documents: entries)
    }

    /// A view shows what it reads: whoever defines one (`create`, `collMod`) must be able to
    /// read its source and every collection its pipeline reads.
    private static func authorizeViewSources(_ definition: BSONDocument, _ context: CommandContext) throws(QueryError) {
        guard case .string(let source)? = definition["viewOn"], let principal = context.principal, let space = context.space else { return }
        var reads = [source]
        if case .array(let stages)? = definition["pipeline"] { reads += PipelineReferences(stages).reads }
        for collection in reads {
            try context.server.authorizer.authorize(.read, collection: collection, space: space, principal: principal, nowMilliseconds: context.nowMilliseconds)
        }
    }

    static func create(_ context: CommandContext) async throws -> BSONDocument {
        let name = try context.collectionName(forWrite: true)
        var options = BSONDocument()
        for element in context.command.elements.dropFirst()
        where !["writeConcern", "lsid", "$db", "$clusterTime", "$readPreference", "comment", "txnNumber", "apiVersion"].contains(element.key) {
            options[element.key] = element.value
        }
        _ = try CollectionValidator(options: options)  // A bad validator fails here, not at the first write.
        _ = try CappedLimits.parse(options)
        if let given = options["collation"] {
            // Stored as MongoDB reports it (every field); `simple` is no collation.
            options["collation"] = try Collation.parse(given).map { .document($0.document) }
        }
        try DatabaseStore.validateView(options: options)
        try authorizeViewSources(options, context)
        guard let executor = try context.executor(create: true) else { return [:] }
        let finalOptions = options
        _ = try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) in
            if store.collection(name) == nil { try store.refuseViewCycle(name, source: finalOptions["viewOn"]) }
            try store.createCollection(name, options: finalOptions, allowExisting: true)
        }
        return [:]
    }

    /// `collMod`: changes a collection's validation (`validator`, `validationLevel`,
    /// `validationAction`), a capped collection's bounds (`cappedSize`, `cappedMax`), or an
    /// index's TTL (`index: {name or keyPattern, expireAfterSeconds}`).
    static func collMod(_ context: CommandContext) async throws -> BSONDocument {
        let name = try context.collectionName(forWrite: true)
        var changes = BSONDocument()
        var indexChange: BSONDocument?
        for element in context.command.elements.dropFirst()
        where !["writeConcern", "lsid", "$db", "$clusterTime", "$readPreference", "comment", "txnNumber", "apiVersion"].contains(element.key) {
            switch element.key {
            case "validator", "validationLevel", "validationAction", "cappedSize", "cappedMax", "viewOn", "pipeline":
                changes[element.key] = element.value
            case "index":
                guard case .document(let spec) = element.value else { throw QueryError(.typeMismatch, "collMod's 'index' must be an object") }
                indexChange = spec
            default:
                throw QueryError(
                    .invalidOptions,
                    "collMod option '\(element.key)' is not supported by StratosDB yet (validator, validationLevel, validationAction, cappedSize, cappedMax, viewOn with pipeline, and index with expireAfterSeconds or hidden are)")
            }
        }
        try authorizeViewSources(changes, context)
        guard let executor = try context.executor(create: false) else { throw QueryError(.namespaceNotFound, "ns does not exist") }
        let requested = changes
        let requestedIndex = indexChange
        if requestedIndex != nil {
            // The TTL monitor visits the databases that have a TTL index.
            try context.server.catalog.noteTTLDatabase(context.storageName)
        }
        return try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) -> BSONDocument in
            guard let existing = store.collection(name) else { throw QueryError(.namespaceNotFound, "ns does not exist") }
            var reply = BSONDocument()
            if let requestedIndex {
                reply = try modifyIndex(requestedIndex, of: existing, in: store)
            }
            guard !requested.isEmpty else { return reply }
            if requested["viewOn"] != nil || requested["pipeline"] != nil {
                // A view's new definition: both fields, as MongoDB requires; nothing else.
                guard existing.isView else { throw QueryError(.invalidOptions, "'viewOn' and 'pipeline' can only be changed on a view") }
                guard requested["viewOn"] != nil, requested["pipeline"] != nil, requested.count == 2 else {
                    throw QueryError(.invalidOptions, "collMod of a view must give both 'viewOn' and 'pipeline', and nothing else")
                }
                var options = existing.options
                options["viewOn"] = requested["viewOn"]
                options["pipeline"] = requested["pipeline"]
                try DatabaseStore.validateView(options: options)
                try store.refuseViewCycle(name, source: options["viewOn"])
                try store.setCollectionOptions(name, options: options)
                return reply
            }
            guard !existing.isView else { throw QueryError(.invalidOptions, "a view has no validation or bounds: collMod of a view changes 'viewOn' and 'pipeline'") }
            var options = existing.options
            for element in requested.elements {
                switch element.key {
                case "cappedSize", "cappedMax":
                    guard existing.capped != nil else { throw QueryError(.invalidOptions, "\(element.key) can only be set on a capped collection") }
                    options[element.key == "cappedSize" ? "size" : "max"] = element.value
                default:
                    options[element.key] = element.value
                }
            }
            if existing.capped != nil { _ = try CappedLimits.parse(options) }
            if case .document(let validator)? = options["validator"], validator.isEmpty { _ = options.removeValue(forKey: "validator") }
            try store.setCollectionOptions(name, options: options)
            return reply
        }
    }

    /// collMod's `index`: an index by `name` or `keyPattern`, and its new `expireAfterSeconds`
    /// and/or `hidden`; the reply gives each option's old and new value, as MongoDB's does.
    private static func modifyIndex(_ spec: BSONDocument, of collection: CollectionDescriptor, in store: DatabaseStore) throws(QueryError) -> BSONDocument {
        for key in spec.keys where !["name", "keyPattern", "expireAfterSeconds", "hidden"].contains(key) {
            throw QueryError(.invalidOptions, "collMod's 'index' option '\(key)' is not supported by StratosDB yet (expireAfterSeconds and hidden are)")
        }
        let indexName: String
        switch (spec["name"], spec["keyPattern"]) {
        case (.string(let given)?, nil): indexName = given
        case (nil, .document(let pattern)?):
            guard let found = store.indexName(forKeyPattern: pattern, on: collection.name) else {
                throw QueryError(.indexNotFound, "cannot find index for ns \(store.name).\(collection.name)")
            }
            indexName = found
        default: throw QueryError(.invalidOptions, "collMod's 'index' must name the index by exactly one of 'name' or 'keyPattern'")
        }
        var seconds: Int64?
        if let given = spec["expireAfterSeconds"] {
            guard given.isNumber, let value = given.int64Value, (0...Int64(Int32.max)).contains(value) else {
                throw QueryError(.invalidOptions, "TTL index 'expireAfterSeconds' option must be an integer from 0 to 2147483647")
            }
            seconds = value
        }
        var hidden: Bool?
        if let given = spec["hidden"] {
            guard case .bool(let value) = given else { throw QueryError(.typeMismatch, "collMod's 'index.hidden' must be a boolean") }
            hidden = value
        }
        guard seconds != nil || hidden != nil else { throw QueryError(.invalidOptions, "no expireAfterSeconds or hidden field to update") }
        guard indexName != "_id_" else { throw QueryError(.badValue, "cannot modify the _id index") }
        let previous = try store.modifyIndex(indexName, on: collection.name, expireAfterSeconds: seconds, hidden: hidden)
        var reply = BSONDocument()
        if let seconds {
            if let old = previous.expireAfterSeconds { reply["expireAfterSeconds_old"] = .int64(old) }
            reply["expireAfterSeconds_new"] = .int64(seconds)
        }
        if let hidden, hidden != previous.hidden {
            reply["hidden_old"] = .bool(previous.hidden)
            reply["hidden_new"] = .bool(hidden)
        }
        return reply
    }

    /// `{convertToCapped: name, size, max}`.
    static func convertToCapped(_ context: CommandContext) async throws -> BSONDocument {
        let name = try context.collectionName(forWrite: true)
        guard let size = context.command["size"] else { throw QueryError(.invalidOptions, "convertToCapped requires 'size'") }
        let max = context.command["max"]
        guard let executor = try context.executor(create: false) else { throw QueryError(.namespaceNotFound, "source collection does not exist") }
        try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) in
            try store.convertToCapped(name, size: size, max: max)
        }
        return [:]
    }

    /// `{cloneCollectionAsCapped: source, toCollection: target, size, max}`: a new capped
    /// collection holding the source's documents in insertion order, as far as they fit.
    static func cloneCollectionAsCapped(_ context: CommandContext) async throws -> BSONDocument {
        let source = try context.collectionName()
        guard case .string(let target)? = context.command["toCollection"] else {
            throw QueryError(.typeMismatch, "cloneCollectionAsCapped requires 'toCollection', a collection name")
        }
        try NamespaceRules.validateCollection(target)
        guard let size = context.command["size"] else { throw QueryError(.invalidOptions, "cloneCollectionAsCapped requires 'size'") }
        var options: BSONDocument = ["capped": .bool(true), "size": size]
        if let max = context.command["max"] { options["max"] = max }
        _ = try CappedLimits.parse(options)
        guard let executor = try context.executor(create: false) else { throw QueryError(.namespaceNotFound, "source collection does not exist") }
        let finalOptions = options
        try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) in
            try store.cloneCollectionAsCapped(source, to: target, options: finalOptions)
        }
        return [:]
    }

    static func drop(_ context: CommandContext) async throws -> BSONDocument {
        let name = try context.collectionName(forWrite: true)
        guard let executor = try context.executor(create: false) else {
            throw QueryError(.namespaceNotFound, "ns not found")
        }
        let indexCount = try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) -> Int? in
            let count = store.collection(name).map { $0.indexes.count + 1 }
            try store.dropCollection(name)
            return count
        }
        guard let indexCount else { throw QueryError(.namespaceNotFound, "ns not found") }
        context.server.cursors.killAll(database: context.storageName, namespace: "\(context.database).\(name)")
        return ["nIndexesWas": .int32(Int32(indexCount)), "ns": .string("\(context.database).\(name)")]
    }

    static func dropDatabase(_ context: CommandContext) async throws -> BSONDocument {
        context.server.cursors.killAll(database: context.storageName)
        let server = context.server
        var recorded: QueryError?
        try server.storage.dropDatabase(context.storageName) {
            // The chain remembers this incarnation's history (and may still anchor its last
            // commits); the next one starts at seq 1. Read while nothing can write the space.
            guard let ledger = server.ledger, let space = SpaceID(context.storageName) else { return }
            let last = max(ledger.latestSeq(space: space.string) ?? 0, ledger.anchoredHead(space: space.string)?.seq ?? 0)
            if last > 0 {
                do throws(QueryError) { try server.catalog.recordDrop(space: space, lastSeq: last) } catch { recorded = error }
            }
        }
        if let recorded { throw recorded }
        context.server.ledger?.forget(space: context.storageName)
        // The space itself (its id, owner and grants) outlives its data, as a MongoDB user's
        // roles on a database outlive dropping it: writing to the name again recreates it.
        return ["dropped": .string(context.database)]
    }

    static func renameCollection(_ context: CommandContext) async throws -> BSONDocument {
        guard case .string(let source) = context.firstValue, case .string(let target)? = context.command["to"] else {
            throw QueryError(.typeMismatch, "renameCollection requires 'renameCollection' and 'to' namespaces")
        }
        let sourceParts = source.split(separator: ".", maxSplits: 1).map(String.init)
        let targetParts = target.split(separator: ".", maxSplits: 1).map(String.init)
        guard sourceParts.count == 2, targetParts.count == 2 else {
            throw QueryError(.invalidNamespace, "Invalid namespace specified")
        }
        guard sourceParts[0] == targetParts[0] else {
            throw QueryError(.illegalOperation, "renaming a collection across databases is not supported by StratosDB")
        }
        // The node's own collections (procedures, jobs, their signed results) stay where they are.
        try NamespaceRules.validateCollection(sourceParts[1])
        guard let executor = try context.executor(create: false) else {
            throw QueryError(.namespaceNotFound, "Source collection \(source) does not exist")
        }
        let dropTarget = context.command["dropTarget"]?.isTruthy ?? false
        try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) in
            try store.renameCollection(sourceParts[1], to: targetParts[1], dropTarget: dropTarget)
        }
        context.server.cursors.killAll(database: context.storageName, namespace: source)
        return [:]
    }

    static func collStats(_ context: CommandContext) async throws -> BSONDocument {
        let name = try context.collectionName()
        let namespace = "\(context.database).\(name)"
        guard let executor = try context.executor(create: false) else {
            throw QueryError(.namespaceNotFound, "Collection [\(namespace)] not found.")
        }
        let stats = try await executor.read { store throws(QueryError) -> (Int, Int, [String], CappedLimits?)? in
            guard let descriptor = store.collection(name) else { return nil }
            return (try store.count(name), try store.dataSize(name), ["_id_"] + descriptor.indexes.map(\.name), descriptor.capped)
        }
        guard let (count, size, indexNames, capped) = stats else {
            throw QueryError(.namespaceNotFound, "Collection [\(namespace)] not found.")
        }
        var indexSizes = BSONDocument()
        for index in indexNames { indexSizes[index] = .int32(0) }
        var reply: BSONDocument = [
            "ns": .string(namespace), "count": .int32(Int32(clamping: count)), "size": .int64(Int64(size)),
            "avgObjSize": .int32(Int32(clamping: count == 0 ? 0 : size / count)), "storageSize": .int64(Int64(size)),
            "nindexes": .int32(Int32(indexNames.count)), "totalIndexSize": .int32(0), "indexSizes": .document(indexSizes),
            "capped": .bool(capped != nil),
        ]
        if let capped {
            if let documents = capped.documents { reply["max"] = .int64(documents) }
            reply["maxSize"] = .int64(capped.bytes)
        }
        return reply
    }

    static func dbStats(_ context: CommandContext) async throws -> BSONDocument {
        var collections = 0
        var objects = 0
        var dataSize = 0
        var indexes = 0
        // A grantee's totals cover only the collections it may read; file sizes are withheld.
        let readable = context.principal.flatMap { principal in
            context.space.flatMap { context.server.authorizer.readableCollections(space: $0, principal: principal, nowMilliseconds: context.nowMilliseconds) }
        }
        if let executor = try context.executor(create: false) {
            (collections, objects, dataSize, indexes) = try await executor.read { store throws(QueryError) in
                var totals = (0, 0, 0, 0)
                for descriptor in store.collectionDescriptors where readable?.contains(descriptor.name) ?? true {
                    totals.0 += 1
                    totals.1 += try store.count(descriptor.name)
                    totals.2 += try store.dataSize(descriptor.name)
                    totals.3 += descriptor.indexes.count + 1
                }
                return totals
            }
        }
        let fileSize = readable == nil ? context.server.storage.sizeOnDisk(context.storageName) : Int64(dataSize)
        return [
            "db": .string(context.database), "collections": .int32(Int32(collections)), "views": .int32(0),
            "objects": .int64(Int64(objects)), "avgObjSize": .double(objects == 0 ? 0 : Double(dataSize) / Double(objects)),
            "dataSize": .double(Double(dataSize)), "storageSize": .double(Double(fileSize)),
            "indexes": .int32(Int32(indexes)), "indexSize": .double(0), "totalSize": .double(Double(fileSize)),
            "scaleFactor": .int32(1),
            // Stored procedures and jobs of this space since the node started (fuel is charged as
            // compute once proof-of-traffic accounting lands).
            "procedures": .document({
                let usage = context.server.procedureUsage(space: context.storageName)
                return ["calls": .int64(usage.calls), "failures": .int64(usage.failures), "fuelUsed": .int64(usage.fuel)]
            }()),
        ]
    }

    static func createIndexes(_ context: CommandContext) async throws -> BSONDocument {
        let name = try context.collectionName(forWrite: true)
        guard case .array(let specifications)? = context.command["indexes"], !specifications.isEmpty else {
            throw QueryError(.failedToParse, "Must specify at least one index to create")
        }
        var parsed: [BSONDocument] = []
        for specification in specifications {
            guard case .document(let document) = specification else {
                throw QueryError(.typeMismatch, "The 'indexes' field must be an array of index specifications")
            }
            parsed.append(document)
        }
        guard let executor = try context.executor(create: true) else { return [:] }
        let specs = parsed
        let (before, after, created) = try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) -> (Int, Int, Bool) in
            try store.requireCollection(name)
            let existed = store.collection(name) != nil
            let before = existed ? (store.collection(name)?.indexes.count ?? 0) + 1 : 0
            for spec in specs { try store.createIndex(spec, on: name) }
            if store.collection(name) == nil { try store.createCollection(name) }
            return (max(before, 1), (store.collection(name)?.indexes.count ?? 0) + 1, !existed)
        }
        if specs.contains(where: { $0["expireAfterSeconds"] != nil }) {
            // The TTL monitor visits this database from now on.
            try context.server.catalog.noteTTLDatabase(context.storageName)
        }
        var reply: BSONDocument = [
            "numIndexesBefore": .int32(Int32(before)), "numIndexesAfter": .int32(Int32(after)),
            "createdCollectionAutomatically": .bool(created),
        ]
        if before == after { reply["note"] = .string("all indexes already exist") }
        return reply
    }

    static func listIndexes(_ context: CommandContext) async throws -> BSONDocument {
        let name = try context.collectionName()
        let namespace = "\(context.database).\(name)"
        guard let executor = try context.executor(create: false) else {
            throw QueryError(.namespaceNotFound, "ns does not exist: \(namespace)")
        }
        let specifications = try await executor.read { store throws(QueryError) -> [BSONDocument]? in
            guard let descriptor = store.collection(name) else { return nil }
            return [DatabaseStore.idIndexSpecification] + descriptor.indexes.map(\.listing)
        }
        guard let specifications else { throw QueryError(.namespaceNotFound, "ns does not exist: \(namespace)") }
        return try await ReadCommands.cursorReply(context, namespace: namespace, documents: specifications)
    }

    static func dropIndexes(_ context: CommandContext) async throws -> BSONDocument {
        let name = try context.collectionName(forWrite: true)
        guard let executor = try context.executor(create: false) else {
            throw QueryError(.namespaceNotFound, "ns not found \(context.database).\(name)")
        }
        let target = context.command["index"] ?? .null
        let count = try await executor.write(durable: context.isDurableWrite) { store throws(QueryError) -> Int in
            guard let descriptor = store.collection(name) else {
                throw QueryError(.namespaceNotFound, "ns not found \(store.name).\(name)")
            }
            let count = descriptor.indexes.count + 1
            switch target {
            case .string("*"):
                for index in descriptor.indexes { try store.dropIndex(named: index.name, on: name) }
            case .string(let indexName):
                try store.dropIndex(named: indexName, on: name)
            case .array(let names):
                for case .string(let indexName) in names { try store.dropIndex(named: indexName, on: name) }
            case .document(let keyPattern):
                guard let indexName = store.indexName(forKeyPattern: keyPattern, on: name) else {
                    throw QueryError(.indexNotFound, "can't find index with key: \(keyPattern.keys)")
                }
                try store.dropIndex(named: indexName, on: name)
            default:
                throw QueryError(.typeMismatch, "dropIndexes requires 'index' to be a name, key pattern, array or '*'")
            }
            return count
        }
        return ["nIndexesWas": .int32(Int32(count))]
    }
}
