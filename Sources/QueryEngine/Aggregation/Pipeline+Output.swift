/// `$out` and `$merge`: the last stage of a pipeline writes its results into a collection of
/// the same database. The pipeline runs as a read; the command then applies the write in one
/// write transaction (`applyOutput`), so the target changes all at once or not at all.
extension Pipeline {
    /// What `$merge` does with each result.
    public struct MergeSpecification: Sendable {
        public enum WhenMatched: Sendable { case replace, keepExisting, merge, fail, pipeline(Update) }
        public enum WhenNotMatched: Sendable { case insert, discard, fail }

        let into: String
        let on: [FieldPath]
        let whenMatched: WhenMatched
        let whenNotMatched: WhenNotMatched
        let variables: BSONDocument
    }

    /// The collection the pipeline's last stage writes, if it is `$out` or `$merge`, with the
    /// database it names (nil: this one).
    public var outputTarget: (collection: String, database: String?)? {
        switch stages.last {
        case .out(let collection, let database)?: return (collection, database)
        case .merge(let specification, let database)?: return (specification.into, database)
        default: return nil
        }
    }

    static func parseOutput(_ name: String, _ argument: BSONValue) throws(QueryError) -> Stage {
        func target(_ value: BSONValue?, _ field: String) throws(QueryError) -> (String, String?) {
            switch value {
            case .string(let collection)?: return (collection, nil)
            case .document(let spec)?:
                guard case .string(let collection)? = spec["coll"] else {
                    throw QueryError(.failedToParse, "\(name) '\(field)' needs 'coll', a collection name")
                }
                if let database = spec["db"], database.stringValue == nil {
                    throw QueryError(.typeMismatch, "\(name) 'db' must be a string")
                }
                return (collection, spec["db"]?.stringValue)
            default:
                throw QueryError(.typeMismatch, "\(name) requires a collection name or {db, coll}")
            }
        }
        if name == "$out" {
            let (collection, database) = try target(argument, "$out")
            try NamespaceRules.validateCollection(collection)
            return .out(collection: collection, database: database)
        }
        // $merge
        let spec: BSONDocument
        switch argument {
        case .string(let collection): spec = ["into": .string(collection)]
        case .document(let document): spec = document
        default: throw QueryError(.typeMismatch, "$merge requires a string or an object argument")
        }
        for key in spec.keys where !["into", "on", "let", "whenMatched", "whenNotMatched"].contains(key) {
            throw QueryError(.location(40415), "BSON field '$merge.\(key)' is an unknown field.")
        }
        let (into, database) = try target(spec["into"], "into")
        try NamespaceRules.validateCollection(into)
        var on: [FieldPath] = [try FieldPath("_id")]
        switch spec["on"] {
        case nil: break
        case .string(let field)?: on = [try FieldPath(field)]
        case .array(let fields)? where !fields.isEmpty:
            on = []
            for field in fields {
                guard case .string(let text) = field else { throw QueryError(.location(51134), "$merge 'on' array elements must be strings") }
                on.append(try FieldPath(text))
            }
        default: throw QueryError(.location(51186), "$merge 'on' must be a string or a non-empty array of strings")
        }
        var variables = BSONDocument()
        if let given = spec["let"] {
            guard case .document(let document) = given else { throw QueryError(.typeMismatch, "$merge 'let' must be an object") }
            for element in document.elements { try ExpressionScope.validateName(element.key) }
            variables = document
        }
        let whenMatched: MergeSpecification.WhenMatched
        switch spec["whenMatched"] {
        case nil, .string("merge")?: whenMatched = .merge
        case .string("replace")?: whenMatched = .replace
        case .string("keepExisting")?: whenMatched = .keepExisting
        case .string("fail")?: whenMatched = .fail
        case .array(let stages)?: whenMatched = .pipeline(try Update(pipeline: stages))
        default: throw QueryError(.badValue, "Enumeration value for field 'whenMatched' is not valid: use replace, keepExisting, merge, fail or a pipeline")
        }
        let whenNotMatched: MergeSpecification.WhenNotMatched
        switch spec["whenNotMatched"] {
        case nil, .string("insert")?: whenNotMatched = .insert
        case .string("discard")?: whenNotMatched = .discard
        case .string("fail")?: whenNotMatched = .fail
        default: throw QueryError(.badValue, "Enumeration value for field 'whenNotMatched' is not valid: use insert, discard or fail")
        }
        return .merge(MergeSpecification(into: into, on: on, whenMatched: whenMatched, whenNotMatched: whenNotMatched, variables: variables), database: database)
    }

