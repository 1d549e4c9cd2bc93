/// A `find`: filter, sort, skip, limit and projection, producing documents batch by batch.
///
/// Created and driven on the database's executor. When the plan provides the sort order (or
/// there is none), documents stream from the index and skip/limit stop the scan early; otherwise
/// the matches are sorted in memory within `QueryEngineLimits.blockingSortBytesMax`.
public final class FindQuery {
    /// The chosen plan.
    public let plan: QueryPlan
    private var scan: QueryScan
    private let sort: SortSpecification?
    /// A `$near` or `$nearSphere` in the filter: results come nearest first (unless a sort is
    /// given), which needs a geospatial index on its field, as in MongoDB.
    private let near: (path: FieldPath, near: GeoNear)?
    private let collectionDescriptor: CollectionDescriptor?
    /// Whether the order is the `$near` distance (no sort was given).
    private var sortsByDistance = false
    private let projection: Projection?
    private var skipRemaining: Int
    private var limitRemaining: Int?
    private var sortedBuffer: [BSONDocument]?
    private var sortedOffset = 0
    /// Documents returned so far.
    public private(set) var returnedCount = 0
    /// The collation active when the query was planned: every batch (getMore too) runs with it.
    private let collation: Collation?
    /// Whether results keep a text search's score field (an aggregation's later stages read it;
    /// a find's results leave without it).
    public var keepsTextScore = false {
        didSet { if keepsTextScore { scan.scoresText = true } }
    }
    private var isText: Bool { if case .text = plan.access { true } else { false } }

    /// Plans a query over `collection` (nil when the collection does not exist: an empty result).
    public init(
        collection: CollectionDescriptor?, filter: Filter, sort: SortSpecification?, projection: Projection?, skip: Int,
        limit: Int?
    ) {
        let descriptor = collection ?? CollectionDescriptor(name: "", tableId: -1, options: BSONDocument(), uuid: [], indexes: [])
        self.collation = Collation.active
        let filter = filter.nearQuery == nil ? filter : filter.measuringNear(in: descriptor)
        plan = QueryPlanner.plan(filter: filter, sort: sort, collection: descriptor)
        scan = QueryScan(plan: plan, filter: filter, collection: descriptor)
        if collection == nil { sortedBuffer = [] }
        near = filter.nearQuery
        collectionDescriptor = collection
        if near != nil && sort == nil {
            // Nearest first: sorted in memory by distance (`sortEverything`).
            self.sort = SortSpecification(keys: [])
            sortsByDistance = true
        } else {
            self.sort = sort
        }
        self.projection = projection
        skipRemaining = skip
        limitRemaining = limit
    }

    /// A tailable cursor's query (`find` with `tailable` on a capped collection): it stays open
    /// at the end of the collection, and each batch continues after the last document returned.
    public var isTailable = false
    /// Whether a text search's results carry their relevance (false when neither the sort nor the
    /// projection asks for `{$meta: "textScore"}`: scoring is most of a text search's work).
    public var scoresText: Bool {
        get { scan.scoresText }
        set { scan.scoresText = newValue || keepsTextScore }
    }

    /// Whether a tailable cursor's getMore waits for new documents (`awaitData`).
    public var awaitsData = false

    /// Whether no more documents will come.
    public var isExhausted: Bool {
        if limitRemaining == 0 { return true }
        if isTailable { return false }
        if let sortedBuffer { return sortedOffset >= sortedBuffer.count }
        return scan.isFinished
    }

    /// Documents examined so far.
    public var documentsExamined: Int { scan.documentsExamined }

    /// Bytes of sorted documents still waiting in memory for later batches.
    public var bufferedBytes: Int {
        guard let sortedBuffer else { return 0 }
        return sortedBuffer[sortedOffset...].reduce(0) { $0 + $1.encodedSize }
    }

    /// The `maxTimeMS` deadline for the next batch (monotonic nanoseconds), or `nil`.
    public var deadlineNanoseconds: UInt64? {
        get { scan.deadlineNanoseconds }
        set { scan.deadlineNanoseconds = newValue }
    }

    /// Whether producing a batch may examine many documents that are not returned: a filtered
    /// collection scan or an in-memory sort. The server runs such batches off the event loops.
    public var isHeavy: Bool {
        if sortedBuffer != nil { return false }
        if sort != nil && !plan.providesSort { return true }
        if case .collectionScan = plan.access { return !scan.filter.isTrivial }
        if isText { return true }  // Every match of the search is fetched and filtered.
        return false
    }

