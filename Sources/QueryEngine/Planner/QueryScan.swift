import Foundation

/// A matched document with its row id and the array position the filter matched.
public struct ScanMatch {
    /// The row id (for updates and deletes).
    public let rid: Int64
    /// The stored document.
    public let document: BSONDocument
    /// The first array index the filter matched, for positional operators.
    public let position: Int?
    /// The stored BSON bytes, set instead of `document` by an encoded scan.
    public var encoded: [UInt8] = []
}

/// A resumable walk over an access path: each call continues where the last stopped, so a
/// cursor can be served batch by batch without holding SQLite statements between batches.
public struct QueryScan {
    let plan: QueryPlan
    let filter: Filter
    let collection: CollectionDescriptor
    private var intervalIndex = 0
    private var lastKey: [UInt8]?
    private var lastRid: Int64 = 0
    private var seen: Set<Int64> = []
    /// A text search's matches (row id, score) in row-id order, and how many were visited.
    private var textMatches: [Int64]?
    private var textOffset = 0
    private var textChecked = false
    /// Whether a text search's matches carry MongoDB's relevance (`{$meta: "textScore"}` reads
    /// it); without it they carry 0, which nothing reads (counts, writes, finds without `$meta`).
    public var scoresText = true
    /// Whether every candidate has been visited.
    public private(set) var isFinished = false
    /// Index keys or documents examined so far (`explain`'s `totalDocsExamined`).
    public private(set) var documentsExamined = 0
    /// When set, the scan fails with `MaxTimeMSExpired` (50) once the monotonic clock passes
    /// this many nanoseconds (checked every 256 documents), as `maxTimeMS` asks.
    public var deadlineNanoseconds: UInt64?

    /// Starts a scan.
    public init(plan: QueryPlan, filter: Filter, collection: CollectionDescriptor) {
        self.plan = plan
        self.filter = filter
        self.collection = collection
    }

    /// A cursor resumes in a later read transaction: its collection may have been dropped or
    /// renamed, or its index dropped, in between. Then it stops with `QueryPlanKilled` (175), as
    /// MongoDB's does, instead of reading a table that is gone. (Within one read transaction
    /// the catalog cannot change under the scan: it reads a snapshot.)
    private func checkStillValid(_ store: DatabaseStore) throws(QueryError) {
        guard collection.tableId >= 0 else { return }
        // By uuid, not table name: table ids restart when a database is dropped and recreated.
        guard let current = store.collection(collection.name), current.tableName == collection.tableName, current.uuid == collection.uuid else {
            throw QueryError(.queryPlanKilled, "collection '\(collection.name)' was dropped or renamed while the cursor was open")
        }
        // An index table id can be reused by a new index: the name and key pattern must match too.
        if case .index(let index, _) = plan.access,
            !current.indexes.contains(where: { $0.tableName == index.tableName && $0.name == index.name && $0.keyPattern == index.keyPattern })
        {
            throw QueryError(.queryPlanKilled, "index '\(index.name)' was dropped while the cursor was open")
        }
        if case .text(let index?, _) = plan.access,
            !current.indexes.contains(where: { $0.tableName == index.tableName && $0.name == index.name && $0.text == index.text })
        {
            throw QueryError(.queryPlanKilled, "text index '\(index.name)' was dropped while the cursor was open")
        }
    }

    /// Whether this scan was counted in `IndexUsage`.
    private var countedUsage = false

    /// Whether matches carry the stored bytes undecoded (`ScanMatch.encoded`). Only valid for an
    /// exact plan: the key ranges alone select the answer, so no filter needs the document.
    private var yieldsEncoded = false

    /// Like `run`, but hands over each document's stored bytes without decoding or filtering
    /// them, for replies that return documents unchanged. Requires `plan.isExact`.
    public mutating func runEncoded(_ store: DatabaseStore, _ body: (ScanMatch) throws(QueryError) -> Bool) throws(QueryError) {
        precondition(plan.isExact || filter.isTrivial, "an encoded scan skips the filter, so its plan must be exact")
        yieldsEncoded = true
        defer { yieldsEncoded = false }
        try run(store, body)
    }

