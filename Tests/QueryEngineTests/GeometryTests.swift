import Foundation
import Testing

@testable import QueryEngine

/// Spherical geometry where flat intuition fails: poles, the antimeridian, great-circle edges.
@Suite struct GeometryTests {
    private func point(_ x: Double, _ y: Double) -> GeoPoint { GeoPoint(x: x, y: y) }

    private func ring(_ pairs: [(Double, Double)]) -> [GeoPoint] { pairs.map { point($0.0, $0.1) } }

    @Test func distancesFollowTheGreatCircle() {
        // A quarter of the equator, and pole to equator.
        #expect(abs(GeoShape.arc(point(0, 0), point(90, 0)) - .pi / 2) < 1e-12)
        #expect(abs(GeoShape.arc(point(10, 90), point(-170, 0)) - .pi / 2) < 1e-12)
        // Across the antimeridian: 2 degrees, not 358.
        #expect(abs(GeoShape.arc(point(179, 0), point(-179, 0)) - 2 * .pi / 180) < 1e-12)
        // From a point to an edge: the perpendicular, or the nearer end.
        #expect(abs(GeoShape.arc(point(5, 1), toEdge: point(0, 0), point(10, 0)) - .pi / 180) < 1e-9)
        #expect(abs(GeoShape.arc(point(12, 0), toEdge: point(0, 0), point(10, 0)) - 2 * .pi / 180) < 1e-9)
    }

    @Test func polygonsContainWhatTheyEncloseEvenAcrossTheAntimeridianAndAroundAPole() {
        let square = [ring([(0, 0), (10, 0), (10, 10), (0, 10), (0, 0)])]
        #expect(GeoShape.sphericalContains(square, point(5, 5)))
        #expect(GeoShape.sphericalContains(square, point(10, 5)))  // On an edge.
        #expect(!GeoShape.sphericalContains(square, point(15, 5)))
        // A hole.
        let framed = square + [ring([(4, 4), (6, 4), (6, 6), (4, 6), (4, 4)])]
        #expect(!GeoShape.sphericalContains(framed, point(5, 5)))
        #expect(GeoShape.sphericalContains(framed, point(2, 2)))
        // Straddling the antimeridian: the small polygon, not the rest of the world.
        let pacific = [ring([(170, -10), (-170, -10), (-170, 10), (170, 10), (170, -10)])]
        #expect(GeoShape.sphericalContains(pacific, point(180, 0)))
        #expect(GeoShape.sphericalContains(pacific, point(-175, 5)))
        #expect(!GeoShape.sphericalContains(pacific, point(0, 0)))
        // Around the north pole.
        let arctic = [ring([(0, 80), (90, 80), (180, 80), (-90, 80), (0, 80)])]
        #expect(GeoShape.sphericalContains(arctic, point(45, 89)))
        #expect(!GeoShape.sphericalContains(arctic, point(45, 70)))
        // Edges are great circles: the edge from (-60, 50) to (60, 50) bulges north, so a point
        // at latitude 52 on the meridian is below it (inside), as MongoDB's S2 decides.
        let band = [ring([(-60, 50), (60, 50), (60, 0), (-60, 0), (-60, 50)])]
        #expect(GeoShape.sphericalContains(band, point(0, 52)))
    }

    @Test func shapesIntersectWhereTheyShareAPoint() throws {
        let square = GeoShape.polygon([ring([(0, 0), (4, 0), (4, 4), (0, 4), (0, 0)])])
        #expect(GeoShape.intersects(.lineString(ring([(-2, 2), (6, 2)])), square))
        #expect(GeoShape.intersects(.point(point(1, 1)), square))
        #expect(!GeoShape.intersects(.lineString(ring([(5, 5), (8, 8)])), square))
        #expect(GeoShape.intersects(.polygon([ring([(2, 2), (6, 2), (6, 6), (2, 6), (2, 2)])]), square))
        // One polygon wholly inside the other, no edge crossing.
        #expect(GeoShape.intersects(.polygon([ring([(1, 1), (2, 1), (2, 2), (1, 2), (1, 1)])]), square))
        #expect(GeoShape.arcsIntersect(point(-1, 0), point(1, 0), point(0, -1), point(0, 1)))
        #expect(!GeoShape.arcsIntersect(point(-1, 0), point(1, 0), point(2, -1), point(2, 1)))
        // Antipodal arcs of the same great circle do not meet.
        #expect(!GeoShape.arcsIntersect(point(0, 0), point(10, 0), point(170, 0), point(-170, 0)))
    }

    @Test func geoJSONIsCheckedAsMongoDBChecksIt() {
        #expect(throws: QueryError.self) { try GeoShape.geoJSON(["type": .string("Point"), "coordinates": .array([.int32(181), .int32(0)])]) }
        #expect(throws: QueryError.self) {
            try GeoShape.geoJSON(["type": .string("LineString"), "coordinates": .array([.array([.int32(0), .int32(0)])])])
        }
        #expect(throws: QueryError.self) {
            let position = BSONValue.array([.int32(0), .int32(0)])
            try GeoShape.geoJSON(["type": .string("Polygon"), "coordinates": .array([.array([position, position])])])
        }
        #expect(GeoShape.read(.array([.double(1.5), .int32(2)])) != nil)
        #expect(GeoShape.read(.document(["lng": .int32(1), "lat": .int32(2)])) != nil)
        #expect(GeoShape.read(.string("here")) == nil)
    }
}
