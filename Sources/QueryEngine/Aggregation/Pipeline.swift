/// An aggregation pipeline over one collection.
///
/// A leading `$match`, `$sort`, `$skip` and `$limit` run as a `find` (using indexes); the
/// common `count_documents` shape (`$match` then `$group` by a constant with `$sum: 1`) becomes
/// an index count. The other stages run in memory within `aggregationStageBytesMax`.
public struct Pipeline: Sendable {
    indirect enum Stage: Sendable {
        case match(Filter)
        case project(Projection)
        case addFields([(String, Expression)])
        case unset([FieldPath])
        case sort(SortSpecification)
        case limit(Int)
        case skip(Int)
        case group(id: Expression, accumulators: [(String, Accumulator)])
        case unwind(path: FieldPath, includeArrayIndex: String?, preserveNullAndEmpty: Bool)
        case count(String)
        case sortByCount(Expression)
        case lookup(from: String, localField: FieldPath, foreignField: FieldPath, as: String)
        case replaceRoot(Expression)
        /// `$collStats`; must be the first stage. Drivers use `{count: {}}` for estimated counts.
        case collectionStats(count: Bool, storageStats: Bool)
        /// `$indexStats`; must be the first stage: one document per index with its use counts.
        case indexStats
        /// `$lookup` with a sub-pipeline (and `let`), optionally correlated by local/foreign fields.
        case lookupPipeline(from: String, localField: FieldPath?, foreignField: FieldPath?, variables: BSONDocument, pipeline: Pipeline, as: String)
        case facet([(String, Pipeline)])
        case bucket(groupBy: Expression, boundaries: [BSONValue], defaultBucket: BSONValue?, output: [(String, Accumulator)])
        case bucketAuto(groupBy: Expression, buckets: Int, output: [(String, Accumulator)], granularity: GranularityRounder?)
        case sample(Int)
        case unionWith(collection: String, pipeline: Pipeline?)
        case documents(Expression)
        case redact(Expression)
        /// `$setWindowFields`: fields computed over windows of each partition.
        case setWindowFields(WindowFieldsSpecification)
        /// `$densify`: documents generated to fill the gaps of a numeric or date sequence.
        case densify(DensifySpecification)
        /// `$graphLookup`: a breadth-first search through a collection of the same database.
        case graphLookup(GraphLookupSpecification)
        /// `$geoNear`: the first stage; `run` answers it (`GeoNearStage`).
        case geoNear(GeoNearStage)
        /// `$out` and `$merge`: the last stage; the command applies them (`applyOutput`).
        case out(collection: String, database: String?)
        case merge(MergeSpecification, database: String?)
    }

    let stages: [Stage]
    /// The original `$match` document, for `explain`.
    let leadingFilter: BSONDocument

    /// `count_documents`' shape: an optional `$match`, then `$group` by a constant `_id` with one
    /// `{$sum: 1}` (or `$count`) field.
    struct CountShape {
        let filter: Filter
        let id: BSONValue
        let field: String
    }

    var countShape: CountShape? {
        guard stages.count <= 2 else { return nil }
        var filter = Filter.alwaysTrue
        var rest = stages[...]
        if case .match(let leading)? = rest.first {
            filter = leading
            rest = rest.dropFirst()
        }
        guard rest.count == 1, case .group(.literal(let id), let accumulators)? = rest.first, accumulators.count == 1,
            [.sum, .count].contains(accumulators[0].1.op), case .literal(let increment) = accumulators[0].1.argument,
            increment.int64Value == 1
        else { return nil }
        return CountShape(filter: filter, id: id, field: accumulators[0].0)
    }

    /// The leading `$match` filter when the whole pipeline only counts, else `nil`.
    public var countOnlyFilter: Filter? { countShape?.filter }

    /// The output of a counting pipeline (see `countOnlyFilter`) for `total` matches: one
    /// document, or none when nothing matched, as `$group` gives.
    public func countResult(_ total: Int) -> [BSONDocument] {
        guard let shape = countShape, total > 0 else { return [] }
        let count: BSONValue = total <= Int(Int32.max) ? .int32(Int32(total)) : .int64(Int64(total))
        return [["_id": shape.id, shape.field: count]]
    }

    /// A pipeline of already parsed stages (a `$lookup` sub-pipeline with its join prepended).
    init(stages: [Stage]) {
        self.stages = stages
        leadingFilter = BSONDocument()
    }

