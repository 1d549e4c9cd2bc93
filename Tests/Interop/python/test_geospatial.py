"""Geospatial queries as MongoDB's manual shows them: 2dsphere and 2d indexes, $geoWithin,
$geoIntersects, $near, $nearSphere and $geoNear."""

from __future__ import annotations

import math

import pytest
from pymongo import GEO2D, GEOSPHERE
from pymongo.errors import OperationFailure, WriteError

EARTH_RADIUS_M = 6378100.0


@pytest.fixture
def places(db):
    db.places.insert_many([
        {"_id": 1, "name": "Central Park", "location": {"type": "Point", "coordinates": [-73.97, 40.77]}, "category": "Parks"},
        {"_id": 2, "name": "Sara D. Roosevelt Park", "location": {"type": "Point", "coordinates": [-73.9928, 40.7193]}, "category": "Parks"},
        {"_id": 3, "name": "Polo Grounds", "location": {"type": "Point", "coordinates": [-73.9375, 40.8303]}, "category": "Stadiums"},
    ])
    db.places.create_index([("location", GEOSPHERE)])
    return db.places


def haversine(a, b):
    lng1, lat1, lng2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def test_near_with_min_and_max_distance(places):
    point = {"type": "Point", "coordinates": [-73.9667, 40.78]}
    found = list(places.find({"location": {"$near": {"$geometry": point, "$minDistance": 1000, "$maxDistance": 5000}}}))
    assert [d["name"] for d in found] == ["Central Park"]
    # Without bounds: every place, nearest first.
    ordered = [d["_id"] for d in places.find({"location": {"$near": {"$geometry": point}}})]
    assert ordered == [1, 3, 2]
    assert [d["_id"] for d in places.find({"location": {"$nearSphere": {"$geometry": point}}, "category": "Parks"})] == [1, 2]
    # The internal distance never shows.
    assert all(set(d) == {"_id", "name", "location", "category"} for d in found)


def test_near_needs_a_geospatial_index(db):
    db.plain.insert_one({"location": {"type": "Point", "coordinates": [0, 0]}})
    with pytest.raises(OperationFailure) as error:
        list(db.plain.find({"location": {"$near": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}}))
    assert error.value.code == 291


def test_geo_near_stage(places):
    results = list(places.aggregate([{"$geoNear": {
        "near": {"type": "Point", "coordinates": [-73.99279, 40.719296]}, "distanceField": "dist.calculated", "maxDistance": 2,
        "query": {"category": "Parks"}, "includeLocs": "dist.location", "spherical": True}}]))
    assert [d["name"] for d in results] == ["Sara D. Roosevelt Park"]
    assert results[0]["dist"]["location"] == {"type": "Point", "coordinates": [-73.9928, 40.7193]}
    assert results[0]["dist"]["calculated"] == pytest.approx(haversine([-73.99279, 40.719296], [-73.9928, 40.7193]), rel=1e-6)
    # Every place, nearest first, in kilometres, then later stages.
    everything = list(places.aggregate([
        {"$geoNear": {"near": {"type": "Point", "coordinates": [-73.9667, 40.78]}, "distanceField": "km", "distanceMultiplier": 0.001}},
        {"$project": {"_id": 1, "km": {"$round": ["$km", 1]}}}]))
    assert [d["_id"] for d in everything] == [1, 3, 2]
    assert everything[0]["km"] == round(haversine([-73.9667, 40.78], [-73.97, 40.77]) / 1000, 1)
    with pytest.raises(OperationFailure) as error:
        list(places.aggregate([{"$match": {}}, {"$geoNear": {"near": [0, 0], "distanceField": "d"}}]))
    assert error.value.code == 40603


def test_geo_within_shapes(db):
    db.shapes.insert_many([
        {"_id": 1, "loc": [1, 1]}, {"_id": 2, "loc": [5, 5]}, {"_id": 3, "loc": {"type": "Point", "coordinates": [2, 3]}},
        {"_id": 4, "loc": {"lng": 50, "lat": 50}}, {"_id": 5, "name": "no location"},
    ])
    polygon = {"type": "Polygon", "coordinates": [[[0, 0], [3, 6], [6, 1], [0, 0]]]}
    assert sorted(d["_id"] for d in db.shapes.find({"loc": {"$geoWithin": {"$geometry": polygon}}})) == [1, 3]
    # The flat shapes hold legacy pairs only, as in MongoDB.
    assert sorted(d["_id"] for d in db.shapes.find({"loc": {"$geoWithin": {"$box": [[0, 0], [5, 5]]}}})) == [1, 2]
    assert sorted(d["_id"] for d in db.shapes.find({"loc": {"$geoWithin": {"$polygon": [[0, 0], [0, 4], [4, 0]]}}})) == [1]
    assert sorted(d["_id"] for d in db.shapes.find({"loc": {"$geoWithin": {"$center": [[0, 0], 2]}}})) == [1]
    # $centerSphere: a radius in radians (10 miles / the Earth's radius in miles).
    db.shapes.insert_one({"_id": 6, "loc": [-88.05, 30.05]})
    assert [d["_id"] for d in db.shapes.find({"loc": {"$geoWithin": {"$centerSphere": [[-88, 30], 10 / 3963.2]}}})] == [6]
    with pytest.raises(OperationFailure):
        list(db.shapes.find({"loc": {"$geoWithin": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}}))


