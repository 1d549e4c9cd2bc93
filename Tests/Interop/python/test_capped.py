"""Capped collections as the manual shows them: a size (and document) bound that removes the
oldest documents, insertion order, `$natural`, tailable cursors, `collMod` of the bounds,
`convertToCapped` and `cloneCollectionAsCapped`; and `collMod` of a TTL index."""

from __future__ import annotations

import threading
import time

import pytest
from pymongo import ASCENDING, CursorType
from pymongo.errors import OperationFailure


def ids(cursor):
    return [d["_id"] for d in cursor]


def next_or_none(cursor):
    """The next document of a tailable cursor, or None when it has none yet (it stays open)."""
    try:
        return next(cursor)
    except StopIteration:
        return None


def test_capped_bounds_keep_the_newest_documents(db):
    log = db.create_collection("log", capped=True, size=100_000, max=5)
    assert log.options() == {"capped": True, "size": 100_000, "max": 5}
    for i in range(8):
        log.insert_one({"_id": i, "msg": f"event {i}"})
    # Insertion order, oldest removed first; $natural reverses.
    assert ids(log.find()) == [3, 4, 5, 6, 7]
    assert ids(log.find().sort("$natural", -1)) == [7, 6, 5, 4, 3]
    assert ids(log.find({"_id": {"$gte": 5}}).sort([("$natural", 1)])) == [5, 6, 7]
    stats = db.command("collStats", "log")
    assert stats["capped"] is True and stats["max"] == 5 and stats["maxSize"] == 100_096 and stats["count"] == 5
    # A batch past the bound keeps its last documents; updates and deletes work (MongoDB 5.0+).
    log.insert_many([{"_id": 10 + i, "msg": "x" * i} for i in range(7)])
    assert ids(log.find()) == [12, 13, 14, 15, 16]
    log.update_one({"_id": 12}, {"$set": {"msg": "grown " * 20}})
    log.delete_one({"_id": 13})
    assert ids(log.find()) == [12, 14, 15, 16]
    # The byte bound: 1 KB documents in a 4 KB collection (the smallest size MongoDB makes).
    small = db.create_collection("small", capped=True, size=1)
    for i in range(10):
        small.insert_one({"_id": i, "pad": "p" * 1000})
    assert ids(small.find()) == [6, 7, 8, 9]
    assert db.command("collStats", "small")["maxSize"] == 4096
    with pytest.raises(OperationFailure) as error:
        small.insert_one({"_id": "big", "pad": "p" * 5000})
    assert error.value.code == 2
    assert ids(small.find()) == [6, 7, 8, 9]


def test_capped_options_errors_and_collmod(db):
    with pytest.raises(OperationFailure) as error:
        db.create_collection("nosize", capped=True)
    assert error.value.code == 72
    with pytest.raises(OperationFailure) as error:
        db.create_collection("badsize", capped=True, size=-5)
    assert error.value.code == 2
    log = db.create_collection("log", capped=True, size=10_000, max=10)
    with pytest.raises(OperationFailure) as error:
        log.create_index("at", expireAfterSeconds=60)
    assert error.value.code == 67
    log.insert_many([{"_id": i} for i in range(10)])
    # A lower bound takes effect at the next insert, as in MongoDB.
    db.command("collMod", "log", cappedMax=3)
    assert log.count_documents({}) == 10
    log.insert_one({"_id": 10})
    assert ids(log.find()) == [8, 9, 10]
    assert log.options()["max"] == 3
    db.plain.insert_one({"_id": 1})
    with pytest.raises(OperationFailure) as error:
        db.command("collMod", "plain", cappedSize=5000)
    assert error.value.code == 72
    # A tailable cursor on a collection that is not capped is refused.
    with pytest.raises(OperationFailure) as error:
        list(db.plain.find(cursor_type=CursorType.TAILABLE))
    assert error.value.code == 2


def test_tailable_cursors_follow_new_documents(db):
    events = db.create_collection("events", capped=True, size=1_000_000)
    events.insert_many([{"_id": i} for i in range(3)])
    cursor = events.find(cursor_type=CursorType.TAILABLE)
    assert [next(cursor)["_id"] for _ in range(3)] == [0, 1, 2]
    assert cursor.alive and next_or_none(cursor) is None
    events.insert_one({"_id": 3})
    assert next_or_none(cursor) == {"_id": 3}
    # awaitData: a getMore waits (up to maxAwaitTimeMS) for the next insert.
    waiting = events.find({"_id": {"$gte": 4}}, cursor_type=CursorType.TAILABLE_AWAIT).max_await_time_ms(5000)
    assert next_or_none(waiting) is None
    timer = threading.Timer(0.3, lambda: events.insert_one({"_id": 4}))
    timer.start()
    started = time.monotonic()
    try:
        found = next_or_none(waiting)
    finally:
        timer.join()
    assert found == {"_id": 4} and time.monotonic() - started < 4.5
    # Without new documents it answers an empty batch after its wait, and stays open.
    assert next_or_none(waiting) is None and waiting.alive
    # Row ids only grow: a document inserted after the newest one was deleted is still seen.
    events.delete_one({"_id": 4})
    events.insert_one({"_id": 5})
    assert next_or_none(cursor) == {"_id": 5}
    cursor.close()
    waiting.close()
    with pytest.raises(OperationFailure) as error:
        list(events.find(cursor_type=CursorType.TAILABLE).sort("_id", ASCENDING))
    assert error.value.code == 2


