/// The stages that hold sub-pipelines or group into ranges: `$facet`, `$bucket`, `$bucketAuto`,
/// `$lookup` with a pipeline, `$unionWith`, `$sample`, `$documents` and `$redact`.
extension Pipeline {
    /// Parses the stages not handled by `parseStage`.
    static func parseMoreStage(_ name: String, _ argument: BSONValue) throws(QueryError) -> Stage {
        switch name {
        case "$facet":
            guard case .document(let spec) = argument, !spec.isEmpty else {
                throw QueryError(.location(40169), "the $facet specification must be a non-empty object")
            }
            var facets: [(String, Pipeline)] = []
            for element in spec.elements {
                guard case .array(let stages) = element.value, !stages.isEmpty else {
                    throw QueryError(.location(40170), "arguments to $facet must be non-empty arrays, found \(element.value.typeAlias) for '\(element.key)'")
                }
                for case .document(let stage) in stages {
                    if let inner = stage.firstKey, ["$facet", "$out", "$merge", "$collStats", "$documents", "$indexStats"].contains(inner) {
                        throw QueryError(.location(40600), "\(inner) is not allowed to be used within a $facet stage")
                    }
                }
                facets.append((element.key, try Pipeline(stages)))
            }
            return .facet(facets)
        case "$bucket":
            guard case .document(let spec) = argument else {
                throw QueryError(.location(40201), "Argument to $bucket stage must be an object, but found type: \(argument.typeAlias)")
            }
            for key in spec.keys where !["groupBy", "boundaries", "default", "output"].contains(key) {
                throw QueryError(.location(40197), "Unrecognized option to $bucket: \(key)")
            }
            let groupBy = try groupByExpression(spec["groupBy"], "$bucket", code: 40202)
            guard case .array(let boundaries)? = spec["boundaries"], boundaries.count >= 2 else {
                throw QueryError(.location(40192), "The $bucket 'boundaries' field must be an array of at least two values")
            }
            for (lower, upper) in zip(boundaries, boundaries.dropFirst()) {
                guard lower.canonicalRank == upper.canonicalRank else {
                    throw QueryError(.location(40193), "All values in the 'boundaries' option to $bucket must have the same type. Found conflicting types \(lower.typeAlias) and \(upper.typeAlias).")
                }
                guard BSONComparison.compare(lower, upper) < 0 else {
                    throw QueryError(.location(40194), "The 'boundaries' option to $bucket must be sorted in ascending order")
                }
            }
            let fallback = spec["default"]
            if let fallback, fallback.canonicalRank == boundaries[0].canonicalRank,
                BSONComparison.compare(fallback, boundaries[0]) >= 0, BSONComparison.compare(fallback, boundaries[boundaries.count - 1]) < 0
            {
                throw QueryError(.location(40199), "The $bucket 'default' field must be less than the lowest boundary or greater than or equal to the highest boundary.")
            }
            return .bucket(groupBy: groupBy, boundaries: boundaries, defaultBucket: fallback, output: try bucketOutput(spec["output"], "$bucket"))
        case "$bucketAuto":
            guard case .document(let spec) = argument else {
                throw QueryError(.location(40240), "The argument to $bucketAuto must be an object, but found type: \(argument.typeAlias)")
            }
            for key in spec.keys where !["groupBy", "buckets", "output", "granularity"].contains(key) {
                throw QueryError(.location(40245), "Unrecognized option to $bucketAuto: \(key).")
            }
            var granularity: GranularityRounder?
            if let given = spec["granularity"] {
                guard case .string(let name) = given else {
                    throw QueryError(.location(40261), "The $bucketAuto 'granularity' field must be a string, but found type: \(given.typeAlias)")
                }
                granularity = try GranularityRounder(name)
            }
            let groupBy = try groupByExpression(spec["groupBy"], "$bucketAuto", code: 40239)
            guard let count = spec["buckets"], count.isNumber, let buckets = count.int64Value, buckets > 0, buckets <= Int32.max else {
                throw QueryError(.location(40243), "The $bucketAuto 'buckets' field must be greater than 0")
            }
            return .bucketAuto(
                groupBy: groupBy, buckets: Int(buckets), output: try bucketOutput(spec["output"], "$bucketAuto"), granularity: granularity)
        case "$sample":
            guard case .document(let spec) = argument else { throw QueryError(.location(28745), "the $sample stage specification must be an object") }
            guard let size = spec["size"], size.isNumber, let count = size.int64Value else {
                throw QueryError(.location(28746), "size argument to $sample must be a number")
            }
            guard count >= 0 else { throw QueryError(.location(28747), "size argument to $sample must not be negative") }
            return .sample(Int(clamping: count))
        case "$unionWith":
            switch argument {
            case .string(let collection):
                return .unionWith(collection: collection, pipeline: nil)
            case .document(let spec):
                for key in spec.keys where key != "coll" && key != "pipeline" {
                    throw QueryError(.location(40415), "BSON field '$unionWith.\(key)' is an unknown field.")
                }
                guard case .string(let collection)? = spec["coll"] else {
                    throw QueryError(.failedToParse, "$unionWith requires 'coll' (a collection of this database)")
                }
                var inner: Pipeline?
                if let stages = spec["pipeline"] {
                    guard case .array(let items) = stages else { throw QueryError(.typeMismatch, "$unionWith's 'pipeline' must be an array") }
                    inner = try Pipeline(items)
                    guard inner?.outputTarget == nil else { throw QueryError(.location(31441), "$out and $merge are not allowed within a $unionWith stage") }
                }
                return .unionWith(collection: collection, pipeline: inner)
            default:
                throw QueryError(.failedToParse, "the $unionWith stage specification must be an object or string, but found \(argument.typeAlias)")
            }
        case "$documents":
            return .documents(try Expression(argument))
        case "$redact":
            return .redact(try Expression(argument))
        case "$out", "$merge":
            return try parseOutput(name, argument)
        case "$graphLookup":
            return .graphLookup(try GraphLookupSpecification(argument))
        case "$setWindowFields":
            return .setWindowFields(try WindowFieldsSpecification(argument))
        case "$densify":
            return .densify(try DensifySpecification(argument))
        case "$fill":
            return try FillStage.parse(argument)
        case "$geoNear":
            return .geoNear(try GeoNearStage(argument))
        case "$search", "$searchMeta":
            throw QueryError(.unknownStage, "\(name) is not supported by StratosDB yet")
        case "$changeStream":
            throw QueryError(.location(40573), "The $changeStream stage is not supported by StratosDB yet (change streams need a replica set)")
        default:
            throw QueryError(.unknownStage, "Unrecognized pipeline stage name: '\(name)'")
        }
    }

