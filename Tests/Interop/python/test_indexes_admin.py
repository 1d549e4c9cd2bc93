"""Indexes, collection/database administration and explain."""

import pytest
from bson import Binary
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import CollectionInvalid, DuplicateKeyError, OperationFailure

ID_INDEX = {"v": 2, "key": {"_id": 1}, "name": "_id_"}


def index_specs(coll):
    return {spec["name"]: dict(spec) for spec in coll.list_indexes()}


# -- creating and listing indexes ----------------------------------------------


def test_new_collection_has_only_the_id_index(db):
    db.c.insert_one({"x": 1})
    assert [dict(spec) for spec in db.c.list_indexes()] == [ID_INDEX]


def test_create_index_returns_generated_names(db):
    assert db.c.create_index("a") == "a_1"
    assert db.c.create_index([("a", ASCENDING), ("b", DESCENDING)]) == "a_1_b_-1"
    assert db.c.create_index([("c", DESCENDING)]) == "c_-1"
    assert db.c.create_index("address.city") == "address.city_1"
    assert db.c.create_index("email", unique=True) == "email_1"
    assert db.c.create_index("x", name="custom") == "custom"


def test_list_indexes_reports_key_version_and_options(db):
    db.c.create_index([("a", ASCENDING), ("b", DESCENDING)])
    db.c.create_index("email", unique=True)
    db.c.create_index("address.city")
    specs = index_specs(db.c)
    assert set(specs) == {"_id_", "a_1_b_-1", "email_1", "address.city_1"}
    assert specs["_id_"] == ID_INDEX
    assert specs["a_1_b_-1"] == {"v": 2, "key": {"a": 1, "b": -1}, "name": "a_1_b_-1"}
    assert list(specs["a_1_b_-1"]["key"]) == ["a", "b"]  # key order is significant
    assert specs["email_1"] == {"v": 2, "key": {"email": 1}, "name": "email_1", "unique": True}
    assert specs["address.city_1"] == {"v": 2, "key": {"address.city": 1}, "name": "address.city_1"}


def test_list_indexes_first_entry_is_the_id_index(db):
    db.c.create_index("z")
    assert dict(next(iter(db.c.list_indexes()))) == ID_INDEX


def test_index_information(db):
    db.c.create_index([("a", ASCENDING), ("b", DESCENDING)])
    db.c.create_index("email", unique=True)
    info = db.c.index_information()
    assert info["_id_"] == {"v": 2, "key": [("_id", 1)]}
    assert info["a_1_b_-1"] == {"v": 2, "key": [("a", 1), ("b", -1)]}
    assert info["email_1"] == {"v": 2, "key": [("email", 1)], "unique": True}


def test_creating_an_existing_index_again_is_a_no_op(db):
    assert db.c.create_index("a") == "a_1"
    assert db.c.create_index("a") == "a_1"
    assert set(index_specs(db.c)) == {"_id_", "a_1"}


def test_create_index_on_missing_collection_creates_it(db):
    db.fresh.create_index("k")
    assert "fresh" in db.list_collection_names()


def test_indexed_queries_still_return_correct_results(db):
    db.c.insert_many([{"_id": i, "a": i % 5, "b": i} for i in range(50)])
    db.c.create_index([("a", 1), ("b", -1)])
    got = [d["_id"] for d in db.c.find({"a": 3, "b": {"$gt": 10}}).sort([("a", 1), ("b", -1)])]
    assert got == [48, 43, 38, 33, 28, 23, 18, 13]


def test_multikey_index_on_array_field(db):
    db.c.create_index("tags")
    db.c.insert_many([{"_id": 1, "tags": ["a", "b"]}, {"_id": 2, "tags": ["b", "c"]}, {"_id": 3, "tags": "a"}])
    assert sorted(d["_id"] for d in db.c.find({"tags": "a"})) == [1, 3]
    assert sorted(d["_id"] for d in db.c.find({"tags": "b"})) == [1, 2]
    assert sorted(d["_id"] for d in db.c.find({"tags": {"$in": ["c", "zzz"]}})) == [2]


def test_unique_multikey_index_compares_elements_across_documents(db):
    db.c.create_index("tags", unique=True)
    db.c.insert_one({"_id": 1, "tags": ["x", "y"]})
    db.c.insert_one({"_id": 2, "tags": ["z", "z"]})  # repeats inside one document are fine
    with pytest.raises(DuplicateKeyError):
        db.c.insert_one({"_id": 3, "tags": ["y", "w"]})


