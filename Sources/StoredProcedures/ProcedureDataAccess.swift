import QueryEngine

/// What a procedure may do to its space's data, under the caller's grants. The node implements
/// it over the space's write transaction (so every write of a call becomes one commit); each
/// method throws `Unauthorized` (13) when the caller lacks the grant.
public protocol ProcedureDataAccess: AnyObject {
    /// Opens a cursor over `collection` (`options`: `sort`, `projection`, `skip`, `limit`).
    func find(collection: String, filter: BSONDocument, options: BSONDocument) throws(QueryError) -> any ProcedureCursor
    /// Inserts a document (an `_id` is added when it has none).
    func insert(collection: String, document: BSONDocument) throws(QueryError)
    /// Applies an update; returns how many documents matched and how many changed.
    func update(collection: String, filter: BSONDocument, update: BSONDocument, multi: Bool, upsert: Bool) throws(QueryError) -> (matched: Int, modified: Int)
    /// Deletes one document (or every match, with `multi`); returns how many.
    func delete(collection: String, filter: BSONDocument, multi: Bool) throws(QueryError) -> Int
}

/// Documents of a procedure's `find`, one at a time, as stored BSON.
public protocol ProcedureCursor: AnyObject {
    /// The next document's bytes; nil when there are no more.
    func next() throws(QueryError) -> [UInt8]?
}

/// A cursor over a `FindQuery` on a store, fetching batches as the procedure reads.
public final class FindQueryCursor: ProcedureCursor {
    private let query: FindQuery
    private let store: DatabaseStore
    private var batch: [[UInt8]] = []
    private var offset = 0

    public init(query: FindQuery, store: DatabaseStore) {
        self.query = query
        self.store = store
    }

    public func next() throws(QueryError) -> [UInt8]? {
        if offset == batch.count {
            guard !query.isExhausted else { return nil }
            offset = 0
            if query.canReturnEncoded {
                batch = try query.nextEncodedBatch(store, countMax: 256, bytesMax: 1 << 20)
            } else {
                batch = try query.nextBatch(store, countMax: 256, bytesMax: 1 << 20).map(\.bsonBytes)
            }
            if batch.isEmpty { return nil }
        }
        defer { offset += 1 }
        return batch[offset]
    }
}