    /// A tailable cursor's scan, before each batch: after it has reached the end of the
    /// collection, the batch continues after the last document it saw (a collection scan in insertion order).
    /// When that document is gone (removed to keep the collection within its bounds, or
    /// deleted), the cursor fails with `CappedPositionLost` (136), as MongoDB's does, rather
    /// than go on from a position that no longer says what it has returned.
    public mutating func resumeTailing(_ store: DatabaseStore) throws(QueryError) {
        guard case .collectionScan = plan.access, !plan.descending else { return }
        try checkStillValid(store)
        // Checked before every batch, not only at the end of the collection: a slow reader whose
        // last batch stopped midway can be overtaken by the bound too.
        if lastRid > 0 {
            let present = try store.connection.statement("SELECT 1 FROM \(collection.tableName) WHERE rid = ?1")
            present.bind(1, lastRid)
            defer { present.reset() }
            guard try present.step() else {
                throw QueryError(.named(136, "CappedPositionLost"), "CollectionScan died due to position in capped collection being deleted")
            }
        }
        if isFinished { isFinished = false }
    }

    /// Calls `body` for each matching document until it returns `false` or the scan ends.
    public mutating func run(_ store: DatabaseStore, _ body: (ScanMatch) throws(QueryError) -> Bool) throws(QueryError) {
        try checkStillValid(store)
        if !countedUsage {
            // One operation per scan for `$indexStats`, however many batches it returns.
            countedUsage = true
            switch plan.access {
            case .idIndex: IndexUsage.record(database: store.name, collection: collection.name, index: "_id_")
            case .index(let index, _), .text(let index?, _): IndexUsage.record(database: store.name, collection: collection.name, index: index.name)
            case .collectionScan, .text(nil, _): break
            }
        }
        if filter.hasText {
            // A $text the planner could not make the access path (inside $or, twice): refused.
            _ = try filter.textQuery()
        }
        while !isFinished {
            let keepGoing: Bool
            switch plan.access {
            case .text(let index, let query): keepGoing = try scanText(store, index, query, body)
            case .collectionScan: keepGoing = try scanCollection(store, body)
            case .idIndex(let intervals): keepGoing = try scanIntervals(store, intervals, indexTable: nil, body)
            case .index(let index, let intervals): keepGoing = try scanIntervals(store, intervals, indexTable: index.tableName, body)
            }
            if !keepGoing { return }
        }
    }

    /// `$text`: the FTS5 table gives the row ids of the documents holding a searched term;
    /// each document is checked against the whole search and carries its score
    /// (`TextQuery.scoreField`) through the rest of the filter.
    private mutating func scanText(
        _ store: DatabaseStore, _ index: IndexDescriptor?, _ query: TextQuery, _ body: (ScanMatch) throws(QueryError) -> Bool
    ) throws(QueryError) -> Bool {
        guard let index, let text = index.text else {
            throw QueryError(.location(27), "text index required for $text query")
        }
        let conjuncts = QueryPlanner.conjunctsByPath(filter)
        for prefix in text.prefixFields where !(conjuncts[prefix.dotted] ?? []).contains(where: { if case .equal = $0 { true } else { false } }) {
            throw QueryError(
                .noQueryExecutionPlans,
                "failed to use text index to satisfy $text query (if text index is compound, are equality predicates given for all prefix fields?)")
        }
        let search = TextSearch(query, index: text)
        // An `$expr` in the filter may read the score too.
        let scoring = scoresText || filter.containsExpression
        if textMatches == nil {
            var found: [Int64] = []
            if let expression = search.matchExpression {
                let select = try store.connection.statement("SELECT rowid FROM \(index.tableName) WHERE \(index.tableName) MATCH ?1 ORDER BY rowid")
                select.bind(1, expression)
                defer { select.reset() }
                while try select.step() {
                    if found.count & 1023 == 0 { try OperationContext.checkpoint() }
                    found.append(select.int64(0))
                }
            }
            textMatches = found
        }
        let fetch = try store.connection.statement("SELECT doc FROM \(collection.tableName) WHERE rid = ?1")
        defer { fetch.reset() }
        // A later batch (a getMore) reads a newer snapshot: a row id may belong to another
        // document by then, so each one is checked against the search again.
        let recheck = textChecked
        textChecked = true
        let still = recheck
            ? try store.connection.statement("SELECT 1 FROM \(index.tableName) WHERE \(index.tableName) MATCH ?1 AND rowid = ?2") : nil
        defer { still?.reset() }
        while let matches = textMatches, textOffset < matches.count {
            let rid = matches[textOffset]
            textOffset += 1
            documentsExamined += 1
            try OperationContext.checkpoint()
            if let still, let expression = search.matchExpression {
                still.bind(1, expression)
                still.bind(2, rid)
                let present = try still.step()
                still.reset()
                guard present else { continue }
            }
            fetch.bind(1, rid)
            guard try fetch.step() else { continue }  // Deleted since the search (a later batch).
            var document = try fetch.withBlob(0) { bytes throws(QueryError) in try BSONDecoder.decode(bytes) }
            fetch.reset()
            // The document's indexed strings, read once for the checks and the score.
            var score = 0.0
            if search.readsText || scoring {
                let strings = (try? search.index.strings(of: document)) ?? []
                guard !search.readsText || search.matches(strings) else { continue }
                if scoring { score = search.score(of: strings) }
            }
            document[TextQuery.scoreField] = .double(score)
            var position: Int?
            RegexFailure.reset()
            let matched = filter.matches(document, position: &position)
            try RegexFailure.check()
            guard matched else { continue }
            if !(try body(ScanMatch(rid: rid, document: document, position: position))) { return false }
        }
        isFinished = true
        return true
    }

