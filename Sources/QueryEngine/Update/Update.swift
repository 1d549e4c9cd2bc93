/// A parsed update: a replacement document or a set of update operators.
public enum Update: Sendable {
    case replacement(BSONDocument)
    case operators([UpdateOperation])
    /// A pipeline-style update: `$addFields`/`$set`, `$project`, `$unset` and
    /// `$replaceRoot`/`$replaceWith` stages, run on each matched document.
    case pipeline(Pipeline)

    static let pipelineStages: Set<String> = ["$addFields", "$set", "$project", "$unset", "$replaceRoot", "$replaceWith"]

    /// Parses a pipeline-style update (`u` given as an array of stages).
    public init(pipeline stages: [BSONValue]) throws(QueryError) {
        for case .document(let stage) in stages {
            if let name = stage.firstKey, !Update.pipelineStages.contains(name) {
                throw QueryError(.location(72), "\(name) is not allowed to be used within an update")
            }
        }
        self = .pipeline(try Pipeline(stages))
    }

    /// One operator applied to one path.
    public struct UpdateOperation: Sendable {
        let kind: String
        let path: [String]
        let argument: BSONValue
        let pullFilter: Filter?
    }

    static let operatorNames: Set<String> = [
        "$set", "$unset", "$inc", "$mul", "$min", "$max", "$rename", "$setOnInsert", "$currentDate", "$push",
        "$pull", "$pullAll", "$addToSet", "$pop", "$bit",
    ]

    /// Parses an update document. An update whose first key starts with `$` is an operator update;
    /// otherwise it replaces the whole document.
    public init(_ document: BSONDocument) throws(QueryError) {
        guard let first = document.firstKey, first.hasPrefix("$") else {
            for element in document.elements where element.key.hasPrefix("$") {
                throw QueryError(.dollarPrefixedFieldName, "The dollar ($) prefixed field '\(element.key)' in '\(element.key)' is not allowed in the context of an update's replacement document.")
            }
            self = .replacement(document)
            return
        }
        var operations: [UpdateOperation] = []
        for element in document.elements {
            guard Update.operatorNames.contains(element.key) else {
                if element.key.hasPrefix("$") {
                    throw QueryError(.failedToParse, "Unknown modifier: \(element.key). Expected a valid update modifier or pipeline-style update specified as an array")
                }
                throw QueryError(.failedToParse, "Unknown modifier: \(element.key)")
            }
            guard case .document(let fields) = element.value else {
                throw QueryError(.failedToParse, "Modifiers operate on fields but we found type \(element.value.typeAlias) instead. For example: {$mod: {<field>: ...}} not {\(element.key): \(element.value.typeAlias)}")
            }
            for field in fields.elements {
                try operations.append(Update.parseOperation(element.key, field))
            }
        }
        guard !operations.isEmpty else {
            throw QueryError(.failedToParse, "'\(document.firstKey ?? "")' is empty. You must specify a field like so: {\(document.firstKey ?? "$set"): {<field>: ...}}")
        }
        try Update.checkConflicts(operations)
        // MongoDB 5.0+ applies fields in lexicographic order of their paths.
        self = .operators(operations.sorted { $0.path.joined(separator: ".") < $1.path.joined(separator: ".") })
    }

    private static func parseOperation(_ kind: String, _ field: BSONDocument.Element) throws(QueryError) -> UpdateOperation {
        let path = try FieldPath(field.key).components
        // A top-level `$`-prefixed field is reached only through `$setField` in a pipeline
        // update; nested ones (`address.$street`) are ordinary paths.
        if let first = path.first, first.hasPrefix("$") {
            throw QueryError(.dollarPrefixedFieldName, "The dollar ($) prefixed field '\(first)' in '\(field.key)' is not valid for storage: update it with $setField in a pipeline-style update")
        }
        if kind == "$rename", case .string(let target) = field.value, target.hasPrefix("$") {
            throw QueryError(.dollarPrefixedFieldName, "The dollar ($) prefixed field '\(target)' is not valid as a $rename target")
        }
        var filter: Filter?
        switch kind {
        case "$inc", "$mul":
            guard field.value.isNumber else {
                throw QueryError(.typeMismatch, "Cannot \(kind == "$inc" ? "increment" : "multiply") with non-numeric argument: {\(field.key): \(field.value.typeAlias)}")
            }
        case "$rename":
            guard case .string(let target) = field.value else {
                throw QueryError(.badValue, "The 'to' field for $rename must be a string: \(field.key): \(field.value.typeAlias)")
            }
            guard target != field.key else { throw QueryError(.badValue, "The source and target field for $rename must differ: \(field.key)") }
            _ = try FieldPath(target)
        case "$pop":
            guard let direction = field.value.int64Value, direction == 1 || direction == -1 else {
                throw QueryError(.failedToParse, "$pop expects 1 or -1, found: \(field.value.typeAlias)")
            }
        case "$pullAll":
            guard case .array = field.value else {
                throw QueryError(.badValue, "$pullAll requires an array argument but was given a \(field.value.typeAlias)")
            }
        case "$pull":
            if case .document(let condition) = field.value {
                if let first = condition.firstKey, first.hasPrefix("$"), !["$and", "$or", "$nor"].contains(first) {
                    filter = .field(FieldPath(components: []), try Filter.parseOperators(condition))
                } else {
                    filter = try Filter(condition)
                }
            }
        case "$bit":
            guard case .document(let operations) = field.value else {
                throw QueryError(.badValue, "The $bit modifier is not compatible with a \(field.value.typeAlias). You must pass in an embedded document: {$bit: {field: {and/or/xor: #}}")
            }
            guard !operations.isEmpty else {
                throw QueryError(.badValue, "You must pass in at least one bitwise operation. The format is: {$bit: {field: {and/or/xor: #}}")
            }
            for operation in operations.elements {
                guard ["and", "or", "xor"].contains(operation.key) else {
                    throw QueryError(.badValue, "The $bit modifier only supports 'and', 'or', and 'xor', not '\(operation.key)' which is an unknown operator")
                }
                switch operation.value {
                case .int32, .int64: break
                default:
                    throw QueryError(.badValue, "The $bit modifier field must be an Integer(32/64 bit); a '\(operation.value.typeAlias)' is not supported here")
                }
            }
        case "$currentDate":
            switch field.value {
            case .bool: break
            case .document(let spec) where spec["$type"] == .string("date") || spec["$type"] == .string("timestamp"): break
            default: throw QueryError(.badValue, "\(field.value.typeAlias) is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({$type: 'timestamp/date'}).")
            }
        default: break
        }
        return UpdateOperation(kind: kind, path: path, argument: field.value, pullFilter: filter)
    }

    private static func checkConflicts(_ operations: [UpdateOperation]) throws(QueryError) {
        var paths: [[String]] = []
        for operation in operations {
            paths.append(operation.path)
            if operation.kind == "$rename", case .string(let target) = operation.argument {
                paths.append(target.split(separator: ".").map(String.init))
            }
        }
        for (index, path) in paths.enumerated() {
            for other in paths[(index + 1)...] {
                let shared = min(path.count, other.count)
                if Array(path.prefix(shared)) == Array(other.prefix(shared)) {
                    throw QueryError(.conflictingUpdateOperators, "Updating the path '\(other.joined(separator: "."))' would create a conflict at '\(path.prefix(shared).joined(separator: "."))'")
                }
            }
        }
    }

    /// Whether this is an operator update (as opposed to a replacement).
    public var isOperatorUpdate: Bool {
        if case .replacement = self { return false }
        return true
    }
}
