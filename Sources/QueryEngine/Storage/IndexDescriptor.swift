/// A secondary (or `_id`) index of a collection as the catalog records it.
public struct IndexDescriptor: Sendable {
    /// The index name (`email_1`).
    public let name: String
    /// The key pattern fields with their direction.
    public let fields: [(path: FieldPath, ascending: Bool)]
    /// Whether keys must be unique.
    public let unique: Bool
    /// Whether documents missing every indexed field are left out.
    public let sparse: Bool
    /// Only documents matching this filter are indexed (`partialFilterExpression`).
    public let partialFilter: Filter?
    /// The SQLite table holding the keys (`x<id>`); 0 for the `_id` index.
    let tableId: Int64
    /// Whether some document produced more than one key (an array in an indexed field).
    public internal(set) var isMultikey: Bool
    /// Whether some key holds a number no key can place exactly (a decimal with a fraction
    /// between 2^53 and 2^63 in magnitude, or beyond the doubles' normal range:
    /// `IndexKey.decimalKey`). Keys of such an index only narrow a search: the planner widens
    /// numeric bounds, re-checks every document, and does not take its order as the sort.
    public internal(set) var holdsInexactKeys = false
    /// Whether the index keys decimals as the first format did, by a nearby double (catalog
    /// flag 8): an index of that format that could not be rebuilt, because its exact keys would
    /// collide (two equal numbers the old keys told apart, in a unique index). It keeps that
    /// format for every write, and the planner treats it as approximate.
    public internal(set) var legacyDecimalKeys = false
    /// The specification as the user gave it, returned by `listIndexes`.
    public let specification: BSONDocument
    /// The index's collation: its string keys are ICU sort keys, usable by queries with the
    /// same collation only. Indexes built before collations were applied (their specification
    /// may name one, but their keys are bytes) have none (`DatabaseStore.loadCatalog`).
    public internal(set) var collation: Collation?
    /// A text index (`{field: "text"}`, `{"$**": "text"}`): an FTS5 table, no keys (`TextSearch`).
    public let text: TextIndexSpec?
    /// A geospatial index's fields (`{loc: "2dsphere"}`, `{loc: "2d"}`), by dotted path, and
    /// their kinds. Such an index holds no keys: it lets `$near` and `$geoNear` run and checks
    /// the geometries written (a `2dsphere` field must be GeoJSON or a legacy pair); searches
    /// read the collection.
    public private(set) var geoFields: [String: String] = [:]

    package var tableName: String { "x\(tableId)" }

    /// The index as `listIndexes` shows it: the specification as given, except
    /// that a text index reads as MongoDB shows one (`key: {_fts: "text", _ftsx: 1}`, every
    /// field's weight, `default_language`, `language_override`, `textIndexVersion: 3`), so tools
    /// that compare index lists with MongoDB's (schema sync, migrations) see the same entry.
    public var listing: BSONDocument {
        guard let text else { return specification }
        let textOptions: Set<String> = ["v", "key", "name", "weights", "default_language", "language_override", "textIndexVersion"]
        var listing: BSONDocument = [
            "v": specification["v"] ?? .int32(2), "key": .document(listedTextKey), "name": specification["name"] ?? .string(name),
        ]
        for element in specification.elements where !textOptions.contains(element.key) { listing[element.key] = element.value }
        var weights = BSONDocument()
        if text.wildcard {
            weights["$**"] = .int32(1)
        } else {
            for (field, weight) in zip(text.fields, text.weights).sorted(by: { $0.0.dotted < $1.0.dotted }) {
                weights[field.dotted] = .int32(Int32(weight))
            }
        }
        listing["weights"] = .document(weights)
        listing["default_language"] = specification["default_language"] ?? .string(text.language.name)
        listing["language_override"] = specification["language_override"] ?? .string("language")
        listing["textIndexVersion"] = .int32(3)
        return listing
    }

    /// A text index's key as MongoDB lists it: its text fields become `_fts: "text", _ftsx: 1`
    /// between a compound index's other fields.
    var listedTextKey: BSONDocument {
        var key = BSONDocument()
        var textPlaced = false
        for element in keyPattern.elements {
            guard element.value == .string("text") else {
                key.append(element.key, element.value)
                continue
            }
            if !textPlaced {
                key.append("_fts", .string("text"))
                key.append("_ftsx", .int32(1))
                textPlaced = true
            }
        }
        return key
    }

