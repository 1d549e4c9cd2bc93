/// Creating and dropping secondary indexes.
extension DatabaseStore {
    /// The `_id` index's `listIndexes` entry.
    public static let idIndexSpecification: BSONDocument = ["v": .int32(2), "key": .document(["_id": .int32(1)]), "name": .string("_id_")]

    /// Creates an index from a `createIndexes` entry. Returns `false` when an identical index exists.
    @discardableResult
    /// `checkingOptions: false` takes a specification that was accepted before (`$out` re-creating
    /// its target's indexes) without the checks added since it was stored.
    public func createIndex(_ specification: BSONDocument, on collectionName: String, checkingOptions: Bool = true) throws(QueryError) -> Bool {
        var spec = specification
        if spec["v"] == nil { spec.prepend("v", .int32(2)) }
        // The index's collation, as MongoDB reports it (every field), or the collection's default.
        if let given = spec["collation"] {
            spec["collation"] = try Collation.parse(given).map { .document($0.document) }
        } else if let fallback = collections[collectionName]?.defaultCollation {
            spec["collation"] = .document(fallback.document)
        }
        let candidate = try IndexDescriptor(specification: spec, tableId: -1, isMultikey: false)
        let checks = checkingOptions && !isReplaying
        if candidate.text != nil && checks { try TextIndexSpec.checkLanguageOverride(spec) }
        if case .document(let partial)? = spec["partialFilterExpression"], checks, Self.holdsUnindexableOperator(partial) {
            throw QueryError(.cannotCreateIndex, "unsupported expression in partial index: $jsonSchema, $text, $expr, $where and geo operators cannot filter an index")
        }
        if let hidden = spec["hidden"], checks {
            guard case .bool(let hides) = hidden else { throw QueryError(.typeMismatch, "The field 'hidden' must be a boolean") }
            guard !hides || (candidate.name != "_id_" && candidate.keyPattern != ["_id": .int32(1)]) else {
                throw QueryError(.badValue, "can't hide _id index")
            }
        }
        if candidate.name == "_id_" || candidate.keyPattern == ["_id": .int32(1)] {
            guard !candidate.unique || candidate.name == "_id_" else {
                throw QueryError(.invalidOptions, "The field 'unique' is not valid for an _id index specification")
            }
            return false  // The _id index always exists.
        }
        let descriptor = try collectionForWrite(collectionName)
        if descriptor.capped != nil, spec["expireAfterSeconds"] != nil, checks {
            throw QueryError(.cannotCreateIndex, "Cannot create TTL index on a capped collection")
        }
        for existing in descriptor.indexes {
            // Indexes on the same key with different collations are different indexes.
            let sameKey = existing.keyPattern == candidate.keyPattern && existing.collation == candidate.collation
            if existing.name == candidate.name {
                if sameKey && existing.unique == candidate.unique && existing.sparse == candidate.sparse { return false }
                throw QueryError(.indexKeySpecsConflict, "An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: \(candidate.name), existing index: \(existing.name)")
            }
            if sameKey && existing.partialFilter == nil && candidate.partialFilter == nil {
                if existing.unique == candidate.unique && existing.sparse == candidate.sparse {
                    throw QueryError(.indexOptionsConflict, "Index already exists with a different name: \(existing.name)")
                }
                throw QueryError(.indexOptionsConflict, "An equivalent index already exists with the same name but different options. Requested index: \(candidate.name), existing index: \(existing.name)")
            }
        }
        if candidate.text != nil, let other = descriptor.indexes.first(where: { $0.text != nil }) {
            throw QueryError(.indexOptionsConflict, "only one text index per collection allowed, found existing text index \(other.name)")
        }
        guard descriptor.indexes.count < 63 else { throw QueryError(.cannotCreateIndex, "add index fails, too many indexes for \(name).\(collectionName)") }
        let tableId = allocateTableId()
        let index = try IndexDescriptor(specification: spec, tableId: tableId, isMultikey: false)
        if let text = index.text {
            try connection.execute(text.createStatement(table: index.tableName))
        } else {
            let keyColumns = index.unique ? "key BLOB PRIMARY KEY, rid INTEGER NOT NULL" : "key BLOB NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY(key, rid)"
            try connection.execute("CREATE TABLE \(index.tableName)(\(keyColumns)) WITHOUT ROWID")
        }
        let record = try connection.statement("INSERT INTO stratos_indexes(collection, name, table_id, spec, decimal_keys) VALUES (?, ?, ?, ?, ?)")
        record.bind(1, collectionName)
        record.bind(2, index.name)
        record.bind(3, tableId)
        record.bind(4, spec.bsonBytes)
        record.bind(5, Int64(index.collation == nil ? 4 : 6))  // Flags: see `loadCatalog`.
        try record.run()
        var updated = descriptor
        updated.indexes.append(index)
        collections[collectionName] = updated
        try bumpCatalogGeneration()
        try backfill(index, collection: updated)
        self.record(.createIndex(collection: collectionName, specification: spec.bsonBytes))
        return true
    }

