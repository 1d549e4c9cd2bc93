"""Collation (ICU, as MongoDB uses it): case- and accent-insensitive matching, language and
numeric ordering, for find, sort, count, distinct, aggregate, updates and deletes, a
collection's default collation, and indexes built with one.
"""

from __future__ import annotations

import pytest
from pymongo import ASCENDING
from pymongo.collation import Collation, CollationStrength
from pymongo.errors import OperationFailure

CASELESS = Collation(locale="en", strength=CollationStrength.SECONDARY)
BASE = Collation(locale="fr", strength=CollationStrength.PRIMARY)


@pytest.fixture
def names(db):
    db.people.insert_many([
        {"_id": 1, "name": "Alice"}, {"_id": 2, "name": "alice"}, {"_id": 3, "name": "ALICE"}, {"_id": 4, "name": "Bob"},
        {"_id": 5, "name": "café"}, {"_id": 6, "name": "cafe"}, {"_id": 7, "name": "Zoë"},
    ])
    return db.people


def ids(cursor):
    return sorted(d["_id"] for d in cursor)


def test_matching_follows_strength(names):
    assert ids(names.find({"name": "alice"})) == [2]
    assert ids(names.find({"name": "alice"}, collation=CASELESS)) == [1, 2, 3]
    # Secondary strength keeps accents apart; primary ignores them too.
    assert ids(names.find({"name": "CAFE"}, collation=CASELESS)) == [6]
    assert ids(names.find({"name": "CAFE"}, collation=BASE)) == [5, 6]
    assert ids(names.find({"name": {"$in": ["BOB", "zoe"]}}, collation=BASE)) == [4, 7]
    assert ids(names.find({"name": {"$gt": "b", "$lt": "c"}}, collation=CASELESS)) == [4]
    assert names.count_documents({"name": "ALICE"}, collation=CASELESS) == 3
    assert sorted(names.distinct("name", {"name": {"$regex": "^a", "$options": "i"}}, collation=CASELESS), key=str.lower) in (["Alice"], ["alice"], ["ALICE"])


def test_sort_order_follows_the_locale(db):
    db.words.insert_many([{"w": w} for w in ["b", "A", "a", "B", "10", "9", "2", "é", "f"]])
    binary = [d["w"] for d in db.words.find().sort("w", ASCENDING)]
    assert binary == ["10", "2", "9", "A", "B", "a", "b", "f", "é"]
    english = [d["w"] for d in db.words.find().sort("w", ASCENDING).collation(Collation(locale="en"))]
    assert english == ["10", "2", "9", "a", "A", "b", "B", "é", "f"]
    upper = [d["w"] for d in db.words.find({"w": {"$regex": "^[a-bA-B]"}}).sort("w", ASCENDING).collation(Collation(locale="en", caseFirst="upper"))]
    assert upper == ["A", "a", "B", "b"]
    numeric = [d["w"] for d in db.words.find({"w": {"$regex": "^[0-9]"}}).sort("w", ASCENDING).collation(Collation(locale="en", numericOrdering=True))]
    assert numeric == ["2", "9", "10"]
    # A getMore continues in the same order.
    batched = [d["w"] for d in db.words.find().sort("w", ASCENDING).collation(Collation(locale="en")).batch_size(2)]
    assert batched == english


def test_aggregate_updates_and_deletes_use_it(names):
    groups = {d["_id"].lower(): d["n"] for d in names.aggregate(
        [{"$group": {"_id": "$name", "n": {"$sum": 1}}}], collation=CASELESS)}
    assert groups["alice"] == 3 and groups["bob"] == 1
    matched = list(names.aggregate([{"$match": {"name": "bob"}}, {"$project": {"_id": 1, "same": {"$eq": ["$name", "BOB"]}}}], collation=CASELESS))
    assert matched == [{"_id": 4, "same": True}]
    assert names.update_many({"name": "alice"}, {"$set": {"seen": True}}, collation=CASELESS).modified_count == 3
    assert names.find_one_and_update({"name": "BOB"}, {"$set": {"seen": True}}, collation=CASELESS)["_id"] == 4
    assert names.delete_many({"name": "ALICE"}, collation=CASELESS).deleted_count == 3
    assert names.count_documents({}) == 4