    /// Whether the first stage is `$documents` (the pipeline reads no collection).
    public var startsWithDocuments: Bool {
        if case .documents? = stages.first { return true }
        return false
    }

    /// Parses the stages of an `aggregate` command.
    public init(_ stages: [BSONValue]) throws(QueryError) {
        // MongoDB's `internalPipelineLengthLimit`.
        guard stages.count <= QueryEngineLimits.pipelineStagesMax else {
            throw QueryError(.location(7749501), "Pipeline length must be no longer than \(QueryEngineLimits.pipelineStagesMax) stages.")
        }
        var parsed: [Stage] = []
        var leading = BSONDocument()
        for (index, value) in stages.enumerated() {
            guard case .document(let stage) = value, stage.count == 1, let name = stage.firstKey else {
                throw QueryError(.location(40323), "A pipeline stage specification object must contain exactly one field.")
            }
            let argument = stage[0].value
            if (name == "$collStats" || name == "$indexStats") && index != 0 {
                throw QueryError(.location(40602), "\(name) is only valid as the first stage in a pipeline")
            }
            if (name == "$out" || name == "$merge") && index != stages.count - 1 {
                throw QueryError(.location(40601), "\(name) can only be the final stage in the pipeline")
            }
            if name == "$geoNear" && index != 0 {
                throw QueryError(.location(40603), "$geoNear was not the first stage in the pipeline.")
            }
            if name == "$documents" && index != 0 {
                throw QueryError(.location(40602), "$documents is only valid as the first stage in a pipeline")
            }
            if index == 0, name == "$match", case .document(let filter) = argument { leading = filter }
            let parsedStage = try Pipeline.parseStage(name, argument)
            if index > 0, case .match(let filter) = parsedStage, filter.hasText {
                throw QueryError(.location(17313), "$match with $text is only allowed as the first pipeline stage")
            }
            parsed.append(parsedStage)
        }
        self.stages = parsed
        self.leadingFilter = leading
    }

