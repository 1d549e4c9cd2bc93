/// A half-open range of index keys: `lower ≤ key < upper`.
public struct KeyInterval: Sendable, Hashable {
    /// Inclusive lower bound.
    public var lower: [UInt8]
    /// Exclusive upper bound.
    public var upper: [UInt8]

    /// Every key (all tags are below 0xFF, so `[0xFF]` bounds them all).
    static let everything = KeyInterval(lower: [], upper: [0xFF])

    /// All keys that start with `prefix`.
    static func prefix(_ prefix: [UInt8]) -> KeyInterval {
        KeyInterval(lower: prefix, upper: IndexKey.prefixSuccessor(prefix) ?? [0xFF, 0xFF])
    }
}

/// How a query reaches its documents.
public enum AccessPath: Sendable {
    /// Every document in insertion order.
    case collectionScan
    /// Ranges of the `_id` index.
    case idIndex([KeyInterval])
    /// Ranges of a secondary index.
    case index(IndexDescriptor, [KeyInterval])
    /// A `$text` search through the collection's text index (nil: it has none, an error when run).
    case text(IndexDescriptor?, TextQuery)
}

/// The planner's choice for one query.
public struct QueryPlan: Sendable {
    /// The access path.
    public var access: AccessPath
    /// Whether the index is read backwards.
    public var descending: Bool
    /// Whether the access path already yields the requested sort order.
    public var providesSort: Bool
    /// Whether the key ranges select exactly the matching documents (no residual filter), which
    /// lets `count` read only the index.
    public var isExact: Bool
    /// Whether the same document can be reached twice (multikey index or several ranges).
    public var needsDeduplication: Bool

    /// The stage name `explain` reports.
    public var stageName: String {
        switch access {
        case .collectionScan: "COLLSCAN"
        case .idIndex(let intervals):
            intervals.count == 1 && !descending && isPoint(intervals[0]) ? "IDHACK" : "IXSCAN"
        case .index: "IXSCAN"
        case .text: "TEXT"
        }
    }

    private func isPoint(_ interval: KeyInterval) -> Bool {
        IndexKey.prefixSuccessor(interval.lower) == interval.upper
    }

    /// The `queryPlanner.winningPlan` document of `explain`.
    public func explainDocument(sortStage: Bool, filter: BSONDocument) -> BSONDocument {
        var scan = BSONDocument()
        scan["stage"] = .string(stageName)
        switch access {
        case .collectionScan:
            scan["filter"] = .document(filter)
            scan["direction"] = .string("forward")
        case .idIndex(let intervals):
            scan["keyPattern"] = .document(["_id": .int32(1)])
            scan["indexName"] = .string("_id_")
            scan["isUnique"] = .bool(true)
            scan["direction"] = .string(descending ? "backward" : "forward")
            scan["keyRanges"] = .int32(Int32(intervals.count))
        case .index(let index, let intervals):
            scan["keyPattern"] = .document(index.keyPattern)
            scan["indexName"] = .string(index.name)
            scan["isMultiKey"] = .bool(index.isMultikey)
            scan["isUnique"] = .bool(index.unique)
            scan["direction"] = .string(descending ? "backward" : "forward")
            scan["keyRanges"] = .int32(Int32(intervals.count))
        case .text(let index, _):
            scan["indexName"] = .string(index?.name ?? "")
            scan["parsedTextQuery"] = .document([:])
        }
        var plan = scan
        if case .collectionScan = access {} else {
            plan = ["stage": .string("FETCH"), "filter": .document(filter), "inputStage": .document(scan)]
        }
        if sortStage && !providesSort {
            plan = ["stage": .string("SORT"), "inputStage": .document(plan)]
        }
        return plan
    }
}