    private func backfill(_ index: IndexDescriptor, collection: CollectionDescriptor) throws(QueryError) {
        var rows: [(Int64, BSONDocument)] = []
        var afterRid: Int64 = 0
        repeat {
            // An index build is an operation like any other: killOp, maxTimeMS and shutdown stop it.
            try OperationContext.checkpoint()
            rows.removeAll(keepingCapacity: true)
            let scan = try connection.statement("SELECT rid, doc FROM \(collection.tableName) WHERE rid > ? ORDER BY rid LIMIT 512")
            scan.bind(1, afterRid)
            while try scan.step() {
                rows.append((scan.int64(0), try scan.withBlob(1) { buffer throws(QueryError) in try BSONDecoder.decode(buffer) }))
            }
            // A text index has no keys: its FTS5 table takes the document's text.
            let insert = index.text == nil ? try connection.statement("INSERT INTO \(index.tableName)(key, rid) VALUES (?, ?)") : nil
            for (rid, document) in rows {
                afterRid = rid
                guard let insert else {
                    try indexText(index, rid: rid, document: document)
                    continue
                }
                let current = collections[collection.name]?.indexes.first { $0.tableId == index.tableId }
                let (keys, inexact) = try index.keys(for: document, detectingInexact: current?.holdsInexactKeys == false)
                if inexact { try markInexactKeys(index, collection: collection.name) }
                if keys.count > 1, current?.isMultikey == false { try markMultikey(index, collection: collection.name) }
                for key in keys {
                    insert.bind(1, key)
                    insert.bind(2, rid)
                    do {
                        try insert.run()
                    } catch let error where error.code == .duplicateKey {
                        throw duplicateKeyError(collection.name, indexName: index.name, keyPattern: index.keyPattern, keyValue: index.keyValue(from: document))
                    }
                }
            }
        } while rows.count == 512
    }