    /// Whether batches can be served as stored bytes (`nextEncodedBatch`): no projection, no
    /// in-memory sort, and key ranges that select exactly the answer. Skipping the decode and
    /// re-encode of every returned document is most of the cost of a range scan.
    public var canReturnEncoded: Bool {
        projection == nil && (plan.isExact || scan.filter.isTrivial) && (sort == nil || plan.providesSort)
            && sortedBuffer == nil
    }

    /// The next batch as stored BSON documents; use only when `canReturnEncoded`.
    public func nextEncodedBatch(_ store: DatabaseStore, countMax: Int, bytesMax: Int) throws(QueryError) -> [[UInt8]] {
        try Collation.with(collation) { () throws(QueryError) in try encodedBatch(store, countMax: countMax, bytesMax: bytesMax) }
    }

    private func encodedBatch(_ store: DatabaseStore, countMax: Int, bytesMax: Int) throws(QueryError) -> [[UInt8]] {
        try streamBatch(store, countMax: countMax, bytesMax: bytesMax, encoded: true) { match throws(QueryError) in
            (match.encoded, match.encoded.count)
        }
    }

    /// The next batch: at most `countMax` documents and about `bytesMax` bytes.
    public func nextBatch(_ store: DatabaseStore, countMax: Int, bytesMax: Int) throws(QueryError) -> [BSONDocument] {
        try Collation.with(collation) { () throws(QueryError) in try batch(store, countMax: countMax, bytesMax: bytesMax) }
    }

    private func batch(_ store: DatabaseStore, countMax: Int, bytesMax: Int) throws(QueryError) -> [BSONDocument] {
        if sort != nil && !plan.providesSort && sortedBuffer == nil { try sortEverything(store) }
        if sortedBuffer != nil {
            var batch: [BSONDocument] = []
            var bytes = 0
            while sortedOffset < sortedBuffer!.count, batch.count < countMax, bytes < bytesMax, limitRemaining != 0 {
                let document = sortedBuffer![sortedOffset]
                sortedBuffer![sortedOffset] = BSONDocument()  // Release memory as the cursor advances.
                sortedOffset += 1
                bytes += document.encodedSize
                batch.append(document)
                if let remaining = limitRemaining { limitRemaining = remaining - 1 }
            }
            returnedCount += batch.count
            return batch
        }
        let projection = self.projection
        let strip = isText && !keepsTextScore
        return try streamBatch(store, countMax: countMax, bytesMax: bytesMax, encoded: false) { match throws(QueryError) in
            var output = try projection?.apply(to: match.document, position: match.position) ?? match.document
            if strip { output.removeValue(forKey: TextQuery.scoreField) }
            return (output, output.encodedSize)
        }
    }

    /// Takes the next batch straight from the scan, applying the remaining skip and limit;
    /// `output` turns a match into what the batch holds and its size in bytes.
    private func streamBatch<Output>(
        _ store: DatabaseStore, countMax: Int, bytesMax: Int, encoded: Bool,
        _ output: (ScanMatch) throws(QueryError) -> (Output, Int)
    ) throws(QueryError) -> [Output] {
        guard limitRemaining != 0 else { return [] }
        if isTailable { try scan.resumeTailing(store) }
        var batch: [Output] = []
        var bytes = 0
        var skip = skipRemaining
        var limit = limitRemaining
        let visit = { (match: ScanMatch) throws(QueryError) -> Bool in
            if skip > 0 {
                skip -= 1
                return true
            }
            let (item, size) = try output(match)
            bytes += size
            batch.append(item)
            if let remaining = limit {
                limit = remaining - 1
                if remaining - 1 == 0 { return false }
            }
            return batch.count < countMax && bytes < bytesMax
        }
        if encoded { try scan.runEncoded(store, visit) } else { try scan.run(store, visit) }
        skipRemaining = skip
        limitRemaining = limit
        returnedCount += batch.count
        return batch
    }

