"""Create / read / update / delete through pymongo, checked against MongoDB 7.0 semantics.

Every expected answer is either a literal or computed independently in Python.
"""

import datetime
import random
import re
from collections import Counter

import bson
import pytest
from bson import Int64, ObjectId, Timestamp
from bson.raw_bson import RawBSONDocument
from pymongo import errors
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError, WriteError


def ids(docs):
    return [d["_id"] for d in docs]


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# ===========================================================================
# Inserts
# ===========================================================================


def test_insert_one_returns_inserted_id(db):
    result = db.c.insert_one({"_id": "a", "x": 1})
    assert result.acknowledged
    assert result.inserted_id == "a"
    assert db.c.find_one({"_id": "a"}) == {"_id": "a", "x": 1}


def test_insert_many_returns_ids_in_order(db):
    result = db.c.insert_many([{"_id": 3}, {"_id": 1}, {"_id": 2}])
    assert result.inserted_ids == [3, 1, 2]
    assert sorted(ids(db.c.find())) == [1, 2, 3]


def test_insert_without_id_gets_object_id(db):
    doc = {"x": 1}
    result = db.c.insert_one(doc)
    assert isinstance(result.inserted_id, ObjectId)
    assert db.c.find_one({"x": 1})["_id"] == result.inserted_id


def test_server_generates_object_id_when_command_omits_id(db):
    # Bypass pymongo's client-side _id generation.
    reply = db.command("insert", "c", documents=[{"x": 1}, {"x": 2}])
    assert reply["ok"] == 1.0 and reply["n"] == 2
    docs = list(db.c.find())
    assert len(docs) == 2
    assert all(isinstance(d["_id"], ObjectId) for d in docs)
    assert docs[0]["_id"] != docs[1]["_id"]


def test_id_is_moved_to_the_front_of_the_stored_document(db):
    # pymongo always encodes _id first, so hand-build {"a": 1, "_id": "k"}.
    body = bson.encode({"a": 1})[4:-1] + bson.encode({"_id": "k"})[4:-1]
    raw = (len(body) + 5).to_bytes(4, "little") + body + b"\x00"
    db.c.insert_one(RawBSONDocument(raw))
    assert list(db.c.find_one({"_id": "k"}).keys()) == ["_id", "a"]


def test_field_order_is_preserved(db):
    db.c.insert_one({"_id": 1, "z": 1, "a": 2, "m": {"y": 1, "b": 2}})
    assert list(db.c.find_one().keys()) == ["_id", "z", "a", "m"]
    assert list(db.c.find_one()["m"].keys()) == ["y", "b"]


# ===========================================================================
# Query operators
# ===========================================================================

QDOCS = [
    {"_id": 1, "n": 5, "s": "apple", "tags": ["red", "fruit"], "sub": {"x": 1, "y": "a"}, "arr": [1, 5, 9]},
    {"_id": 2, "n": 10, "s": "Banana", "tags": ["yellow", "fruit"], "sub": {"x": 2, "y": "b"}, "arr": [2, 30]},
    {"_id": 3, "n": 15.5, "s": "cherry", "tags": ["red"], "sub": {"x": 3}, "arr": []},
    {"_id": 4, "n": Int64(20), "s": "date", "tags": [], "arr": [10, 20, 30]},
    {"_id": 5, "n": None, "s": "elder", "items": [{"k": "a", "v": 1}, {"k": "b", "v": 2}]},
    {"_id": 6, "s": 42, "items": [{"k": "a", "v": 3}]},
    {"_id": 7, "n": "7", "tags": ["green", "veg"], "sub": {"x": 7, "y": None}},
]


@pytest.fixture
def q(db):
    db.q.insert_many(QDOCS)
    return db.q


