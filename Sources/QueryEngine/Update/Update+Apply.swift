extension Update {
    /// Applies the update to `document`.
    /// - Parameters:
    ///   - position: the array index the query matched, for the positional `$` operator.
    ///   - isInsert: whether this builds an upserted document (enables `$setOnInsert`).
    ///   - nowMilliseconds: the time for `$currentDate`.
    ///   - arrayFilters: the filters `$[identifier]` components use (check them with `validate`).
    /// - Returns: the new document; `_id` changes are rejected.
    public func apply(
        to document: BSONDocument, position: Int?, isInsert: Bool, nowMilliseconds: Int64,
        arrayFilters: ArrayFilters = .none
    ) throws(QueryError) -> BSONDocument {
        switch self {
        case .replacement(var replacement):
            if let id = document["_id"] {
                if let newId = replacement["_id"], !Update.sameId(newId, id) {
                    throw Update.immutableIdError
                }
                replacement.removeValue(forKey: "_id")
                replacement.prepend("_id", id)
            }
            return replacement
        case .pipeline(let pipeline):
            let output = try pipeline.run(over: [document], nowMilliseconds: nowMilliseconds)
            guard output.count == 1, var result = output.first else {
                throw QueryError(.location(72), "a pipeline-style update must give exactly one document")
            }
            if let id = document["_id"] {
                if let newId = result["_id"] {
                    guard Update.sameId(id, newId) else { throw Update.immutableIdError }
                } else {
                    result.prepend("_id", id)  // As a replacement keeps it.
                }
            }
            return result
        case .operators(let operations):
            var root = BSONValue.document(document)
            for operation in operations {
                if operation.kind == "$setOnInsert" && !isInsert { continue }
                let paths = try UpdatePaths.expand(operation.path, in: root, position: position, arrayFilters: arrayFilters)
                for path in paths {
                    try apply(operation, at: path, to: &root, nowMilliseconds: nowMilliseconds)
                }
            }
            guard case .document(let result) = root else { return document }
            if let id = document["_id"], let newId = result["_id"], !Update.sameId(id, newId) {
                throw Update.immutableIdError
            }
            if document["_id"] != nil && result["_id"] == nil { throw Update.immutableIdError }
            return result
        }
    }

    static let immutableIdError = QueryError(
        .immutableField, "Performing an update on the path '_id' would modify the immutable field '_id'")

    private func apply(
        _ operation: UpdateOperation, at path: [String], to root: inout BSONValue, nowMilliseconds: Int64
    ) throws(QueryError) {
        let current = UpdatePaths.get(path, in: root)
        let dotted = path.joined(separator: ".")
        switch operation.kind {
        case "$set", "$setOnInsert":
            try UpdatePaths.set(path, operation.argument, in: &root)
        case "$unset":
            UpdatePaths.unset(path, in: &root)
        case "$inc", "$mul":
            let base: BSONValue
            if let current {
                guard current.isNumber else {
                    throw QueryError(.typeMismatch, "Cannot apply \(operation.kind) to a value of non-numeric type. {_id: ...} has the field '\(path.last ?? "")' of non-numeric type \(current.typeAlias)")
                }
                base = current
            } else {
                base = operation.kind == "$inc" ? .int32(0) : Update.zero(like: operation.argument)
                if operation.kind == "$mul" {
                    try UpdatePaths.set(path, base, in: &root)
                    return
                }
            }
            let result = operation.kind == "$inc"
                ? try Arithmetic.add(base, operation.argument) : try Arithmetic.multiply(base, operation.argument)
            try UpdatePaths.set(path, result, in: &root)
        case "$bit":
            guard case .document(let operations) = operation.argument else { return }
            var result = current ?? .int32(0)
            for bitwise in operations.elements {
                switch (result, bitwise.value) {
                case (.int32(let a), .int32(let b)):
                    result = .int32(bitwise.key == "and" ? a & b : bitwise.key == "or" ? a | b : a ^ b)
                case (.int32, .int64), (.int64, .int32), (.int64, .int64):
                    let a = result.int64Value ?? 0
                    let b = bitwise.value.int64Value ?? 0
                    result = .int64(bitwise.key == "and" ? a & b : bitwise.key == "or" ? a | b : a ^ b)
                default:
                    throw QueryError(
                        .badValue,
                        "Cannot apply $bit to a value of non-integral type. The field '\(path.last ?? "")' has non-integral type \(result.typeAlias)")
                }
            }
            if result != current { try UpdatePaths.set(path, result, in: &root) }
        case "$min", "$max":
            if let current {
                let order = BSONComparison.compare(operation.argument, current)
                guard operation.kind == "$min" ? order < 0 : order > 0 else { return }
            }
            try UpdatePaths.set(path, operation.argument, in: &root)
        case "$rename":
            guard let current, case .string(let target) = operation.argument else { return }
            UpdatePaths.unset(path, in: &root)
            try UpdatePaths.set(target.split(separator: ".").map(String.init), current, in: &root)
        case "$currentDate":
            if case .document(let spec) = operation.argument, spec["$type"] == .string("timestamp") {
                let seconds = UInt32(truncatingIfNeeded: nowMilliseconds / 1000)
                try UpdatePaths.set(path, .timestamp(BSONTimestamp(seconds: seconds, increment: 1)), in: &root)
            } else {
                try UpdatePaths.set(path, .datetime(nowMilliseconds), in: &root)
            }
        case "$push", "$addToSet":
            var elements: [BSONValue] = []
            if let current {
                guard case .array(let existing) = current else {
                    throw QueryError(.badValue, "The field '\(dotted)' must be an array but is of type \(current.typeAlias) in document {_id: ...}")
                }
                elements = existing
            }
            try Update.push(operation, into: &elements)
            try UpdatePaths.set(path, .array(elements), in: &root)
        case "$pull", "$pullAll":
            guard let current else { return }
            guard case .array(let elements) = current else {
                throw QueryError(.badValue, "Cannot apply \(operation.kind) to a non-array value")
            }
            let kept = elements.filter { element in
                if operation.kind == "$pullAll", case .array(let removals) = operation.argument {
                    return !removals.contains { BSONComparison.equal($0, element) }
                }
                if let filter = operation.pullFilter {
                    if case .field(let fieldPath, _) = filter, fieldPath.components.isEmpty {
                        guard case .field(_, let operators) = filter else { return true }
                        var ignored: Int?
                        let candidates = [PathCandidate(value: element, isArrayElement: false, firstArrayIndex: nil)]
                        return !operators.allSatisfy { Filter.evaluate($0, on: candidates, position: &ignored) }
                    }
                    guard case .document(let inner) = element else { return true }
                    return !filter.matches(inner)
                }
                return !BSONComparison.equal(element, operation.argument)
            }
            if kept.count != elements.count { try UpdatePaths.set(path, .array(kept), in: &root) }
        case "$pop":
            guard let current else { return }
            guard case .array(var elements) = current else {
                throw QueryError(.typeMismatch, "Path '\(dotted)' contains an element of non-array type '\(current.typeAlias)'")
            }
            guard !elements.isEmpty else { return }
            if operation.argument.int64Value == 1 { elements.removeLast() } else { elements.removeFirst() }
            try UpdatePaths.set(path, .array(elements), in: &root)
        default:
            throw QueryError(.failedToParse, "Unknown modifier: \(operation.kind)")
        }
    }

    private static func zero(like value: BSONValue) -> BSONValue {
        switch value {
        case .int32: .int32(0)
        case .int64: .int64(0)
        default: .double(0)
        }
    }

    private static func push(_ operation: UpdateOperation, into elements: inout [BSONValue]) throws(QueryError) {
        guard case .document(let spec) = operation.argument, spec.firstKey == "$each" || spec.contains(key: "$each") else {
            if operation.kind == "$addToSet" {
                if !elements.contains(where: { BSONComparison.equal($0, operation.argument) }) { elements.append(operation.argument) }
            } else {
                elements.append(operation.argument)
            }
            return
        }
        guard case .array(let each)? = spec["$each"] else {
            throw QueryError(.badValue, "The argument to $each in \(operation.kind) must be an array but it was of type: \(spec["$each"]?.typeAlias ?? "missing")")
        }
        if operation.kind == "$addToSet" {
            for item in each where !elements.contains(where: { BSONComparison.equal($0, item) }) { elements.append(item) }
            return
        }
        for key in spec.keys where !["$each", "$position", "$slice", "$sort"].contains(key) {
            throw QueryError(.badValue, "Unrecognized clause in $push: \(key)")
        }
        if let positionValue = spec["$position"] {
            guard let position = positionValue.int64Value else { throw QueryError(.badValue, "The value for $position must be an integer value") }
            let index = position < 0 ? max(0, elements.count + Int(position)) : min(Int(position), elements.count)
            elements.insert(contentsOf: each, at: index)
        } else {
            elements.append(contentsOf: each)
        }
        if let sortValue = spec["$sort"] {
            switch sortValue {
            case .document(let sortDocument):
                elements = try SortSpecification(sortDocument).sorted(elements) { $0.documentValue }
            default:
                guard let direction = sortValue.int64Value, direction == 1 || direction == -1 else {
                    throw QueryError(.badValue, "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields")
                }
                elements = elements.enumerated().sorted { lhs, rhs in
                    let order = BSONComparison.compare(lhs.element, rhs.element)
                    return order != 0 ? (direction == 1 ? order < 0 : order > 0) : lhs.offset < rhs.offset
                }.map(\.element)
            }
        }
        if let sliceValue = spec["$slice"] {
            guard let slice = sliceValue.int64Value else { throw QueryError(.badValue, "The value for $slice must be an integer value") }
            elements = slice >= 0 ? Array(elements.prefix(Int(slice))) : Array(elements.suffix(Int(-slice)))
        }
    }
}