    /// Where `$lookup`, `$unionWith` and `$graphLookup` read `name`: the collection itself, or
    /// for a view the collection under it and the view's stages, which run first.
    static func source(_ name: String, in store: DatabaseStore) throws(QueryError) -> (collection: String, stages: [Stage], isView: Bool) {
        guard let (collection, stages) = try store.resolveView(name) else { return (name, [], false) }
        return (collection, try Pipeline(stages).stages, true)
    }

    /// A view's documents, computed once for a stage that joins against it (nil for a
    /// collection, which the stage searches through its indexes).
    static func viewDocuments(
        _ source: (collection: String, stages: [Stage], isView: Bool), store: DatabaseStore, now: Int64
    ) throws(QueryError) -> [BSONDocument]? {
        guard source.isView else { return nil }
        return try Pipeline(stages: source.stages).run(store, collection: source.collection, nowMilliseconds: now)
    }

    /// The documents of a join's source that pass `filter`: from the view's documents, or
    /// searched in the collection.
    static func joined(
        _ filter: Filter, source: String, viewDocuments: [BSONDocument]?, store: DatabaseStore
    ) throws(QueryError) -> [BSONDocument] {
        guard let viewDocuments else { return try store.matches(in: source, filter: filter).map(\.document) }
        return try matching(filter, in: viewDocuments)
    }

    /// The documents that pass `filter` (`$match` over documents in memory).
    static func matching(_ filter: Filter, in documents: [BSONDocument]) throws(QueryError) -> [BSONDocument] {
        var output: [BSONDocument] = []
        for document in documents {
            try OperationContext.checkpoint()
            RegexFailure.reset()
            let matched = filter.matches(document)
            try RegexFailure.check()
            if matched { output.append(document) }
        }
        return output
    }