def test_a_collection_default_collation_applies_to_every_operation(db):
    db.create_collection("users", collation=CASELESS)
    info = db.command("listCollections", filter={"name": "users"})["cursor"]["firstBatch"][0]
    assert info["options"]["collation"]["locale"] == "en" and info["options"]["collation"]["strength"] == 2
    db.users.insert_many([{"_id": 1, "email": "Ann@Example.org"}, {"_id": 2, "email": "bob@example.org"}])
    assert ids(db.users.find({"email": "ann@example.org"})) == [1]
    # An explicit simple collation overrides the default.
    assert ids(db.users.find({"email": "ann@example.org"}, collation=Collation(locale="simple"))) == []
    # Its indexes inherit it.
    db.users.create_index("email", unique=True)
    index = [i for i in db.users.list_indexes() if i["name"] == "email_1"][0]
    assert index["collation"]["strength"] == 2
    with pytest.raises(OperationFailure) as error:
        db.users.insert_one({"email": "BOB@EXAMPLE.ORG"})
    assert error.value.code == 11000


def test_an_index_with_a_collation_serves_queries_with_that_collation(db):
    db.c.insert_many([{"_id": i, "k": k} for i, k in enumerate(["x", "X", "y", "Y", "z"])])
    db.c.create_index("k", collation=CASELESS)
    assert ids(db.c.find({"k": "X"}, collation=CASELESS)) == [0, 1]
    plan = db.command("explain", {"find": "c", "filter": {"k": "X"}, "collation": CASELESS.document})
    assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"])
    # Without the collation, the index's keys cannot answer string bounds: the result is binary.
    assert ids(db.c.find({"k": "X"})) == [1]
    assert ids(db.c.find({"k": {"$gte": "x", "$lte": "y"}}, collation=CASELESS)) == [0, 1, 2, 3]


def test_bad_collations_are_refused(db):
    db.c.insert_one({"a": "x"})
    for collation, code in [
        ({"locale": "xx_NOPE"}, 2), ({"locale": "en", "strength": 9}, 2), ({"locale": "en", "nope": 1}, 40415),
        ({"strength": 2}, 40414), ({"locale": "en", "caseFirst": "sideways"}, 2),
    ]:
        with pytest.raises(OperationFailure) as error:
            list(db.c.find({}, collation=collation))
        assert error.value.code == code, collation
    assert len(list(db.c.find({"a": "X"}, collation={"locale": "simple"}))) == 0


def test_review_cases_id_statements_and_index_identity(db):
    from pymongo import UpdateMany
    db.ids.insert_one({"_id": "abc", "v": 1})
    # An _id equal only under the collation is another _id: the update may not change it.
    with pytest.raises(OperationFailure) as error:
        db.ids.update_one({"_id": "abc"}, {"$set": {"_id": "ABC"}}, collation=CASELESS)
    assert error.value.code == 66
    # Each statement of an update applies its own collation (none: binary).
    db.s.insert_many([{"k": "a", "n": 0}, {"k": "A", "n": 0}])
    db.s.bulk_write([UpdateMany({"k": "a"}, {"$inc": {"n": 1}}, collation=CASELESS), UpdateMany({"k": "a"}, {"$inc": {"n": 10}})])
    assert sorted((d["k"], d["n"]) for d in db.s.find()) == [("A", 1), ("a", 11)]
    # The same key with another collation is another index.
    db.u.insert_one({"k": "a"})
    db.u.create_index("k")
    db.u.create_index("k", collation=CASELESS, name="k_ci", unique=True)
    assert {i["name"] for i in db.u.list_indexes()} == {"_id_", "k_1", "k_ci"}
    with pytest.raises(OperationFailure) as error:
        db.u.insert_one({"k": "A"})
    assert error.value.code == 11000
