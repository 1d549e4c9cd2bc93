/// A `find` projection: inclusion or exclusion of (dotted) fields, `$slice`, `$elemMatch`,
/// positional `field.$`, and computed fields (aggregation expressions, as MongoDB 4.4+ allows).
public struct Projection: Sendable {
    /// The field an `$elemMatch` projection's filter looks at (each element is put there alone).
    static let elementField = "e"

    indirect enum Node: Sendable {
        case include
        case exclude
        case slice(skip: Int?, limit: Int)
        case elemMatch(Filter)
        case positional
        case computed(Expression)
        case children([(String, Node)])
    }

    private let root: [(String, Node)]
    private let isInclusion: Bool
    private let includeId: Bool

    /// Parses a projection document.
    public init(_ document: BSONDocument) throws(QueryError) {
        var tree: [(String, Node)] = []
        var inclusion: Bool?
        var includeId = true
        var idExplicitlyIncluded = false
        for element in document.elements {
            let node: Node
            switch element.value {
            case .document(let spec) where spec.firstKey == "$slice":
                switch spec[0].value {
                case .array(let pair) where pair.count == 2:
                    guard let skip = pair[0].int64Value, let limit = pair[1].int64Value, limit > 0 else {
                        throw QueryError(.badValue, "$slice limit must be positive")
                    }
                    node = .slice(skip: Int(skip), limit: Int(limit))
                default:
                    guard let limit = spec[0].value.int64Value else { throw QueryError(.badValue, "$slice only supports numbers and [skip, limit] arrays") }
                    node = .slice(skip: nil, limit: Int(limit))
                }
            case .document(let spec) where spec.firstKey == "$elemMatch":
                guard case .document(let filter) = spec[0].value else { throw QueryError(.badValue, "elemMatch: Invalid argument, object required") }
                // The query's own `$elemMatch` (documents and scalars alike, every operator),
                // tried on each element alone, so the first matching element is the one shown.
                node = .elemMatch(try Filter([Self.elementField: .document(["$elemMatch": .document(filter)])]))
                if inclusion == nil { inclusion = true }
            case .document(let spec) where spec.firstKey == "$meta":
                // Adds the value and leaves the projection's mode alone (a projection of only
                // `$meta` fields returns whole documents, as MongoDB's does).
                node = .computed(try Expression(element.value))
            case .document(let spec) where spec.firstKey?.hasPrefix("$") == true:
                node = .computed(try Expression(element.value))
                if element.key != "_id" { try Projection.setMode(&inclusion, true) }
            case .bool, .int32, .int64, .double, .decimal128:
                let included = element.value.isTruthy
                if element.key == "_id" {
                    includeId = included
                    idExplicitlyIncluded = included
                    continue
                }
                node = included ? .include : .exclude
                try Projection.setMode(&inclusion, included)
            default:
                node = .computed(try Expression(element.value))
                try Projection.setMode(&inclusion, true)
            }
            var key = element.key
            var final = node
            if key.hasSuffix(".$") {
                key = String(key.dropLast(2))
                final = .positional
                try Projection.setMode(&inclusion, true)
            }
            try Projection.insert(path: try FieldPath(key).components[...], node: final, into: &tree)
        }
        self.root = tree
        self.isInclusion = inclusion ?? idExplicitlyIncluded
        self.includeId = includeId
    }

    private static func setMode(_ mode: inout Bool?, _ inclusion: Bool) throws(QueryError) {
        if let mode, mode != inclusion {
            throw QueryError(.location(inclusion ? 31253 : 31254), "Cannot do \(inclusion ? "inclusion" : "exclusion") on field in \(inclusion ? "exclusion" : "inclusion") projection")
        }
        mode = inclusion
    }

