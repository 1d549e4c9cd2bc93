/// Document writes with index maintenance.
extension DatabaseStore {
    /// Checks a document before it is stored: size, depth, `_id` type and field names.
    /// `encodedSize`, when the caller knows it, saves measuring the document.
    public static func validateForStorage(_ document: BSONDocument, encodedSize: Int? = nil) throws(QueryError) {
        let size = encodedSize ?? document.encodedSize
        guard size <= QueryEngineLimits.documentSizeBytesMax else {
            throw QueryError(.badValue, "object to insert too large. size in bytes: \(size), max size: \(QueryEngineLimits.documentSizeBytesMax)")
        }
        guard document.depth <= QueryEngineLimits.storedDocumentDepthMax else {
            throw QueryError(.overflow, "Document exceeds maximum nesting depth of \(QueryEngineLimits.storedDocumentDepthMax)")
        }
        switch document["_id"] {
        case .array?: throw QueryError(.invalidIdField, "The '_id' value cannot be of type array")
        case .regex?: throw QueryError(.invalidIdField, "can't use a regex for _id")
        case .undefined?: throw QueryError(.invalidIdField, "can't use a undefined for _id")
        case .document(let inner)?:
            for key in inner.keys where key.hasPrefix("$") {
                throw QueryError(.dollarPrefixedFieldName, "_id fields may not contain '$'-prefixed fields: \(key) is not valid for storage.")
            }
        default: break
        }
        // MongoDB 5.0+ stores `$`-prefixed field names at any level (an insert may hold
        // `{"$price": 50}`); updates that would write one at the top level are refused where the
        // update is parsed (`Update`), as MongoDB refuses them.
    }

    /// Inserts a document that already has an `_id`. Returns its row id. `encoded`, when given,
    /// is `original`'s BSON as the caller received it, stored as it is when `_id` comes first.
    @discardableResult
    public func insert(_ original: BSONDocument, into collectionName: String, encoded: [UInt8]? = nil) throws(QueryError) -> Int64 {
        guard let rid = try insertRow(original, into: collectionName, encoded: encoded, ifAbsent: false) else {
            throw QueryError(.internalError, "an insert stored nothing")
        }
        return rid
    }

    /// `insert`; with `ifAbsent`, a document whose `_id` is already stored changes nothing and
    /// returns nil (replay tries the insert first: one lookup instead of two for a new document).
    func insertRow(_ original: BSONDocument, into collectionName: String, encoded: [UInt8]?, ifAbsent: Bool) throws(QueryError) -> Int64? {
        guard let id = original["_id"] else { throw QueryError(.internalError, "document has no _id") }
        var document = original
        var encoded = encoded
        if document.firstKey != "_id" {
            // MongoDB stores _id as the first field.
            document.removeValue(forKey: "_id")
            document.prepend("_id", id)
            encoded = nil
        }
        try DatabaseStore.validateForStorage(document, encodedSize: encoded?.count)
        let descriptor = try collectionForWrite(collectionName)
        try validate(document, in: collectionName, previous: nil)
        let idKey = IndexKey.idKey(id)
        let bytes = encoded ?? document.bsonBytes
        let capped = descriptor.capped
        if let capped, bytes.count > capped.bytes, !isReplaying {
            throw QueryError(.badValue, "document is larger than capped size \(bytes.count) > \(capped.bytes)")
        }
        // A decimal `_id`'s key is a double computed near it (`IndexKey.idKey`), so equal decimals
        // written differently (0.3, 0.30) can have different keys: an equal `_id` is looked for
        // by value, before the insert's statements are prepared (the lookup runs its own).
        // Replayed history is taken as it was written.
        if id.isNumber, id.isDecimal || descriptor.idHoldsDecimals, !isReplaying,
            try !Collation.with(nil, { () throws(QueryError) in
                try matches(in: collectionName, filter: .field(FieldPath(components: ["_id"]), [.equal(id)]), limit: 1)
            }).isEmpty
        {
            throw duplicateKeyError(collectionName, indexName: "_id_", keyPattern: ["_id": .int32(1)], keyValue: ["_id": id])
        }
        // A capped collection's row ids only grow, even past deleted documents, so a tailable
        // cursor that resumes after its last row id misses nothing. (Reading the next one also
        // counts the collection's usage before this write, when it has no count yet.)
        let cappedRid = capped == nil ? nil : try nextCappedRid(descriptor)
        let statement = try connection.statement(
            cappedRid == nil
                ? "INSERT INTO \(descriptor.tableName)(id_key, doc) VALUES (?1, ?2)"
                : "INSERT INTO \(descriptor.tableName)(id_key, doc, rid) VALUES (?1, ?2, ?3)")
        statement.bind(1, idKey)
        statement.bind(2, bytes)
        if let cappedRid { statement.bind(3, cappedRid) }
        do {
            try statement.run()
        } catch let error where error.code == .duplicateKey {
            // The statement changed nothing (SQLite undoes a statement that breaks a constraint).
            if ifAbsent { return nil }
            throw duplicateKeyError(collectionName, indexName: "_id_", keyPattern: ["_id": .int32(1)], keyValue: ["_id": id])
        }
        let rid = connection.lastInsertRowid
        if !descriptor.idHoldsDecimals, id.containsDecimal { try markIdDecimals(collectionName) }
        for index in descriptor.indexes {
            if index.text != nil {
                try indexText(index, rid: rid, document: document)
                continue
            }
            let (keys, inexact) = try index.keys(for: document, detectingInexact: !index.holdsInexactKeys)
            try addKeys(keys, rid: rid, index: index, collection: collectionName, document: document, inexact: inexact)
        }
        record(.put(collection: collectionName, idKey: idKey, document: bytes))
        if let capped {
            try adjustCappedUsage(descriptor, documents: 1, bytes: Int64(bytes.count), lastRid: rid)
            // Replayed history holds the evictions it made as deletes of their own.
            if !isReplaying { try enforceCap(descriptor, limits: capped, newest: rid) }
        }
        return rid
    }

