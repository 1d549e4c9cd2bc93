"""Runaway and hostile operations (resource governance): a catastrophic regular expression,
long pipelines, operations killed with killOp, by a closed connection or by SIGTERM, per-stage
memory limits, and connection caps. Each asserts what a client observes: the error code, that
the failure comes promptly (generous bounds: these detect hangs, they are not benchmarks), and
that other clients keep being served.
"""

from __future__ import annotations

import signal
import socket
import threading
import time

import pytest
from pymongo import MongoClient
from pymongo.errors import ExecutionTimeout, OperationFailure, PyMongoError


def slow_pipeline(stages: int = 40) -> list[dict]:
    # Each $lookup scans the whole collection once per input document and matches nothing.
    return [{"$lookup": {"from": "items", "localField": "_id", "foreignField": "k", "as": f"j{i}"}} for i in range(stages)]


@pytest.fixture
def busy(server_factory):
    srv = server_factory("--max-operation-time", "60s")
    db = srv.client().governance
    db.items.insert_many([{"_id": i, "v": "x" * 50} for i in range(1500)])
    return srv, db


def test_catastrophic_regex_fails_fast_with_51156(server_factory):
    srv = server_factory()
    db = srv.client().governance
    db.texts.insert_one({"_id": 1, "s": "a" * 4096 + "!"})
    started = time.monotonic()
    with pytest.raises(OperationFailure) as error:
        db.texts.find_one({"s": {"$regex": "(a|aa)+$"}})
    assert error.value.code == 51156
    assert time.monotonic() - started < 10
    # The same through $regexMatch in an aggregation.
    with pytest.raises(OperationFailure) as error:
        list(db.texts.aggregate([{"$project": {"m": {"$regexMatch": {"input": "$s", "regex": "(a|aa)+$"}}}}]))
    assert error.value.code == 51156
    # PCRE syntax MongoDB users write works: possessive quantifiers, named groups, \\h.
    db.texts.insert_one({"_id": 2, "s": "key = value"})
    assert db.texts.find_one({"s": {"$regex": r"^(?<k>\w++)\h*=\h*value$"}})["_id"] == 2
    with pytest.raises(OperationFailure) as error:
        db.texts.find_one({"s": {"$regex": "(unclosed"}})
    assert error.value.code == 51091


def test_max_time_ms_stops_a_pipeline_inside_its_stages(busy):
    srv, db = busy
    started = time.monotonic()
    with pytest.raises(ExecutionTimeout) as error:
        list(db.items.aggregate(slow_pipeline(), maxTimeMS=500))
    assert error.value.code == 50
    assert time.monotonic() - started < 10
    # A good client on another connection is served meanwhile and after.
    assert srv.client().governance.items.find_one({"_id": 3})["_id"] == 3


def test_server_default_deadline_applies_to_reads(server_factory):
    srv = server_factory("--max-operation-time", "300ms")
    db = srv.client().governance
    db.items.insert_many([{"_id": i} for i in range(1500)])
    with pytest.raises(ExecutionTimeout):
        list(db.items.aggregate(slow_pipeline()))
    # An explicit maxTimeMS wins over the default.
    assert db.items.count_documents({}, maxTimeMS=60000) == 1500