    private static func groupByExpression(_ value: BSONValue?, _ stage: String, code: Int32) throws(QueryError) -> Expression {
        switch value {
        case .string(let path)? where path.hasPrefix("$"): return try Expression(.string(path))
        case .document(let document)? where document.firstKey?.hasPrefix("$") == true: return try Expression(.document(document))
        default:
            throw QueryError(
                .location(code), "\(stage) 'groupBy' field must be defined as a $-prefixed path or an expression object, but found: \(value?.typeAlias ?? "missing")")
        }
    }

    private static func bucketOutput(_ value: BSONValue?, _ stage: String) throws(QueryError) -> [(String, Accumulator)] {
        guard let value else { return [("count", try Accumulator(.document(["$sum": .int32(1)])))] }
        guard case .document(let spec) = value else {
            throw QueryError(.location(40196), "The \(stage) 'output' field must be an object, but found type: \(value.typeAlias)")
        }
        var output: [(String, Accumulator)] = []
        for element in spec.elements { output.append((element.key, try Accumulator(element.value))) }
        return output
    }

    /// Runs the stages added by `parseMoreStage`.
    func applyMore(
        _ stage: Stage, to documents: [BSONDocument], store: DatabaseStore?, nowMilliseconds: Int64,
        context: (BSONDocument) -> ExpressionContext
    ) throws(QueryError) -> [BSONDocument] {
        switch stage {
        case .facet(let facets):
            var output = BSONDocument()
            var bytes = 0
            for (name, pipeline) in facets {
                let results = try pipeline.runStages(over: documents, store: store, nowMilliseconds: nowMilliseconds)
                for document in results { bytes += document.encodedSize }
                guard bytes <= QueryEngineLimits.documentSizeBytesMax else {
                    throw QueryError(.documentTooLarge, "$facet's output would be larger than the 16 MB document limit")
                }
                output[name] = .array(results.map { .document($0) })
            }
            return [output]
        case .bucket(let groupBy, let boundaries, let fallback, let output):
            var states: [Int: [Accumulator.State]] = [:]
            var fallbackStates: [Accumulator.State]?
            for document in documents {
                try OperationContext.checkpoint()
                let ctx = context(document)
                let value = try groupBy.evaluate(ctx) ?? .null
                var bucket: Int?
                if value.canonicalRank == boundaries[0].canonicalRank, BSONComparison.compare(value, boundaries[0]) >= 0 {
                    bucket = (0..<boundaries.count - 1).first { BSONComparison.compare(value, boundaries[$0 + 1]) < 0 }
                }
                if let bucket {
                    if states[bucket] == nil { states[bucket] = try Self.freshStates(output, ctx) }
                    for (index, accumulator) in output.enumerated() { try states[bucket]![index].add(try accumulator.1.argument.evaluate(ctx)) }
                } else {
                    guard fallback != nil else {
                        throw QueryError(.location(40066), "$switch could not find a matching branch for an input, and no default was specified.")
                    }
                    if fallbackStates == nil { fallbackStates = try Self.freshStates(output, ctx) }
                    for (index, accumulator) in output.enumerated() { try fallbackStates![index].add(try accumulator.1.argument.evaluate(ctx)) }
                }
            }
            var results: [BSONDocument] = []
            for bucket in states.keys.sorted() {
                results.append(Self.bucketDocument(id: boundaries[bucket], output, states[bucket]!))
            }
            if let fallback, let fallbackStates { results.append(Self.bucketDocument(id: fallback, output, fallbackStates)) }
            return results
        case .bucketAuto(let groupBy, let buckets, let output, let granularity):
            var keyed: [(key: BSONValue, document: BSONDocument)] = []
            for document in documents {
                try OperationContext.checkpoint()
                let key = try groupBy.evaluate(context(document)) ?? .null
                if granularity != nil { try GranularityRounder.check(key) }
                keyed.append((key, document))
            }
            let sorted = keyed.enumerated().sorted { a, b in
                let order = BSONComparison.compare(a.element.key, b.element.key)
                return order != 0 ? order < 0 : a.offset < b.offset
            }.map(\.element)
            guard !sorted.isEmpty else { return [] }
            let approximate = max(1, Int((Double(sorted.count) / Double(buckets)).rounded()))
            var ranges: [Range<Int>] = []
            var roundedMaxima: [BSONValue] = []
            var start = 0
            while start < sorted.count {
                var end = ranges.count + 1 == buckets ? sorted.count : min(sorted.count, start + approximate)
                // Equal values stay in one bucket.
                while end < sorted.count, BSONComparison.compare(sorted[end].key, sorted[end - 1].key) == 0 { end += 1 }
                if let granularity {
                    // The bucket ends at its largest value rounded up: the values below that
                    // boundary join it too.
                    let boundary = granularity.roundUp(sorted[end - 1].key)
                    while end < sorted.count, BSONComparison.compare(sorted[end].key, boundary) < 0 { end += 1 }
                    roundedMaxima.append(boundary)
                }
                ranges.append(start..<end)
                start = end
            }
            var results: [BSONDocument] = []
            for (index, range) in ranges.enumerated() {
                var states = try Self.freshStates(output, context(sorted[range.lowerBound].document))
                for item in sorted[range] {
                    let ctx = context(item.document)
                    for (position, accumulator) in output.enumerated() { try states[position].add(try accumulator.1.argument.evaluate(ctx)) }
                }
                let bounds: (min: BSONValue, max: BSONValue)
                if let granularity {
                    // Buckets meet: each starts where the one before ends; the first starts at its
                    // smallest value rounded down.
                    bounds = (index == 0 ? granularity.roundDown(sorted[0].key) : roundedMaxima[index - 1], roundedMaxima[index])
                } else {
                    bounds = (
                        sorted[range.lowerBound].key,
                        index + 1 < ranges.count ? sorted[ranges[index + 1].lowerBound].key : sorted[range.upperBound - 1].key
                    )
                }
                results.append(Self.bucketDocument(id: .document(["min": bounds.min, "max": bounds.max]), output, states))
            }
            return results
        case .sample(let size):
            return Array(documents.shuffled().prefix(size))
        case .unionWith(let collection, let pipeline):
            guard let store else { throw QueryError(.location(40602), "$unionWith is not allowed in a collection-less aggregate") }
            try NamespaceRules.validateCollection(collection)
            let source = try Pipeline.source(collection, in: store)
            let other = try Pipeline(stages: source.stages + (pipeline?.stages ?? [])).run(store, collection: source.collection, nowMilliseconds: nowMilliseconds)
            var bytes = 0
            for document in other { bytes += document.encodedSize }
            try OperationContext.reserveMemory(bytes)
            return documents + other
        case .lookupPipeline(let from, let localField, let foreignField, let variables, let pipeline, let target):
            guard let store else { throw QueryError(.location(40602), "$lookup is not allowed in a collection-less aggregate") }
            let source = try Pipeline.source(from, in: store)
            let viewDocuments = try Pipeline.viewDocuments(source, store: store, now: nowMilliseconds)
            var output: [BSONDocument] = []
            var bytes = 0
            for document in documents {
                try OperationContext.checkpoint()
                let bound = try ExpressionScope.evaluate(variables, in: context(document))
                var inner = pipeline
                if let localField, let foreignField {
                    var values = localField.leafValues(in: document).map { $0 ?? .null }
                    if values.isEmpty { values = [.null] }
                    inner = Pipeline(stages: [.match(Filter.field(foreignField, [.in(values, [])]))] + pipeline.stages)
                }
                let found = try ExpressionScope.with(variables: bound, now: nowMilliseconds) { () throws(QueryError) in
                    // A view's documents were computed once; a collection is searched each time.
                    if let viewDocuments { return try inner.runStages(over: viewDocuments, store: store, nowMilliseconds: nowMilliseconds) }
                    return try inner.run(store, collection: source.collection, nowMilliseconds: nowMilliseconds)
                }
                var joined = document.encodedSize
                for match in found { joined += match.encodedSize }
                bytes += joined
                try OperationContext.reserveMemory(joined)
                guard bytes <= QueryEngineLimits.aggregationStageBytesMax else {
                    throw QueryError(.exceededMemoryLimit, "$lookup exceeded the memory limit of \(QueryEngineLimits.aggregationStageBytesMax / (1024 * 1024)) MB for a stage")
                }
                var root = BSONValue.document(document)
                try UpdatePaths.set(target.split(separator: ".").map(String.init), .array(found.map { .document($0) }), in: &root)
                output.append(root.documentValue ?? document)
            }
            return output
        case .documents(let expression):
            var ctx = context(BSONDocument())
            ctx.now = nowMilliseconds
            guard case .array(let items)? = try expression.evaluate(ctx) else {
                throw QueryError(.location(5858203), "an array is expected for $documents")
            }
            var output: [BSONDocument] = []
            for item in items {
                guard case .document(let document) = item else {
                    throw QueryError(.typeMismatch, "$documents requires every element to be an object, found \(item.typeAlias)")
                }
                output.append(document)
            }
            return output
        case .redact(let expression):
            var output: [BSONDocument] = []
            for document in documents {
                try OperationContext.checkpoint()
                if let kept = try Self.redact(document, root: document, expression, now: nowMilliseconds) { output.append(kept) }
            }
            return output
        case .out, .merge:
            return documents  // Written by the command once the pipeline has run (`applyOutput`).
        case .setWindowFields(let specification):
            return try specification.apply(documents, context: context)
        case .densify(let specification):
            return try specification.apply(documents)
        case .graphLookup(let specification):
            guard let store else { throw QueryError(.location(40602), "$graphLookup is not allowed in a collection-less aggregate") }
            let source = try Pipeline.source(specification.from, in: store)
            let viewDocuments = try Pipeline.viewDocuments(source, store: store, now: nowMilliseconds)
            var output: [BSONDocument] = []
            var bytes = 0
            for document in documents {
                try OperationContext.checkpoint()
                let found = try specification.search(
                    from: document, context: context(document), store: store, source: source.collection, viewDocuments: viewDocuments, bytes: &bytes)
                var root = BSONValue.document(document)
                try UpdatePaths.set(specification.as.split(separator: ".").map(String.init), .array(found.map { .document($0) }), in: &root)
                output.append(root.documentValue ?? document)
            }
            return output
        default:
            throw QueryError(.internalError, "stage cannot run here")
        }
    }

