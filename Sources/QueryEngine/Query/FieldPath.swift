/// A dotted field path such as `address.city` or `tags.0`, split once at parse time.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible {
    /// The path components.
    public let components: [String]
    /// The dotted text.
    public let dotted: String

    /// Parses a dotted path. Empty components are rejected, as MongoDB rejects them.
    public init(_ dotted: String) throws(QueryError) {
        // Most paths are one field ("_id", "email"): no split (splitting a String walks its
        // grapheme clusters, a few thousand instructions even for three letters).
        if !dotted.isEmpty, !dotted.utf8.contains(UInt8(ascii: ".")) {
            components = [dotted]
            self.dotted = dotted
            return
        }
        let components = dotted.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !dotted.isEmpty, !components.contains(where: \.isEmpty) else {
            throw QueryError(.badValue, "field path '\(dotted)' has an empty component")
        }
        self.components = components
        self.dotted = dotted
    }

    init(components: [String]) {
        self.components = components
        self.dotted = components.joined(separator: ".")
    }

    public var description: String { dotted }

    /// The path without its first component.
    var tail: FieldPath { FieldPath(components: Array(components.dropFirst())) }

    /// Whether this path is a prefix of (or equal to) `other`, component-wise.
    func isPrefix(of other: FieldPath) -> Bool {
        components.count <= other.components.count && Array(other.components.prefix(components.count)) == components
    }
}

/// One value reached by walking a path through documents and arrays, as MongoDB's matcher sees it.
package struct PathCandidate {
    /// The value, or `nil` when the path ends at a missing field.
    package var value: BSONValue?
    /// Whether the value is an element of an array at the end of the path (leaf-array expansion).
    package var isArrayElement: Bool
    /// The index within the first array traversed, for the positional `$` update operator.
    var firstArrayIndex: Int?
}

extension FieldPath {
    /// Every value the path reaches in `document`, following MongoDB's rules: a non-final array
    /// is traversed element by element (and indexed when the next component is a number), and a
    /// final array yields itself and each of its elements.
    package func candidates(in document: BSONDocument, expandLeafArrays: Bool = true) -> [PathCandidate] {
        var results: [PathCandidate] = []
        collect(.document(document), componentIndex: 0, firstArrayIndex: nil, expand: expandLeafArrays, into: &results)
        return results
    }

    private func collect(
        _ current: BSONValue, componentIndex: Int, firstArrayIndex: Int?, expand: Bool, into results: inout [PathCandidate]
    ) {
        if componentIndex == components.count {
            results.append(PathCandidate(value: current, isArrayElement: false, firstArrayIndex: firstArrayIndex))
            if expand, case .array(let elements) = current {
                for (index, element) in elements.enumerated() {
                    results.append(
                        PathCandidate(value: element, isArrayElement: true, firstArrayIndex: firstArrayIndex ?? index))
                }
            }
            return
        }
        let component = components[componentIndex]
        switch current {
        case .document(let document):
            if let next = document[component] {
                collect(next, componentIndex: componentIndex + 1, firstArrayIndex: firstArrayIndex, expand: expand, into: &results)
            } else {
                results.append(PathCandidate(value: nil, isArrayElement: false, firstArrayIndex: firstArrayIndex))
            }
        case .array(let elements):
            if let index = Int(component), index >= 0, component.first != "+" {
                if index < elements.count {
                    collect(
                        elements[index], componentIndex: componentIndex + 1, firstArrayIndex: firstArrayIndex,
                        expand: expand, into: &results)
                }
            }
            var sawDocument = false
            for (index, element) in elements.enumerated() {
                guard case .document = element else { continue }
                sawDocument = true
                collect(
                    element, componentIndex: componentIndex, firstArrayIndex: firstArrayIndex ?? index, expand: expand,
                    into: &results)
            }
            if !sawDocument && Int(component) == nil {
                results.append(PathCandidate(value: nil, isArrayElement: false, firstArrayIndex: firstArrayIndex))
            }
        default:
            results.append(PathCandidate(value: nil, isArrayElement: false, firstArrayIndex: firstArrayIndex))
        }
    }

    /// The values the path ends at, with arrays unwound one level (an array at the end of the
    /// path stands for its elements, which are candidates of their own); `nil` for each place
    /// where the field is missing. An empty array at the end yields `emptyArrayValue` when
    /// given. This is what index keys, `distinct` and `$lookup` match on.
    package func leafValues(in document: BSONDocument, emptyArrayValue: BSONValue? = nil) -> [BSONValue?] {
        var values: [BSONValue?] = []
        for candidate in candidates(in: document) {
            if case .array(let elements)? = candidate.value, !candidate.isArrayElement {
                if elements.isEmpty, let emptyArrayValue { values.append(emptyArrayValue) }
                continue
            }
            values.append(candidate.value)
        }
        return values
    }

    /// The value at this path without array traversal (used by projection and `$group` keys on
    /// plain documents); `nil` when missing.
    func value(in document: BSONDocument) -> BSONValue? {
        var current = BSONValue.document(document)
        for component in components {
            switch current {
            case .document(let inner):
                guard let next = inner[component] else { return nil }
                current = next
            case .array(let elements):
                guard let index = Int(component), index >= 0, index < elements.count else { return nil }
                current = elements[index]
            default:
                return nil
            }
        }
        return current
    }
}
