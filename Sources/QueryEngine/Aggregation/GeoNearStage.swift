/// `$geoNear`: the documents of a collection nearest a point first, each with its distance. It
/// must be the first stage and needs a geospatial index on the field it measures, as in MongoDB.
struct GeoNearStage: Sendable {
    let near: GeoNear
    /// Where each document gets its distance (a dotted path).
    let distanceField: FieldPath
    /// Where each document gets the location the distance was measured to.
    let includeLocs: FieldPath?
    let query: Filter
    /// The indexed field to measure (`key`); needed when several geospatial indexes exist.
    let key: String?
    let distanceMultiplier: Double

    init(_ value: BSONValue) throws(QueryError) {
        guard case .document(let spec) = value else { throw QueryError(.location(10065), "invalid parameter: expected an object ($geoNear)") }
        let known: Set<String> = ["near", "distanceField", "spherical", "maxDistance", "minDistance", "query", "includeLocs", "distanceMultiplier", "key"]
        for key in spec.keys where !known.contains(key) {
            throw QueryError(.badValue, "Unknown argument to $geoNear: \(key)")
        }
        guard let nearValue = spec["near"] else { throw QueryError(.badValue, "$geoNear requires a 'near' option as an Array or an Object") }
        guard case .string(let distanceField)? = spec["distanceField"] else {
            throw QueryError(.location(16606), "$geoNear requires a 'distanceField' option as a String")
        }
        let spherical = spec["spherical"]?.isTruthy ?? false
        var near: GeoNear
        if case .document(let document) = nearValue, document["type"] != nil {
            guard case .point(let point) = try GeoShape.geoJSON(document) else { throw QueryError(.badValue, "$geoNear's 'near' must be a GeoJSON Point") }
            near = GeoNear(point: point, spherical: true, meters: true)
        } else if let point = GeoShape.legacyPoint(nearValue) {
            near = GeoNear(point: point, spherical: spherical, meters: false)
        } else {
            throw QueryError(.badValue, "$geoNear's 'near' must be a point: [x, y] or a GeoJSON Point")
        }
        for (name, value) in [("minDistance", spec["minDistance"]), ("maxDistance", spec["maxDistance"])] {
            guard let value else { continue }
            guard value.isNumber, let number = value.doubleValue, number >= 0 else { throw QueryError(.badValue, "\(name) must be a non-negative number") }
            if name == "minDistance" { near.minDistance = number } else { near.maxDistance = number }
        }
        self.near = near
        self.distanceField = try FieldPath(distanceField)
        if case .string(let path)? = spec["includeLocs"] { includeLocs = try FieldPath(path) } else { includeLocs = nil }
        if case .document(let filter)? = spec["query"] { query = try Filter(filter) } else { query = .alwaysTrue }
        if let key = spec["key"] {
            guard case .string(let path) = key, !path.isEmpty else { throw QueryError(.badValue, "$geoNear requires 'key' to be a non-empty string") }
            self.key = path
        } else {
            self.key = nil
        }
        if let multiplier = spec["distanceMultiplier"] {
            guard multiplier.isNumber, let number = multiplier.doubleValue, number >= 0 else {
                throw QueryError(.badValue, "distanceMultiplier must be a non-negative number")
            }
            distanceMultiplier = number
        } else {
            distanceMultiplier = 1
        }
    }

    /// Sets a dotted path, replacing whatever is in the way that is not a document (MongoDB's
    /// `$geoNear` writes `distanceField` and `includeLocs` that way).
    private static func set(_ path: ArraySlice<String>, _ value: BSONValue, in document: inout BSONDocument) {
        guard let head = path.first else { return }
        guard path.count > 1 else {
            document[head] = value
            return
        }
        var inner = document[head]?.documentValue ?? BSONDocument()
        set(path.dropFirst(), value, in: &inner)
        document[head] = .document(inner)
    }

    /// The matching documents of `collection`, nearest first, with their distances.
    func run(_ store: DatabaseStore, collection collectionName: String) throws(QueryError) -> [BSONDocument] {
        guard let descriptor = store.collection(collectionName) else { return [] }
        let indexed = descriptor.indexes.filter { !$0.isHidden }.flatMap { $0.geoFields.keys }
        let field: String
        if let key {
            guard indexed.contains(key) else {
                throw QueryError(.badValue, "$geoNear: no geospatial index on the key '\(key)'")
            }
            field = key
        } else {
            guard let only = indexed.first else {
                throw QueryError(.noQueryExecutionPlans, "$geoNear requires a 2d or 2dsphere index, but none were found")
            }
            guard indexed.count == 1 else {
                throw QueryError(.badValue, "There is more than one geospatial index; $geoNear needs 'key' to choose one")
            }
            field = only
        }
        let path = try FieldPath(field)
        // On a 2dsphere index a legacy pair is a point on the sphere (radians), as in MongoDB.
        var near = self.near
        if descriptor.geoIndexKind(on: field) == "2dsphere" { near.spherical = true }
        var measured: [(distance: Double, document: BSONDocument)] = []
        for match in try store.matches(in: collectionName, filter: query) {
            try OperationContext.checkpoint()
            let values = path.candidates(in: match.document).compactMap(\.value)
            var nearest: (distance: Double, location: BSONValue)?
            for value in values {
                guard let shape = GeoShape.read(value) else { continue }
                let distance = near.distance(to: shape)
                if nearest == nil || distance < nearest!.distance { nearest = (distance, value) }
            }
            guard let nearest, near.accepts(nearest.distance) else { continue }
            var document = match.document
            Self.set(distanceField.components[...], .double(nearest.distance * distanceMultiplier), in: &document)
            if let includeLocs { Self.set(includeLocs.components[...], nearest.location, in: &document) }
            measured.append((nearest.distance, document))
        }
        // Stable: equally distant documents keep the collection's order.
        return measured.enumerated().sorted { ($0.element.distance, $0.offset) < ($1.element.distance, $1.offset) }.map(\.element.document)
    }
}