    /// Replaces the stored document at `rid` (the `_id` is unchanged). `encoded`, when given, is
    /// `new`'s BSON as the caller received it, stored as it is.
    public func replace(
        rid: Int64, old: BSONDocument, new: BSONDocument, in collectionName: String, encoded: [UInt8]? = nil
    ) throws(QueryError) {
        try DatabaseStore.validateForStorage(new, encodedSize: encoded?.count)
        guard let descriptor = collections[collectionName] else { return }
        try validate(new, in: collectionName, previous: old)
        if descriptor.capped != nil { _ = try cappedUsage(descriptor) }
        for index in descriptor.indexes {
            if let text = index.text {
                let newTerms = try text.indexedTerms(of: new, strict: !isReplaying)
                if (try? text.indexedTerms(of: old, strict: false)) != newTerms {
                    try removeText(index, rid: rid)
                    try writeTerms(newTerms, index: index, rid: rid)
                }
                continue
            }
            let oldKeys = try index.keys(for: old)
            let (newKeys, inexact) = try index.keys(for: new, detectingInexact: !index.holdsInexactKeys)
            if oldKeys == newKeys { continue }
            let removed = oldKeys.filter { !newKeys.contains($0) }
            let added = newKeys.filter { !oldKeys.contains($0) }
            try removeKeys(removed, rid: rid, index: index)
            try addKeys(added, rid: rid, index: index, collection: collectionName, document: new, inexact: inexact, totalKeys: newKeys.count)
        }
        let statement = try connection.statement("UPDATE \(descriptor.tableName) SET doc = ? WHERE rid = ?")
        let bytes = encoded ?? new.bsonBytes
        statement.bind(1, bytes)
        statement.bind(2, rid)
        try statement.run()
        if let id = new["_id"] { record(.put(collection: collectionName, idKey: IndexKey.idKey(id), document: bytes)) }
        if descriptor.capped != nil { try adjustCappedUsage(descriptor, documents: 0, bytes: Int64(bytes.count - old.encodedSize), lastRid: nil) }
    }

    /// Deletes the document at `rid`.
    public func delete(rid: Int64, document: BSONDocument, from collectionName: String) throws(QueryError) {
        guard let descriptor = collections[collectionName] else { return }
        if descriptor.capped != nil { _ = try cappedUsage(descriptor) }
        for index in descriptor.indexes {
            if index.text != nil {
                try removeText(index, rid: rid)
                continue
            }
            try removeKeys(try index.keys(for: document), rid: rid, index: index)
        }
        let statement = try connection.statement("DELETE FROM \(descriptor.tableName) WHERE rid = ?")
        statement.bind(1, rid)
        try statement.run()
        if let id = document["_id"] { record(.delete(collection: collectionName, idKey: IndexKey.idKey(id))) }
        if descriptor.capped != nil { try adjustCappedUsage(descriptor, documents: -1, bytes: -Int64(document.encodedSize), lastRid: nil) }
    }

    /// The number of documents in a collection.
    public func count(_ collectionName: String) throws(QueryError) -> Int {
        guard let descriptor = collections[collectionName] else { return 0 }
        let statement = try connection.statement("SELECT count(*) FROM \(descriptor.tableName)")
        _ = try statement.step()
        return Int(statement.int64(0))
    }

    /// Total stored bytes of a collection's documents.
    public func dataSize(_ collectionName: String) throws(QueryError) -> Int {
        guard let descriptor = collections[collectionName] else { return 0 }
        let statement = try connection.statement("SELECT coalesce(sum(length(doc)), 0) FROM \(descriptor.tableName)")
        _ = try statement.step()
        return Int(statement.int64(0))
    }

