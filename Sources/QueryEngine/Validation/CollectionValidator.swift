/// A collection's document validation (`validator`, `validationLevel`, `validationAction`
/// options of `create` and `collMod`): a query filter, optionally with a top-level
/// `$jsonSchema`, that every inserted or updated document must match.
public struct CollectionValidator: Sendable {
    public enum Level: String, Sendable { case off, strict, moderate }
    public enum Action: String, Sendable { case error, warn }

    let filter: Filter
    let schema: JSONSchema?
    public let level: Level
    public let action: Action

    /// The validator of a collection's options; nil when it has none (or it is turned off).
    public init?(options: BSONDocument) throws(QueryError) {
        let level = try Self.level(options["validationLevel"])
        let action = try Self.action(options["validationAction"])
        guard let given = options["validator"] else { return nil }
        guard case .document(var document) = given else {
            throw QueryError(.typeMismatch, "'validator' must be an object")
        }
        guard !document.isEmpty, level != .off else { return nil }
        // A top-level schema reports the rules a document broke (errInfo); one nested in `$and`,
        // `$or` or `$nor` is a query operator like the others.
        var schema: JSONSchema?
        if let given = document.removeValue(forKey: "$jsonSchema") {
            guard case .document(let schemaDocument) = given else { throw QueryError(.typeMismatch, "$jsonSchema must be an object") }
            schema = try JSONSchema(schemaDocument)
        }
        for key in ["$where", "$text", "$near", "$nearSphere"] where document[key] != nil {
            throw QueryError(.invalidOptions, "\(key) is not allowed in collection validators")
        }
        filter = try Filter(document)
        self.schema = schema
        self.level = level
        self.action = action
    }

    static func level(_ value: BSONValue?) throws(QueryError) -> Level {
        guard let value else { return .strict }
        guard case .string(let text) = value, let level = Level(rawValue: text) else {
            throw QueryError(.badValue, "Enumeration value '\(value.stringValue ?? value.typeAlias)' for field 'validationLevel' is not a valid value.")
        }
        return level
    }

    static func action(_ value: BSONValue?) throws(QueryError) -> Action {
        guard let value else { return .error }
        guard case .string(let text) = value, let action = Action(rawValue: text) else {
            throw QueryError(.badValue, "Enumeration value '\(value.stringValue ?? value.typeAlias)' for field 'validationAction' is not a valid value.")
        }
        return action
    }

    /// What `document` fails, in MongoDB's `errInfo.details` shape; nil when it passes.
    public func failure(_ document: BSONDocument) -> BSONDocument? {
        RegexFailure.reset()
        var rules: [BSONValue] = []
        if let schema { rules += schema.violations(.document(document)).map { .document($0) } }
        let matched = filter.matches(document)
        _ = try? RegexFailure.check()
        if rules.isEmpty && matched { return nil }
        var details: BSONDocument = ["operatorName": .string(schema != nil ? "$jsonSchema" : "$and")]
        if !rules.isEmpty { details["schemaRulesNotSatisfied"] = .array(rules) }
        if !matched { details["queryRulesNotSatisfied"] = .bool(true) }
        return details
    }

    /// The error a document that fails gets (code 121, `errInfo` with the failed rules and
    /// the document's `_id`, as MongoDB reports it).
    public func error(_ document: BSONDocument, details: BSONDocument) -> QueryError {
        var info: BSONDocument = [:]
        if let id = document["_id"] { info["failingDocumentId"] = id }
        info["details"] = .document(details)
        return QueryError(.documentValidationFailure, "Document failed validation", info: ["errInfo": .document(info)])
    }
}