QUERY_CASES = [
    # comparison (numbers of different BSON types compare by value; no cross-type matches)
    ({"n": 10}, [2]),
    ({"n": {"$eq": 20}}, [4]),
    ({"n": {"$ne": 10}}, [1, 3, 4, 5, 6, 7]),
    ({"n": {"$gt": 5}}, [2, 3, 4]),
    ({"n": {"$gte": 5}}, [1, 2, 3, 4]),
    ({"n": {"$lt": 15.5}}, [1, 2]),
    ({"n": {"$lte": 15.5}}, [1, 2, 3]),
    ({"n": {"$gt": 1, "$lt": 12}}, [1, 2]),
    ({"n": {"$in": [5, 20, "7"]}}, [1, 4, 7]),
    ({"n": {"$nin": [5, 20]}}, [2, 3, 5, 6, 7]),
    ({"s": {"$gt": "b"}}, [3, 4, 5]),  # strings only; "Banana" < "b" (binary order)
    # null / existence
    ({"n": None}, [5, 6]),  # null matches explicit null and missing
    ({"n": {"$exists": True}}, [1, 2, 3, 4, 5, 7]),
    ({"n": {"$exists": False}}, [6]),
    # $type
    ({"n": {"$type": "string"}}, [7]),
    ({"n": {"$type": "number"}}, [1, 2, 3, 4]),
    ({"n": {"$type": "double"}}, [3]),
    ({"n": {"$type": "long"}}, [4]),
    ({"n": {"$type": 16}}, [1, 2]),  # 16 == int32
    ({"n": {"$type": "null"}}, [5]),
    ({"n": {"$type": ["string", "null"]}}, [5, 7]),
    ({"tags": {"$type": "array"}}, [1, 2, 3, 4, 7]),
    # logical
    ({"$and": [{"n": {"$gt": 1}}, {"n": {"$lt": 12}}]}, [1, 2]),
    ({"$or": [{"n": 5}, {"s": "date"}]}, [1, 4]),
    ({"$nor": [{"n": None}, {"n": {"$type": "string"}}]}, [1, 2, 3, 4]),
    ({"n": {"$not": {"$gt": 10}}}, [1, 2, 5, 6, 7]),
    ({"s": {"$not": re.compile("^[a-c]")}}, [2, 4, 5, 6, 7]),
    # evaluation
    ({"s": {"$regex": "^b", "$options": "i"}}, [2]),
    ({"s": {"$regex": "an"}}, [2]),
    ({"s": re.compile("rr")}, [3]),
    ({"s": {"$regex": "E", "$options": "i"}}, [1, 3, 4, 5]),
    ({"s": {"$in": [re.compile("^a"), "date"]}}, [1, 4]),
    ({"_id": {"$mod": [3, 1]}}, [1, 4, 7]),
    # arrays
    ({"tags": "red"}, [1, 3]),
    ({"tags": ["red", "fruit"]}, [1]),  # whole-array equality is order sensitive
    ({"tags": ["fruit", "red"]}, []),
    ({"tags": {"$all": ["red", "fruit"]}}, [1]),
    ({"tags": {"$all": ["fruit"]}}, [1, 2]),
    ({"tags": {"$size": 2}}, [1, 2, 7]),
    ({"arr": {"$size": 0}}, [3]),
    ({"arr": {"$elemMatch": {"$gt": 4, "$lt": 8}}}, [1]),
    ({"arr": {"$gt": 4, "$lt": 8}}, [1, 2]),  # without $elemMatch, elements may differ
    ({"items": {"$elemMatch": {"k": "a", "v": {"$gte": 2}}}}, [6]),
    ({"items.k": "a", "items.v": {"$gte": 2}}, [5, 6]),
    ({"arr.0": 10}, [4]),
    ({"items.v": 3}, [6]),
    ({"arr": 20}, [4]),
    # embedded documents / dotted paths
    ({"sub.x": {"$gte": 2}}, [2, 3, 7]),
    ({"sub.y": None}, [3, 4, 5, 6, 7]),
    ({"sub": {"x": 1, "y": "a"}}, [1]),
    ({"sub": {"y": "a", "x": 1}}, []),  # embedded equality is field-order sensitive
]


@pytest.mark.parametrize("query,expected", QUERY_CASES, ids=[repr(c[0]) for c in QUERY_CASES])
def test_find_query_operator(q, query, expected):
    assert sorted(ids(q.find(query))) == expected


def test_find_with_empty_filter_returns_everything(q):
    assert sorted(ids(q.find({}))) == [1, 2, 3, 4, 5, 6, 7]


def test_find_one(q):
    assert q.find_one({"_id": 2})["s"] == "Banana"
    assert q.find_one({"_id": 999}) is None


# ===========================================================================
# Projections
# ===========================================================================