def run_in_thread(body):
    outcome: dict = {}

    def target():
        try:
            outcome["result"] = body()
        except PyMongoError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def wait_for_op(client, command: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for op in client.admin.command("currentOp")["inprog"]:
            if command in op["command"]:
                return op
        time.sleep(0.05)
    raise AssertionError(f"{command} never showed in currentOp")


def test_current_op_and_kill_op(busy):
    srv, db = busy
    worker = srv.client()
    thread, outcome = run_in_thread(lambda: list(worker.governance.items.aggregate(slow_pipeline())))
    admin = srv.client()
    op = wait_for_op(admin, "aggregate")
    assert op["ns"] == "governance.items" and op["active"] is True and op["op"] == "command"
    assert op["command"] == {"aggregate": "items"}, "arguments (which may hold document contents) are never shown"
    assert op["microsecs_running"] >= 0 and op["client"].startswith("127.0.0.1")
    assert admin.admin.command("killOp", op=op["opid"])["ok"] == 1
    thread.join(20)
    assert not thread.is_alive()
    assert outcome["error"].code == 11601
    # Killing an operation that finished is not an error.
    assert admin.admin.command("killOp", op=op["opid"])["ok"] == 1


def test_closing_the_connection_cancels_its_operation(busy):
    from mongo_wire import op_msg

    srv, db = busy
    # A raw socket sends the aggregation and hangs up without reading the reply.
    sock = srv.raw_connection()
    sock.sendall(op_msg(7, {"aggregate": "items", "pipeline": slow_pipeline(), "cursor": {}, "$db": "governance"}))
    admin = srv.client()
    op = wait_for_op(admin, "aggregate")
    sock.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(o["opid"] != op["opid"] for o in admin.admin.command("currentOp")["inprog"]):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the operation kept running after its client hung up")


def test_sigterm_exits_promptly_during_a_runaway_operation(busy):
    srv, db = busy
    worker = srv.client()
    thread, _ = run_in_thread(lambda: list(worker.governance.items.aggregate(slow_pipeline())))
    wait_for_op(srv.client(), "aggregate")
    acknowledged = srv.client().governance.safe.insert_one({"_id": "kept"})
    assert acknowledged.acknowledged
    started = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=15)
    assert time.monotonic() - started < 5, "SIGTERM must stop the node promptly"
    thread.join(20)
    srv.start()
    assert srv.client().governance.safe.find_one({"_id": "kept"}) == {"_id": "kept"}


def test_pipeline_length_and_stage_memory_limits(server_factory):
    srv = server_factory()
    db = srv.client().governance
    db.items.insert_many([{"_id": i, "k": 0, "pad": "p" * 20000} for i in range(400)])
    with pytest.raises(OperationFailure) as error:
        list(db.items.aggregate([{"$match": {}}] * 1001))
    assert error.value.code == 7749501
    assert list(db.items.aggregate([{"$match": {"_id": 1}}] * 1000, maxTimeMS=60000))[0]["_id"] == 1
    # Every document joins all 400 (8 MB each): the stage passes 100 MB and stops with 292.
    with pytest.raises(OperationFailure) as error:
        list(db.items.aggregate([{"$lookup": {"from": "items", "localField": "k", "foreignField": "k", "as": "all"}}]))
    assert error.value.code == 292


def test_connection_caps_per_address(server_factory):
    srv = server_factory("--max-connections-per-address", "4")
    time.sleep(0.5)  # the start-up probe's connection is gone
    sockets = [socket.create_connection(srv.address, timeout=5) for _ in range(5)]
    # Connections are set up concurrently, so which one is over the cap is not fixed: exactly one
    # of the five is closed at once, unread, and the other four stay open.
    closed = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and closed == 0:
        for sock in sockets:
            sock.settimeout(0.05)
            try:
                if sock.recv(1) == b"":
                    closed += 1
            except (TimeoutError, socket.timeout):
                pass
    assert closed == 1, f"{closed} connections were closed"
    for sock in sockets:
        sock.close()
    time.sleep(0.3)
    # Room again once the others closed.
    client = MongoClient(srv.uri, maxPoolSize=1, serverSelectionTimeoutMS=5000)
    assert client.admin.command("ping")["ok"] == 1


