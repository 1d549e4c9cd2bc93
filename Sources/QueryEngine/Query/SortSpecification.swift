/// A sort order such as `{age: -1, name: 1}`, with MongoDB's rules for arrays and missing fields.
public struct SortSpecification: Sendable {
    /// One sort key.
    public struct Key: Sendable {
        /// The field path.
        public let path: FieldPath
        /// Whether the order is ascending.
        public let ascending: Bool
    }

    /// The keys in priority order.
    public let keys: [Key]

    /// Parses a sort document; values must be 1 or -1 (or `{$meta}` which is not supported).
    public init(_ document: BSONDocument) throws(QueryError) {
        var keys: [Key] = []
        for element in document.elements {
            if case .document(let meta) = element.value, meta.count == 1, meta["$meta"] != nil {
                // `{score: {$meta: "textScore"}}`: by relevance, highest first.
                guard meta["$meta"] == .string("textScore") else {
                    throw QueryError(.location(17308), "unsupported $meta sort (only \"textScore\" is supported)")
                }
                keys.append(Key(path: FieldPath(components: [TextQuery.scoreField]), ascending: false))
                continue
            }
            guard let direction = element.value.int64Value, element.value.isNumber, direction == 1 || direction == -1 else {
                throw QueryError(.badValue, "$sort key ordering must be 1 (for ascending) or -1 (for descending)")
            }
            keys.append(Key(path: try FieldPath(element.key), ascending: direction == 1))
        }
        guard !keys.isEmpty else { throw QueryError(.location(15976), "$sort stage must have at least one sort key") }
        self.keys = keys
    }

    init(keys: [Key]) { self.keys = keys }

    /// The values a document sorts by: for an array, its smallest element ascending and its
    /// largest descending; an empty array sorts before null; a missing field sorts as null.
    public func sortKey(for document: BSONDocument) -> [BSONValue] {
        keys.map { key in
            let candidates = key.path.candidates(in: document, expandLeafArrays: true)
            var best: BSONValue?
            var sawEmptyArray = false
            for candidate in candidates {
                guard let value = candidate.value else { continue }
                if case .array(let elements) = value {
                    if elements.isEmpty { sawEmptyArray = true }
                    continue  // Its elements are candidates of their own.
                }
                if let current = best {
                    let order = BSONComparison.compare(value, current)
                    if key.ascending ? order < 0 : order > 0 { best = value }
                } else {
                    best = value
                }
            }
            if let best { return best }
            return sawEmptyArray ? .undefined : .null
        }
    }

    /// Compares two precomputed sort keys.
    public func compare(_ lhs: [BSONValue], _ rhs: [BSONValue]) -> Int {
        for (index, key) in keys.enumerated() {
            let order = BSONComparison.compare(lhs[index], rhs[index])
            if order != 0 { return key.ascending ? order : -order }
        }
        return 0
    }

    /// Sorts documents stably.
    public func sort(_ documents: [BSONDocument]) -> [BSONDocument] {
        sorted(documents) { $0 }
    }

    /// Sorts any items stably by the document each carries (computing each sort key once). An
    /// item without a document sorts as if every key were null, as `$push`'s `$sort` treats
    /// non-document array elements.
    func sorted<Item>(_ items: [Item], by document: (Item) -> BSONDocument?) -> [Item] {
        let keyed = items.map { item in
            (key: document(item).map(sortKey(for:)) ?? keys.map { _ in BSONValue.null }, item: item)
        }
        let sorted = keyed.enumerated().sorted { lhs, rhs in
            let order = compare(lhs.element.key, rhs.element.key)
            return order != 0 ? order < 0 : lhs.offset < rhs.offset
        }
        return sorted.map(\.element.item)
    }
}