@pytest.fixture
def s(db):
    docs = [{"_id": i, "a": i % 3, "b": i} for i in range(12)]
    random.Random(7).shuffle(docs)
    db.s.insert_many(docs)
    return db.s


def test_sort_multi_key(s):
    got = ids(s.find().sort([("a", ASCENDING), ("b", DESCENDING)]))
    expected = [d for d in sorted(range(12), key=lambda i: (i % 3, -i))]
    assert got == expected


def test_sort_descending_single_key(s):
    assert ids(s.find().sort("b", -1)) == list(range(11, -1, -1))


def test_skip_and_limit(s):
    assert ids(s.find().sort("_id", 1).skip(2).limit(3)) == [2, 3, 4]


def test_limit_zero_means_no_limit(s):
    assert len(list(s.find().limit(0))) == 12


def test_negative_limit_returns_single_batch(s):
    assert ids(s.find().sort("_id", 1).limit(-3)) == [0, 1, 2]


def test_skip_past_the_end_returns_nothing(s):
    assert list(s.find().skip(100)) == []


def test_sort_with_filter_and_projection(s):
    got = list(s.find({"a": 1}, {"_id": 0, "b": 1}).sort("b", -1))
    assert got == [{"b": 10}, {"b": 7}, {"b": 4}, {"b": 1}]


# ===========================================================================
# Updates
# ===========================================================================


def test_update_one_field_operators(db):
    db.u.insert_one({"_id": 1, "a": 1, "b": 2, "c": 10, "d": 5, "e": 5, "old": "x", "gone": True})
    result = db.u.update_one(
        {"_id": 1},
        {
            "$set": {"a": 100, "nested.k": "v"},
            "$unset": {"gone": ""},
            "$inc": {"b": 3, "counter": 2},
            "$mul": {"c": 2.5},
            "$min": {"d": 3},
            "$max": {"e": 9},
            "$rename": {"old": "renamed"},
        },
    )
    assert (result.matched_count, result.modified_count) == (1, 1)
    doc = db.u.find_one({"_id": 1})
    assert doc == {
        "_id": 1,
        "a": 100,
        "nested": {"k": "v"},
        "b": 5,
        "counter": 2,
        "c": 25.0,
        "d": 3,
        "e": 9,
        "renamed": "x",
    }
    assert isinstance(doc["c"], float)  # int * double -> double


def test_min_max_do_nothing_when_not_better(db):
    db.u.insert_one({"_id": 1, "lo": 3, "hi": 9})
    result = db.u.update_one({"_id": 1}, {"$min": {"lo": 10}, "$max": {"hi": 1}})
    assert (result.matched_count, result.modified_count) == (1, 0)
    assert db.u.find_one() == {"_id": 1, "lo": 3, "hi": 9}


def test_mul_on_missing_field_sets_zero(db):
    db.u.insert_one({"_id": 1})
    db.u.update_one({"_id": 1}, {"$mul": {"m": 5}})
    assert db.u.find_one() == {"_id": 1, "m": 0}


def test_inc_keeps_integer_types(db):
    db.u.insert_one({"_id": 1, "i": 1, "l": Int64(1)})
    db.u.update_one({"_id": 1}, {"$inc": {"i": 1, "l": 1, "new": Int64(5)}})
    doc = db.u.find_one()
    assert doc["i"] == 2 and type(doc["i"]) is int
    assert doc["l"] == 2 and isinstance(doc["l"], Int64)
    assert doc["new"] == 5 and isinstance(doc["new"], Int64)


def test_set_keeps_existing_field_position_and_appends_new_fields_sorted(db):
    db.u.insert_one({"_id": 1, "z": 1, "a": 1})
    db.u.update_one({"_id": 1}, {"$set": {"y": 2, "a": 2, "b": 3}})
    # Existing "a" stays in place; new fields are added in lexicographic order.
    assert list(db.u.find_one().items()) == [("_id", 1), ("z", 1), ("a", 2), ("b", 3), ("y", 2)]