def test_dotted_unique_index_is_enforced(db):
    db.c.create_index("address.city", unique=True)
    db.c.insert_one({"_id": 1, "address": {"city": "Oslo"}})
    with pytest.raises(DuplicateKeyError) as excinfo:
        db.c.insert_one({"_id": 2, "address": {"city": "Oslo"}})
    assert excinfo.value.details["keyPattern"] == {"address.city": 1}
    assert excinfo.value.details["keyValue"] == {"address.city": "Oslo"}


def test_unique_index_on_existing_duplicates_fails_with_11000(db):
    db.c.insert_many([{"_id": 1, "e": "same"}, {"_id": 2, "e": "same"}])
    with pytest.raises(OperationFailure) as excinfo:
        db.c.create_index("e", unique=True)
    assert excinfo.value.code == 11000
    assert set(index_specs(db.c)) == {"_id_"}


# -- dropping indexes --------------------------------------------------------------


def test_drop_index_by_name_and_by_key(db):
    db.c.create_index("a")
    db.c.create_index([("b", DESCENDING)])
    db.c.drop_index("a_1")
    assert set(index_specs(db.c)) == {"_id_", "b_-1"}
    db.c.drop_index([("b", DESCENDING)])
    assert set(index_specs(db.c)) == {"_id_"}


def test_drop_index_by_key_document(db):
    db.c.create_index([("k", 1), ("j", 1)])
    reply = db.command("dropIndexes", "c", index={"k": 1, "j": 1})
    assert reply["ok"] == 1.0
    assert set(index_specs(db.c)) == {"_id_"}


def test_drop_indexes_keeps_the_id_index(db):
    db.c.create_index("a")
    db.c.create_index("b", unique=True)
    db.c.drop_indexes()
    assert [dict(spec) for spec in db.c.list_indexes()] == [ID_INDEX]


def test_drop_unknown_index_is_index_not_found(db):
    db.c.insert_one({"x": 1})
    with pytest.raises(OperationFailure) as excinfo:
        db.c.drop_index("nope_1")
    assert excinfo.value.code == 27
    assert excinfo.value.details["codeName"] == "IndexNotFound"


def test_the_id_index_cannot_be_dropped(db):
    db.c.insert_one({"x": 1})
    with pytest.raises(OperationFailure) as excinfo:
        db.command("dropIndexes", "c", index={"_id": 1})
    assert excinfo.value.code == 72  # InvalidOptions: "cannot drop _id index"


# -- collections ---------------------------------------------------------------------


def test_list_collection_names(db):
    db.a.insert_one({"x": 1})
    db.create_collection("b")
    assert sorted(db.list_collection_names()) == ["a", "b"]


def test_list_collections_entry_shape(db):
    db.create_collection("b")
    (entry,) = list(db.list_collections(filter={"name": "b"}))
    assert entry["name"] == "b"
    assert entry["type"] == "collection"
    assert entry["options"] == {}
    assert entry["info"]["readOnly"] is False
    uuid = entry["info"]["uuid"]
    assert isinstance(uuid, Binary) and uuid.subtype == 4
    assert entry["idIndex"] == ID_INDEX


def test_create_collection_that_exists_raises_collection_invalid(db):
    db.create_collection("b")
    with pytest.raises(CollectionInvalid):
        db.create_collection("b")  # pymongo checks with listCollections first


def test_raw_create_of_existing_collection_with_same_options_succeeds(db):
    db.command("create", "b")
    # MongoDB 7.0: re-creating with identical options is a successful no-op.
    assert db.command("create", "b")["ok"] == 1.0
    assert db.list_collection_names() == ["b"]


def test_raw_create_of_existing_collection_with_other_options_is_namespace_exists(db):
    db.command("create", "b")
    with pytest.raises(OperationFailure) as excinfo:
        db.command("create", "b", capped=True, size=4096)
    assert excinfo.value.code == 48
    assert excinfo.value.details["codeName"] == "NamespaceExists"


def test_drop_collection(db):
    db.a.insert_one({"x": 1})
    db.b.insert_one({"x": 1})
    db.drop_collection("a")
    assert db.list_collection_names() == ["b"]
    assert db.a.count_documents({}) == 0


