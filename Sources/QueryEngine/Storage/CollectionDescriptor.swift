/// A collection as the catalog records it.
public struct CollectionDescriptor: Sendable {
    /// The collection name.
    public let name: String
    /// The table holding its documents (`c<id>`).
    let tableId: Int64
    /// `create` options (capped, validator, …) as given.
    public let options: BSONDocument
    /// A stable identifier reported as `info.uuid`.
    public let uuid: [UInt8]
    /// Secondary indexes (the `_id` index is implicit).
    public internal(set) var indexes: [IndexDescriptor]
    /// Whether some document's `_id` is or holds a decimal: its key (`IndexKey.idKey`) holds a
    /// double near the decimal, so the planner widens numeric bounds on `_id`, re-checks every
    /// document, and does not take the `_id` order as the sort.
    public internal(set) var idHoldsDecimals = false

    package var tableName: String { "c\(tableId)" }

    /// The collection's default collation (`create` with `collation`), for operations that name none.
    public var defaultCollation: Collation? { (try? Collation.parse(options["collation"], checkingLocale: false)) ?? nil }
}

/// Checks names the way MongoDB does, so drivers see the same errors.
public enum NamespaceRules {
    /// Validates a database name.
    public static func validateDatabase(_ name: String) throws(QueryError) {
        guard !name.isEmpty, name.utf8.count < 64 else {
            throw QueryError(.invalidNamespace, "Invalid database name: '\(name)'")
        }
        // Bytes, not Characters: this runs twice per command, and the forbidden characters are
        // all ASCII (a UTF-8 continuation byte is never one of them).
        for byte in name.utf8 where byte == 0x2f || byte == 0x5c || byte == 0x2e || byte == 0x20 || byte == 0x22 || byte == 0x24 || byte == 0 {
            throw QueryError(.invalidNamespace, "Invalid database name: '\(name)'")
        }
    }

    /// Collections the node itself keeps in a space (stored procedures and jobs), which clients may read
    /// but only dedicated commands write. They are ordinary collections otherwise: part of the
    /// space's commits, its state root and its archives.
    public static let internalCollections: Set<String> = ["system.procedures", "system.jobs", "system.job_results"]

    /// Validates a collection name (`internal`: also accept `internalCollections`).
    public static func validateCollection(_ name: String, allowingInternal: Bool = false) throws(QueryError) {
        if allowingInternal && internalCollections.contains(name) { return }
        guard !name.isEmpty else { throw QueryError(.invalidNamespace, "Invalid namespace specified: collection name is empty") }
        guard !name.contains("$"), !name.contains("\0"), !name.hasPrefix("."), !name.hasPrefix("system.") else {
            throw QueryError(.invalidNamespace, "Invalid collection name: \(name)")
        }
        guard name.utf8.count <= 255 else { throw QueryError(.invalidNamespace, "Fully qualified namespace is too long") }
    }
}