    // swiftlint:disable:next cyclomatic_complexity
    private static func parseStage(_ name: String, _ argument: BSONValue) throws(QueryError) -> Stage {
        switch name {
        case "$match":
            guard case .document(let filter) = argument else { throw QueryError(.location(15959), "the match filter must be an expression in an object") }
            return .match(try Filter(filter))
        case "$project":
            guard case .document(let spec) = argument, !spec.isEmpty else { throw QueryError(.location(40177), "$project specification must be an object") }
            return .project(try Projection(spec))
        case "$addFields", "$set":
            guard case .document(let spec) = argument else { throw QueryError(.location(40272), "\(name) specification stage must be an object") }
            var fields: [(String, Expression)] = []
            for element in spec.elements { fields.append((element.key, try Expression(element.value))) }
            return .addFields(fields)
        case "$unset":
            var paths: [FieldPath] = []
            switch argument {
            case .string(let path): paths = [try FieldPath(path)]
            case .array(let items):
                for item in items {
                    guard case .string(let path) = item else { throw QueryError(.location(31120), "$unset specification must be a string or an array of strings") }
                    paths.append(try FieldPath(path))
                }
            default: throw QueryError(.location(31002), "$unset specification must be a string or an array")
            }
            return .unset(paths)
        case "$sort":
            guard case .document(let spec) = argument else { throw QueryError(.location(15973), "the $sort key specification must be an object") }
            return .sort(try SortSpecification(spec))
        case "$limit", "$skip":
            guard let count = argument.int64Value, argument.isNumber, count >= (name == "$limit" ? 1 : 0), let value = Int(exactly: count) else {
                throw QueryError(.location(name == "$limit" ? 15958 : 15956), "the \(name) must be a \(name == "$limit" ? "positive" : "non-negative") number")
            }
            return name == "$limit" ? .limit(value) : .skip(value)
        case "$group":
            guard case .document(let spec) = argument, let id = spec["_id"] else {
                throw QueryError(.location(15955), "a group specification must include an _id")
            }
            var accumulators: [(String, Accumulator)] = []
            for element in spec.elements where element.key != "_id" {
                if element.key.contains(".") { throw QueryError(.location(40235), "The field name '\(element.key)' cannot contain '.'") }
                accumulators.append((element.key, try Accumulator(element.value)))
            }
            return .group(id: try Expression(id), accumulators: accumulators)
        case "$unwind":
            switch argument {
            case .string(let path) where path.hasPrefix("$"):
                return .unwind(path: try FieldPath(String(path.dropFirst())), includeArrayIndex: nil, preserveNullAndEmpty: false)
            case .document(let spec):
                guard case .string(let path)? = spec["path"], path.hasPrefix("$") else {
                    throw QueryError(.location(28812), "no path specified to $unwind stage")
                }
                return .unwind(
                    path: try FieldPath(String(path.dropFirst())), includeArrayIndex: spec["includeArrayIndex"]?.stringValue,
                    preserveNullAndEmpty: spec["preserveNullAndEmptyArrays"]?.isTruthy ?? false)
            default:
                throw QueryError(.location(28808), "$unwind requires a path prefixed with '$'")
            }
        case "$count":
            guard case .string(let field) = argument, !field.isEmpty, !field.hasPrefix("$"), !field.contains(".") else {
                throw QueryError(.location(40156), "the count field must be a non-empty string without '$' or '.'")
            }
            return .count(field)
        case "$sortByCount":
            return .sortByCount(try Expression(argument))
        case "$lookup":
            guard case .document(let spec) = argument, case .string(let from)? = spec["from"], case .string(let target)? = spec["as"] else {
                throw QueryError(.failedToParse, "$lookup requires 'from' and 'as'")
            }
            for key in spec.keys where !["from", "as", "localField", "foreignField", "let", "pipeline"].contains(key) {
                throw QueryError(.location(9), "unknown argument to $lookup: \(key)")
            }
            var local: FieldPath?
            var foreign: FieldPath?
            if spec["localField"] != nil || spec["foreignField"] != nil {
                guard case .string(let localText)? = spec["localField"], case .string(let foreignText)? = spec["foreignField"] else {
                    throw QueryError(.failedToParse, "$lookup requires both or neither of 'localField' and 'foreignField' to be specified")
                }
                local = try FieldPath(localText)
                foreign = try FieldPath(foreignText)
            }
            guard spec["pipeline"] != nil || spec["let"] != nil else {
                guard let local, let foreign else {
                    throw QueryError(.failedToParse, "$lookup requires either 'pipeline' or both 'localField' and 'foreignField' to be specified")
                }
                return .lookup(from: from, localField: local, foreignField: foreign, as: target)
            }
            guard case .array(let inner)? = spec["pipeline"] else {
                throw QueryError(.failedToParse, "$lookup argument 'pipeline' must be an array, is type \(spec["pipeline"]?.typeAlias ?? "missing")")
            }
            var variables = BSONDocument()
            if let given = spec["let"] {
                guard case .document(let document) = given else { throw QueryError(.failedToParse, "$lookup argument 'let' must be an object, is type \(given.typeAlias)") }
                for element in document.elements { try ExpressionScope.validateName(element.key) }
                variables = document
            }
            let subPipeline = try Pipeline(inner)
            guard subPipeline.outputTarget == nil else { throw QueryError(.location(51047), "$out and $merge are not allowed within a $lookup stage") }
            return .lookupPipeline(from: from, localField: local, foreignField: foreign, variables: variables, pipeline: subPipeline, as: target)
        case "$replaceRoot":
            guard case .document(let spec) = argument, let newRoot = spec["newRoot"] else {
                throw QueryError(.location(40231), "no newRoot specified for the $replaceRoot stage")
            }
            return .replaceRoot(try Expression(newRoot))
        case "$replaceWith":
            return .replaceRoot(try Expression(argument))
        case "$collStats":
            guard case .document(let spec) = argument else {
                throw QueryError(.location(5447000), "$collStats must take a nested object")
            }
            for key in spec.keys where !["count", "storageStats", "latencyStats", "queryExecStats"].contains(key) {
                throw QueryError(.location(40415), "BSON field '$collStats.\(key)' is an unknown field.")
            }
            return .collectionStats(count: spec["count"] != nil, storageStats: spec["storageStats"] != nil)
        case "$indexStats":
            guard case .document(let spec) = argument, spec.isEmpty else {
                throw QueryError(.location(28803), "The $indexStats stage specification must be an empty object")
            }
            return .indexStats
        default:
            return try parseMoreStage(name, argument)
        }
    }
}
