import QueryEngine
import SpaceOwnership
import StoredProcedures

/// A procedure's view of its space: the call's write transaction, with every read and write
/// checked against the caller's grants (decisions are kept for the call; a grant revoked
/// meanwhile takes effect on the next call). Each write is a savepoint of its own, so a failed
/// one leaves nothing behind while the procedure carries on.
final class ProcedureDataAdapter: ProcedureDataAccess {
    private let store: DatabaseStore
    private let authorize: (GrantActions, String) throws(QueryError) -> Void
    private let nowMilliseconds: Int64
    private var allowed: Set<String> = []

    init(store: DatabaseStore, nowMilliseconds: Int64, authorize: @escaping (GrantActions, String) throws(QueryError) -> Void) {
        self.store = store
        self.nowMilliseconds = nowMilliseconds
        self.authorize = authorize
    }

    private func check(_ action: GrantActions, _ collection: String) throws(QueryError) {
        let key = "\(action.rawValue)/\(collection)"
        if allowed.contains(key) { return }
        try authorize(action, collection)
        allowed.insert(key)
    }

    /// A collection a procedure may write: a client-writable name (never `system.*`).
    private func writable(_ collection: String) throws(QueryError) -> String {
        try NamespaceRules.validateCollection(collection)
        try check(.write, collection)
        return collection
    }

    func find(collection: String, filter: BSONDocument, options: BSONDocument) throws(QueryError) -> any ProcedureCursor {
        try check(.read, collection)
        var sort: SortSpecification?
        var projection: Projection?
        var skip = 0
        var limit: Int?
        for element in options.elements {
            switch (element.key, element.value) {
            case ("sort", .document(let document)): sort = document.isEmpty ? nil : try SortSpecification(document)
            case ("projection", .document(let document)): projection = document.isEmpty ? nil : try Projection(document)
            case ("skip", let value) where value.isNumber: skip = Int(clamping: value.int64Value ?? -1)
            case ("limit", let value) where value.isNumber: limit = Int(clamping: value.int64Value ?? -1)
            default:
                throw QueryError(.badValue, "find options are sort, projection, skip and limit (got '\(element.key)')")
            }
        }
        guard skip >= 0 else { throw QueryError(.badValue, "skip must be a non-negative integer") }
        if let given = limit, given < 0 { throw QueryError(.badValue, "limit must be a non-negative integer") }
        let query = FindQuery(
            collection: store.collection(collection), filter: try Filter(filter), sort: sort, projection: projection, skip: skip,
            limit: limit == 0 ? nil : limit)
        return FindQueryCursor(query: query, store: store)
    }

    func insert(collection: String, document: BSONDocument) throws(QueryError) {
        let collection = try writable(collection)
        var document = document
        if document["_id"] == nil {
            document.prepend("_id", .objectId(ObjectId.generate(seconds: UInt32(truncatingIfNeeded: nowMilliseconds / 1000))))
        }
        let finished = document
        try store.withSavepoint { () throws(QueryError) in _ = try store.insert(finished, into: collection) }
    }

    func update(collection: String, filter: BSONDocument, update: BSONDocument, multi: Bool, upsert: Bool) throws(QueryError) -> (matched: Int, modified: Int) {
        let collection = try writable(collection)
        let statement: BSONDocument = ["q": .document(filter), "u": .document(update), "multi": .bool(multi), "upsert": .bool(upsert)]
        let outcome = try store.withSavepoint { () throws(QueryError) -> WriteCommands.UpdateOutcome in
            try WriteCommands.applyUpdate(statement, collection: collection, store: store, nowMilliseconds: nowMilliseconds)
        }
        return (outcome.matched, outcome.modified + (outcome.upsertedId == nil ? 0 : 1))
    }

    func delete(collection: String, filter: BSONDocument, multi: Bool) throws(QueryError) -> Int {
        let collection = try writable(collection)
        return try store.withSavepoint { () throws(QueryError) -> Int in
            let matches = try store.matches(in: collection, filter: try Filter(filter), limit: multi ? nil : 1)
            for match in matches { try store.delete(rid: match.rid, document: match.document, from: collection) }
            return matches.count
        }
    }
}
