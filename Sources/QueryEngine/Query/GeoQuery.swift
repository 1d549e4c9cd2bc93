import Foundation

/// `$geoWithin`'s region: MongoDB's flat legacy shapes, or a sphere's.
public enum GeoRegion: Sendable {
    /// `$box: [[x1, y1], [x2, y2]]` (bottom left, top right), boundary included.
    case box(GeoPoint, GeoPoint)
    /// `$polygon: [[x, y], …]`, flat, boundary included.
    case flatPolygon([GeoPoint])
    /// `$center: [[x, y], radius]`, flat.
    case center(GeoPoint, Double)
    /// `$centerSphere: [[lng, lat], radians]`.
    case centerSphere(GeoPoint, Double)
    /// `$geometry`: a GeoJSON Polygon or MultiPolygon on the sphere.
    case shape(GeoShape)

    /// Parses `$geoWithin`'s argument.
    static func parse(_ value: BSONValue) throws(QueryError) -> GeoRegion {
        guard case .document(let spec) = value, spec.count == 1, let kind = spec.firstKey, let argument = spec[kind] else {
            throw QueryError(.badValue, "$geoWithin takes one of $geometry, $box, $polygon, $center or $centerSphere")
        }
        func point(_ value: BSONValue?) throws(QueryError) -> GeoPoint {
            guard let value, let point = GeoShape.legacyPoint(value) else { throw QueryError(.badValue, "\(kind): a point must be [x, y]") }
            return point
        }
        func circle() throws(QueryError) -> (GeoPoint, Double) {
            guard case .array(let items) = argument, items.count == 2, items[1].isNumber, let radius = items[1].doubleValue, radius >= 0 else {
                throw QueryError(.badValue, "\(kind) takes [[x, y], radius] with a non-negative radius")
            }
            return (try point(items[0]), radius)
        }
        switch kind {
        case "$box":
            guard case .array(let corners) = argument, corners.count == 2 else { throw QueryError(.badValue, "$box takes two corners") }
            return .box(try point(corners[0]), try point(corners[1]))
        case "$polygon":
            guard case .array(let items) = argument, items.count >= 3 else { throw QueryError(.badValue, "$polygon takes at least three points") }
            var points: [GeoPoint] = []
            for item in items { points.append(try point(item)) }
            return .flatPolygon(points)
        case "$center":
            let (center, radius) = try circle()
            return .center(center, radius)
        case "$centerSphere":
            let (center, radius) = try circle()
            return .centerSphere(center, radius)
        case "$geometry":
            guard case .document(let document) = argument else { throw QueryError(.badValue, "$geometry must be a GeoJSON object") }
            let shape = try GeoShape.geoJSON(document)
            guard !shape.polygons.isEmpty, shape.vertices.count == shape.polygons.flatMap({ $0.flatMap { $0 } }).count else {
                throw QueryError(.badValue, "$geoWithin's $geometry must be a Polygon or a MultiPolygon")
            }
            return .shape(shape)
        default:
            throw QueryError(.badValue, "unknown geo specifier: \(kind)")
        }
    }

    /// Whether the region is a flat grid's (`$box`, `$polygon`, `$center`), which holds only
    /// legacy coordinate pairs, as in MongoDB.
    var isFlat: Bool {
        switch self {
        case .box, .flatPolygon, .center: true
        case .centerSphere, .shape: false
        }
    }

    /// Whether every vertex of `shape` lies in the region (a cancelled or timed-out operation
    /// stops early and fails at its next checkpoint).
    func contains(_ shape: GeoShape) -> Bool {
        let vertices = shape.vertices
        guard !vertices.isEmpty else { return false }
        for (index, vertex) in vertices.enumerated() {
            guard contains(vertex) else { return false }
            if index & 1023 == 1023 && OperationContext.shouldStop { return false }
        }
        return true
    }

    func contains(_ point: GeoPoint) -> Bool {
        switch self {
        case .box(let low, let high):
            return (min(low.x, high.x)...max(low.x, high.x)).contains(point.x) && (min(low.y, high.y)...max(low.y, high.y)).contains(point.y)
        case .flatPolygon(let points):
            // On an edge, or inside by ray casting.
            var inside = false
            for index in points.indices {
                let a = points[index]
                let b = points[(index + 1) % points.count]
                let cross = (b.x - a.x) * (point.y - a.y) - (b.y - a.y) * (point.x - a.x)
                if abs(cross) < 1e-12, (min(a.x, b.x)...max(a.x, b.x)).contains(point.x), (min(a.y, b.y)...max(a.y, b.y)).contains(point.y) {
                    return true
                }
                if (a.y > point.y) != (b.y > point.y), point.x < (b.x - a.x) * (point.y - a.y) / (b.y - a.y) + a.x { inside.toggle() }
            }
            return inside
        case .center(let center, let radius):
            return hypot(point.x - center.x, point.y - center.y) <= radius
        case .centerSphere(let center, let radians):
            return GeoShape.arc(center, point) <= radians
        case .shape(let region):
            return region.polygons.contains { GeoShape.sphericalContains($0, point) }
        }
    }
}

