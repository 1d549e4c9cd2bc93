/// Replaying recorded changes: how a space's view is rebuilt from its commit log (import and
/// rebuild), with the same effect the original operations had.
extension DatabaseStore {
    /// Applies one recorded change inside the current transaction.
    /// `decoded`, when given, is a put's document already decoded from its bytes (a bulk loader
    /// decodes ahead on another thread).
    public func replay(_ change: StorageChange, decoded: BSONDocument? = nil) throws(QueryError) {
        // History is replayed as it was written: validators apply to new writes, not to it.
        let bypassed = bypassDocumentValidation
        bypassDocumentValidation = true
        isReplaying = true
        defer {
            bypassDocumentValidation = bypassed
            isReplaying = false
        }
        switch change {
        case .put(let collection, let idKey, let bytes):
            let document: BSONDocument
            if let decoded { document = decoded } else { document = try BSONDecoder.decode(bytes) }
            // Stored as the history holds it (the bytes its state-map value hashes). A document
            // new to an uncapped collection is inserted at once (its `_id` looked up once, by the
            // insert itself); one already there is replaced.
            if document["_id"] != nil, collections[collection].map({ $0.capped == nil }) ?? true,
                try insertRow(document, into: collection, encoded: bytes, ifAbsent: true) != nil
            {
                return
            }
            if let (rid, existing) = try row(collection, idKey: idKey) {
                try replace(rid: rid, old: existing, new: document, in: collection, encoded: bytes)
            } else {
                try insert(document, into: collection, encoded: bytes)
            }
        case .delete(let collection, let idKey):
            if let (rid, existing) = try row(collection, idKey: idKey) { try delete(rid: rid, document: existing, from: collection) }
        case .createCollection(let name, let options):
            try createCollection(name, options: try BSONDecoder.decode(options), allowExisting: true)
        case .dropCollection(let name):
            try dropCollection(name)
        case .renameCollection(let from, let to):
            try renameCollection(from, to: to, dropTarget: true)
        case .createIndex(let collection, let specification):
            try createIndex(try BSONDecoder.decode(specification), on: collection)
        case .dropIndex(let collection, let name):
            try dropIndex(named: name, on: collection)
        case .setCollectionOptions(let name, let options):
            try setCollectionOptions(name, options: try BSONDecoder.decode(options))
        case .spaceRecord:
            break
        }
    }

    private func row(_ collection: String, idKey: [UInt8]) throws(QueryError) -> (Int64, BSONDocument)? {
        guard let descriptor = collections[collection] else { return nil }
        let select = try connection.statement("SELECT rid, doc FROM \(descriptor.tableName) WHERE id_key = ?1")
        select.bind(1, idKey)
        defer { select.reset() }
        guard try select.step() else { return nil }
        return (select.int64(0), try select.withBlob(1) { buffer throws(QueryError) in try BSONDecoder.decode(buffer) })
    }
}