    /// `collMod` with `index: {name or keyPattern, expireAfterSeconds, hidden}`: changes a TTL
    /// index's lifetime or makes a single-field index a TTL index, and hides an index from the
    /// planner or shows it again. Returns the values it had (nil for an option it did not have).
    /// A replayed history records it as the index dropped and created again with its new
    /// specification.
    public func modifyIndex(
        _ indexName: String, on collectionName: String, expireAfterSeconds seconds: Int64?, hidden: Bool?
    ) throws(QueryError) -> (expireAfterSeconds: Int64?, hidden: Bool) {
        guard var descriptor = collections[collectionName] else { throw QueryError(.namespaceNotFound, "ns does not exist") }
        guard let position = descriptor.indexes.firstIndex(where: { $0.name == indexName }) else {
            throw QueryError(.indexNotFound, "cannot find index \(indexName) for ns \(name).\(collectionName)")
        }
        let current = descriptor.indexes[position]
        var specification = current.specification
        let previous = (expireAfterSeconds: specification["expireAfterSeconds"]?.int64Value, hidden: current.isHidden)
        if let seconds {
            guard descriptor.capped == nil else { throw QueryError(.cannotCreateIndex, "Cannot create TTL index on a capped collection") }
            guard current.fields.count == 1, current.text == nil else {
                throw QueryError(.invalidOptions, "no expireAfterSeconds field to update: the index has more than one field")
            }
            specification["expireAfterSeconds"] = seconds <= Int64(Int32.max) ? .int32(Int32(clamping: seconds)) : .int64(seconds)
        }
        if let hidden, hidden != current.isHidden {
            if hidden { specification["hidden"] = .bool(true) } else { specification.removeValue(forKey: "hidden") }
        }
        // Nothing to change (hiding a hidden index): nothing recorded, as MongoDB does nothing.
        guard specification != current.specification else { return previous }
        var updated = try IndexDescriptor(specification: specification, tableId: current.tableId, isMultikey: current.isMultikey)
        updated.holdsInexactKeys = current.holdsInexactKeys
        updated.legacyDecimalKeys = current.legacyDecimalKeys
        updated.collation = current.collation
        let statement = try connection.statement("UPDATE stratos_indexes SET spec = ?1 WHERE table_id = ?2")
        statement.bind(1, specification.bsonBytes)
        statement.bind(2, current.tableId)
        try statement.run()
        descriptor.indexes[position] = updated
        collections[collectionName] = descriptor
        try bumpCatalogGeneration()
        record(.dropIndex(collection: collectionName, name: indexName))
        record(.createIndex(collection: collectionName, specification: specification.bsonBytes))
        return previous
    }

    /// Whether a partial index's filter uses an operator MongoDB refuses there.
    static func holdsUnindexableOperator(_ filter: BSONDocument) -> Bool {
        filter.elements.contains { element in
            if ["$jsonSchema", "$text", "$expr", "$where", "$near", "$nearSphere", "$geoWithin", "$geoIntersects"].contains(element.key) { return true }
            switch element.value {
            case .document(let inner): return holdsUnindexableOperator(inner)
            case .array(let items): return items.contains { $0.documentValue.map(holdsUnindexableOperator) ?? false }
            default: return false
            }
        }
    }

    /// Rebuilds, once, each text index written before terms were analyzed as MongoDB analyzes
    /// them (an FTS5 table of raw text, one column per field, stemmed by Porter): its table is
    /// dropped and filled again from the documents, in one transaction.
    func rebuildOutdatedTextIndexes() throws(QueryError) {
        let schema = try connection.statement("SELECT sql FROM sqlite_master WHERE name = ?1")
        for collection in collections.values {
            for index in collection.indexes {
                guard let text = index.text else { continue }
                schema.bind(1, index.tableName)
                let current = try schema.step() && schema.text(0).contains("fts5(\(TextIndexSpec.termsColumn),")
                schema.reset()
                guard !current else { continue }
                try connection.execute("BEGIN IMMEDIATE")
                do {
                    connection.resetStatements()
                    connection.clearStatementCache()
                    try connection.execute("DROP TABLE IF EXISTS \(index.tableName)")
                    try connection.execute(text.createStatement(table: index.tableName))
                    // Documents stored before language overrides were checked read in the
                    // index's default language rather than stopping the file from opening.
                    let scan = try connection.statement("SELECT rid, doc FROM \(collection.tableName)")
                    defer { scan.reset() }
                    while try scan.step() {
                        let document = try scan.withBlob(1) { buffer throws(QueryError) in try BSONDecoder.decode(buffer) }
                        let terms = try text.indexedTerms(of: document, strict: false)
                        try writeTerms(terms, index: index, rid: scan.int64(0))
                    }
                    try connection.execute("COMMIT")
                } catch {
                    try? connection.execute("ROLLBACK")
                    throw error
                }
            }
        }
    }

