/// The `arrayFilters` of an update: a filter per identifier, used by `$[identifier]` path
/// components to choose which array elements an operator touches.
public struct ArrayFilters: Sendable {
    private let filters: [String: Filter]

    /// No array filters.
    public static let none = ArrayFilters(filters: [:])

    private init(filters: [String: Filter]) { self.filters = filters }

    /// Parses the `arrayFilters` option: documents whose top-level fields all start with one
    /// identifier (`{"g": {$gte: 85}}` or `{"g.score": {$gt: 1}, "g.kind": "quiz"}`).
    public init(_ values: [BSONValue]) throws(QueryError) {
        var filters: [String: Filter] = [:]
        for value in values {
            guard case .document(let document) = value, !document.isEmpty else {
                throw QueryError(.failedToParse, "Cannot use an expression without a top-level field name in arrayFilters")
            }
            var identifier: String?
            for key in document.keys {
                let name = String(key.split(separator: ".", maxSplits: 1).first ?? "")
                guard let first = name.unicodeScalars.first, ("a"..."z").contains(first),
                    name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) })
                else {
                    throw QueryError(.badValue, "The top-level field name must be an alphanumeric string beginning with a lowercase letter, found '\(name)'")
                }
                if let identifier, identifier != name {
                    throw QueryError(.failedToParse, "Error parsing array filter :: caused by :: Expected a single top-level field name, found '\(identifier)' and '\(name)'")
                }
                identifier = name
            }
            guard let identifier else { continue }
            guard filters[identifier] == nil else {
                throw QueryError(.failedToParse, "Found multiple array filters with the same top-level field name \(identifier)")
            }
            filters[identifier] = try Filter(document)
        }
        self.filters = filters
    }

    /// The identifiers that have a filter.
    var identifiers: Set<String> { Set(filters.keys) }

    /// Whether `element` passes the filter of `identifier`.
    func matches(_ identifier: String, _ element: BSONValue) throws(QueryError) -> Bool {
        guard let filter = filters[identifier] else {
            throw QueryError(.badValue, "No array filter found for identifier '\(identifier)'")
        }
        return filter.matches([identifier: element])
    }
}

extension Update {
    /// Checks that every `$[identifier]` has a filter and every filter is used, as MongoDB does.
    public func validate(_ arrayFilters: ArrayFilters) throws(QueryError) {
        guard case .operators(let operations) = self else {
            if !arrayFilters.identifiers.isEmpty {
                if case .pipeline = self { throw QueryError(.failedToParse, "arrayFilters may not be specified for pipeline-style updates") }
                throw QueryError(.failedToParse, "arrayFilters may not be specified for a replacement-style update")
            }
            return
        }
        var used = Set<String>()
        for operation in operations {
            for component in operation.path where component.hasPrefix("$[") && component.hasSuffix("]") && component != "$[]" {
                let identifier = String(component.dropFirst(2).dropLast())
                guard arrayFilters.identifiers.contains(identifier) else {
                    throw QueryError(.badValue, "No array filter found for identifier '\(identifier)' in path '\(operation.path.joined(separator: "."))'")
                }
                used.insert(identifier)
            }
        }
        if let unused = arrayFilters.identifiers.subtracting(used).sorted().first {
            throw QueryError(.failedToParse, "The array filter for identifier '\(unused)' was not used in the update")
        }
    }
}