    /// The `{field: 1, …}` key pattern document.
    public var keyPattern: BSONDocument {
        if case .document(let key)? = specification["key"] { return key }
        return BSONDocument()
    }

    /// Parses a `createIndexes` entry.
    init(specification: BSONDocument, tableId: Int64, isMultikey: Bool) throws(QueryError) {
        guard case .document(let key)? = specification["key"], !key.isEmpty else {
            throw QueryError(.cannotCreateIndex, "Index specification must have a non-empty 'key' object")
        }
        guard case .string(let name)? = specification["name"], !name.isEmpty else {
            throw QueryError(.cannotCreateIndex, "Index specification must have a 'name' string")
        }
        var fields: [(path: FieldPath, ascending: Bool)] = []
        text = try TextIndexSpec.parse(specification, key: key)
        var geoFields: [String: String] = [:]
        for element in key.elements where text == nil {
            let path = try FieldPath(element.key)
            switch element.value {
            case .string(let kind) where kind == "2dsphere" || kind == "2d":
                guard geoFields.isEmpty else { throw QueryError(.cannotCreateIndex, "an index may have one geospatial field") }
                geoFields[path.dotted] = kind
            case .string(let kind):
                throw QueryError(.cannotCreateIndex, "Index type '\(kind)' is not supported by StratosDB; use 1 or -1")
            default:
                guard let direction = element.value.doubleValue, direction != 0, element.value.isNumber else {
                    throw QueryError(.cannotCreateIndex, "Values in the index key pattern must be 1 or -1")
                }
                fields.append((path, direction > 0))
            }
        }
        if fields.count > 32 { throw QueryError(.cannotCreateIndex, "Index key pattern has more than 32 fields") }
        if let expiry = specification["expireAfterSeconds"] {
            guard expiry.isNumber, let seconds = expiry.doubleValue, seconds >= 0, seconds <= Double(Int32.max), seconds == seconds.rounded() else {
                throw QueryError(.cannotCreateIndex, "TTL index 'expireAfterSeconds' option must be within an acceptable range, try a lower number: an integer from 0 to 2147483647")
            }
            guard fields.count == 1, geoFields.isEmpty else {
                throw QueryError(.cannotCreateIndex, "TTL indexes are single-field indexes, compound indexes do not support TTL")
            }
            guard fields[0].path.components != ["_id"] else {
                throw QueryError(.invalidIndexSpecificationOption, "The field 'expireAfterSeconds' is not valid for an _id index specification")
            }
        }
        self.name = name
        // A geospatial index keys nothing, so the planner never reads it for its other fields.
        self.fields = geoFields.isEmpty ? fields : []
        self.geoFields = geoFields
        self.unique = specification["unique"]?.isTruthy ?? false
        self.sparse = specification["sparse"]?.isTruthy ?? false
        if case .document(let partial)? = specification["partialFilterExpression"] {
            self.partialFilter = try Filter(partial)
        } else {
            self.partialFilter = nil
        }
        self.tableId = tableId
        self.isMultikey = isMultikey
        self.specification = specification
        // Checked when the index is created; a stored one is taken as it is (unreadable: none).
        collation = tableId < 0 ? try Collation.parse(specification["collation"]) : ((try? Collation.parse(specification["collation"], checkingLocale: false)) ?? nil)
    }

    /// A hidden index (`hidden: true`): kept up to date and enforcing its uniqueness, but never
    /// chosen by the planner, so a user can see what dropping it would do before dropping it.
    /// (`hidden` is checked when an index is created; an older stored value that is not `true`
    /// reads as not hidden.)
    public var isHidden: Bool { specification["hidden"] == .bool(true) }

    /// A TTL index's field and lifetime in seconds (`expireAfterSeconds`), nil for other indexes.
    public var timeToLive: (path: FieldPath, seconds: Int64)? {
        guard let seconds = specification["expireAfterSeconds"]?.int64Value, fields.count == 1 else { return nil }
        return (fields[0].path, seconds)
    }

    /// Whether this is the `_id` index.
    public var isIdIndex: Bool { tableId == 0 }