def test_set_on_insert_applies_only_when_upserting(db):
    update = {"$set": {"a": 1}, "$setOnInsert": {"created": True}}
    first = db.u.update_one({"_id": 50}, update, upsert=True)
    assert first.upserted_id == 50
    assert (first.matched_count, first.modified_count) == (0, 0)
    assert db.u.find_one({"_id": 50}) == {"_id": 50, "a": 1, "created": True}

    db.u.update_one({"_id": 50}, {"$set": {"created": "no"}})
    second = db.u.update_one({"_id": 50}, {"$set": {"a": 2}, "$setOnInsert": {"created": True}}, upsert=True)
    assert second.upserted_id is None
    assert (second.matched_count, second.modified_count) == (1, 1)
    assert db.u.find_one({"_id": 50}) == {"_id": 50, "a": 2, "created": "no"}


def test_current_date(db):
    db.u.insert_one({"_id": 1})
    before = utcnow()
    db.u.update_one(
        {"_id": 1},
        {"$currentDate": {"when": True, "d": {"$type": "date"}, "ts": {"$type": "timestamp"}}},
    )
    doc = db.u.find_one()
    for field in ("when", "d"):
        assert isinstance(doc[field], datetime.datetime)
        assert abs(doc[field] - before) < datetime.timedelta(seconds=120)
    assert isinstance(doc["ts"], Timestamp)
    assert abs(doc["ts"].time - before.replace(tzinfo=datetime.timezone.utc).timestamp()) < 120


@pytest.mark.parametrize(
    "initial,push,expected",
    [
        ([1, 2], 3, [1, 2, 3]),
        ([1, 2], [3], [1, 2, [3]]),  # a plain array value is pushed as one element
        ([1, 2], {"$each": [3, 4]}, [1, 2, 3, 4]),
        ([1, 2], {"$each": ["a", "b"], "$position": 0}, ["a", "b", 1, 2]),
        ([1, 2, 3], {"$each": [9], "$position": -1}, [1, 2, 9, 3]),
        ([5, 9], {"$each": [7, 3, 8], "$sort": -1, "$slice": 3}, [9, 8, 7]),
        ([1, 2, 3], {"$each": [4], "$slice": -2}, [3, 4]),
        ([3, 1], {"$each": [], "$sort": 1}, [1, 3]),
        ([{"n": 2}], {"$each": [{"n": 3}, {"n": 1}], "$sort": {"n": 1}}, [{"n": 1}, {"n": 2}, {"n": 3}]),
    ],
)
def test_push(db, initial, push, expected):
    db.u.insert_one({"_id": 1, "v": initial})
    db.u.update_one({"_id": 1}, {"$push": {"v": push}})
    assert db.u.find_one()["v"] == expected


def test_push_to_missing_field_creates_array(db):
    db.u.insert_one({"_id": 1})
    db.u.update_one({"_id": 1}, {"$push": {"v": "x"}})
    assert db.u.find_one() == {"_id": 1, "v": ["x"]}


@pytest.mark.parametrize(
    "initial,update,expected",
    [
        ([1, 5, 6, 7, 5, 2], {"$pull": {"v": 5}}, [1, 6, 7, 2]),
        ([1, 5, 6, 7, 5, 2], {"$pull": {"v": {"$gte": 6}}}, [1, 5, 5, 2]),
        ([{"k": "a", "x": 1}, {"k": "b", "x": 2}], {"$pull": {"v": {"k": "a"}}}, [{"k": "b", "x": 2}]),
        ([1, 2, 3, 1, 4], {"$pullAll": {"v": [1, 4]}}, [2, 3]),
        (["a", "b"], {"$addToSet": {"v": {"$each": ["b", "c", "c", "d"]}}}, ["a", "b", "c", "d"]),
        (["a", "b"], {"$addToSet": {"v": ["a"]}}, ["a", "b", ["a"]]),
        ([1, 2, 3], {"$pop": {"v": 1}}, [1, 2]),
        ([1, 2, 3], {"$pop": {"v": -1}}, [2, 3]),
    ],
)
def test_array_update_operators(db, initial, update, expected):
    db.u.insert_one({"_id": 1, "v": initial})
    db.u.update_one({"_id": 1}, update)
    assert db.u.find_one()["v"] == expected


def test_add_to_set_existing_value_is_not_a_modification(db):
    db.u.insert_one({"_id": 1, "v": ["a", "b"]})
    result = db.u.update_one({"_id": 1}, {"$addToSet": {"v": "a"}})
    assert (result.matched_count, result.modified_count) == (1, 0)
    assert db.u.find_one()["v"] == ["a", "b"]