    /// Writes `documents` (the pipeline's results) as its `$out` or `$merge` stage says, inside
    /// the caller's write transaction.
    public func applyOutput(_ documents: [BSONDocument], store: DatabaseStore, nowMilliseconds: Int64) throws(QueryError) {
        func withID(_ document: BSONDocument) -> BSONDocument {
            guard document["_id"] == nil else { return document }
            var copy = document
            copy.prepend("_id", .objectId(ObjectId.generate(seconds: UInt32(truncatingIfNeeded: nowMilliseconds / 1000))))
            return copy
        }
        switch stages.last {
        case .out(let collection, _)?:
            // The target is replaced, keeping its options (validator) and indexes, as MongoDB does.
            let previous = store.collection(collection)
            if previous?.capped != nil {
                throw QueryError(.location(17152), "namespace '\(store.name).\(collection)' is capped so it can't be used for $out")
            }
            if previous != nil { try store.dropCollection(collection) }
            try store.createCollection(collection, options: previous?.options ?? BSONDocument(), allowExisting: true)
            for index in previous?.indexes ?? [] { try store.createIndex(index.specification, on: collection, checkingOptions: false) }
            for document in documents {
                try OperationContext.checkpoint()
                do { try store.insert(withID(document), into: collection) } catch let error where error.code == .duplicateKey {
                    throw QueryError(.duplicateKey, "E11000 duplicate key error: $out's results hold two documents with one _id", info: error.info)
                }
            }
        case .merge(let specification, _)?:
            try merge(documents, specification, store: store, nowMilliseconds: nowMilliseconds, withID: withID)
        default:
            return
        }
    }

    private func merge(
        _ documents: [BSONDocument], _ specification: MergeSpecification, store: DatabaseStore, nowMilliseconds: Int64,
        withID: (BSONDocument) -> BSONDocument
    ) throws(QueryError) {
        let target = specification.into
        let byID = specification.on.count == 1 && specification.on[0].components == ["_id"]
        if !byID, let existing = store.collection(target) {
            // Without a unique index on the fields, a result could match many documents.
            let fields = Set(specification.on.map { $0.components.joined(separator: ".") })
            let unique = existing.indexes.contains { index in
                index.unique && Set(index.fields.map { $0.path.components.joined(separator: ".") }) == fields
            }
            guard unique else {
                throw QueryError(.location(51183), "Cannot find index to verify that join fields will be unique")
            }
        }
        for document in documents {
            try OperationContext.checkpoint()
            var clauses: [Filter] = []
            var keyValue = BSONDocument()
            for field in specification.on {
                let value = field.value(in: document)
                var usable = value != nil && value != .null && value != .undefined
                if case .array? = value { usable = false }
                guard usable, let value else {
                    throw QueryError(.location(51132), "$merge write error: 'on' field '\(field.components.joined(separator: "."))' cannot be missing, null, undefined or an array")
                }
                clauses.append(.field(field, [.equal(value)]))
                keyValue[field.dotted] = value
            }
            let matched = try store.matches(in: target, filter: clauses.count == 1 ? clauses[0] : .and(clauses), limit: 1).first
            guard let matched else {
                switch specification.whenNotMatched {
                case .insert: try store.insert(withID(document), into: target)
                case .discard: break
                case .fail:
                    throw QueryError(.location(13113), "$merge could not find a matching document in the target collection for at least one document in the source collection")
                }
                continue
            }
            let existing = matched.document
            var updated: BSONDocument
            switch specification.whenMatched {
            case .keepExisting: continue
            case .fail:
                // As a unique index reports it: the `on` fields and this result's values (to the
                // client only; the message carries no document contents).
                var keyPattern = BSONDocument()
                for field in specification.on { keyPattern[field.dotted] = .int32(1) }
                throw QueryError(
                    .duplicateKey, "E11000 duplicate key error: $merge found a document in '\(target)' matching a result (whenMatched: fail)",
                    info: ["keyPattern": .document(keyPattern), "keyValue": .document(keyValue)])
            case .replace:
                updated = document
                if let id = existing["_id"] {
                    if let newID = document["_id"], !BSONComparison.equal(newID, id) {
                        throw QueryError(.immutableField, "$merge failed to update the matching document, did you attempt to modify the _id or the shard key?")
                    }
                    _ = updated.removeValue(forKey: "_id")
                    updated.prepend("_id", id)
                }
            case .merge:
                updated = existing
                for element in document.elements where element.key != "_id" { updated[element.key] = element.value }
            case .pipeline(let update):
                var variables = ["new": BSONValue.document(document)]
                var scope = ExpressionContext(root: document)
                scope.now = nowMilliseconds
                for (key, value) in try ExpressionScope.evaluate(specification.variables, in: scope) { variables[key] = value }
                updated = try ExpressionScope.with(variables: variables, now: nowMilliseconds) { () throws(QueryError) -> BSONDocument in
                    try update.apply(to: existing, position: nil, isInsert: false, nowMilliseconds: nowMilliseconds)
                }
            }
            if updated != existing { try store.replace(rid: matched.rid, old: existing, new: updated, in: target) }
        }
    }
}
