import Foundation

/// How many pipelines the current thread is running inside one another (`$lookup`,
/// `$unionWith` and `$graphLookup` run their source's pipeline, a view's included).
private enum NestedRuns {
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static var depth: Int {
        get { Int(bitPattern: pthread_getspecific(key)) }
        set { pthread_setspecific(key, UnsafeRawPointer(bitPattern: newValue)) }
    }

    /// Deeper than this is a loop (a view whose pipeline reads itself, or two views that read
    /// each other): refused instead of exhausting the thread's stack.
    static let depthMax = 40
}

extension Pipeline {
    /// Runs the pipeline over `collectionName` in `store` and returns every output document.
    public func run(
        _ store: DatabaseStore, collection collectionName: String, nowMilliseconds: Int64, deadlineNanoseconds: UInt64? = nil
    ) throws(QueryError) -> [BSONDocument] {
        NestedRuns.depth += 1
        defer { NestedRuns.depth -= 1 }
        guard NestedRuns.depth <= NestedRuns.depthMax else {
            throw QueryError(.viewDepthLimitExceeded, "pipelines nested more than \(NestedRuns.depthMax) deep: a view or $lookup that reads itself")
        }
        var remaining = stages[...]
        if startsWithDocuments {
            throw QueryError(.location(40602), "$documents is only valid as the first stage of a collection-less aggregate (aggregate: 1)")
        }
        if case .collectionStats(let count, let storageStats)? = remaining.first {
            guard store.collection(collectionName) != nil else {
                throw QueryError(.namespaceNotFound, "Unable to retrieve storageStats in $collStats stage :: caused by :: Collection [\(store.name).\(collectionName)] not found.")
            }
            var stats: BSONDocument = ["ns": .string("\(store.name).\(collectionName)"), "localTime": .datetime(nowMilliseconds)]
            let total = Int64(try store.count(collectionName))
            if count { stats["count"] = .int64(total) }
            if storageStats {
                stats["storageStats"] = .document(["count": .int64(total), "size": .int64(Int64(try store.dataSize(collectionName)))])
            }
            var documents = [stats]
            for stage in remaining.dropFirst() {
                documents = try apply(stage, to: documents, store: store, nowMilliseconds: nowMilliseconds)
            }
            return documents
        }
        if case .geoNear(let stage)? = remaining.first {
            var documents = try stage.run(store, collection: collectionName)
            for stage in remaining.dropFirst() {
                documents = try apply(stage, to: documents, store: store, nowMilliseconds: nowMilliseconds)
            }
            try Pipeline.checkDocumentSizes(documents)
            return documents
        }
        if case .indexStats? = remaining.first {
            // One document per index, `_id_` first; none for a collection that does not exist.
            var documents: [BSONDocument] = []
            if let descriptor = store.collection(collectionName) {
                let host = IndexUsage.host
                for listing in [DatabaseStore.idIndexSpecification] + descriptor.indexes.map(\.listing) {
                    guard case .string(let name)? = listing["name"] else { continue }
                    let operations = IndexUsage.operations(database: store.name, collection: collectionName, index: name)
                    documents.append([
                        "name": .string(name), "key": listing["key"] ?? .document([:]), "host": .string(host),
                        "accesses": .document(["ops": .int64(operations), "since": .datetime(IndexUsage.since)]),
                        "spec": .document(listing),
                    ])
                }
            }
            for stage in remaining.dropFirst() {
                documents = try apply(stage, to: documents, store: store, nowMilliseconds: nowMilliseconds)
            }
            return documents
        }
        // count_documents: {$match}, {$group: {_id: <constant>, n: {$sum: 1}}}.
        if let filter = countOnlyFilter {
            return countResult(try store.countMatches(in: collectionName, filter: filter, deadlineNanoseconds: deadlineNanoseconds))
        }
        var filter = Filter.alwaysTrue
        if case .match(let leading)? = remaining.first {
            filter = leading
            remaining = remaining.dropFirst()
        }
        var sort: SortSpecification?
        if case .sort(let leadingSort)? = remaining.first {
            sort = leadingSort
            remaining = remaining.dropFirst()
        }
        var skip = 0
        var limit: Int?
        while let stage = remaining.first {
            if case .skip(let count) = stage, limit == nil {
                skip += count
            } else if case .limit(let count) = stage {
                limit = min(limit ?? count, count)
            } else {
                break
            }
            remaining = remaining.dropFirst()
        }
        let find = FindQuery(collection: store.collection(collectionName), filter: filter, sort: sort, projection: nil, skip: skip, limit: limit)
        find.deadlineNanoseconds = deadlineNanoseconds
        find.keepsTextScore = true
        var documents: [BSONDocument] = []
        var bytes = 0
        while !find.isExhausted {
            let batch = try find.nextBatch(store, countMax: 10_000, bytesMax: 16 << 20)
            var batchBytes = 0
            for document in batch { batchBytes += document.encodedSize }
            bytes += batchBytes
            try OperationContext.reserveMemory(batchBytes)
            guard bytes <= QueryEngineLimits.aggregationStageBytesMax * 4 else {
                throw QueryError(.exceededMemoryLimit, "aggregation input exceeded the memory limit")
            }
            documents.append(contentsOf: batch)
            if batch.isEmpty { break }
        }
        for stage in remaining {
            documents = try apply(stage, to: documents, store: store, nowMilliseconds: nowMilliseconds)
        }
        if filter.hasText {
            // The score travelled with each match for `$meta`; results leave without it, at any
            // depth (a `$group` may have pushed whole matches).
            for index in documents.indices { documents[index] = TextQuery.strippingScore(documents[index]) }
        }
        try Pipeline.checkDocumentSizes(documents)
        return documents
    }