    private mutating func consider(_ rid: Int64, _ bytes: UnsafeRawBufferPointer, _ body: (ScanMatch) throws(QueryError) -> Bool) throws(QueryError) -> Bool {
        documentsExamined += 1
        if documentsExamined & 255 == 0, let deadlineNanoseconds, MonotonicTime.nowNanoseconds() > deadlineNanoseconds {
            throw QueryError(.maxTimeMSExpired, "operation exceeded time limit")
        }
        try OperationContext.checkpoint()
        if plan.needsDeduplication && seen.contains(rid) { return true }
        if yieldsEncoded {
            if plan.needsDeduplication { seen.insert(rid) }
            var match = ScanMatch(rid: rid, document: BSONDocument(), position: nil)
            match.encoded = Array(bytes)
            return try body(match)
        }
        let document = try BSONDecoder.decode(bytes)
        var position: Int?
        RegexFailure.reset()
        let matched = filter.matches(document, position: &position)
        try RegexFailure.check()
        guard matched else { return true }
        if plan.needsDeduplication { seen.insert(rid) }
        return try body(ScanMatch(rid: rid, document: document, position: position))
    }

    private mutating func scanCollection(_ store: DatabaseStore, _ body: (ScanMatch) throws(QueryError) -> Bool) throws(QueryError) -> Bool {
        let statement = try store.connection.statement(
            plan.descending
                ? "SELECT rid, doc FROM \(collection.tableName) WHERE rid < ? ORDER BY rid DESC"
                : "SELECT rid, doc FROM \(collection.tableName) WHERE rid > ? ORDER BY rid")
        statement.bind(1, plan.descending && lastRid == 0 ? Int64.max : lastRid)
        while try statement.step() {
            let rid = statement.int64(0)
            lastRid = rid
            let keepGoing = try statement.withBlob(1) { bytes throws(QueryError) in try consider(rid, bytes, body) }
            if !keepGoing { return false }
        }
        isFinished = true
        return true
    }

    private mutating func scanIntervals(
        _ store: DatabaseStore, _ intervals: [KeyInterval], indexTable: String?, _ body: (ScanMatch) throws(QueryError) -> Bool
    ) throws(QueryError) -> Bool {
        let ordered = plan.descending ? Array(intervals.reversed()) : intervals
        while intervalIndex < ordered.count {
            let interval = ordered[intervalIndex]
            // One lower and one upper bound per statement: SQLite picks a single range term, so
            // the resume position is folded into the bounds rather than added as an OR, which it
            // would not use (and would then scan from the start of the index).
            let statement = try intervalStatement(store, indexTable: indexTable, resuming: lastKey != nil)
            if let lastKey {
                if plan.descending {
                    statement.bind(1, interval.lower)
                    statement.bind(2, lastKey)
                } else {
                    statement.bind(1, lastKey)
                    statement.bind(2, interval.upper)
                }
                statement.bind(3, lastKey)
                statement.bind(4, lastRid)
            } else {
                statement.bind(1, interval.lower)
                statement.bind(2, interval.upper)
            }
            while try statement.step() {
                lastKey = statement.blob(0)
                let rid = statement.int64(1)
                lastRid = rid
                let keepGoing = try statement.withBlob(2) { bytes throws(QueryError) in try consider(rid, bytes, body) }
                if !keepGoing { return false }
            }
            intervalIndex += 1
            lastKey = nil
        }
        isFinished = true
        return true
    }

