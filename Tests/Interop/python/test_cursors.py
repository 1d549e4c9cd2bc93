"""Cursors: batching, getMore, limits and killCursors."""

import pytest
from bson import Int64
from pymongo.errors import CursorNotFound, OperationFailure

N = 250


@pytest.fixture
def many(db):
    # Inserted in _id order; "rank" runs the other way so sorting on it reverses.
    db.many.insert_many([{"_id": i, "rank": N - i, "mod": i % 7} for i in range(N)])
    return db.many


def drain(db, coll_name, first_reply, batch_size=None):
    """Follow a cursor with raw getMore commands; return (documents, batch sizes)."""
    cursor = first_reply["cursor"]
    docs = list(cursor["firstBatch"])
    sizes = [len(cursor["firstBatch"])]
    cursor_id = cursor["id"]
    for _ in range(N + 5):  # guard against a cursor that never ends
        if cursor_id == 0:
            return docs, sizes
        cmd = {"getMore": cursor_id, "collection": coll_name}
        if batch_size is not None:
            cmd["batchSize"] = batch_size
        cursor = db.command(cmd)["cursor"]
        docs.extend(cursor["nextBatch"])
        sizes.append(len(cursor["nextBatch"]))
        cursor_id = cursor["id"]
    pytest.fail("cursor was never exhausted")


# -- pymongo-level iteration -----------------------------------------------------


@pytest.mark.parametrize("batch_size", [0, 1, 10, 101, 1000], ids=lambda b: f"batch{b}")
def test_find_returns_every_document_in_order_across_get_more(many, batch_size):
    got = [d["_id"] for d in many.find().sort("_id", 1).batch_size(batch_size)]
    assert got == list(range(N))


def test_find_without_sort_returns_every_document_once(many):
    got = [d["_id"] for d in many.find().batch_size(10)]
    assert len(got) == N
    assert sorted(got) == list(range(N))


def test_sort_larger_than_one_batch(many):
    got = [d["_id"] for d in many.find().sort("rank", -1).batch_size(20)]
    assert got == list(range(N))  # highest rank is _id 0


def test_sort_on_non_unique_key_then_id(many):
    got = [(d["mod"], d["_id"]) for d in many.find().sort([("mod", 1), ("_id", -1)]).batch_size(13)]
    assert got == sorted(((i % 7, i) for i in range(N)), key=lambda t: (t[0], -t[1]))


def test_limit_smaller_than_total_with_small_batches(many):
    got = [d["_id"] for d in many.find().sort("_id", 1).limit(25).batch_size(10)]
    assert got == list(range(25))


def test_limit_with_skip_across_batches(many):
    got = [d["_id"] for d in many.find().sort("_id", 1).skip(240).limit(20).batch_size(3)]
    assert got == list(range(240, 250))


def test_aggregate_cursor_across_get_more(many):
    got = [d["_id"] for d in many.aggregate([{"$sort": {"_id": 1}}, {"$project": {"_id": 1}}], batchSize=10)]
    assert got == list(range(N))


# -- raw find/getMore replies ------------------------------------------------------


def test_default_first_batch_is_101_documents(db, many):
    reply = db.command("find", "many", sort={"_id": 1})
    cursor = reply["cursor"]
    assert len(cursor["firstBatch"]) == 101
    assert cursor["id"] != 0
    assert isinstance(cursor["id"], Int64)  # cursor ids are always int64
    assert cursor["ns"] == f"{db.name}.many"
    # A getMore without batchSize returns the rest (well under 16 MiB).
    docs, sizes = drain(db, "many", reply)
    assert [d["_id"] for d in docs] == list(range(N))
    assert sizes[:2] == [101, N - 101]


def test_explicit_batch_size_is_respected(db, many):
    reply = db.command("find", "many", sort={"_id": 1}, batchSize=10)
    docs, sizes = drain(db, "many", reply, batch_size=10)
    assert [d["_id"] for d in docs] == list(range(N))
    assert sizes[:25] == [10] * 25
    assert all(size == 0 for size in sizes[25:])  # at most one trailing empty batch
    assert len(sizes) <= 26


def test_get_more_reply_shape(db, many):
    first = db.command("find", "many", sort={"_id": 1}, batchSize=5)["cursor"]
    more = db.command("getMore", first["id"], collection="many", batchSize=5)
    assert more["ok"] == 1.0
    assert more["cursor"]["id"] == first["id"]
    assert more["cursor"]["ns"] == f"{db.name}.many"
    assert [d["_id"] for d in more["cursor"]["nextBatch"]] == [5, 6, 7, 8, 9]
    db.command("killCursors", "many", cursors=[first["id"]])


def test_exhausted_first_batch_returns_cursor_id_zero(db, many):
    reply = db.command("find", "many", filter={"_id": {"$lt": 5}})
    assert len(reply["cursor"]["firstBatch"]) == 5
    assert reply["cursor"]["id"] == 0