    private static func freshStates(_ output: [(String, Accumulator)], _ context: ExpressionContext) throws(QueryError) -> [Accumulator.State] {
        var states: [Accumulator.State] = []
        for accumulator in output { states.append(try accumulator.1.makeState(context)) }
        return states
    }

    private static func bucketDocument(id: BSONValue, _ output: [(String, Accumulator)], _ states: [Accumulator.State]) -> BSONDocument {
        var document: BSONDocument = ["_id": id]
        for (index, accumulator) in output.enumerated() { document[accumulator.0] = states[index].result }
        return document
    }

    /// `$redact` on one level: `$$KEEP` keeps it whole, `$$PRUNE` drops it, `$$DESCEND` keeps
    /// its fields and applies the expression to each embedded document (also inside arrays).
    private static func redact(_ document: BSONDocument, root: BSONDocument, _ expression: Expression, now: Int64) throws(QueryError) -> BSONDocument? {
        var context = ExpressionContext(root: root)
        context.current = .document(document)
        context.now = now
        switch try expression.evaluate(context) {
        case .string("$$KEEP")?: return document
        case .string("$$PRUNE")?: return nil
        case .string("$$DESCEND")?:
            var output = BSONDocument()
            for element in document.elements {
                switch element.value {
                case .document(let inner):
                    if let kept = try redact(inner, root: root, expression, now: now) { output[element.key] = .document(kept) }
                case .array(let items):
                    var kept: [BSONValue] = []
                    for item in items {
                        if case .document(let inner) = item {
                            if let redacted = try redact(inner, root: root, expression, now: now) { kept.append(.document(redacted)) }
                        } else {
                            kept.append(item)
                        }
                    }
                    output[element.key] = .array(kept)
                default:
                    output[element.key] = element.value
                }
            }
            return output
        default:
            throw QueryError(.location(17053), "$redact's expression should not return anything aside from the variables $$KEEP, $$DESCEND, and $$PRUNE")
        }
    }
}