def test_convert_and_clone_as_capped(db):
    db.source.insert_many([{"_id": i, "v": i} for i in range(20)])
    db.source.create_index("v")
    db.command("cloneCollectionAsCapped", "source", toCollection="copy", size=100_000, max=4)
    assert ids(db.copy.find()) == [16, 17, 18, 19]
    assert db.copy.options()["capped"] is True
    with pytest.raises(OperationFailure) as error:
        db.command("cloneCollectionAsCapped", "source", toCollection="copy", size=100_000)
    assert error.value.code == 48
    db.command("convertToCapped", "source", size=100_000, max=6)
    assert ids(db.source.find()) == list(range(14, 20))
    # As in MongoDB, converting keeps only the _id index.
    assert list(db.source.index_information()) == ["_id_"]
    db.source.insert_one({"_id": 20})
    assert ids(db.source.find())[0] == 15


def test_collmod_changes_a_ttl_index(db):
    db.sessions.create_index("lastSeen", expireAfterSeconds=3600)
    reply = db.command("collMod", "sessions", index={"keyPattern": {"lastSeen": 1}, "expireAfterSeconds": 60})
    assert reply["expireAfterSeconds_old"] == 3600 and reply["expireAfterSeconds_new"] == 60
    assert db.sessions.index_information()["lastSeen_1"]["expireAfterSeconds"] == 60
    # An ordinary single-field index becomes a TTL index (MongoDB 5.1+).
    db.sessions.create_index("created")
    reply = db.command("collMod", "sessions", index={"name": "created_1", "expireAfterSeconds": 10})
    assert "expireAfterSeconds_old" not in reply and reply["expireAfterSeconds_new"] == 10
    for bad in [{"name": "nope", "expireAfterSeconds": 1}, {"name": "created_1", "expireAfterSeconds": -1}, {"name": "created_1"}]:
        with pytest.raises(OperationFailure):
            db.command("collMod", "sessions", index=bad)


def test_a_tailable_cursor_whose_position_was_removed_fails(db):
    ring = db.create_collection("ring", capped=True, size=100_000, max=3)
    ring.insert_many([{"_id": i} for i in range(3)])
    reply = db.command("find", "ring", tailable=True)
    assert [d["_id"] for d in reply["cursor"]["firstBatch"]] == [0, 1, 2] and reply["cursor"]["id"] != 0
    # Three more inserts remove every document the cursor had returned, its position too.
    ring.insert_many([{"_id": i} for i in range(3, 6)])
    with pytest.raises(OperationFailure) as error:
        db.command("getMore", reply["cursor"]["id"], collection="ring")
    assert error.value.code == 136
    # A slow reader stopped midway (batch size) is overtaken too: its next batch fails.
    ring.insert_many([{"_id": i} for i in range(100, 103)])
    reply = db.command("find", "ring", tailable=True, batchSize=1)
    assert [d["_id"] for d in reply["cursor"]["firstBatch"]] == [100]
    ring.insert_many([{"_id": i} for i in range(103, 106)])
    with pytest.raises(OperationFailure) as error:
        db.command("getMore", reply["cursor"]["id"], collection="ring")
    assert error.value.code == 136
    # pymongo reads that error as the end of a tailable cursor.
    cursor = ring.find(cursor_type=CursorType.TAILABLE)
    assert [next(cursor)["_id"] for _ in range(3)] == [103, 104, 105]
    ring.insert_many([{"_id": i} for i in range(6, 9)])
    assert next_or_none(cursor) is None and not cursor.alive
    # A non-awaitData tailable getMore takes no maxTimeMS, as in MongoDB.
    reply = db.command("find", "ring", tailable=True)
    with pytest.raises(OperationFailure) as error:
        db.command("getMore", reply["cursor"]["id"], collection="ring", maxTimeMS=100)
    assert error.value.code == 2
    # $out cannot replace a capped collection; a missing collection tails nothing.
    with pytest.raises(OperationFailure) as error:
        list(db.ring.aggregate([{"$match": {}}, {"$out": "ring"}]))
    assert error.value.code == 17152
    assert list(db.nothing.find(cursor_type=CursorType.TAILABLE)) == []


def test_collmod_ttl_index_expires_documents(server_factory):
    import datetime

    node = server_factory("--ttl-monitor-sleep-secs", "1")
    db = node.client().app
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    db.sessions.insert_many([{"_id": 1, "seen": old}, {"_id": 2, "seen": datetime.datetime.now(datetime.timezone.utc)}])
    db.sessions.create_index("seen")
    db.command("collMod", "sessions", index={"keyPattern": {"seen": 1}, "expireAfterSeconds": 600})
    deadline = time.monotonic() + 30
    while db.sessions.count_documents({}) != 1:
        assert time.monotonic() < deadline, "the TTL monitor never removed the expired session"
        time.sleep(0.2)
    assert db.sessions.find_one()["_id"] == 2
