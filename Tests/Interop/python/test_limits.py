"""Size and nesting limits: rejected cleanly, never by crashing the server.

MongoDB accepts documents of exactly maxBsonObjectSize (16 MiB) bytes and
rejects anything larger with a write error ("object to insert too large"),
inside an ok:1 reply. For acknowledged writes pymongo does not check the size
client side; it lets the server decide, so these tests really reach the server.
"""

import bson
import pytest
from pymongo.errors import PyMongoError, WriteError

from mongo_wire import MAX_BSON_OBJECT_SIZE, connect, doc_sequence, roundtrip

# bson.encode({"_id": <int32>, "x": "a" * n}) is n + 22 bytes long.
_OVERHEAD = 22


def doc_of_size(_id: int, size: int) -> dict:
    doc = {"_id": _id, "x": "a" * (size - _OVERHEAD)}
    assert len(bson.encode(doc)) == size
    return doc


def assert_server_still_serves(server):
    with server.client() as fresh:
        assert fresh.admin.command("ping")["ok"] == 1.0


def test_document_of_exactly_max_bson_size_is_accepted(db):
    db.big.insert_one(doc_of_size(1, MAX_BSON_OBJECT_SIZE))
    assert db.big.count_documents({}) == 1
    got = db.big.aggregate([{"$project": {"n": {"$strLenBytes": "$x"}}}]).next()
    assert got == {"_id": 1, "n": MAX_BSON_OBJECT_SIZE - _OVERHEAD}


def test_document_one_byte_over_max_bson_size_is_rejected(server, db):
    with pytest.raises(WriteError) as excinfo:
        db.big.insert_one(doc_of_size(2, MAX_BSON_OBJECT_SIZE + 1))
    assert "object to insert too large" in excinfo.value.details["errmsg"]
    assert excinfo.value.code == 2  # BadValue
    assert db.big.count_documents({}) == 0
    assert_server_still_serves(server)


@pytest.mark.parametrize("as_sequence", [False, True], ids=["in_body", "in_document_sequence"])
def test_oversize_insert_over_raw_op_msg_is_a_write_error(server, db, as_sequence):
    doc = doc_of_size(3, MAX_BSON_OBJECT_SIZE + 1)
    with server.raw_connection(timeout=60) as sock:
        if as_sequence:
            reply = roundtrip(
                sock, 1, {"insert": "big", "$db": db.name}, sequences=[doc_sequence("documents", [doc])]
            )
        else:
            reply = roundtrip(sock, 1, {"insert": "big", "$db": db.name, "documents": [doc]})
        assert reply["ok"] == 1.0
        assert reply["n"] == 0
        assert "object to insert too large" in reply["writeErrors"][0]["errmsg"]
        # Same connection keeps working.
        assert roundtrip(sock, 2, {"ping": 1, "$db": "admin"})["ok"] == 1.0
    assert db.big.count_documents({}) == 0


def test_update_growing_document_past_limit_is_rejected(server, db):
    db.big.insert_one(doc_of_size(4, MAX_BSON_OBJECT_SIZE - 1024))
    with pytest.raises(WriteError):
        db.big.update_one({"_id": 4}, {"$set": {"y": "b" * 2048}})
    got = db.big.aggregate([{"$project": {"hasY": {"$ifNull": ["$y", False]}}}]).next()
    assert got == {"_id": 4, "hasY": False}
    assert_server_still_serves(server)


def nested(depth: int) -> dict:
    """A value with ``depth`` levels of embedded documents: {"a": {"a": ... {"leaf": 1}}}."""
    value = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_documented_nesting_depth_of_100_round_trips(db):
    doc = {"_id": "deep", "n": nested(99)}  # 100 levels including the top-level document
    db.nest.insert_one(doc)
    assert db.nest.find_one({"_id": "deep"}) == doc


def test_nesting_200_levels_is_rejected_without_crashing(server, db):
    with pytest.raises(PyMongoError):
        db.nest.insert_one({"_id": "too-deep", "n": nested(200)})
    assert_server_still_serves(server)
    assert db.nest.count_documents({"_id": "too-deep"}) == 0


def test_nested_arrays_200_levels_are_rejected_without_crashing(server, db):
    value = [1]
    for _ in range(199):
        value = [value]
    with pytest.raises(PyMongoError):
        db.nest.insert_one({"_id": "too-deep-array", "n": value})
    assert_server_still_serves(server)
    assert db.nest.count_documents({"_id": "too-deep-array"}) == 0


def test_deeply_nested_query_filter_is_rejected_without_crashing(server, db):
    db.nest.insert_one({"_id": 1})
    query = {"_id": 1}
    for _ in range(150):  # far beyond MongoDB's query-tree and BSON depth limits
        query = {"$and": [query]}
    with pytest.raises(PyMongoError):
        list(db.nest.find(query))
    assert_server_still_serves(server)