def test_rename_collection_moves_documents_and_indexes(db):
    db.a.insert_many([{"_id": i} for i in range(5)])
    db.a.create_index("k")
    db.a.rename("renamed")
    assert db.list_collection_names() == ["renamed"]
    assert db.renamed.count_documents({}) == 5
    assert set(index_specs(db.renamed)) == {"_id_", "k_1"}


def test_rename_onto_existing_collection_is_namespace_exists(db):
    db.a.insert_one({"_id": 1})
    db.b.insert_one({"_id": 2})
    with pytest.raises(OperationFailure) as excinfo:
        db.a.rename("b")
    assert excinfo.value.code == 48
    assert db.b.find_one() == {"_id": 2}


def test_rename_with_drop_target_replaces_the_target(db):
    db.a.insert_one({"_id": 1})
    db.b.insert_one({"_id": 2})
    db.a.rename("b", dropTarget=True)
    assert db.list_collection_names() == ["b"]
    assert db.b.find_one() == {"_id": 1}


def test_rename_across_databases_is_refused_clearly(client, db):
    # Known difference (docs/compatibility.md): a database is a user's space, so moving a
    # collection between spaces is refused with IllegalOperation and nothing is changed.
    db.a.insert_many([{"_id": i} for i in range(3)])
    with pytest.raises(OperationFailure) as caught:
        client.admin.command("renameCollection", f"{db.name}.a", to=f"{db.name}_x.moved")
    assert caught.value.code == 20
    assert db.a.count_documents({}) == 3


# -- stats ---------------------------------------------------------------------------


def test_coll_stats(db):
    db.a.insert_many([{"_id": i, "payload": "x" * 100} for i in range(10)])
    db.a.create_index("payload")
    stats = db.command("collStats", "a")
    assert stats["ok"] == 1.0
    assert stats["ns"] == f"{db.name}.a"
    assert stats["count"] == 10
    assert stats["nindexes"] == 2
    assert stats["size"] > 0
    assert set(stats["indexSizes"]) == {"_id_", "payload_1"}


def test_db_stats(db):
    db.a.insert_many([{"_id": i} for i in range(4)])
    db.b.insert_many([{"_id": i} for i in range(3)])
    stats = db.command("dbStats")
    assert stats["ok"] == 1.0
    assert stats["db"] == db.name
    assert stats["collections"] == 2
    assert stats["objects"] == 7
    assert stats["indexes"] == 2
    assert stats["views"] == 0


def test_drop_database_removes_it_from_the_list(client, db):
    db.a.insert_one({"x": 1})
    assert db.name in client.list_database_names()
    client.drop_database(db.name)
    assert db.name not in client.list_database_names()
    assert db.list_collection_names() == []


def test_drop_database_command_reply(client, db):
    db.a.insert_one({"x": 1})
    assert db.command("dropDatabase")["ok"] == 1.0
    assert db.name not in client.list_database_names()


# -- explain ---------------------------------------------------------------------------


@pytest.fixture
def users(db):
    db.users.insert_many(
        [{"_id": f"u{i}", "email": f"user{i}@x.org", "age": 20 + i % 40, "city": "London"} for i in range(1, 101)]
    )
    db.users.create_index("email")
    return db.users


def winning_plan(db, filter_):
    reply = db.command("explain", {"find": "users", "filter": filter_})
    assert reply["ok"] == 1.0
    planner = reply["queryPlanner"]
    assert planner["namespace"] == f"{db.name}.users"
    return str(planner["winningPlan"])


def test_explain_id_lookup_uses_the_id_index(db, users):
    plan = winning_plan(db, {"_id": "u1"})
    assert "IDHACK" in plan or "IXSCAN" in plan


def test_explain_indexed_equality_uses_an_index_scan(db, users):
    plan = winning_plan(db, {"email": "user7@x.org"})
    assert "IXSCAN" in plan
    assert "email_1" in plan
    assert "COLLSCAN" not in plan


def test_explain_unindexed_filter_is_a_collection_scan(db, users):
    plan = winning_plan(db, {"age": 30})
    assert "COLLSCAN" in plan
    assert "IXSCAN" not in plan


def test_cursor_explain_helper(users):
    explanation = users.find({"email": "user3@x.org"}).explain()
    assert "IXSCAN" in str(explanation["queryPlanner"]["winningPlan"])