def test_positional_operator_updates_first_matching_element(db):
    db.u.insert_one({"_id": 1, "grades": [80, 85, 80]})
    db.u.update_one({"_id": 1, "grades": 80}, {"$set": {"grades.$": 82}})
    assert db.u.find_one()["grades"] == [82, 85, 80]


def test_positional_operator_in_array_of_documents(db):
    db.u.insert_one({"_id": 1, "items": [{"k": "a", "q": 1}, {"k": "b", "q": 1}]})
    db.u.update_one({"items.k": "b"}, {"$inc": {"items.$.q": 5}})
    assert db.u.find_one()["items"] == [{"k": "a", "q": 1}, {"k": "b", "q": 6}]


def test_all_positional_operator_updates_every_element(db):
    db.u.insert_one({"_id": 1, "grades": [80, 85, 90], "docs": [{"n": 1}, {"n": 2}]})
    db.u.update_one({"_id": 1}, {"$inc": {"grades.$[]": 10, "docs.$[].n": 100}})
    doc = db.u.find_one()
    assert doc["grades"] == [90, 95, 100]
    assert doc["docs"] == [{"n": 101}, {"n": 102}]


def test_filtered_positional_operator_with_array_filters(db):
    db.u.insert_one({"_id": 1, "grades": [80, 85, 90]})
    db.u.update_one({"_id": 1}, {"$set": {"grades.$[g]": 100}}, array_filters=[{"g": {"$gte": 85}}])
    assert db.u.find_one()["grades"] == [80, 100, 100]


def test_array_filters_on_embedded_documents_and_nested_arrays(db):
    db.u.insert_one({"_id": 1, "items": [{"k": "a", "n": 1, "tags": ["x", "y"]}, {"k": "b", "n": 2, "tags": ["y"]}]})
    db.u.update_one(
        {"_id": 1},
        {"$inc": {"items.$[it].n": 10}, "$set": {"items.$[].tags.$[t]": "z"}},
        array_filters=[{"it.k": "b"}, {"t": "y"}],
    )
    assert db.u.find_one()["items"] == [{"k": "a", "n": 1, "tags": ["x", "z"]}, {"k": "b", "n": 12, "tags": ["z"]}]


def test_array_filters_errors_match_mongodb(db):
    db.u.insert_one({"_id": 1, "grades": [80, 85, 90]})
    with pytest.raises(WriteError) as missing:
        db.u.update_one({"_id": 1}, {"$set": {"grades.$[g]": 100}}, array_filters=[{"h": {"$gte": 85}}])
    assert missing.value.code in (2, 9)
    with pytest.raises(WriteError) as unused:
        db.u.update_one({"_id": 1}, {"$set": {"grades.0": 1}}, array_filters=[{"g": {"$gte": 85}}])
    assert unused.value.code == 9
    assert db.u.find_one()["grades"] == [80, 85, 90]


def test_find_one_and_update_with_array_filters(db):
    db.u.insert_one({"_id": 1, "grades": [80, 85, 90]})
    after = db.u.find_one_and_update(
        {"_id": 1}, {"$mul": {"grades.$[g]": 2}}, array_filters=[{"g": {"$lt": 85}}], return_document=ReturnDocument.AFTER
    )
    assert after["grades"] == [160, 85, 90]


def test_update_many_matched_and_modified_counts(db):
    db.u.insert_many(
        [
            {"_id": 1, "group": "A"},
            {"_id": 2, "group": "A", "flag": True},
            {"_id": 3, "group": "A"},
            {"_id": 4, "group": "B"},
        ]
    )
    result = db.u.update_many({"group": "A"}, {"$set": {"flag": True}})
    assert (result.matched_count, result.modified_count) == (3, 2)
    assert result.upserted_id is None
    assert sorted(ids(db.u.find({"flag": True}))) == [1, 2, 3]


def test_update_with_no_match(db):
    result = db.u.update_one({"_id": "missing"}, {"$set": {"x": 1}})
    assert (result.matched_count, result.modified_count, result.upserted_id) == (0, 0, None)
    assert db.u.count_documents({}) == 0


