"""find projections (inclusion, exclusion, dotted paths, $slice, $elemMatch, positional) and
field names with dots and dollars, as MongoDB 5.0+ stores and reads them."""

from __future__ import annotations

import pytest
from pymongo.errors import OperationFailure, WriteError


PDOCS = [
    {
        "_id": 1,
        "name": "a",
        "stats": {"hp": 10, "mp": 5},
        "scores": [1, 2, 3, 4, 5],
        "grades": [{"g": 70, "s": "x"}, {"g": 85, "s": "y"}, {"g": 90, "s": "z"}],
    },
    {"_id": 2, "name": "b", "stats": {"hp": 1}, "scores": [], "grades": [{"g": 10, "s": "q"}]},
]


@pytest.fixture
def p(db):
    db.p.insert_many(PDOCS)
    return db.p


def test_projection_inclusion_keeps_id(p):
    assert p.find_one({"_id": 1}, {"name": 1}) == {"_id": 1, "name": "a"}


def test_projection_inclusion_without_id(p):
    assert p.find_one({"_id": 1}, {"name": 1, "_id": 0}) == {"name": "a"}


def test_projection_exclusion(p):
    assert p.find_one({"_id": 1}, {"scores": 0, "grades": 0}) == {
        "_id": 1,
        "name": "a",
        "stats": {"hp": 10, "mp": 5},
    }


def test_projection_dotted_inclusion(p):
    assert p.find_one({"_id": 1}, {"stats.hp": 1}) == {"_id": 1, "stats": {"hp": 10}}


def test_projection_dotted_exclusion(p):
    doc = p.find_one({"_id": 1}, {"stats.mp": 0})
    assert doc["stats"] == {"hp": 10}
    assert doc["scores"] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "spec,expected",
    [(2, [1, 2]), (-2, [4, 5]), ([1, 2], [2, 3]), ([-3, 2], [3, 4]), (10, [1, 2, 3, 4, 5])],
)
def test_projection_slice(p, spec, expected):
    doc = p.find_one({"_id": 1}, {"scores": {"$slice": spec}})
    assert doc["scores"] == expected
    # $slice alone behaves like an exclusion projection: other fields stay.
    assert doc["name"] == "a" and doc["stats"] == {"hp": 10, "mp": 5}


def test_projection_slice_with_inclusion(p):
    assert p.find_one({"_id": 1}, {"name": 1, "scores": {"$slice": 2}}) == {
        "_id": 1,
        "name": "a",
        "scores": [1, 2],
    }


def test_projection_elem_match_returns_first_matching_element_only(p):
    proj = {"grades": {"$elemMatch": {"g": {"$gt": 80}}}}
    assert p.find_one({"_id": 1}, proj) == {"_id": 1, "grades": [{"g": 85, "s": "y"}]}
    # No matching element: the field is omitted.
    assert p.find_one({"_id": 2}, proj) == {"_id": 2}


def test_projection_elem_match_takes_every_query_operator(db):
    db.scores.insert_one({"_id": 1, "scores": [70, 85, 92], "tags": ["a", "bb"], "items": [{"k": "x", "n": [1, 2]}, {"k": "y", "n": [5]}]})
    assert db.scores.find_one({}, {"scores": {"$elemMatch": {"$gt": 80}}}) == {"_id": 1, "scores": [85]}
    assert db.scores.find_one({}, {"scores": {"$elemMatch": {"$eq": 92}}}) == {"_id": 1, "scores": [92]}
    assert db.scores.find_one({}, {"scores": {"$elemMatch": {"$in": [1, 70]}}, "_id": 0}) == {"scores": [70]}
    assert db.scores.find_one({}, {"tags": {"$elemMatch": {"$regex": "^b"}}, "_id": 0}) == {"tags": ["bb"]}
    assert db.scores.find_one({}, {"items": {"$elemMatch": {"n": {"$size": 1}}}, "_id": 0}) == {"items": [{"k": "y", "n": [5]}]}
    assert db.scores.find_one({}, {"items": {"$elemMatch": {"$or": [{"k": "q"}, {"n": 2}]}}, "_id": 0}) == {"items": [{"k": "x", "n": [1, 2]}]}
    assert db.scores.find_one({}, {"scores": {"$elemMatch": {"$gt": 100}}}) == {"_id": 1}


@pytest.mark.parametrize(
    "projection,code",
    [({"name": 1, "stats": 0}, 31254), ({"name": 0, "stats": 1}, 31253)],
)
def test_projection_mixing_inclusion_and_exclusion_is_an_error(p, projection, code):
    with pytest.raises(OperationFailure) as excinfo:
        p.find_one({}, projection)
    assert excinfo.value.code == code


# ===========================================================================
# Sort / skip / limit
# ===========================================================================


def test_dollar_and_dotted_field_names_follow_mongodb_5(db):
    """The manual's rules: inserts store `$`-prefixed and dotted names at any level; nested ones
    are ordinary paths for updates; a top-level one is reached with $getField/$setField."""
    db.sales.insert_one({"_id": 1, "$price": 50.0, "quantity": 30, "a.b": 1})
    db.books.insert_one({"_id": 1, "$id": "h1961-01", "location": {"$db": "novels", "$ref": "2007042768", "$inc": True}})
    assert db.sales.find_one() == {"_id": 1, "$price": 50.0, "quantity": 30, "a.b": 1}
    assert db.books.find_one()["location"]["$inc"] is True
    # Reading them: $getField (the plain path means something else).
    got = db.sales.aggregate([{"$project": {"_id": 0, "p": {"$getField": {"$literal": "$price"}}, "d": {"$getField": "a.b"}}}]).next()
    assert got == {"p": 50.0, "d": 1}
    # Nested: an ordinary path for modifying updates.
    db.housing.insert_one({"_id": "E123", "address": {"$number": 123, "$street": "Elm Road"}, "$rooms": {"br": 2, "bath": 1}})
    db.housing.update_one({"_id": "E123"}, {"$set": {"address.$street": "Elm Ave"}})
    assert db.housing.find_one()["address"]["$street"] == "Elm Ave"
    # Top level: refused by an update operator, done with $setField in a pipeline update.
    with pytest.raises(WriteError) as error:
        db.housing.update_one({"_id": "E123"}, {"$set": {"$rooms": {"br": 3}}})
    assert error.value.code == 52
    db.housing.update_one({"_id": "E123"}, [{"$replaceWith": {"$setField": {"field": {"$literal": "$rooms"}, "input": "$$ROOT", "value": {"br": 3, "bath": 1}}}}])
    assert db.housing.find_one()["$rooms"] == {"br": 3, "bath": 1}
    # A modifying update of other fields keeps the top-level $ field.
    db.housing.update_one({"_id": "E123"}, {"$set": {"owner": "x"}})
    assert db.housing.find_one()["$rooms"]["br"] == 3
    # _id may not hold $-prefixed fields.
    with pytest.raises(WriteError) as error:
        db.bad.insert_one({"_id": {"$a": 1}})
    assert error.value.code == 52