    private static func insert(path: ArraySlice<String>, node: Node, into tree: inout [(String, Node)]) throws(QueryError) {
        guard let head = path.first else { return }
        let rest = path.dropFirst()
        if let index = tree.firstIndex(where: { $0.0 == head }) {
            guard !rest.isEmpty, case .children(var children) = tree[index].1 else {
                throw QueryError(.location(31250), "Path collision at \(path.joined(separator: "."))")
            }
            try insert(path: rest, node: node, into: &children)
            tree[index].1 = .children(children)
        } else if rest.isEmpty {
            tree.append((head, node))
        } else {
            var children: [(String, Node)] = []
            try insert(path: rest, node: node, into: &children)
            tree.append((head, .children(children)))
        }
    }

    /// Applies the projection. `position` is the array index the query matched (for `field.$`).
    public func apply(to document: BSONDocument, position: Int? = nil) throws(QueryError) -> BSONDocument {
        var output = try project(document, tree: root, position: position, root: document)
        if !includeId {
            output.removeValue(forKey: "_id")
        } else if isInclusion, let id = document["_id"], !output.contains(key: "_id") {
            output.prepend("_id", id)
        }
        return output
    }

    private func project(
        _ document: BSONDocument, tree: [(String, Node)], position: Int?, root: BSONDocument
    ) throws(QueryError) -> BSONDocument {
        if isInclusion {
            var output = BSONDocument()
            // Inclusion keeps the document's field order, then appends computed fields.
            for element in document.elements {
                guard let node = tree.first(where: { $0.0 == element.key })?.1 else { continue }
                if let value = try projectValue(element.value, node: node, position: position, root: root) {
                    output.append(element.key, value)
                }
            }
            for (key, node) in tree where !document.contains(key: key) {
                if case .computed(let expression) = node, let value = try expression.evaluate(ExpressionContext(root: root)) {
                    output.append(key, value)
                }
            }
            for (key, node) in tree {
                if case .computed(let expression) = node, document.contains(key: key) {
                    output[key] = try expression.evaluate(ExpressionContext(root: root))
                }
            }
            return output
        }
        var output = BSONDocument()
        for element in document.elements {
            guard let node = tree.first(where: { $0.0 == element.key })?.1 else {
                output.append(element.key, element.value)
                continue
            }
            if let value = try projectValue(element.value, node: node, position: position, root: root) {
                output.append(element.key, value)
            }
        }
        // `$meta` fields (the only computed ones outside inclusion) are added.
        for (key, node) in tree where !document.contains(key: key) {
            if case .computed(let expression) = node, let value = try expression.evaluate(ExpressionContext(root: root)) {
                output.append(key, value)
            }
        }
        return output
    }

    private func projectValue(_ value: BSONValue, node: Node, position: Int?, root: BSONDocument) throws(QueryError) -> BSONValue? {
        switch node {
        case .include: return value
        case .exclude: return nil
        case .computed(let expression): return try expression.evaluate(ExpressionContext(root: root))
        case .slice(let skip, let limit):
            guard case .array(let elements) = value else { return value }
            if let skip {
                let start = skip < 0 ? max(0, elements.count + skip) : min(skip, elements.count)
                return .array(Array(elements[start..<min(elements.count, start + limit)]))
            }
            return .array(limit >= 0 ? Array(elements.prefix(limit)) : Array(elements.suffix(-limit)))
        case .elemMatch(let filter):
            guard case .array(let elements) = value else { return nil }
            for element in elements where filter.matches([Self.elementField: .array([element])]) { return .array([element]) }
            return nil
        case .positional:
            guard case .array(let elements) = value, let position, position < elements.count else { return nil }
            return .array([elements[position]])
        case .children(let children):
            switch value {
            case .document(let inner):
                return .document(try project(inner, tree: children, position: position, root: root))
            case .array(let elements):
                var projected: [BSONValue] = []
                for element in elements {
                    if case .document(let inner) = element {
                        projected.append(.document(try project(inner, tree: children, position: position, root: root)))
                    } else if !isInclusion {
                        projected.append(element)
                    }
                }
                return .array(projected)
            default:
                return isInclusion ? nil : value
            }
        }
    }
}