def test_geo_intersects(db):
    db.roads.insert_many([
        {"_id": 1, "path": {"type": "LineString", "coordinates": [[-5, 0], [5, 0]]}},
        {"_id": 2, "path": {"type": "LineString", "coordinates": [[10, 10], [20, 20]]}},
        {"_id": 3, "path": {"type": "Point", "coordinates": [1, 1]}},
        {"_id": 4, "path": {"type": "Polygon", "coordinates": [[[-1, -1], [-1, -2], [-2, -2], [-1, -1]]]}},
    ])
    square = {"type": "Polygon", "coordinates": [[[0, -3], [3, -3], [3, 3], [0, 3], [0, -3]]]}
    assert sorted(d["_id"] for d in db.roads.find({"path": {"$geoIntersects": {"$geometry": square}}})) == [1, 3]
    crossing = {"type": "LineString", "coordinates": [[15, 0], [15, 30]]}
    assert [d["_id"] for d in db.roads.find({"path": {"$geoIntersects": {"$geometry": crossing}}})] == [2]


def test_legacy_pairs_with_a_2d_index(db):
    db.legacy.insert_many([{"_id": i, "loc": [i, 0]} for i in range(6)])
    db.legacy.create_index([("loc", GEO2D)])
    assert [d["_id"] for d in db.legacy.find({"loc": {"$near": [2.2, 0], "$maxDistance": 1.5}})] == [2, 3, 1]
    # $nearSphere on legacy pairs measures radians.
    found = [d["_id"] for d in db.legacy.find({"loc": {"$nearSphere": [0, 0], "$maxDistance": math.radians(2.5)}})]
    assert found == [0, 1, 2]
    near = list(db.legacy.aggregate([{"$geoNear": {"near": [0, 0], "distanceField": "d"}}, {"$limit": 2}]))
    assert [(d["_id"], d["d"]) for d in near] == [(0, 0.0), (1, 1.0)]


def test_a_2dsphere_index_refuses_what_is_not_a_geometry(db):
    db.geo.create_index([("where", GEOSPHERE)])
    db.geo.insert_one({"where": {"type": "Point", "coordinates": [10, 20]}})
    db.geo.insert_one({"name": "no location is fine"})
    for bad in ({"type": "Point", "coordinates": [200, 0]}, {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0]]]}, "somewhere"):
        with pytest.raises(WriteError) as error:
            db.geo.insert_one({"where": bad})
        assert error.value.code == 16755
    info = db.geo.index_information()["where_2dsphere"]
    assert info["key"] == [("where", "2dsphere")]


def test_what_reviews_found(db):
    # Legacy pairs on a 2dsphere index are points on the sphere: distances in radians.
    db.sphere.insert_many([{"_id": i, "loc": [i, 0], "dist": 5} for i in range(4)])
    db.sphere.create_index([("loc", GEOSPHERE)])
    assert [d["_id"] for d in db.sphere.find({"loc": {"$near": [0, 0], "$maxDistance": math.radians(1.5)}})] == [0, 1]
    near = list(db.sphere.aggregate([{"$geoNear": {"near": [0, 0], "distanceField": "dist.calc", "includeLocs": "dist.loc"}}]))
    # A dotted distanceField replaces what is in its way.
    assert near[1]["dist"] == {"calc": pytest.approx(math.radians(1)), "loc": [1, 0]}
    # The distance never shows, even through $$ROOT.
    rows = list(db.sphere.find({"loc": {"$near": [0, 0]}}, {"whole": "$$ROOT"}))
    assert [set(r["whole"]) for r in rows] == [{"_id", "loc", "dist"}] * 4
    # A 2dsphere index refuses a legacy pair off the globe.
    with pytest.raises(WriteError) as error:
        db.sphere.insert_one({"loc": [500, 0]})
    assert error.value.code == 16755
    # A hidden geospatial index cannot answer $near.
    db.command("collMod", "sphere", index={"name": "loc_2dsphere", "hidden": True})
    with pytest.raises(OperationFailure) as error:
        list(db.sphere.find({"loc": {"$near": [0, 0]}}))
    assert error.value.code == 291
    # No TTL on a geospatial index.
    with pytest.raises(OperationFailure) as error:
        db.sphere.create_index([("where", GEOSPHERE), ("t", 1)], expireAfterSeconds=5)
    assert error.value.code == 67