    /// The scan statement: `?1`/`?2` bound the key range; when resuming, `?3`/`?4` are the last
    /// (key, rid) returned, and rows up to and including it are skipped.
    private func intervalStatement(_ store: DatabaseStore, indexTable: String?, resuming: Bool) throws(QueryError) -> SQLiteStatement {
        let shape = DatabaseStore.ScanShape(table: collection.tableName, indexTable: indexTable, descending: plan.descending, resuming: resuming)
        if let sql = store.scanSQL[shape] { return try store.connection.statement(sql) }
        let sql = Self.intervalSQL(shape)
        // Table ids only grow while a node runs: a store that saw many collections or indexes
        // come and go starts the memo again rather than keep shapes of dropped tables.
        if store.scanSQL.count >= 1024 { store.scanSQL.removeAll() }
        store.scanSQL[shape] = sql
        return try store.connection.statement(sql)
    }

    private static func intervalSQL(_ shape: DatabaseStore.ScanShape) -> String {
        let order = shape.descending ? "DESC" : "ASC"
        let key = shape.indexTable == nil ? "id_key" : "x.key"
        let rid = shape.indexTable == nil ? "rid" : "x.rid"
        let range: String
        if shape.resuming {
            range = shape.descending
                ? "\(key) >= ?1 AND \(key) <= ?2 AND NOT (\(key) = ?3 AND \(rid) >= ?4)"
                : "\(key) >= ?1 AND \(key) < ?2 AND NOT (\(key) = ?3 AND \(rid) <= ?4)"
        } else {
            range = "\(key) >= ?1 AND \(key) < ?2"
        }
        if let indexTable = shape.indexTable {
            return """
                SELECT x.key, x.rid, c.doc FROM \(indexTable) x JOIN \(shape.table) c ON c.rid = x.rid
                WHERE \(range) ORDER BY x.key \(order), x.rid \(order)
                """
        }
        return "SELECT id_key, rid, doc FROM \(shape.table) WHERE \(range) ORDER BY id_key \(order)"
    }

    /// Counts matches reading only the index, when the plan is exact; `nil` otherwise.
    static func indexOnlyCount(_ store: DatabaseStore, plan: QueryPlan, collection: CollectionDescriptor) throws(QueryError) -> Int? {
        guard plan.isExact else { return nil }
        let table: String
        let intervals: [KeyInterval]
        switch plan.access {
        case .collectionScan, .text: return nil
        case .idIndex(let ranges):
            table = "(SELECT id_key AS key, rid FROM \(collection.tableName))"
            intervals = ranges
        case .index(let index, let ranges):
            guard !(index.isMultikey && ranges.count > 1) else { return nil }
            table = index.tableName
            intervals = ranges
        }
        var total = 0
        // A document has one key in a non-multikey index, so counting keys counts documents and
        // needs no DISTINCT (which would build a temporary B-tree of row ids).
        let counted = plan.needsDeduplication ? "count(DISTINCT rid)" : "count(*)"
        let statement = try store.connection.statement("SELECT \(counted) FROM \(table) WHERE key >= ? AND key < ?")
        for interval in intervals {
            statement.bind(1, interval.lower)
            statement.bind(2, interval.upper)
            _ = try statement.step()
            total += Int(statement.int64(0))
            statement.reset()  // One row was read; reset before binding the next range.
        }
        return total
    }
}

/// The monotonic clock used for `maxTimeMS` deadlines.
public enum MonotonicTime {
    /// Nanoseconds since an arbitrary fixed point.
    public static func nowNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// The deadline `milliseconds` from now, or `nil` for no limit (0 or absent, as in MongoDB).
    public static func deadline(afterMilliseconds milliseconds: Int64?) -> UInt64? {
        guard let milliseconds, milliseconds > 0 else { return nil }
        // Saturates: a deadline centuries away is no deadline, not an overflow trap.
        let (span, spanOverflow) = UInt64(milliseconds).multipliedReportingOverflow(by: 1_000_000)
        let (deadline, overflow) = nowNanoseconds().addingReportingOverflow(span)
        return spanOverflow || overflow ? UInt64.max : deadline
    }
}