/// Reading and writing values at paths inside a document being updated.
package enum UpdatePaths {
    /// Replaces `$` with the matched position, expands `$[]` into every index and `$[name]` into
    /// the indexes whose elements pass the array filter `name`.
    package static func expand(
        _ path: [String], in root: BSONValue, position: Int?, arrayFilters: ArrayFilters = .none
    ) throws(QueryError) -> [[String]] {
        var results: [[String]] = [[]]
        for component in path {
            var next: [[String]] = []
            for prefix in results {
                switch component {
                case "$":
                    guard let position else {
                        throw QueryError(.badValue, "The positional operator did not find the match needed from the query.")
                    }
                    next.append(prefix + [String(position)])
                case "$[]":
                    guard case .array(let elements)? = get(prefix, in: root) else {
                        throw QueryError(.badValue, "The path '\(prefix.joined(separator: "."))' must exist in the document in order to apply array updates.")
                    }
                    for index in elements.indices { next.append(prefix + [String(index)]) }
                default:
                    if component.hasPrefix("$[") && component.hasSuffix("]") {
                        let identifier = String(component.dropFirst(2).dropLast())
                        guard case .array(let elements)? = get(prefix, in: root) else {
                            throw QueryError(.badValue, "The path '\(prefix.joined(separator: "."))' must exist in the document in order to apply array updates.")
                        }
                        for (index, element) in elements.enumerated() where try arrayFilters.matches(identifier, element) {
                            next.append(prefix + [String(index)])
                        }
                        continue
                    }
                    next.append(prefix + [component])
                }
            }
            results = next
        }
        return results
    }

    package static func get(_ path: [String], in root: BSONValue) -> BSONValue? {
        var current: BSONValue? = root
        for component in path {
            switch current {
            case .document(let document)?: current = document[component]
            case .array(let elements)?:
                guard let index = Int(component), index >= 0, index < elements.count else { return nil }
                current = elements[index]
            default: return nil
            }
        }
        return current
    }

    package static func set(_ path: [String], _ value: BSONValue, in root: inout BSONValue) throws(QueryError) {
        guard let head = path.first else {
            root = value
            return
        }
        let rest = Array(path.dropFirst())
        switch root {
        case .document(var document):
            var child = document[head] ?? (rest.isEmpty ? .null : .document(BSONDocument()))
            root = .null  // Release the old copy so the nested value is uniquely referenced.
            try set(rest, value, in: &child)
            document[head] = child
            root = .document(document)
        case .array(var elements):
            guard let index = Int(head), index >= 0 else {
                throw QueryError(.pathNotViable, "Cannot create field '\(head)' in element {\(head): array}")
            }
            guard index <= 1_500_000 else { throw QueryError(.badValue, "can't set an array element that far") }
            while elements.count <= index { elements.append(.null) }
            var child = elements[index]
            if case .null = child, !rest.isEmpty { child = .document(BSONDocument()) }
            root = .null
            try set(rest, value, in: &child)
            elements[index] = child
            root = .array(elements)
        default:
            throw QueryError(.pathNotViable, "Cannot create field '\(head)' in element {\(head): \(root.typeAlias)}")
        }
    }

    package static func unset(_ path: [String], in root: inout BSONValue) {
        guard let head = path.first else { return }
        let rest = Array(path.dropFirst())
        switch root {
        case .document(var document):
            guard var child = document[head] else { return }
            if rest.isEmpty {
                document.removeValue(forKey: head)
            } else {
                unset(rest, in: &child)
                document[head] = child
            }
            root = .document(document)
        case .array(var elements):
            guard let index = Int(head), index >= 0, index < elements.count else { return }
            if rest.isEmpty {
                elements[index] = .null  // MongoDB sets unset array elements to null.
            } else {
                var child = elements[index]
                unset(rest, in: &child)
                elements[index] = child
            }
            root = .array(elements)
        default:
            return
        }
    }
}

extension Update {
    /// Whether an update leaves `_id` as it was: the same type and the same stored key, compared
    /// byte for byte (never under a collation: "ABC" is another document than "abc").
    static func sameId(_ a: BSONValue, _ b: BSONValue) -> Bool {
        a.typeByte == b.typeByte && IndexKey.idKey(a) == IndexKey.idKey(b)
    }
}