/// `$graphLookup`'s arguments, and its search.
struct GraphLookupSpecification: Sendable {
    let from: String
    let startWith: Expression
    let connectFromField: FieldPath
    let connectToField: FieldPath
    let `as`: String
    let maxDepth: Int?
    let depthField: String?
    let restriction: Filter?

    init(_ argument: BSONValue) throws(QueryError) {
        guard case .document(let spec) = argument else { throw QueryError(.location(40327), "$graphLookup must be an object") }
        for key in spec.keys where !["from", "startWith", "connectFromField", "connectToField", "as", "maxDepth", "depthField", "restrictSearchWithMatch"].contains(key) {
            throw QueryError(.location(40104), "Unknown argument to $graphLookup: \(key)")
        }
        guard case .string(let from)? = spec["from"] else { throw QueryError(.failedToParse, "$graphLookup requires 'from' to be a string") }
        guard let start = spec["startWith"] else { throw QueryError(.location(40105), "$graphLookup requires 'startWith'") }
        guard case .string(let connectFrom)? = spec["connectFromField"], case .string(let connectTo)? = spec["connectToField"],
            case .string(let target)? = spec["as"]
        else {
            throw QueryError(.location(40105), "$graphLookup requires 'connectFromField', 'connectToField' and 'as' to be strings")
        }
        try NamespaceRules.validateCollection(from)
        self.from = from
        startWith = try Expression(start)
        connectFromField = try FieldPath(connectFrom)
        connectToField = try FieldPath(connectTo)
        self.as = target
        if let depth = spec["maxDepth"] {
            guard depth.isNumber, let value = depth.int64Value, value >= 0 else {
                throw QueryError(.location(40101), "$graphLookup.maxDepth must be a non-negative integer")
            }
            maxDepth = Int(clamping: value)
        } else {
            maxDepth = nil
        }
        if let field = spec["depthField"] {
            guard case .string(let name) = field else { throw QueryError(.location(40103), "$graphLookup.depthField must be a string") }
            depthField = name
        } else {
            depthField = nil
        }
        if let restriction = spec["restrictSearchWithMatch"] {
            guard case .document(let filter) = restriction else { throw QueryError(.location(40185), "$graphLookup.restrictSearchWithMatch must be an object") }
            self.restriction = try Filter(filter)
        } else {
            restriction = nil
        }
    }