    private func addKeys(
        _ keys: [[UInt8]], rid: Int64, index: IndexDescriptor, collection: String, document: BSONDocument, inexact: Bool,
        totalKeys: Int? = nil
    ) throws(QueryError) {
        if (totalKeys ?? keys.count) > 1 && !index.isMultikey { try markMultikey(index, collection: collection) }
        if inexact && !index.holdsInexactKeys { try markInexactKeys(index, collection: collection) }
        let statement = try connection.statement("INSERT INTO \(index.tableName)(key, rid) VALUES (?, ?)")
        for key in keys {
            statement.bind(1, key)
            statement.bind(2, rid)
            do {
                try statement.run()
            } catch let error where error.code == .duplicateKey {
                throw duplicateKeyError(collection, indexName: index.name, keyPattern: index.keyPattern, keyValue: index.keyValue(from: document))
            }
        }
    }

    /// Writes a document's terms into a text index's FTS5 table (row id = the document's). A
    /// language override naming no language refuses a new write (17261, 17262), as in MongoDB;
    /// replayed history (stored before overrides were checked) reads such a string in the
    /// language around it.
    func indexText(_ index: IndexDescriptor, rid: Int64, document: BSONDocument) throws(QueryError) {
        guard let text = index.text else { return }
        try writeTerms(try text.indexedTerms(of: document, strict: !isReplaying), index: index, rid: rid)
    }

    func writeTerms(_ terms: [String], index: IndexDescriptor, rid: Int64) throws(QueryError) {
        guard !terms.isEmpty else { return }
        let statement = try connection.statement("INSERT INTO \(index.tableName)(rowid, \(TextIndexSpec.termsColumn)) VALUES (?1, ?2)")
        statement.bind(1, rid)
        statement.bind(2, terms.map(TextAnalyzer.ftsToken).joined(separator: " "))
        try statement.run()
    }

    func removeText(_ index: IndexDescriptor, rid: Int64) throws(QueryError) {
        let statement = try connection.statement("DELETE FROM \(index.tableName) WHERE rowid = ?1")
        statement.bind(1, rid)
        try statement.run()
    }

    private func removeKeys(_ keys: [[UInt8]], rid: Int64, index: IndexDescriptor) throws(QueryError) {
        let statement = try connection.statement("DELETE FROM \(index.tableName) WHERE key = ? AND rid = ?")
        for key in keys {
            statement.bind(1, key)
            statement.bind(2, rid)
            try statement.run()
        }
    }

    /// Records that `index` holds an inexact key (`IndexDescriptor.holdsInexactKeys`), for this
    /// and every other connection (the catalog generation moves). Flag 4 says the index keys
    /// decimals exactly (`DatabaseStore.loadCatalog`), so it is not rebuilt at the next open.
    func markInexactKeys(_ index: IndexDescriptor, collection: String) throws(QueryError) {
        try markIndex(index, collection: collection, "decimal_keys = decimal_keys | 5") { $0.holdsInexactKeys = true }
    }

    private func markIdDecimals(_ collection: String) throws(QueryError) {
        let statement = try connection.statement("UPDATE stratos_collections SET decimal_keys = 1 WHERE name = ?")
        statement.bind(1, collection)
        try statement.run()
        try bumpCatalogGeneration()
        collections[collection]?.idHoldsDecimals = true
    }

    func markMultikey(_ index: IndexDescriptor, collection: String) throws(QueryError) {
        try markIndex(index, collection: collection, "multikey = 1") { $0.isMultikey = true }
    }

    /// Records a fact about an index's keys in its catalog row (`assignment`, SQL) and in the
    /// cached descriptor (`update`); the catalog generation moves, so readers reload it.
    func markIndex(
        _ index: IndexDescriptor, collection: String, _ assignment: String, _ update: (inout IndexDescriptor) -> Void
    ) throws(QueryError) {
        let statement = try connection.statement("UPDATE stratos_indexes SET \(assignment) WHERE table_id = ?")
        statement.bind(1, index.tableId)
        try statement.run()
        try bumpCatalogGeneration()
        guard var descriptor = collections[collection],
            let position = descriptor.indexes.firstIndex(where: { $0.tableId == index.tableId })
        else { return }
        update(&descriptor.indexes[position])
        collections[collection] = descriptor
    }

    /// MongoDB's duplicate key error. The message leaves the key's value out, so logs and error
    /// texts never carry document contents (MongoDB echoes it there); the structured `keyValue`
    /// field drivers read still returns the value to the client that sent it.
    func duplicateKeyError(_ collection: String, indexName: String, keyPattern: BSONDocument, keyValue: BSONDocument = [:]) -> QueryError {
        let fields = keyPattern.keys.map { "\($0): <redacted>" }.joined(separator: ", ")
        return QueryError(
            .duplicateKey,
            "E11000 duplicate key error collection: \(name).\(collection) index: \(indexName) dup key: { \(fields) }",
            info: ["keyPattern": .document(keyPattern), "keyValue": .document(keyValue)])
    }
}