def test_hidden_indexes_are_kept_but_not_used(db):
    db.scores.insert_many([{"_id": i, "player": f"p{i % 10}", "points": i} for i in range(100)])
    db.scores.create_index("player", hidden=True)
    db.scores.create_index("points", unique=True)
    # Hidden: listed with hidden: true, not chosen by the planner, still maintained.
    assert db.scores.index_information()["player_1"]["hidden"] is True
    assert "IXSCAN" not in str(db.scores.find({"player": "p3"}).explain()["queryPlanner"]["winningPlan"])
    # collMod hides and unhides (db.collection.hideIndex / unhideIndex), answering old and new.
    reply = db.command("collMod", "scores", index={"name": "player_1", "hidden": False})
    assert reply["hidden_old"] is True and reply["hidden_new"] is False
    assert "IXSCAN" in str(db.scores.find({"player": "p3"}).explain()["queryPlanner"]["winningPlan"])
    assert sorted(d["_id"] for d in db.scores.find({"player": "p3"})) == list(range(3, 100, 10))
    reply = db.command("collMod", "scores", index={"keyPattern": {"points": 1}, "hidden": True})
    assert reply == {"hidden_old": False, "hidden_new": True, "ok": 1.0}
    # A hidden unique index still enforces uniqueness.
    with pytest.raises(OperationFailure) as error:
        db.scores.insert_one({"_id": 1000, "points": 5})
    assert error.value.code == 11000
    assert db.scores.count_documents({"points": {"$gte": 90}}) == 10
    with pytest.raises(OperationFailure) as error:
        db.scores.create_index("x", hidden="yes")
    assert error.value.code == 14
    with pytest.raises(OperationFailure):
        db.command("collMod", "scores", index={"name": "_id_", "hidden": True})


def test_collmod_redefines_a_view(db):
    db.products.insert_many([{"_id": 1, "qty": 5}, {"_id": 2, "qty": 50}, {"_id": 3, "qty": 500}])
    db.command("create", "lowStock", viewOn="products", pipeline=[{"$match": {"qty": {"$lt": 10}}}])
    assert [d["_id"] for d in db.lowStock.find()] == [1]
    db.command("collMod", "lowStock", viewOn="products", pipeline=[{"$match": {"qty": {"$lt": 100}}}])
    assert sorted(d["_id"] for d in db.lowStock.find()) == [1, 2]
    with pytest.raises(OperationFailure) as error:
        db.command("collMod", "lowStock", pipeline=[])
    assert error.value.code == 72
    with pytest.raises(OperationFailure) as error:
        db.command("collMod", "products", viewOn="lowStock", pipeline=[])
    assert error.value.code == 72
    with pytest.raises(OperationFailure) as error:
        db.command("collMod", "lowStock", viewOn="products", pipeline=[{"$out": "x"}])
    assert error.value.code == 167


def test_hidden_text_index_and_view_cycles(db):
    db.notes.insert_one({"t": "hello world"})
    db.notes.create_index([("t", "text")], hidden=True)
    with pytest.raises(OperationFailure) as error:
        list(db.notes.find({"$text": {"$search": "hello"}}))
    assert error.value.code == 27
    # Hiding a hidden index changes nothing and says nothing of it.
    assert "hidden_old" not in db.command("collMod", "notes", index={"name": "t_text", "hidden": True})
    db.command("collMod", "notes", index={"name": "t_text", "hidden": False})
    assert len(list(db.notes.find({"$text": {"$search": "hello"}}))) == 1
    db.command("create", "a", viewOn="notes", pipeline=[])
    db.command("create", "b", viewOn="a", pipeline=[])
    with pytest.raises(OperationFailure) as error:
        db.command("collMod", "a", viewOn="b", pipeline=[])
    assert error.value.code == 5
    with pytest.raises(OperationFailure) as error:
        db.command("collMod", "a", viewOn="a", pipeline=[])
    assert error.value.code == 5
    # A new view that reads itself is refused as well, and nothing is created.
    with pytest.raises(OperationFailure) as error:
        db.command("create", "selfish", viewOn="selfish", pipeline=[])
    assert error.value.code == 5
    assert "selfish" not in db.list_collection_names()
    assert len(list(db.b.find())) == 1