def test_update_to_same_value_is_not_a_modification(db):
    db.u.insert_one({"_id": 1, "x": 1})
    result = db.u.update_one({"_id": 1}, {"$set": {"x": 1}})
    assert (result.matched_count, result.modified_count) == (1, 0)


def test_upsert_copies_equality_fields_from_filter(db):
    result = db.u.update_one({"name": "Zed", "age": 5}, {"$set": {"x": 1}}, upsert=True)
    assert isinstance(result.upserted_id, ObjectId)
    assert (result.matched_count, result.modified_count) == (0, 0)
    assert db.u.find_one({"_id": result.upserted_id}) == {
        "_id": result.upserted_id,
        "name": "Zed",
        "age": 5,
        "x": 1,
    }


def test_upsert_ignores_operator_conditions_in_filter(db):
    result = db.u.update_one({"name": "Q", "age": {"$gt": 5}}, {"$set": {"x": 1}}, upsert=True)
    assert db.u.find_one({"_id": result.upserted_id}) == {"_id": result.upserted_id, "name": "Q", "x": 1}


def test_update_many_upsert_inserts_one_document(db):
    result = db.u.update_many({"k": "none"}, {"$inc": {"n": 1}}, upsert=True)
    assert result.upserted_id is not None
    assert list(db.u.find({}, {"_id": 0})) == [{"k": "none", "n": 1}]


def test_replace_one(db):
    db.u.insert_one({"_id": 1, "a": 1, "b": 2})
    result = db.u.replace_one({"_id": 1}, {"c": 3})
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert db.u.find_one() == {"_id": 1, "c": 3}


def test_replace_one_with_same_id_in_replacement(db):
    db.u.insert_one({"_id": 1, "a": 1})
    db.u.replace_one({"a": 1}, {"_id": 1, "d": 4})
    assert db.u.find_one() == {"_id": 1, "d": 4}


def test_replace_one_upsert(db):
    result = db.u.replace_one({"_id": 77}, {"v": 1}, upsert=True)
    assert result.upserted_id == 77
    assert db.u.find_one() == {"_id": 77, "v": 1}


# ===========================================================================
# Deletes
# ===========================================================================


def test_delete_one_deletes_exactly_one(db):
    db.d.insert_many([{"_id": i, "k": "x"} for i in range(3)])
    assert db.d.delete_one({"k": "x"}).deleted_count == 1
    assert db.d.count_documents({}) == 2


def test_delete_many(db):
    db.d.insert_many([{"_id": i, "even": i % 2 == 0} for i in range(10)])
    assert db.d.delete_many({"even": True}).deleted_count == 5
    assert sorted(ids(db.d.find())) == [1, 3, 5, 7, 9]
    assert db.d.delete_many({}).deleted_count == 5
    assert db.d.count_documents({}) == 0


def test_delete_with_no_match(db):
    db.d.insert_one({"_id": 1})
    assert db.d.delete_one({"_id": 2}).deleted_count == 0
    assert db.d.delete_many({"nope": 1}).deleted_count == 0


# ===========================================================================
# findAndModify helpers
# ===========================================================================


@pytest.fixture
def fam(db):
    db.f.insert_many(
        [
            {"_id": 1, "n": 1, "grp": "a"},
            {"_id": 2, "n": 2, "grp": "a"},
            {"_id": 3, "n": 3, "grp": "b"},
        ]
    )
    return db.f


def test_find_one_and_update_returns_document_before_by_default(fam):
    before = fam.find_one_and_update({"_id": 1}, {"$inc": {"n": 10}})
    assert before == {"_id": 1, "n": 1, "grp": "a"}
    assert fam.find_one({"_id": 1})["n"] == 11


def test_find_one_and_update_return_after(fam):
    after = fam.find_one_and_update({"_id": 1}, {"$inc": {"n": 10}}, return_document=ReturnDocument.AFTER)
    assert after == {"_id": 1, "n": 11, "grp": "a"}


def test_find_one_and_update_sort_picks_the_first_in_order(fam):
    doc = fam.find_one_and_update(
        {"grp": "a"},
        {"$set": {"picked": True}},
        sort=[("n", DESCENDING)],
        return_document=ReturnDocument.AFTER,
    )
    assert doc == {"_id": 2, "n": 2, "grp": "a", "picked": True}
    assert ids(fam.find({"picked": True})) == [2]


