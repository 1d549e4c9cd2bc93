/// Read-only views (`create` with `viewOn` and `pipeline`): a view is a catalog entry whose
/// options name the collection (or view) it reads and the stages it applies. Reads of a view
/// run those stages first; writes to it are refused, as MongoDB refuses them.
extension CollectionDescriptor {
    /// Whether this entry is a view.
    public var isView: Bool { options["viewOn"] != nil }
}

extension DatabaseStore {
    /// The deepest chain of views on views MongoDB allows.
    static let viewDepthMax = 20

    /// The collection `name` finally reads and the stages its views apply, in order; nil when
    /// `name` is not a view.
    public func resolveView(_ name: String) throws(QueryError) -> (collection: String, stages: [BSONValue])? {
        guard collections[name]?.isView == true else { return nil }
        var stages: [BSONValue] = []
        var current = name
        for _ in 0..<Self.viewDepthMax {
            guard let descriptor = collections[current], case .string(let source)? = descriptor.options["viewOn"] else {
                return (current, stages)
            }
            if case .array(let pipeline)? = descriptor.options["pipeline"] { stages = pipeline + stages }
            current = source
        }
        throw QueryError(.viewDepthLimitExceeded, "View depth too deep or view cycle detected; maximum depth is \(Self.viewDepthMax)")
    }

    /// Refuses a write (or an index) on a view.
    public func requireCollection(_ name: String) throws(QueryError) {
        if collections[name]?.isView == true {
            throw QueryError(.commandNotSupportedOnView, "Namespace \(self.name).\(name) is a view, not a collection")
        }
    }

    /// Refuses a redefinition of view `name` that would make it read itself through the chain of
    /// views it is defined on (`GraphContainsCycle`, 5, as MongoDB). A view read by a stage of
    /// the pipeline (`$lookup` and the like) resolves its own chain when it runs, and a chain
    /// that loops stops at `viewDepthMax`.
    public func refuseViewCycle(_ name: String, source: BSONValue?) throws(QueryError) {
        guard case .string(var current)? = source else { return }
        var seen: Set<String> = []
        while true {
            guard current != name else { throw QueryError(.named(5, "GraphContainsCycle"), "View cycle detected: \(self.name).\(name) reads itself") }
            guard seen.insert(current).inserted, case .string(let underneath)? = collections[current]?.options["viewOn"] else { return }
            current = underneath
        }
    }

    /// Checks a view definition given to `create`.
    public static func validateView(options: BSONDocument) throws(QueryError) {
        guard let source = options["viewOn"] else { return }
        guard case .string(let name) = source, !name.isEmpty else {
            throw QueryError(.typeMismatch, "'viewOn' must be a non-empty string")
        }
        try NamespaceRules.validateCollection(name)
        let stages: [BSONValue]
        switch options["pipeline"] {
        case nil: stages = []
        case .array(let items)?: stages = items
        default: throw QueryError(.typeMismatch, "'pipeline' must be an array")
        }
        let pipeline = try Pipeline(stages)
        guard pipeline.outputTarget == nil, !pipeline.startsWithDocuments else {
            throw QueryError(.optionNotSupportedOnView, "$out, $merge and $documents cannot be used in a view definition")
        }
        for key in options.keys where !["viewOn", "pipeline", "collation"].contains(key) {
            throw QueryError(.invalidOptions, "option '\(key)' is not supported for a view")
        }
    }
}
