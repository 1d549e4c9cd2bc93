"""Seeded concurrency stress: writers, readers, long cursors and aggregations race with
dropDatabase, drop, create, renameCollection (with and without dropTarget), createIndexes
(unique too) and dropIndexes, on a real server. No reply may carry an internal error; after the
churn every namespace works; `$inc` counters equal the acknowledged increments; a unique index
never holds duplicates; file descriptors return to their baseline (no leaked handles of dropped
files). `STRATOSDB_STRESS_SEED` and `STRATOSDB_STRESS_SECONDS` (or `make stress`) replay or
lengthen a run; the seed is printed on failure.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time

import pytest

from pymongo import MongoClient
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

SEED = int(os.environ.get("STRATOSDB_STRESS_SEED", "16"))
SECONDS = float(os.environ.get("STRATOSDB_STRESS_SECONDS", "12"))
# What a client may see when it races with a schema change (docs/concurrency.md).
EXPECTED_CODES = {11000, 26, 27, 43, 175, 215, 11601, 112, 48, 85, 86, 67}


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_schema_changes_race_safely_with_reads_writes_and_cursors(server_factory):
    srv = server_factory()
    uri = srv.uri
    setup = MongoClient(uri)
    setup.d0.counters.insert_many([{"_id": f"n{i}", "v": 0} for i in range(4)])
    setup.d0.u.create_index("k", unique=True)
    baseline_fds = open_fds(srv.proc.pid)
    stop = threading.Event()
    unexpected: list[str] = []
    increments = collections.Counter()
    operations = collections.Counter()
    lock = threading.Lock()

    def record(exc: Exception, what: str):
        code = getattr(exc, "code", None)
        if isinstance(exc, BulkWriteError):
            codes = {error.get("code") for error in exc.details.get("writeErrors", [])}
            if codes <= EXPECTED_CODES:
                return
        text = str(exc)
        if code in EXPECTED_CODES and "SQL" not in text and "sqlite" not in text.lower():
            return
        with lock:
            unexpected.append(f"{what}: code {code}: {text[:160]}")

    def worker(index: int):
        rng = random.Random(SEED * 100 + index)
        client = MongoClient(uri, maxPoolSize=2)
        while not stop.is_set():
            db = client[rng.choice(["d0", "d1"])]
            name = rng.choice(["c0", "c1", "c2", "r0", "r1"])
            kind = rng.randrange(8)
            try:
                if kind == 0:
                    db[name].insert_one({"w": index, "x": rng.randrange(100)})
                elif kind == 1:
                    db[name].update_one({"_id": f"up{rng.randrange(5)}"}, {"$inc": {"n": 1}}, upsert=True)
                elif kind == 2:
                    list(db[name].find({"x": {"$gte": rng.randrange(100)}}).limit(20))
                elif kind == 3:
                    for _ in db[name].find().batch_size(3):
                        if rng.random() < 0.1:
                            break
                elif kind == 4:
                    list(db[name].aggregate([{"$match": {}}, {"$group": {"_id": "$w", "n": {"$sum": 1}}}]))
                elif kind == 5:
                    key = f"n{rng.randrange(4)}"
                    client.d0.counters.update_one({"_id": key}, {"$inc": {"v": 1}})
                    with lock:
                        increments[key] += 1
                elif kind == 6:
                    client.d0.u.insert_one({"k": rng.randrange(200)})
                else:
                    db[name].delete_many({"x": rng.randrange(100)})
                with lock:
                    operations["ok"] += 1
            except PyMongoError as exc:
                with lock:
                    operations["error"] += 1
                record(exc, f"worker {index} op {kind} on {db.name}.{name}")

    def churn():
        rng = random.Random(SEED)
        client = MongoClient(uri, maxPoolSize=1)
        while not stop.is_set():
            action = rng.randrange(8)
            try:
                if action == 0:
                    client.drop_database("d1")
                elif action == 1:
                    client.d1[rng.choice(["c0", "c1", "c2"])].drop()
                elif action == 2:
                    client.d1.command("create", f"c{rng.randrange(3)}")
                elif action == 3:
                    source, target = rng.sample(["r0", "r1"], 2)
                    client.admin.command("renameCollection", f"d1.{source}", to=f"d1.{target}", dropTarget=rng.random() < 0.5)
                elif action == 4:
                    client.d1[rng.choice(["c0", "c1"])].create_index("x", unique=rng.random() < 0.3)
                elif action == 5:
                    client.d1[rng.choice(["c0", "c1"])].drop_index("x_1")
                elif action == 6:
                    client.d0.counters.create_index("v")
                    client.d0.counters.drop_index("v_1")
                else:
                    client.d0[rng.choice(["c0", "c1"])].create_index([("w", 1), ("x", -1)])
                with lock:
                    operations["schema"] += 1
            except PyMongoError as exc:
                record(exc, f"churn action {action}")
            time.sleep(rng.uniform(0.02, 0.15))

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)] + [threading.Thread(target=churn)]
    for thread in threads:
        thread.start()
    time.sleep(SECONDS)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert srv.is_running, f"seed {SEED}: the server exited"
    assert not unexpected, f"seed {SEED}: unexpected errors: {unexpected[:8]}"
    assert operations["ok"] > 200 and operations["schema"] > 20, f"seed {SEED}: too little happened: {operations}"

    client = MongoClient(uri)
    # Every namespace accepts writes and returns them after the churn.
    for db_name in ["d0", "d1"]:
        for name in ["c0", "c1", "c2", "r0", "r1"]:
            client[db_name][name].insert_one({"_id": "after", "ok": True})
            assert client[db_name][name].find_one({"_id": "after"}) == {"_id": "after", "ok": True}
        listed = set(client[db_name].list_collection_names())
        assert {"c0", "c1", "c2", "r0", "r1"} <= listed, f"seed {SEED}: listCollections missed some: {listed}"
        for name in listed:
            for index in client[db_name][name].list_indexes():
                assert index["name"] == "_id_" or index["key"], index
    # $inc counters equal the acknowledged increments.
    for document in client.d0.counters.find():
        assert document["v"] == increments[document["_id"]], f"seed {SEED}: counter {document}"
    # The unique index never held duplicates.
    keys = [document["k"] for document in client.d0.u.find()]
    assert len(keys) == len(set(keys)), f"seed {SEED}: duplicates under a unique index"
    # No leaked handles of dropped databases.
    time.sleep(1)
    assert open_fds(srv.proc.pid) <= baseline_fds + 40, f"seed {SEED}: {open_fds(srv.proc.pid)} fds, baseline {baseline_fds}"
    print(f"seed {SEED}: {dict(operations)} in {SECONDS:.0f} s")


def test_a_recreated_database_never_shows_the_dropped_data(server_factory):
    srv = server_factory()
    client = MongoClient(srv.uri, maxPoolSize=1)
    for i in range(30):
        client.recreate.c.insert_one({"v": i})
        assert client.recreate.c.find_one({"v": i})["v"] == i
        client.drop_database("recreate")
        client.recreate.c.insert_one({"w": i})
        found = [{k: v for k, v in doc.items() if k != "_id"} for doc in client.recreate.c.find()]
        assert found == [{"w": i}], f"round {i}: {found}"
        client.drop_database("recreate")


def test_a_cursor_on_a_dropped_and_recreated_index_is_killed(server_factory):
    srv = server_factory()
    db = MongoClient(srv.uri).reuse
    db.c.insert_many([{"a": i, "b": -i} for i in range(50)])
    db.c.create_index("a")
    cursor = db.c.find({"a": {"$gte": 0}}).batch_size(2)
    next(cursor)
    db.c.drop_index("a_1")
    db.c.create_index("b")  # may take the dropped index's table id
    with pytest.raises(OperationFailure) as error:
        list(cursor)
    assert error.value.code in (175, 43)


def test_anchoring_after_a_space_is_dropped_and_recreated(server_factory, tmp_path):
    import json
    import subprocess

    from bson import json_util
    from pymongo import WriteConcern

    from conftest import server_binary

    srv = server_factory("--block-interval", "100ms")
    db = MongoClient(srv.uri).again
    coll = db.get_collection("c", write_concern=WriteConcern(w="anchored", wtimeout=20000))
    for round_number in range(2):
        coll.insert_many([{"_id": i, "round": round_number} for i in range(3)])
        coll.insert_one({"_id": "last", "round": round_number})
        reply = db.command("proveRecord", "c", _id="last")
        assert reply["anchor"]["anchored"] is True, f"round {round_number}"
        (tmp_path / "p.json").write_text(json_util.dumps(reply))
        checked = subprocess.run([str(server_binary()), "verify-proof", str(tmp_path / "p.json"), "--require-anchor"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        db.client.drop_database("again")