def test_find_one_and_update_projection(fam):
    doc = fam.find_one_and_update(
        {"_id": 3}, {"$set": {"n": 30}}, projection={"n": 1, "_id": 0}, return_document=ReturnDocument.AFTER
    )
    assert doc == {"n": 30}


def test_find_one_and_update_upsert(fam):
    assert fam.find_one_and_update({"_id": 8}, {"$set": {"n": 8}}, upsert=True) is None
    doc = fam.find_one_and_update(
        {"_id": 9}, {"$set": {"n": 9}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert doc == {"_id": 9, "n": 9}
    assert fam.find_one({"_id": 8}) == {"_id": 8, "n": 8}


def test_find_one_and_update_no_match_returns_none(fam):
    assert fam.find_one_and_update({"_id": 99}, {"$set": {"n": 0}}) is None
    assert fam.count_documents({}) == 3


def test_find_one_and_delete(fam):
    deleted = fam.find_one_and_delete({"grp": "a"}, sort=[("n", ASCENDING)])
    assert deleted == {"_id": 1, "n": 1, "grp": "a"}
    assert sorted(ids(fam.find())) == [2, 3]
    assert fam.find_one_and_delete({"_id": 99}) is None


def test_find_one_and_replace(fam):
    before = fam.find_one_and_replace({"_id": 3}, {"grp": "c"})
    assert before == {"_id": 3, "n": 3, "grp": "b"}
    after = fam.find_one_and_replace({"_id": 3}, {"grp": "d"}, return_document=ReturnDocument.AFTER)
    assert after == {"_id": 3, "grp": "d"}


# ===========================================================================
# Counting and distinct
# ===========================================================================


def test_count_documents(fam):
    assert fam.count_documents({}) == 3
    assert fam.count_documents({"grp": "a"}) == 2
    assert fam.count_documents({}, skip=1) == 2
    assert fam.count_documents({}, skip=1, limit=1) == 1
    assert fam.count_documents({"grp": "zzz"}) == 0


def test_estimated_document_count(fam):
    assert fam.estimated_document_count() == 3


def test_counts_on_missing_collection_are_zero(db):
    assert db.nothing_here.count_documents({}) == 0
    assert db.nothing_here.estimated_document_count() == 0


def test_distinct_unwinds_arrays_and_follows_dotted_paths(db):
    db.dd.insert_many(
        [
            {"_id": 1, "tags": ["a", "b"], "address": {"city": "London"}, "k": 1},
            {"_id": 2, "tags": ["b", "c"], "address": {"city": "Paris"}, "k": 1},
            {"_id": 3, "tags": "d", "address": {"city": "London"}, "k": 2},
            {"_id": 4, "address": {}, "k": 2},
        ]
    )
    assert sorted(db.dd.distinct("tags")) == ["a", "b", "c", "d"]
    assert sorted(db.dd.distinct("address.city")) == ["London", "Paris"]
    assert sorted(db.dd.distinct("tags", {"k": 1})) == ["a", "b", "c"]
    assert sorted(db.dd.distinct("k")) == [1, 2]
    assert db.dd.distinct("missing") == []


# ===========================================================================
# The issue's example, end to end
# ===========================================================================

CITY_POOL = ["London"] * 13 + ["Paris"] * 10 + ["Berlin"] * 8 + ["Rome"] * 5 + ["Oslo"] * 3
TAG_POOL = ["math", "poetry", "music", "chess", "code", "art"]


def make_users():
    """40 deterministic users; u1 is the issue's Ada. Ages are unique so sorts are total."""
    rng = random.Random(20240601)
    ages = [a for a in range(18, 58) if a != 36]
    rng.shuffle(ages)
    cities = list(CITY_POOL)
    rng.shuffle(cities)
    users = [
        {
            "_id": "u1",
            "name": "Ada",
            "email": "ada@x.org",
            "age": 36,
            "tags": ["math"],
            "address": {"city": "London"},
        }
    ]
    for i in range(2, 41):
        users.append(
            {
                "_id": f"u{i}",
                "name": f"User{i}",
                "email": f"user{i}@x.org",
                "age": ages[i - 2],
                "tags": sorted(rng.sample(TAG_POOL, rng.randint(0, 3))),
                "address": {"city": cities[i - 2]},
            }
        )
    return users


@pytest.fixture
def users(db):
    data = make_users()
    db.users.create_index([("email", ASCENDING)], unique=True)
    db.users.insert_many(data)
    return db.users, data


def test_issue_example_find_sort_skip_limit(users):
    coll, data = users
    got = list(coll.find({"age": {"$gte": 30}, "address.city": "London"}).sort("age", -1).skip(5).limit(20))
    london = [u for u in data if u["age"] >= 30 and u["address"]["city"] == "London"]
    expected = sorted(london, key=lambda u: u["age"], reverse=True)[5:25]
    assert expected, "test data should leave something after skip(5)"
    assert got == expected


def test_issue_example_update(users):
    coll, _ = users
    result = coll.update_one(
        {"_id": "u1"},
        {"$set": {"bio": "Countess of Lovelace"}, "$inc": {"visits": 1}, "$push": {"tags": "poetry"}},
    )
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert coll.find_one({"_id": "u1"}) == {
        "_id": "u1",
        "name": "Ada",
        "email": "ada@x.org",
        "age": 36,
        "tags": ["math", "poetry"],
        "address": {"city": "London"},
        "bio": "Countess of Lovelace",
        "visits": 1,
    }


def test_issue_example_aggregate_group_by_city(users):
    coll, data = users
    got = list(
        coll.aggregate(
            [
                {"$match": {"age": {"$gte": 25}}},
                {"$group": {"_id": "$address.city", "n": {"$sum": 1}}},
                {"$sort": {"n": -1}},
            ]
        )
    )
    expected = Counter(u["address"]["city"] for u in data if u["age"] >= 25)
    # Sorted by n descending (ties may come in any order) and the same groups.
    assert [r["n"] for r in got] == sorted(expected.values(), reverse=True)
    assert sorted((r["_id"], r["n"]) for r in got) == sorted(expected.items())


def test_issue_example_unique_email_is_enforced(users):
    coll, _ = users
    with pytest.raises(DuplicateKeyError) as excinfo:
        coll.insert_one({"_id": "dup", "name": "Fake", "email": "ada@x.org"})
    assert excinfo.value.code == 11000
    assert excinfo.value.details["keyPattern"] == {"email": 1}
    assert excinfo.value.details["keyValue"] == {"email": "ada@x.org"}
    assert coll.count_documents({}) == 40


def test_issue_example_queries_by_tag_and_counts(users):
    coll, data = users
    assert coll.count_documents({"tags": "math"}) == sum("math" in u["tags"] for u in data)
    assert sorted(coll.distinct("address.city")) == sorted({u["address"]["city"] for u in data})
    assert coll.estimated_document_count() == len(data)



def test_update_and_delete_statements_accept_mongodb_7_fields_only(db):
    db.s.insert_many([{"_id": 1, "x": 1}, {"_id": 2, "x": 2}])
    # 8.0's `sort` in an update statement: a 7.0 server refuses the command, it does not ignore it.
    with pytest.raises(errors.OperationFailure) as error:
        db.command("update", "s", updates=[{"q": {}, "u": {"$set": {"y": 1}}, "sort": {"_id": -1}}])
    assert error.value.code == 40415 and "update.updates.sort" in error.value.details["errmsg"]
    with pytest.raises(errors.OperationFailure) as error:
        db.command("delete", "s", deletes=[{"q": {}, "limit": 1, "bogus": 1}])
    assert error.value.code == 40415
    assert db.s.count_documents({"y": 1}) == 0 and db.s.count_documents({}) == 2
    # `c`: the statement's constants, read by its pipeline update.
    db.command("update", "s", updates=[{"q": {"_id": 1}, "u": [{"$set": {"y": "$$factor"}}], "c": {"factor": 10}}])
    assert db.s.find_one({"_id": 1}) == {"_id": 1, "x": 1, "y": 10}
    reply = db.command("update", "s", updates=[{"q": {"_id": 1}, "u": {"$set": {"y": 1}}, "c": {"factor": 10}}])
    assert reply["writeErrors"][0]["code"] == 51198 and db.s.find_one({"_id": 1})["y"] == 10