    /// The keys `document` contributes, deduplicated; empty when the document is not indexed
    /// (sparse or partial). Throws for parallel arrays, as MongoDB does.
    func keys(for document: BSONDocument) throws(QueryError) -> [[UInt8]] {
        try keys(for: document, detectingInexact: false).keys
    }

    /// The keys, and with `detectingInexact` whether an indexed value has an inexact key
    /// (`holdsInexactKeys`), found in the same walk over the document.
    func keys(for document: BSONDocument, detectingInexact: Bool) throws(QueryError) -> (keys: [[UInt8]], inexact: Bool) {
        if text != nil { return ([], false) }  // Its FTS5 table is written by `DatabaseStore.indexText`.
        // Under the index's own collation, whatever the command's (MongoDB's rule): the same
        // document always gets the same keys.
        if let partialFilter, !Collation.with(collation, { partialFilter.matches(document) }) { return ([], false) }
        if !geoFields.isEmpty {
            try checkGeometries(document)
            return ([], false)
        }
        var perField: [[BSONValue]] = []
        var arrayFields = 0
        var allMissing = true
        var inexact = false
        for field in fields {
            let values = IndexDescriptor.keyValues(field.path, in: document)
            if values.present { allMissing = false }
            if values.values.count > 1 { arrayFields += 1 }
            if detectingInexact && !inexact {
                inexact = values.values.contains { $0.containsDecimal && !IndexKey.isExact($0) }
            }
            perField.append(values.values)
        }
        if sparse && allMissing { return ([], inexact) }
        if arrayFields > 1 {
            throw QueryError(.location(171), "cannot index parallel arrays [\(fields.map(\.path.dotted).joined(separator: "] ["))]")
        }
        var keys: [[UInt8]] = [[]]
        for (index, values) in perField.enumerated() {
            var next: [[UInt8]] = []
            for prefix in keys {
                for value in values {
                    var key = prefix
                    IndexKey.append(value, descending: !fields[index].ascending, collation: collation, legacyDecimals: legacyDecimalKeys, to: &key)
                    next.append(key)
                }
            }
            keys = next
        }
        if keys.count > 1 {
            var seen = Set<[UInt8]>()
            keys = keys.filter { seen.insert($0).inserted }
        }
        return (keys, inexact)
    }

    /// The values a path contributes to an index: array elements rather than arrays, `null` for
    /// a missing field, `undefined` for an empty array.
    static func keyValues(_ path: FieldPath, in document: BSONDocument) -> (values: [BSONValue], present: Bool) {
        let values = path.leafValues(in: document, emptyArrayValue: .undefined).compactMap { $0 }
        return (values.isEmpty ? [.null] : values, !values.isEmpty)
    }
}

extension IndexDescriptor {
    /// The `{field: value}` document a duplicate-key error reports (`keyValue`).
    func keyValue(from document: BSONDocument) -> BSONDocument {
        var result = BSONDocument()
        for field in fields {
            result[field.path.dotted] = IndexDescriptor.keyValues(field.path, in: document).values.first ?? .null
        }
        return result
    }

    /// A geospatial index refuses a document whose indexed field holds something that is not
    /// a geometry (16755, as MongoDB's "Can't extract geo keys"); a missing field is fine.
    private func checkGeometries(_ document: BSONDocument) throws(QueryError) {
        for (field, kind) in geoFields {
            guard let path = try? FieldPath(field), let value = path.value(in: document) else { continue }
            if case .null = value { continue }
            let readable: Bool
            if case .array(let items) = value, GeoShape.legacyPoint(value) == nil {
                readable = items.allSatisfy { GeoShape.read($0) != nil }
            } else if case .document(let object) = value, object["type"] != nil, kind == "2dsphere" {
                do {
                    _ = try GeoShape.geoJSON(object)
                    readable = true
                } catch {
                    throw QueryError(.location(16755), "Can't extract geo keys from the document: \(error.message)")
                }
            } else if let point = GeoShape.legacyPoint(value) {
                // On a sphere, a legacy pair is a longitude and a latitude.
                readable = kind == "2d" || ((-180...180).contains(point.x) && (-90...90).contains(point.y))
            } else {
                readable = kind == "2dsphere" && GeoShape.read(value) != nil
            }
            guard readable else {
                throw QueryError(.location(kind == "2d" ? 16804 : 16755), "Can't extract geo keys from the document: the field '\(field)' is not a geometry")
            }
        }
    }
}