    /// The documents reachable from `document`: each found once (by `_id`), nearest first.
    /// `source` is the collection `from` reads; for a view, `viewDocuments` are its documents.
    func search(
        from document: BSONDocument, context: ExpressionContext, store: DatabaseStore, source: String, viewDocuments: [BSONDocument]?,
        bytes: inout Int
    ) throws(QueryError) -> [BSONDocument] {
        var frontier: [BSONValue]
        switch try startWith.evaluate(context) {
        case .array(let values)?: frontier = values
        case let value?: frontier = [value]
        case nil: frontier = []
        }
        var seen = Set<[UInt8]>()
        var found: [BSONDocument] = []
        var depth = 0
        while !frontier.isEmpty, maxDepth.map({ depth <= $0 }) ?? true {
            try OperationContext.checkpoint()
            var filter = Filter.field(connectToField, [.in(frontier, [])])
            if let restriction { filter = .and([filter, restriction]) }
            var next: [BSONValue] = []
            for reached in try Pipeline.joined(filter, source: source, viewDocuments: viewDocuments, store: store) {
                let key = IndexKey.idKey(reached["_id"] ?? .null)
                guard seen.insert(key).inserted else { continue }
                var result = reached
                if let depthField { result[depthField] = .int64(Int64(depth)) }
                bytes += result.encodedSize
                try OperationContext.reserveMemory(result.encodedSize)
                guard bytes <= QueryEngineLimits.aggregationStageBytesMax else {
                    throw QueryError(.exceededMemoryLimit, "$graphLookup reached the memory limit of \(QueryEngineLimits.aggregationStageBytesMax / (1024 * 1024)) MB for a stage")
                }
                found.append(result)
                for value in connectFromField.leafValues(in: reached) { if let value { next.append(value) } }
            }
            frontier = next
            depth += 1
        }
        return found
    }
}
