"""Server behaviours that other drivers and tools depend on (issue #7), checked through pymongo."""
import pytest
from pymongo.errors import OperationFailure


def test_collstats_count_stage_gives_estimated_count(db):
    # Go driver 1.8 counts with this pipeline when the wire version is 12 or higher.
    db.people.insert_many([{"_id": i} for i in range(7)])
    pipeline = [{"$collStats": {"count": {}}}, {"$group": {"_id": 1, "n": {"$sum": "$count"}}}]
    assert list(db.people.aggregate(pipeline)) == [{"_id": 1, "n": 7}]
    db.create_collection("empty")
    assert list(db.empty.aggregate(pipeline)) == [{"_id": 1, "n": 0}]


def test_collstats_on_a_missing_collection_is_namespace_not_found(db):
    with pytest.raises(OperationFailure) as caught:
        list(db.missing.aggregate([{"$collStats": {"count": {}}}]))
    assert caught.value.code == 26


def test_collstats_must_be_the_first_stage(db):
    db.people.insert_one({"_id": 1})
    with pytest.raises(OperationFailure) as caught:
        list(db.people.aggregate([{"$match": {}}, {"$collStats": {"count": {}}}]))
    assert caught.value.code == 40602


def test_opcounters_count_documents_and_statements_like_mongod(client, db):
    before = client.admin.command("serverStatus")["opcounters"]
    db.c.insert_many([{"_id": i} for i in range(25)])
    db.c.delete_many({"_id": {"$lt": 5}})
    after = client.admin.command("serverStatus")["opcounters"]
    assert after["insert"] - before["insert"] == 25
    assert after["delete"] - before["delete"] == 1


def test_monitoring_reads_of_system_profile_see_an_empty_collection(db):
    assert db.command("count", "system.profile", query={})["n"] == 0
    assert db.command("profile", -1)["was"] == 0


def test_writes_to_system_collections_are_refused(db):
    with pytest.raises(OperationFailure) as caught:
        db["system.profile"].insert_one({"x": 1})
    assert caught.value.code == 73


def test_repl_set_get_status_says_no_replication(client):
    with pytest.raises(OperationFailure) as caught:
        client.admin.command("replSetGetStatus")
    assert caught.value.code == 76