def test_limit_closes_cursor_when_reached(db, many):
    reply = db.command("find", "many", sort={"_id": 1}, limit=5)
    assert [d["_id"] for d in reply["cursor"]["firstBatch"]] == [0, 1, 2, 3, 4]
    assert reply["cursor"]["id"] == 0


def test_limit_larger_than_batch_size(db, many):
    reply = db.command("find", "many", sort={"_id": 1}, limit=25, batchSize=10)
    docs, _ = drain(db, "many", reply, batch_size=10)
    assert [d["_id"] for d in docs] == list(range(25))


def test_single_batch_closes_cursor(db, many):
    reply = db.command("find", "many", sort={"_id": 1}, batchSize=3, singleBatch=True)
    assert len(reply["cursor"]["firstBatch"]) == 3
    assert reply["cursor"]["id"] == 0


def test_batch_size_zero_returns_empty_first_batch_and_open_cursor(db, many):
    reply = db.command("find", "many", sort={"_id": 1}, batchSize=0)
    assert reply["cursor"]["firstBatch"] == []
    assert reply["cursor"]["id"] != 0
    docs, _ = drain(db, "many", reply)
    assert len(docs) == N


def test_find_on_missing_collection_returns_empty_exhausted_cursor(db):
    reply = db.command("find", "does_not_exist")
    assert reply["cursor"]["firstBatch"] == []
    assert reply["cursor"]["id"] == 0


# -- killCursors ---------------------------------------------------------------


def test_kill_cursors_command_reply(db, many):
    cursor_id = db.command("find", "many", batchSize=2)["cursor"]["id"]
    reply = db.command("killCursors", "many", cursors=[cursor_id, Int64(424242)])
    assert reply["ok"] == 1.0
    assert reply["cursorsKilled"] == [cursor_id]
    assert reply["cursorsNotFound"] == [424242]
    assert reply["cursorsAlive"] == []
    assert reply["cursorsUnknown"] == []
    with pytest.raises(CursorNotFound) as excinfo:
        db.command("getMore", cursor_id, collection="many")
    assert excinfo.value.code == 43


def test_pymongo_cursor_close_kills_server_cursor(db, many):
    cursor = many.find().batch_size(5)
    next(cursor)
    cursor_id = cursor.cursor_id
    assert cursor_id
    cursor.close()
    with pytest.raises(OperationFailure) as excinfo:
        db.command("getMore", cursor_id, collection="many")
    assert excinfo.value.code == 43
    assert excinfo.value.details["codeName"] == "CursorNotFound"


def test_get_more_on_unknown_cursor_is_cursor_not_found(db):
    with pytest.raises(OperationFailure) as excinfo:
        db.command({"getMore": Int64(12345), "collection": "x"})
    err = excinfo.value
    assert err.code == 43
    assert err.details["codeName"] == "CursorNotFound"
    assert err.details["errmsg"] == "cursor id 12345 not found"


def test_get_more_on_exhausted_cursor_is_cursor_not_found(db, many):
    reply = db.command("find", "many", sort={"_id": 1}, batchSize=200)
    cursor_id = reply["cursor"]["id"]
    docs, _ = drain(db, "many", reply)
    assert len(docs) == N
    with pytest.raises(OperationFailure) as excinfo:
        db.command("getMore", cursor_id, collection="many")
    assert excinfo.value.code == 43


def test_many_open_cursors_are_independent(many):
    cursors = [many.find({"mod": m}).sort("_id", 1).batch_size(4) for m in range(7)]
    # Open all seven server-side cursors first, then drain them one by one.
    results = [[next(c)["_id"]] for c in cursors]
    assert all(c.cursor_id for c in cursors)
    for got, c in zip(results, cursors):
        got.extend(d["_id"] for d in c)
    for m, got in enumerate(results):
        assert got == [i for i in range(N) if i % 7 == m]


def test_max_time_ms_stops_a_long_scan_with_execution_timeout(db):
    # An unindexed regex filter over 30,000 documents takes well over 1 ms; MongoDB answers
    # MaxTimeMSExpired (50), which pymongo raises as ExecutionTimeout.
    from pymongo.errors import ExecutionTimeout

    db.big.insert_many([{"_id": i, "s": f"value-{i:06d}"} for i in range(30_000)])
    with pytest.raises(ExecutionTimeout) as caught:
        list(db.big.find({"s": {"$regex": "^nomatch"}}).max_time_ms(1))
    assert caught.value.code == 50
    with pytest.raises(ExecutionTimeout):
        db.big.count_documents({"s": {"$regex": "^nomatch"}}, maxTimeMS=1)
    # Without a limit, the same queries complete.
    assert db.big.count_documents({"s": {"$regex": "^value-0000"}}) == 100
