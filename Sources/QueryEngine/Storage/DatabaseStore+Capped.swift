/// Capped collections: a collection bounded in bytes (`size`) and optionally in documents
/// (`max`). Documents keep their insertion order (row ids grow), and an insert that takes the
/// collection past a bound removes its oldest documents, as MongoDB does. Each removal is an
/// ordinary delete: indexes follow, and a space records it in its commit like any other.
public struct CappedLimits: Sendable, Equatable {
    /// The bound in bytes of stored documents: `size` rounded up to a multiple of 256, at least
    /// 4,096, as MongoDB sizes capped collections.
    public let bytes: Int64
    /// `max`: the most documents, or nil for no bound.
    public let documents: Int64?

    /// The largest `size` MongoDB accepts: 1 PB.
    static let bytesMax: Int64 = 1 << 50

    /// The bounds in `create` (or `collMod`) options; nil when the collection is not capped.
    public static func parse(_ options: BSONDocument) throws(QueryError) -> CappedLimits? {
        guard options["capped"]?.isTruthy == true else { return nil }
        guard let given = options["size"] else { throw QueryError(.invalidOptions, "the 'size' field is required when 'capped' is true") }
        guard given.isNumber, let size = given.doubleValue, size > 0, size <= Double(bytesMax) else {
            throw QueryError(.badValue, "the capped collection's 'size' must be a number greater than 0 and at most 1 PB")
        }
        var documents: Int64?
        if let max = options["max"] {
            guard max.isNumber, let count = max.doubleValue, count < Double(Int32.max) else {
                throw QueryError(.badValue, "the capped collection's 'max' must be a number below 2^31")
            }
            // MongoDB reads a `max` of 0 or less as no bound on the number of documents.
            if count >= 1 { documents = Int64(count) }
        }
        let rounded = (max(Int64(size.rounded(.up)), 4_096) + 255) / 256 * 256
        return CappedLimits(bytes: rounded, documents: documents)
    }
}

extension CollectionDescriptor {
    /// The collection's bounds when it is capped.
    public var capped: CappedLimits? { (try? CappedLimits.parse(options)) ?? nil }
}

extension DatabaseStore {
    /// Documents and stored bytes of a capped collection, and the highest row id it has used,
    /// from `stratos_capped_usage` (kept in the same transactions as the documents); counted
    /// once for a collection without a row (one made capped by a version that did not bound it).
    func cappedUsage(_ collection: CollectionDescriptor) throws(QueryError) -> (documents: Int64, bytes: Int64, lastRid: Int64) {
        let select = try connection.statement("SELECT documents, bytes, last_rid FROM stratos_capped_usage WHERE collection = ?1")
        select.bind(1, collection.name)
        if try select.step() {
            defer { select.reset() }
            return (select.int64(0), select.int64(1), select.int64(2))
        }
        select.reset()
        let count = try connection.statement("SELECT count(*), coalesce(sum(length(doc)), 0), coalesce(max(rid), 0) FROM \(collection.tableName)")
        defer { count.reset() }
        _ = try count.step()
        let usage = (documents: count.int64(0), bytes: count.int64(1), lastRid: count.int64(2))
        let insert = try connection.statement("INSERT INTO stratos_capped_usage(collection, documents, bytes, last_rid) VALUES (?1, ?2, ?3, ?4)")
        insert.bind(1, collection.name)
        insert.bind(2, usage.documents)
        insert.bind(3, usage.bytes)
        insert.bind(4, usage.lastRid)
        try insert.run()
        return usage
    }

    /// The row id of the next document of a capped collection: past every row id it has used.
    func nextCappedRid(_ collection: CollectionDescriptor) throws(QueryError) -> Int64 {
        let newest = try connection.statement("SELECT coalesce(max(rid), 0) FROM \(collection.tableName)")
        defer { newest.reset() }
        _ = try newest.step()
        return max(newest.int64(0), try cappedUsage(collection).lastRid) + 1
    }

    /// Counts a write to a capped collection (`lastRid`: an insert's row id). The write calls
    /// `cappedUsage` before it changes anything, so a collection without a row is counted as it
    /// was before the write.
    func adjustCappedUsage(_ collection: CollectionDescriptor, documents: Int64, bytes: Int64, lastRid: Int64?) throws(QueryError) {
        let update = try connection.statement("""
            UPDATE stratos_capped_usage SET documents = documents + ?2, bytes = bytes + ?3, last_rid = max(last_rid, ?4)
            WHERE collection = ?1
            """)
        update.bind(1, collection.name)
        update.bind(2, documents)
        update.bind(3, bytes)
        update.bind(4, lastRid ?? 0)
        try update.run()
    }