/// `$near` and `$nearSphere` (and `$geoNear`'s `near`): the point distances are measured from,
/// and the bounds on them.
public struct GeoNear: Sendable {
    let point: GeoPoint
    /// Distances along the sphere (else flat, in coordinate units).
    var spherical: Bool
    /// Spherical distances in meters (the point was GeoJSON), else radians.
    let meters: Bool
    var minDistance: Double?
    var maxDistance: Double?

    /// The distance from the point to `shape`, in the query's unit.
    func distance(to shape: GeoShape) -> Double {
        guard spherical else { return shape.flatDistance(from: point) }
        let radians = shape.sphericalDistance(from: point)
        return meters ? radians * GeoShape.earthRadiusMeters : radians
    }

    /// The nearest distance of the geometries among a path's values, or nil when none is one.
    func distance(to values: [BSONValue]) -> Double? {
        values.compactMap { GeoShape.read($0).map { distance(to: $0) } }.min()
    }

    func accepts(_ distance: Double) -> Bool {
        distance >= (minDistance ?? 0) && distance <= (maxDistance ?? .infinity)
    }

    /// Parses `$near: …` or `$nearSphere: …` with its sibling `$minDistance`/`$maxDistance`.
    static func parse(_ name: String, _ value: BSONValue, minDistance: BSONValue?, maxDistance: BSONValue?) throws(QueryError) -> GeoNear {
        func bound(_ value: BSONValue?, _ label: String) throws(QueryError) -> Double? {
            guard let value else { return nil }
            guard value.isNumber, let number = value.doubleValue, number >= 0, !number.isNaN else {
                throw QueryError(.badValue, "\(label) must be a non-negative number")
            }
            return number
        }
        var near: GeoNear
        if case .document(let spec) = value, let geometry = spec["$geometry"] ?? (spec["type"] != nil ? value : nil) {
            guard case .document(let document) = geometry, case .point(let point) = try GeoShape.geoJSON(document) else {
                throw QueryError(.badValue, "\(name) requires a GeoJSON Point as $geometry")
            }
            near = GeoNear(point: point, spherical: true, meters: true)
            near.minDistance = try bound(spec["$minDistance"] ?? minDistance, "$minDistance")
            near.maxDistance = try bound(spec["$maxDistance"] ?? maxDistance, "$maxDistance")
        } else if let point = GeoShape.legacyPoint(value) {
            near = GeoNear(point: point, spherical: name == "$nearSphere", meters: false)
            near.minDistance = try bound(minDistance, "$minDistance")
            near.maxDistance = try bound(maxDistance, "$maxDistance")
        } else {
            throw QueryError(.badValue, "\(name) must be a point: [x, y] or {$geometry: {type: \"Point\", coordinates: [lng, lat]}}")
        }
        return near
    }
}

extension Filter {
    /// The field and point of the filter's `$near` or `$nearSphere`, if it has one (at the top
    /// level or in a top-level `$and`): its matches come nearest first.
    public var nearQuery: (path: FieldPath, near: GeoNear)? {
        switch self {
        case .field(let path, let operators):
            for case .near(let near) in operators { return (path, near) }
            return nil
        case .and(let clauses):
            for clause in clauses { if let found = clause.nearQuery { return found } }
            return nil
        default:
            return nil
        }
    }

    /// The filter with each `$near` measured as its field's index measures: on a `2dsphere`
    /// index a legacy pair is a point on the sphere (distances in radians), as in MongoDB.
    func measuringNear(in collection: CollectionDescriptor) -> Filter {
        switch self {
        case .field(let path, let operators):
            guard collection.geoIndexKind(on: path.dotted) == "2dsphere" else { return self }
            return .field(path, operators.map { op in
                guard case .near(var near) = op, !near.spherical else { return op }
                near.spherical = true
                return .near(near)
            })
        case .and(let clauses):
            return .and(clauses.map { $0.measuringNear(in: collection) })
        default:
            return self
        }
    }
}

extension CollectionDescriptor {
    /// The kind (`2dsphere` or `2d`) of the geospatial index on `path` that queries may use
    /// (not a hidden one), or nil.
    func geoIndexKind(on path: String) -> String? {
        indexes.first { !$0.isHidden && $0.geoFields[path] != nil }?.geoFields[path]
    }
}