    /// A document a stage builds obeys the 16 MiB limit, as MongoDB's do (BSONObjectTooLarge,
    /// 10334): a `$group` that pushes 20 MB into one document fails instead of returning it.
    static func checkDocumentSizes(_ documents: [BSONDocument]) throws(QueryError) {
        let limit = QueryEngineLimits.documentSizeBytesMax + 16 * 1024
        for document in documents {
            // Checked without walking more than the limit (a document of shared parts can
            // describe far more than it stores), then measured for the message.
            guard BSONValue.document(document).exceedsSize(limit) else { continue }
            guard !BSONValue.document(document).exceedsSize(4 * limit) else {
                throw QueryError(.documentTooLarge, "BSONObj size: more than \(4 * limit) bytes is invalid. Size must be between 0 and \(limit)(16MB)")
            }
            let size = document.encodedSize
            if size > limit {
                throw QueryError(.documentTooLarge, "BSONObj size: \(size) (0x\(String(size, radix: 16, uppercase: true))) is invalid. Size must be between 0 and \(limit)(16MB)")
            }
        }
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    /// Runs the pipeline over documents already in memory (a collection-less aggregate such as
    /// `$currentOp`); stages that read collections (`$lookup`) are refused.
    public func run(over documents: [BSONDocument], nowMilliseconds: Int64) throws(QueryError) -> [BSONDocument] {
        let output = try runStages(over: documents, store: nil, nowMilliseconds: nowMilliseconds)
        try Pipeline.checkDocumentSizes(output)
        return output
    }

    /// Runs every stage over documents in memory (`$facet`'s sub-pipelines, collection-less
    /// aggregates); `store` serves the stages that read other collections.
    func runStages(over documents: [BSONDocument], store: DatabaseStore?, nowMilliseconds: Int64) throws(QueryError) -> [BSONDocument] {
        var output = documents
        for stage in stages { output = try apply(stage, to: output, store: store, nowMilliseconds: nowMilliseconds) }
        return output
    }

    private func apply(_ stage: Stage, to documents: [BSONDocument], store: DatabaseStore?, nowMilliseconds: Int64) throws(QueryError) -> [BSONDocument] {
        // Every stage starts at a checkpoint, so a pipeline of many cheap stages stops too.
        try OperationContext.checkpoint()
        func context(_ document: BSONDocument) -> ExpressionContext {
            var context = ExpressionContext(root: document)
            context.now = nowMilliseconds
            return context
        }
        switch stage {
        case .match(let filter):
            return try Pipeline.matching(filter, in: documents)
        case .project(let projection):
            var output: [BSONDocument] = []
            for document in documents {
                try OperationContext.checkpoint()
                var projected = try projection.apply(to: document)
                // A text search's score is metadata in MongoDB, not a field: it survives a
                // `$project` that does not name it, so a later `$meta` still finds it. (Results
                // never carry it: the pipeline's output drops it.)
                if let score = document[TextQuery.scoreField], projected[TextQuery.scoreField] == nil {
                    projected[TextQuery.scoreField] = score
                }
                output.append(projected)
            }
            return output
        case .addFields(let fields):
            var output: [BSONDocument] = []
            for document in documents {
                try OperationContext.checkpoint()
                var root = BSONValue.document(document)
                for (key, expression) in fields {
                    let path = key.split(separator: ".").map(String.init)
                    if let value = try expression.evaluate(context(document)) {
                        try UpdatePaths.set(path, value, in: &root)
                    } else {
                        UpdatePaths.unset(path, in: &root)
                    }
                }
                if case .document(let updated) = root { output.append(updated) }
            }
            return output
        case .unset(let paths):
            // `$unset` is an exclusion `$project`: a path through an array of documents removes
            // the field from each of them.
            var exclusion = BSONDocument()
            for path in paths { exclusion[path.components.joined(separator: ".")] = .int32(0) }
            let projection = try Projection(exclusion)
            var output: [BSONDocument] = []
            for document in documents { output.append(try projection.apply(to: document)) }
            return output
        case .sort(let specification):
            return specification.sort(documents)
        case .limit(let count):
            return Array(documents.prefix(count))
        case .skip(let count):
            return Array(documents.dropFirst(count))
        case .group(let idExpression, let accumulators):
            var order: [BSONValue] = []
            var groups: [GroupKey: [Accumulator.State]] = [:]
            for document in documents {
                try OperationContext.checkpoint()
                let ctx = context(document)
                let id = try idExpression.evaluate(ctx) ?? .null
                let key = GroupKey(id)
                if groups[key] == nil {
                    order.append(id)
                    var states: [Accumulator.State] = []
                    for accumulator in accumulators { states.append(try accumulator.1.makeState(ctx)) }
                    groups[key] = states
                }
                for (index, accumulator) in accumulators.enumerated() {
                    try groups[key]![index].add(try accumulator.1.argument.evaluate(ctx))
                }
            }
            return order.map { id in
                var output: BSONDocument = ["_id": id]
                let states = groups[GroupKey(id)] ?? []
                for (index, accumulator) in accumulators.enumerated() { output[accumulator.0] = states[index].result }
                return output
            }
        case .unwind(let path, let includeArrayIndex, let preserve):
            var output: [BSONDocument] = []
            for document in documents {
                let value = path.value(in: document)
                switch value {
                case .array(let elements) where !elements.isEmpty:
                    for (index, element) in elements.enumerated() {
                        var root = BSONValue.document(document)
                        try UpdatePaths.set(path.components, element, in: &root)
                        if let includeArrayIndex { try UpdatePaths.set([includeArrayIndex], .int64(Int64(index)), in: &root) }
                        if let unwound = root.documentValue { output.append(unwound) }
                    }
                case .array, nil, .null?:
                    if preserve {
                        var copy = document
                        if let includeArrayIndex { copy[includeArrayIndex] = .null }
                        if case .array? = value { var root = BSONValue.document(copy); UpdatePaths.unset(path.components, in: &root); copy = root.documentValue ?? copy }
                        output.append(copy)
                    }
                case let scalar?:
                    var copy = document
                    if let includeArrayIndex { copy[includeArrayIndex] = .null }
                    _ = scalar
                    output.append(copy)
                }
            }
            return output
        case .count(let field):
            guard !documents.isEmpty else { return [] }
            return [[field: .int32(Int32(clamping: documents.count))]]
        case .sortByCount(let expression):
            let grouped = try apply(
                .group(id: expression, accumulators: [("count", try Accumulator(.document(["$sum": .int32(1)])))]),
                to: documents, store: store, nowMilliseconds: nowMilliseconds)
            return try SortSpecification(["count": .int32(-1)]).sort(grouped)
        case .lookup(let from, let localField, let foreignField, let target):
            var output: [BSONDocument] = []
            var bytes = 0
            // Where `from` is read, resolved at the first document (a view's documents once).
            var source: (collection: String, viewDocuments: [BSONDocument]?)?
            for document in documents {
                var values = localField.leafValues(in: document).map { $0 ?? .null }
                if values.isEmpty { values = [.null] }
                let filter = Filter.field(foreignField, [.in(values, [])])
                guard let store else { throw QueryError(.location(40602), "$lookup is not allowed in a collection-less aggregate") }
                if source == nil {
                    let resolved = try Pipeline.source(from, in: store)
                    source = (resolved.collection, try Pipeline.viewDocuments(resolved, store: store, now: nowMilliseconds))
                }
                let found = try Pipeline.joined(filter, source: source!.collection, viewDocuments: source!.viewDocuments, store: store)
                    .map { ScanMatch(rid: 0, document: $0, position: nil) }
                // The joined documents are held in memory: bounded like any blocking stage.
                var joined = document.encodedSize
                for match in found { joined += match.document.encodedSize }
                bytes += joined
                try OperationContext.reserveMemory(joined)
                guard bytes <= QueryEngineLimits.aggregationStageBytesMax else {
                    throw QueryError(.exceededMemoryLimit, "$lookup exceeded the memory limit of \(QueryEngineLimits.aggregationStageBytesMax / (1024 * 1024)) MB for a stage")
                }
                let matched = found.map { BSONValue.document($0.document) }
                var copy = document
                var root = BSONValue.document(copy)
                try UpdatePaths.set(target.split(separator: ".").map(String.init), .array(matched), in: &root)
                copy = root.documentValue ?? copy
                output.append(copy)
            }
            return output
        case .collectionStats:
            throw QueryError(.location(40602), "$collStats is only valid as the first stage in a pipeline")
        case .indexStats:
            throw QueryError(.location(40602), "$indexStats is only valid as the first stage in a pipeline")
        case .geoNear:
            throw QueryError(.location(40603), "$geoNear was not the first stage in the pipeline.")
        case .replaceRoot(let expression):
            var output: [BSONDocument] = []
            for document in documents {
                guard case .document(let newRoot)? = try expression.evaluate(context(document)) else {
                    throw QueryError(.location(40228), "'newRoot' expression must evaluate to an object")
                }
                output.append(newRoot)
            }
            return output
        default:
            return try applyMore(stage, to: documents, store: store, nowMilliseconds: nowMilliseconds, context: context)
        }
    }
}

/// A hashable wrapper that groups values MongoDB considers equal (1, 1.0 and NumberLong(1)).
struct GroupKey: Hashable {
    let value: BSONValue
    init(_ value: BSONValue) { self.value = value }
    static func == (lhs: GroupKey, rhs: GroupKey) -> Bool { BSONComparison.compare(lhs.value, rhs.value) == 0 }
    func hash(into hasher: inout Hasher) { value.hashForComparison(into: &hasher) }
}