def test_heavy_threads_are_shared_fairly_between_spaces(server_factory):
    srv = server_factory()
    owner = srv.client()
    owner.hog.items.insert_many([{"_id": i, "v": "x" * 50} for i in range(1500)])
    owner.other.small.insert_many([{"_id": i, "g": i % 3} for i in range(50)])
    # Eight runaway aggregations on one space, each from its own connection. The first two take
    # both heavy threads and give them up at their 8 s deadline; the six queued behind them
    # would run for two minutes. (Every runaway ends only at its deadline, so the two that hold
    # the threads must have the earlier one, or the queue would expire at the same moment.)
    threads = []
    clients = [srv.client() for _ in range(8)]
    for index, client in enumerate(clients):
        limit = 8000 if index < 2 else 120000
        thread, _ = run_in_thread(lambda c=client, m=limit: list(c.hog.items.aggregate(slow_pipeline(), maxTimeMS=m)))
        threads.append(thread)
        if index == 1:
            started = time.monotonic() + 20
            while len([op for op in owner.admin.command("currentOp")["inprog"] if op["ns"] == "hog.items"]) < 2:
                assert time.monotonic() < started, "the first runaway queries did not start"
                time.sleep(0.05)
    deadline = time.monotonic() + 20
    while len([op for op in owner.admin.command("currentOp")["inprog"] if op["ns"] == "hog.items"]) < 8:
        assert time.monotonic() < deadline, "the runaway queries did not all start"
        time.sleep(0.05)
    # A heavy query on another space is admitted at the next free thread, ahead of the queue.
    grouped = list(owner.other.small.aggregate([{"$group": {"_id": "$g", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]))
    assert grouped == [{"_id": 0, "n": 17}, {"_id": 1, "n": 17}, {"_id": 2, "n": 16}]
    still_running = [op for op in owner.admin.command("currentOp")["inprog"] if op["ns"] == "hog.items"]
    # Admitted at the first free thread: at most the two running runaways (and one admitted
    # after them while it ran) finished first; a first-come queue would have run all eight.
    assert len(still_running) >= 5, "the other space's query had to wait for the runaway queue"
    # Point reads and writes never wait for heavy threads.
    owner.other.small.insert_one({"_id": "light"})
    assert owner.other.small.find_one({"_id": "light"}) == {"_id": "light"}
    for op in still_running:
        owner.admin.command("killOp", op=op["opid"])
    for thread in threads:
        thread.join(60)


def test_node_wide_query_memory_cap(server_factory):
    srv = server_factory("--max-query-memory", "16")
    db = srv.client().governance
    db.big.insert_many([{"_id": i, "pad": "p" * 100_000} for i in range(300)])  # about 30 MB
    for _ in range(3):
        # A sort with no index holds every matched document: past 16 MB it fails with 146 …
        with pytest.raises(OperationFailure) as error:
            list(db.big.find().sort("pad", 1))
        assert error.value.code == 146
        # … and what it held is returned: a smaller one right after succeeds.
        assert len(list(db.big.find({"_id": {"$lt": 50}}).sort("pad", 1))) == 50
    with pytest.raises(OperationFailure) as error:
        list(db.big.aggregate([{"$group": {"_id": None, "all": {"$push": "$pad"}}}]))
    assert error.value.code == 146


def test_kill_cursors_and_kill_sessions_stop_running_work(busy):
    srv, db = busy
    worker = srv.client()
    thread, outcome = run_in_thread(lambda: list(worker.governance.items.aggregate(slow_pipeline())))
    admin = srv.client()
    wait_for_op(admin, "aggregate")
    # killAllSessions stops the caller's running operations (here the local owner's: all).
    admin.admin.command("killAllSessions", [])
    thread.join(20)
    assert not thread.is_alive() and outcome["error"].code == 11601


def test_documents_examined_budget(server_factory):
    srv = server_factory("--max-documents-examined", "100")
    db = srv.client().governance
    db.items.insert_many([{"_id": i, "v": i} for i in range(500)])
    with pytest.raises(OperationFailure) as error:
        list(db.items.find({"v": {"$gte": 0}}))
    assert error.value.code == 96
    assert db.items.find_one({"_id": 7}) == {"_id": 7, "v": 7}, "a point read by _id stays within any budget"
    assert len(list(db.items.find({"_id": {"$lt": 50}}))) == 50


def test_current_op_stage_and_a_queued_read_leaves_at_its_deadline(busy):
    srv, db = busy
    workers = [srv.client() for _ in range(2)]
    threads = [run_in_thread(lambda c=c: list(c.governance.items.aggregate(slow_pipeline())))[0] for c in workers]
    admin = srv.client()
    deadline = time.monotonic() + 20
    while len(list(admin.admin.aggregate([{"$currentOp": {}}, {"$match": {"ns": "governance.items"}}]))) < 2:
        assert time.monotonic() < deadline, "$currentOp never showed the two runaway queries"
        time.sleep(0.05)
    shown = list(admin.admin.aggregate([{"$currentOp": {"allUsers": True}}, {"$match": {"ns": "governance.items"}}, {"$project": {"opid": 1, "command": 1}}]))
    assert len(shown) == 2 and all(op["command"] == {"aggregate": "items"} for op in shown)
    # Both heavy threads are taken: a third heavy query waits in line, and leaves it at its deadline.
    started = time.monotonic()
    with pytest.raises(ExecutionTimeout):
        list(db.items.aggregate([{"$group": {"_id": "$v"}}], maxTimeMS=500))
    assert time.monotonic() - started < 10
    # A collection-less aggregate needs no heavy thread: it is answered while both are taken.
    assert list(admin.admin.aggregate([{"$documents": [{"a": 1}]}])) == [{"a": 1}]
    for op in shown:
        admin.admin.command("killOp", op=op["opid"])
    for thread in threads:
        thread.join(30)


def test_open_cursors_count_against_the_node_wide_memory_cap(server_factory):
    srv = server_factory("--max-query-memory", "16")
    db = srv.client().governance
    db.big.insert_many([{"_id": i, "pad": "p" * 100_000} for i in range(100)])  # about 10 MB
    first = db.big.find().sort("pad", 1).batch_size(1)
    next(first)  # the sorted documents wait in the cursor's memory
    with pytest.raises(OperationFailure) as error:
        second = db.big.find().sort("pad", 1).batch_size(1)
        next(second)
    assert error.value.code == 146
    first.close()
    time.sleep(0.2)
    third = db.big.find().sort("pad", 1).batch_size(1)
    assert next(third)["_id"] is not None
    third.close()


def test_large_replies_count_against_the_node_wide_memory_cap(server_factory):
    srv = server_factory("--max-query-memory", "16")
    db = srv.client().governance
    db.big.insert_many([{"_id": i, "pad": "p" * 100_000} for i in range(100)])  # about 10 MB
    holder = db.big.find().sort("pad", 1).batch_size(1)
    next(holder)  # about 10 MB waits in this cursor
    with pytest.raises(OperationFailure) as error:
        list(db.big.find())  # a 10 MB reply does not fit beside it
    assert error.value.code == 146
    holder.close()
    time.sleep(0.2)
    assert len(list(db.big.find())) == 100


def test_a_document_built_by_a_stage_obeys_16_mib(server_factory):
    srv = server_factory()
    db = srv.client().governance
    db.big.insert_many([{"_id": i, "pad": "p" * 100_000} for i in range(200)])  # 20 MB in all
    with pytest.raises(OperationFailure) as error:
        list(db.big.aggregate([{"$group": {"_id": None, "all": {"$push": "$pad"}}}]))
    assert error.value.code == 10334
    # Under the limit it is fine.
    grouped = list(db.big.aggregate([{"$match": {"_id": {"$lt": 100}}}, {"$group": {"_id": None, "all": {"$push": "$pad"}}}]))
    assert len(grouped[0]["all"]) == 100


def test_kill_cursors_stops_a_running_get_more(busy):
    srv, db = busy
    # Matches the first and the last document only, at a heavy price per document: the getMore
    # that looks for the second match takes seconds.
    costly = {"$and": [{"$expr": {"$gt": [{"$size": {"$range": [0, 200000]}}, 5]}}, {"$or": [{"_id": 0}, {"_id": 1499}]}]}
    worker = srv.client()
    cursor = worker.governance.items.find(costly).batch_size(1)
    assert next(cursor)["_id"] == 0
    thread, outcome = run_in_thread(lambda: next(cursor))
    admin = srv.client()
    op = wait_for_op(admin, "getMore")
    admin.governance.command("killCursors", "items", cursors=[cursor.cursor_id])
    thread.join(20)
    assert not thread.is_alive()
    assert outcome.get("error") is not None and outcome["error"].code in (11601, 43), outcome
    assert all(o["opid"] != op["opid"] for o in admin.admin.command("currentOp")["inprog"])
