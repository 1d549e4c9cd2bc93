"""Acknowledged writes survive a crash (kill -9) and a restart on the same data directory.

Each test runs its own server process (``server_factory``), separate from the
shared session server.
"""

import pytest
from pymongo import WriteConcern
from pymongo.errors import DuplicateKeyError

N_DOCS = 2000


def insert_one_by_one(srv, write_concern=None):
    coll = srv.client()["durability"]["docs"]
    if write_concern is not None:
        coll = coll.with_options(write_concern=write_concern)
    for i in range(N_DOCS):
        result = coll.insert_one({"_id": i, "payload": f"document-{i:05d}"})
        assert result.acknowledged


def assert_all_documents_present(srv):
    coll = srv.client()["durability"]["docs"]
    assert coll.count_documents({}) == N_DOCS
    assert sorted(d["_id"] for d in coll.find({}, {"_id": 1})) == list(range(N_DOCS))
    assert coll.find_one({"_id": N_DOCS - 1}) == {"_id": N_DOCS - 1, "payload": f"document-{N_DOCS - 1:05d}"}


def crash_and_restart(srv):
    srv.kill9()
    srv.start()


def test_acknowledged_inserts_survive_kill_9(server_factory):
    srv = server_factory()
    insert_one_by_one(srv)
    crash_and_restart(srv)
    assert_all_documents_present(srv)


def test_acknowledged_inserts_survive_kill_9_with_sync_full(server_factory):
    srv = server_factory("--sync", "full")
    insert_one_by_one(srv)
    crash_and_restart(srv)
    assert_all_documents_present(srv)


def test_journaled_inserts_survive_kill_9(server_factory):
    srv = server_factory()
    insert_one_by_one(srv, WriteConcern(w=1, j=True))
    crash_and_restart(srv)
    assert_all_documents_present(srv)


def test_updates_deletes_and_indexes_survive_kill_9(server_factory):
    srv = server_factory()
    db = srv.client()["durability"]
    db.items.create_index("email", unique=True)
    db.items.insert_many([{"_id": i, "email": f"u{i}@x", "n": 0} for i in range(100)])
    for i in range(0, 100, 2):
        db.items.update_one({"_id": i}, {"$inc": {"n": 1}})
    db.items.delete_many({"_id": {"$gte": 90}})
    db.dropped.insert_one({"_id": 1})
    db.dropped.drop()

    crash_and_restart(srv)

    db = srv.client()["durability"]
    assert sorted(d["_id"] for d in db.items.find()) == list(range(90))
    assert [d["_id"] for d in db.items.find({"n": 1}).sort("_id", 1)] == list(range(0, 90, 2))
    assert "dropped" not in db.list_collection_names()
    assert "email_1" in db.items.index_information()
    with pytest.raises(DuplicateKeyError):
        db.items.insert_one({"_id": 1000, "email": "u1@x"})


def test_repeated_crashes_do_not_lose_or_duplicate_data(server_factory):
    srv = server_factory()
    coll = srv.client()["durability"]["docs"]
    expected = 0
    for _round in range(3):
        for _ in range(200):
            coll.insert_one({"_id": expected})
            expected += 1
        crash_and_restart(srv)
        coll = srv.client()["durability"]["docs"]
        assert coll.count_documents({}) == expected
    assert sorted(d["_id"] for d in coll.find()) == list(range(expected))


def test_sigterm_shuts_down_cleanly_and_keeps_data(server_factory):
    srv = server_factory()
    coll = srv.client()["durability"]["docs"]
    coll.insert_many([{"_id": i} for i in range(500)])
    assert srv.stop() == 0  # graceful shutdown exits with status 0
    srv.start()
    assert srv.client()["durability"]["docs"].count_documents({}) == 500


def test_restart_serves_existing_databases(server_factory):
    srv = server_factory()
    client = srv.client()
    client["one"]["a"].insert_one({"_id": 1})
    client["two"]["b"].insert_one({"_id": 2})
    srv.restart()
    names = srv.client().list_database_names()
    assert {"one", "two"} <= set(names)