    private func sortEverything(_ store: DatabaseStore) throws(QueryError) {
        guard let sort else { return }
        if let near, let collectionDescriptor, collectionDescriptor.geoIndexKind(on: near.path.dotted) == nil {
            throw QueryError(
                .noQueryExecutionPlans,
                "error processing query: planner returned error :: caused by :: unable to find index for $geoNear query")
        }
        var matches: [(document: BSONDocument, position: Int?)] = []
        var distances: [Double] = []
        var bytes = 0
        try scan.run(store) { match throws(QueryError) in
            let document = match.document
            if sortsByDistance, let near {
                distances.append(near.near.distance(to: near.path.candidates(in: document).compactMap(\.value)) ?? .infinity)
            }
            bytes += document.encodedSize
            try OperationContext.reserveMemory(document.encodedSize)
            if bytes > QueryEngineLimits.blockingSortBytesMax {
                throw QueryError(.exceededMemoryLimit, "Executor error during find command :: caused by :: Sort exceeded memory limit of \(QueryEngineLimits.blockingSortBytesMax) bytes, but did not opt in to external sorting.")
            }
            matches.append((document, match.position))
            return true
        }
        let ordered =
            sortsByDistance
            ? matches.indices.sorted { (distances[$0], $0) < (distances[$1], $1) }.map { matches[$0] }
            : sort.sorted(matches) { $0.document }
        let end = limitRemaining.map { min(ordered.count, skipRemaining + $0) } ?? ordered.count
        var buffer: [BSONDocument] = []
        if skipRemaining < end {
            buffer.reserveCapacity(end - skipRemaining)
            let strip = isText && !keepsTextScore
            for item in ordered[skipRemaining..<end] {
                var output = try projection?.apply(to: item.document, position: item.position) ?? item.document
                if strip { output.removeValue(forKey: TextQuery.scoreField) }
                buffer.append(output)
            }
        }
        skipRemaining = 0
        sortedBuffer = buffer
    }
}

extension DatabaseStore {
    /// All documents matching `filter` (with row ids), in scan order, up to `limit`: the stored
    /// documents as they are (a text search's score is taken off, so a write never stores it).
    public func matches(in collectionName: String, filter: Filter, sort: SortSpecification? = nil, limit: Int? = nil) throws(QueryError) -> [ScanMatch] {
        let found = try rawMatches(in: collectionName, filter: filter, sort: sort, limit: limit)
        guard filter.hasText else { return found }
        return found.map { match in
            var document = match.document
            document.removeValue(forKey: TextQuery.scoreField)
            return ScanMatch(rid: match.rid, document: document, position: match.position)
        }
    }

    private func rawMatches(in collectionName: String, filter: Filter, sort: SortSpecification?, limit: Int?) throws(QueryError) -> [ScanMatch] {
        guard let descriptor = collections[collectionName] else { return [] }
        let plan = QueryPlanner.plan(filter: filter, sort: sort, collection: descriptor)
        var scan = QueryScan(plan: plan, filter: filter, collection: descriptor)
        // Writes keep no score: only a sort by relevance reads it.
        scan.scoresText = sort?.keys.contains { $0.path.components == [TextQuery.scoreField] } ?? false
        var results: [ScanMatch] = []
        if let sort, !plan.providesSort {
            try scan.run(self) { match throws(QueryError) in
                results.append(match)
                return true
            }
            results = sort.sorted(results) { $0.document }
            if let limit { results = Array(results.prefix(limit)) }
            return results
        }
        try scan.run(self) { match throws(QueryError) in
            results.append(match)
            return limit.map { results.count < $0 } ?? true
        }
        return results
    }

    /// Counts matching documents when that needs no document reads: the table's row count for
    /// an empty filter, or index keys when the plan's key ranges are exact. `nil` otherwise (the
    /// count would scan documents).
    public func indexOnlyCount(in collectionName: String, filter: Filter, skip: Int = 0, limit: Int? = nil) throws(QueryError) -> Int? {
        guard let descriptor = collections[collectionName] else { return 0 }
        if filter.isTrivial { return DatabaseStore.applying(skip: skip, limit: limit, to: try count(collectionName)) }
        let plan = QueryPlanner.plan(filter: filter, sort: nil, collection: descriptor)
        return try QueryScan.indexOnlyCount(self, plan: plan, collection: descriptor)
            .map { DatabaseStore.applying(skip: skip, limit: limit, to: $0) }
    }

    /// Counts matching documents, reading only an index when the plan allows it.
    public func countMatches(
        in collectionName: String, filter: Filter, skip: Int = 0, limit: Int? = nil, deadlineNanoseconds: UInt64? = nil
    ) throws(QueryError) -> Int {
        if let counted = try indexOnlyCount(in: collectionName, filter: filter, skip: skip, limit: limit) { return counted }
        guard let descriptor = collections[collectionName] else { return 0 }
        var scan = QueryScan(plan: QueryPlanner.plan(filter: filter, sort: nil, collection: descriptor), filter: filter, collection: descriptor)
        scan.deadlineNanoseconds = deadlineNanoseconds
        scan.scoresText = false
        var total = 0
        try scan.run(self) { _ throws(QueryError) in
            total += 1
            return true
        }
        return DatabaseStore.applying(skip: skip, limit: limit, to: total)
    }

    /// A count after `skip` and `limit` (a `limit` of 0 means none, as in MongoDB).
    private static func applying(skip: Int, limit: Int?, to total: Int) -> Int {
        let skipped = max(0, total - skip)
        guard let limit, limit > 0 else { return skipped }
        return min(skipped, limit)
    }
}