    /// Rebuilds, once, each index written when a decimal's key was a nearby double (catalog
    /// flag 1 without 4): its keys are written again by `IndexKey.encode`, which places every
    /// decimal exactly, and the index stops being treated as approximate unless a key still is.
    /// A unique index whose exact keys would collide (equal numbers the old keys told apart,
    /// such as `NumberDecimal("0.3")` and `NumberDecimal("0.30")`) keeps the old format for good
    /// (flag 8, `IndexDescriptor.legacyDecimalKeys`), and is not tried again.
    func rebuildApproximateIndexes() throws(QueryError) {
        let outdated = try connection.statement("SELECT table_id FROM stratos_indexes WHERE decimal_keys & 13 = 1")
        var tableIds: Set<Int64> = []
        while try outdated.step() { tableIds.insert(outdated.int64(0)) }
        outdated.reset()
        for collection in collections.values {
            for index in collection.indexes where tableIds.contains(index.tableId) && index.text == nil {
                try connection.execute("BEGIN IMMEDIATE")
                do {
                    try connection.execute("DELETE FROM \(index.tableName)")
                    try markIndex(index, collection: collection.name, "decimal_keys = (decimal_keys & ~1) | 4") {
                        $0.holdsInexactKeys = false
                        $0.legacyDecimalKeys = false
                    }
                    // The index as it is now, keying decimals exactly.
                    let updated = collections[collection.name] ?? collection
                    try backfill(updated.indexes.first { $0.tableId == index.tableId } ?? index, collection: updated)
                    try connection.execute("COMMIT")
                } catch let error where error.code == .duplicateKey {
                    try? connection.execute("ROLLBACK")
                    let keep = try connection.statement("UPDATE stratos_indexes SET decimal_keys = decimal_keys | 8 WHERE table_id = ?1")
                    keep.bind(1, index.tableId)
                    try keep.run()
                    try bumpCatalogGeneration()
                    try loadCatalog()
                } catch {
                    try? connection.execute("ROLLBACK")
                    throw error
                }
            }
        }
    }

    private func allocateTableId() -> Int64 {
        let statement = try? connection.statement(
            "SELECT max(m) FROM (SELECT max(table_id) AS m FROM stratos_collections UNION ALL SELECT max(table_id) FROM stratos_indexes)")
        var next: Int64 = 1
        if let statement, (try? statement.step()) == true { next = statement.int64(0) + 1 }
        return max(next, collections.values.flatMap { [$0.tableId] + $0.indexes.map(\.tableId) }.max().map { $0 + 1 } ?? 1)
    }

    /// Drops one index by name. The `_id` index cannot be dropped.
    public func dropIndex(named indexName: String, on collectionName: String) throws(QueryError) {
        guard var descriptor = collections[collectionName] else {
            throw QueryError(.namespaceNotFound, "ns not found \(name).\(collectionName)")
        }
        if indexName == "_id_" { throw QueryError(.invalidOptions, "cannot drop _id index") }
        guard let position = descriptor.indexes.firstIndex(where: { $0.name == indexName }) else {
            throw QueryError(.indexNotFound, "index not found with name [\(indexName)]")
        }
        IndexUsage.forget(database: name, collection: collectionName, index: indexName)
        let index = descriptor.indexes.remove(at: position)
        connection.clearStatementCache()
        try connection.execute("DROP TABLE IF EXISTS \(index.tableName)")
        let statement = try connection.statement("DELETE FROM stratos_indexes WHERE table_id = ?")
        statement.bind(1, index.tableId)
        try statement.run()
        collections[collectionName] = descriptor
        connection.clearStatementCache()
        try bumpCatalogGeneration()
        record(.dropIndex(collection: collectionName, name: indexName))
    }

    /// The name of the index with `keyPattern`, for `dropIndexes` by key.
    public func indexName(forKeyPattern keyPattern: BSONDocument, on collectionName: String) -> String? {
        if keyPattern == ["_id": .int32(1)] { return "_id_" }
        // A text index also answers to the key `listIndexes` shows for it.
        return collections[collectionName]?.indexes.first { index in
            index.keyPattern == keyPattern || (index.text != nil && keyPattern == index.listedTextKey)
        }?.name
    }
}