    /// After an insert (row `newest`) into a capped collection: removes the oldest documents
    /// while the collection is past a bound (`insert` refuses a document larger than the bound).
    func enforceCap(_ collection: CollectionDescriptor, limits: CappedLimits, newest: Int64) throws(QueryError) {
        let oldest = try connection.statement("SELECT rid, doc FROM \(collection.tableName) WHERE rid <> ?1 ORDER BY rid LIMIT 1")
        while true {
            let usage = try cappedUsage(collection)
            guard usage.bytes > limits.bytes || limits.documents.map({ usage.documents > $0 }) == true else { return }
            oldest.bind(1, newest)
            guard try oldest.step() else {
                oldest.reset()
                return
            }
            let rid = oldest.int64(0)
            let document = try oldest.withBlob(1) { bytes throws(QueryError) in try BSONDecoder.decode(bytes) }
            oldest.reset()
            try delete(rid: rid, document: document, from: collection.name)
        }
    }

    /// Forgets the counts of collections that were dropped or renamed (counted again on next use).
    func forgetCappedUsage(_ names: [String]) throws(QueryError) {
        let delete = try connection.statement("DELETE FROM stratos_capped_usage WHERE collection = ?1")
        for name in names {
            delete.bind(1, name)
            try delete.run()
        }
    }
}

extension DatabaseStore {
    /// `convertToCapped`: makes a collection capped with `options` (`size`, `max`), keeping its
    /// newest documents within the bounds. As in MongoDB, its indexes other than `_id` are dropped.
    public func convertToCapped(_ name: String, size: BSONValue, max: BSONValue?) throws(QueryError) {
        guard let existing = collections[name] else { throw QueryError(.namespaceNotFound, "source collection \(self.name).\(name) does not exist") }
        guard !existing.isView else { throw QueryError(.commandNotSupportedOnView, "convertToCapped is not supported on a view") }
        var options = existing.options
        options["capped"] = .bool(true)
        options["size"] = size
        if let max { options["max"] = max } else { options.removeValue(forKey: "max") }
        guard let limits = try CappedLimits.parse(options) else { return }
        for index in existing.indexes { try dropIndex(named: index.name, on: name) }
        try forgetCappedUsage([name])
        try setCollectionOptions(name, options: options)
        guard let capped = collections[name] else { return }
        try enforceCap(capped, limits: limits, newest: -1)
    }
}

extension DatabaseStore {
    /// `cloneCollectionAsCapped`: a new capped collection `target` holding the newest documents
    /// of `source` that fit its bounds, in insertion order. Only those are read into memory
    /// (newest first, until the bounds are reached) and written.
    public func cloneCollectionAsCapped(_ source: String, to target: String, options: BSONDocument) throws(QueryError) {
        guard let descriptor = collections[source], !descriptor.isView else {
            throw QueryError(.namespaceNotFound, "source collection \(self.name).\(source) does not exist")
        }
        guard collections[target] == nil else { throw QueryError(.namespaceExists, "target collection \(self.name).\(target) already exists") }
        guard let limits = try CappedLimits.parse(options) else { return }
        var kept: [[UInt8]] = []
        var bytes: Int64 = 0
        let scan = try connection.statement("SELECT doc FROM \(descriptor.tableName) ORDER BY rid DESC")
        defer { scan.reset() }
        while try scan.step() {
            if kept.count & 255 == 0 { try OperationContext.checkpoint() }
            if let most = limits.documents, kept.count >= most { break }
            let document = scan.blob(0)
            guard bytes + Int64(document.count) <= limits.bytes else { break }
            try OperationContext.reserveMemory(document.count)
            bytes += Int64(document.count)
            kept.append(document)
        }
        scan.reset()  // Before the target's table is created: SQLite refuses schema changes under a running statement.
        try createCollection(target, options: options)
        for document in kept.reversed() {
            try OperationContext.checkpoint()
            try insert(try BSONDecoder.decode(document), into: target)
        }
    }
}
