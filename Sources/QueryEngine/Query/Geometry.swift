import Foundation

/// Geometry for geospatial queries: GeoJSON objects and legacy coordinate pairs as MongoDB reads
/// them, with spherical predicates and distances (GeoJSON, `$centerSphere`, `$nearSphere`) and
/// flat ones (`$box`, `$polygon`, `$center`, `$near` on legacy pairs).
///
/// Spherical geometry works on unit vectors: edges are great-circle arcs, as in MongoDB's S2
/// library, and distances are arcs times the radius MongoDB uses for the Earth.
public struct GeoPoint: Sendable, Equatable {
    /// Longitude (x).
    public var x: Double
    /// Latitude (y).
    public var y: Double
}

/// A geometry a document holds or a query names.
public indirect enum GeoShape: Sendable {
    case point(GeoPoint)
    case multiPoint([GeoPoint])
    case lineString([GeoPoint])
    case multiLineString([[GeoPoint]])
    /// Rings: the exterior first, then holes; each closed (first point = last point).
    case polygon([[GeoPoint]])
    case multiPolygon([[[GeoPoint]]])
    case collection([GeoShape])

    /// MongoDB's Earth radius in meters (`kRadiusOfEarthInMeters`).
    static let earthRadiusMeters = 6_378_100.0

    /// Every vertex.
    var vertices: [GeoPoint] {
        switch self {
        case .point(let point): [point]
        case .multiPoint(let points), .lineString(let points): points
        case .multiLineString(let lines): lines.flatMap { $0 }
        case .polygon(let rings): rings.flatMap { $0 }
        case .multiPolygon(let polygons): polygons.flatMap { $0.flatMap { $0 } }
        case .collection(let shapes): shapes.flatMap(\.vertices)
        }
    }

    /// Every edge (as vertex pairs) of lines and polygon rings.
    var edges: [(GeoPoint, GeoPoint)] {
        func pairs(_ points: [GeoPoint]) -> [(GeoPoint, GeoPoint)] {
            points.count < 2 ? [] : (1..<points.count).map { (points[$0 - 1], points[$0]) }
        }
        switch self {
        case .point, .multiPoint: return []
        case .lineString(let points): return pairs(points)
        case .multiLineString(let lines): return lines.flatMap(pairs)
        case .polygon(let rings): return rings.flatMap(pairs)
        case .multiPolygon(let polygons): return polygons.flatMap { $0.flatMap(pairs) }
        case .collection(let shapes): return shapes.flatMap(\.edges)
        }
    }

    /// The polygons (as rings) the shape covers.
    var polygons: [[[GeoPoint]]] {
        switch self {
        case .polygon(let rings): [rings]
        case .multiPolygon(let polygons): polygons
        case .collection(let shapes): shapes.flatMap(\.polygons)
        default: []
        }
    }

    // MARK: - Reading

    /// A stored value as a geometry: a GeoJSON object or a legacy pair (`[x, y]` or a document
    /// whose first two values are numbers); nil for anything else.
    static func read(_ value: BSONValue) -> GeoShape? {
        if case .document(let document) = value, document["type"] != nil {
            return try? geoJSON(document)
        }
        return legacyPoint(value).map { .point($0) }
    }

    /// `[x, y]` or `{a: x, b: y}`: the first two values, both numbers.
    static func legacyPoint(_ value: BSONValue) -> GeoPoint? {
        let values: [BSONValue]
        switch value {
        case .array(let items): values = items
        case .document(let document): values = document.elements.map(\.value)
        default: return nil
        }
        guard values.count >= 2, values[0].isNumber, values[1].isNumber, let x = values[0].doubleValue, let y = values[1].doubleValue,
            x.isFinite, y.isFinite
        else { return nil }
        return GeoPoint(x: x, y: y)
    }

    /// A GeoJSON object, checked as MongoDB checks it (code 2 on a malformed one).
    static func geoJSON(_ document: BSONDocument) throws(QueryError) -> GeoShape {
        guard case .string(let type)? = document["type"] else { throw QueryError(.badValue, "GeoJSON: 'type' must be a string") }
        if type == "GeometryCollection" {
            guard case .array(let items)? = document["geometries"] else {
                throw QueryError(.badValue, "GeometryCollection must have a 'geometries' array")
            }
            var shapes: [GeoShape] = []
            for item in items {
                guard case .document(let inner) = item else { throw QueryError(.badValue, "GeometryCollection members must be objects") }
                let shape = try geoJSON(inner)
                if case .collection = shape { throw QueryError(.badValue, "GeometryCollections cannot be nested") }
                shapes.append(shape)
            }
            return .collection(shapes)
        }
        guard let coordinates = document["coordinates"] else { throw QueryError(.badValue, "GeoJSON \(type) must have 'coordinates'") }
        if document["crs"] != nil {
            throw QueryError(.badValue, "GeoJSON with a 'crs' (big polygons) is not supported by StratosDB yet")
        }
        switch type {
        case "Point": return .point(try position(coordinates))
        case "MultiPoint": return .multiPoint(try positions(coordinates, minimum: 1))
        case "LineString": return .lineString(try positions(coordinates, minimum: 2))
        case "MultiLineString": return .multiLineString(try list(coordinates) { value throws(QueryError) in try positions(value, minimum: 2) })
        case "Polygon": return .polygon(try rings(coordinates))
        case "MultiPolygon": return .multiPolygon(try list(coordinates, rings))
        default: throw QueryError(.badValue, "unknown GeoJSON type: \(type)")
        }
    }

    private static func list<T>(_ value: BSONValue, _ read: (BSONValue) throws(QueryError) -> T) throws(QueryError) -> [T] {
        guard case .array(let items) = value, !items.isEmpty else { throw QueryError(.badValue, "GeoJSON coordinates must be a non-empty array") }
        var output: [T] = []
        for item in items { output.append(try read(item)) }
        return output
    }

    private static func position(_ value: BSONValue) throws(QueryError) -> GeoPoint {
        guard case .array(let items) = value, items.count >= 2, items.allSatisfy(\.isNumber), let point = legacyPoint(value) else {
            throw QueryError(.badValue, "GeoJSON coordinates must be an array of at least two numbers")
        }
        guard (-180...180).contains(point.x), (-90...90).contains(point.y) else {
            throw QueryError(.badValue, "longitude/latitude is out of bounds: longitude must be within [-180, 180] and latitude within [-90, 90]")
        }
        return point
    }

    private static func positions(_ value: BSONValue, minimum: Int) throws(QueryError) -> [GeoPoint] {
        let points = try list(value, position)
        guard points.count >= minimum else { throw QueryError(.badValue, "GeoJSON shape needs at least \(minimum) positions") }
        return points
    }

    private static func rings(_ value: BSONValue) throws(QueryError) -> [[GeoPoint]] {
        try list(value) { ring throws(QueryError) in
            let points = try positions(ring, minimum: 4)
            guard points.first == points.last else {
                throw QueryError(.badValue, "Loop is not closed: the first and last vertices of a polygon ring must be the same")
            }
            return points
        }
    }

    // MARK: - Spherical geometry

    typealias Vector = (x: Double, y: Double, z: Double)

    static func vector(_ point: GeoPoint) -> Vector {
        let longitude = point.x * .pi / 180
        let latitude = point.y * .pi / 180
        return (cos(latitude) * cos(longitude), cos(latitude) * sin(longitude), sin(latitude))
    }

    static func dot(_ a: Vector, _ b: Vector) -> Double { a.x * b.x + a.y * b.y + a.z * b.z }
    static func cross(_ a: Vector, _ b: Vector) -> Vector { (a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x) }
    static func length(_ a: Vector) -> Double { dot(a, a).squareRoot() }

    /// The great-circle distance in radians.
    static func arc(_ a: GeoPoint, _ b: GeoPoint) -> Double {
        let u = vector(a)
        let v = vector(b)
        return atan2(length(cross(u, v)), dot(u, v))
    }

    /// The distance in radians from `point` to the arc from `a` to `b`.
    static func arc(_ point: GeoPoint, toEdge a: GeoPoint, _ b: GeoPoint) -> Double {
        let p = vector(point)
        let u = vector(a)
        let v = vector(b)
        let normal = cross(u, v)
        let size = length(normal)
        guard size > 1e-15 else { return arc(point, a) }
        // The point's projection onto the great circle lies on the arc when it is between a and b.
        let n: Vector = (normal.x / size, normal.y / size, normal.z / size)
        if dot(cross(u, p), n) >= 0 && dot(cross(p, v), n) >= 0 {
            return abs(asin(max(-1, min(1, dot(p, n)))))
        }
        return min(arc(point, a), arc(point, b))
    }

    /// Whether `point` is inside a spherical polygon (exterior ring, then holes). Boundary
    /// points are inside.
    ///
    /// A ring's winding around the point (the angles its edges subtend there) is ±2π exactly
    /// when the ring separates the point from its antipode. For a ring within a cap smaller
    /// than a hemisphere (every polygon MongoDB takes without a "big polygon" `crs`), a point
    /// in that cap and separated from its antipode is inside; the cap is centred on the
    /// vertices' mean direction.
    static func sphericalContains(_ rings: [[GeoPoint]], _ point: GeoPoint) -> Bool {
        guard let exterior = rings.first else { return false }
        func onBoundary(_ ring: [GeoPoint]) -> Bool {
            (1..<ring.count).contains { arc(point, toEdge: ring[$0 - 1], ring[$0]) < 1e-12 }
        }
        func winds(_ ring: [GeoPoint]) -> Bool {
            let p = vector(point)
            var sum: Vector = (0, 0, 0)
            for vertex in ring.dropLast() {
                let v = vector(vertex)
                sum = (sum.x + v.x, sum.y + v.y, sum.z + v.z)
            }
            let size = length(sum)
            if size > 1e-9 {
                let center: Vector = (sum.x / size, sum.y / size, sum.z / size)
                let radius = ring.map { acos(max(-1, min(1, dot(vector($0), center)))) }.max() ?? 0
                if radius < .pi / 2 - 1e-9 && acos(max(-1, min(1, dot(p, center)))) > radius + 1e-12 { return false }
            }
            var total = 0.0
            for index in 1..<ring.count {
                let a = vector(ring[index - 1])
                let b = vector(ring[index])
                total += atan2(dot(p, cross(a, b)), dot(a, b) - dot(a, p) * dot(b, p))
            }
            return abs(total) > .pi
        }
        if onBoundary(exterior) { return true }
        guard winds(exterior) else { return false }
        return !rings.dropFirst().contains { !onBoundary($0) && winds($0) }
    }

    /// Whether two great-circle arcs cross or touch.
    static func arcsIntersect(_ a1: GeoPoint, _ a2: GeoPoint, _ b1: GeoPoint, _ b2: GeoPoint) -> Bool {
        if arc(a1, toEdge: b1, b2) < 1e-12 || arc(a2, toEdge: b1, b2) < 1e-12 || arc(b1, toEdge: a1, a2) < 1e-12 || arc(b2, toEdge: a1, a2) < 1e-12 {
            return true
        }
        let p = vector(a1), q = vector(a2), r = vector(b1), s = vector(b2)
        let n1 = cross(p, q)
        let n2 = cross(r, s)
        let line = cross(n1, n2)
        let size = length(line)
        guard size > 1e-15 else { return false }
        for sign in [1.0, -1.0] {
            let x: Vector = (sign * line.x / size, sign * line.y / size, sign * line.z / size)
            if dot(cross(p, x), n1) >= 0, dot(cross(x, q), n1) >= 0, dot(cross(r, x), n2) >= 0, dot(cross(x, s), n2) >= 0 {
                return true
            }
        }
        return false
    }

    /// `$geoIntersects`: whether two shapes share a point (on the sphere).
    static func intersects(_ a: GeoShape, _ b: GeoShape) -> Bool {
        if case .collection(let shapes) = a { return shapes.contains { intersects($0, b) } }
        if case .collection(let shapes) = b { return shapes.contains { intersects(a, $0) } }
        // A vertex of one inside a polygon of the other, or on a line or point of it. Large
        // shapes take long: a cancelled or timed-out operation stops here (and fails at its
        // next checkpoint).
        var steps = 0
        func stop() -> Bool {
            steps += 1
            return steps & 1023 == 0 && OperationContext.shouldStop
        }
        for vertex in a.vertices {
            if b.covers(vertex) { return true }
            if stop() { return false }
        }
        for vertex in b.vertices {
            if a.covers(vertex) { return true }
            if stop() { return false }
        }
        let otherEdges = b.edges
        for (a1, a2) in a.edges {
            for (b1, b2) in otherEdges {
                if arcsIntersect(a1, a2, b1, b2) { return true }
                if stop() { return false }
            }
        }
        return false
    }

    /// Whether the shape holds `point`: inside one of its polygons, on one of its lines or edges,
    /// or one of its points.
    func covers(_ point: GeoPoint) -> Bool {
        if polygons.contains(where: { GeoShape.sphericalContains($0, point) }) { return true }
        if edges.contains(where: { GeoShape.arc(point, toEdge: $0.0, $0.1) < 1e-12 }) { return true }
        switch self {
        case .point(let own): return GeoShape.arc(own, point) < 1e-12
        case .multiPoint(let points): return points.contains { GeoShape.arc($0, point) < 1e-12 }
        case .collection(let shapes): return shapes.contains { $0.covers(point) }
        default: return false
        }
    }

    /// The distance in radians from `point` to the nearest part of the shape (0 inside it).
    func sphericalDistance(from point: GeoPoint) -> Double {
        if polygons.contains(where: { GeoShape.sphericalContains($0, point) }) { return 0 }
        var nearest = vertices.map { GeoShape.arc(point, $0) }.min() ?? .infinity
        for (a, b) in edges { nearest = min(nearest, GeoShape.arc(point, toEdge: a, b)) }
        return nearest
    }

    /// The flat distance from `point` to the nearest vertex (legacy pairs are points).
    func flatDistance(from point: GeoPoint) -> Double {
        vertices.map { hypot($0.x - point.x, $0.y - point.y) }.min() ?? .infinity
    }
}
