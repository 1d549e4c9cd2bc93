import QueryEngine

/// The collections an aggregation pipeline reads besides its own (`$lookup`, `$graphLookup`,
/// `$unionWith`, also inside sub-pipelines and `$facet`) and writes (`$out`, `$merge`), so each
/// is authorized like a command on that collection.
struct PipelineReferences {
    private(set) var reads: [String] = []
    private(set) var writes: [String] = []

    init(_ stages: [BSONValue]) { visit(stages, depth: 0) }

    private mutating func visit(_ stages: [BSONValue], depth: Int) {
        // Nesting is bounded by the BSON depth limit already; this bound only keeps a hostile
        // pipeline from making the walk itself expensive.
        guard depth < 64 else { return }
        for case .document(let stage) in stages {
            guard let name = stage.firstKey else { continue }
            let body = stage[0].value
            switch (name, body) {
            case ("$lookup", .document(let spec)), ("$graphLookup", .document(let spec)):
                if case .string(let from)? = spec["from"] { reads.append(from) }
                if case .array(let inner)? = spec["pipeline"] { visit(inner, depth: depth + 1) }
            case ("$unionWith", .string(let collection)):
                reads.append(collection)
            case ("$unionWith", .document(let spec)):
                if case .string(let collection)? = spec["coll"] { reads.append(collection) }
                if case .array(let inner)? = spec["pipeline"] { visit(inner, depth: depth + 1) }
            case ("$facet", .document(let facets)):
                for case .array(let inner) in facets.elements.map(\.value) { visit(inner, depth: depth + 1) }
            case ("$out", .string(let collection)):
                writes.append(collection)
            case ("$out", .document(let spec)), ("$merge", .document(let spec)):
                if case .string(let collection)? = spec["coll"] ?? spec["into"] { writes.append(collection) }
                if case .document(let into)? = spec["into"], case .string(let collection)? = into["coll"] { writes.append(collection) }
            case ("$merge", .string(let collection)):
                writes.append(collection)
            default:
                continue
            }
        }
    }
}
