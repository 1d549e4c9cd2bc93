"""A seeded hostile-input run (resource governance): hundreds of malformed and abusive
messages across many categories, on raw sockets before and after login, while a good client
keeps working beside them. Every hostile message must get an error reply or a closed
connection (never silence), the good client must see no error, and the node must stay up with
bounded memory. The seed is printed on failure; `STRATOSDB_HOSTILE_SEED=<n>` replays one run.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time

import bson
import pytest

from mongo_wire import CHECKSUM_PRESENT, OP_MSG, OP_QUERY, frame, op_msg, op_query, read_message, ConnectionClosed

SEED = int(os.environ.get("STRATOSDB_HOSTILE_SEED", "20261206"))
ANSWER_SECONDS = 10.0


def nested(depth: int) -> dict:
    value: dict = {"x": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_and(depth: int) -> dict:
    value: dict = {"x": 1}
    for _ in range(depth):
        value = {"$and": [value]}
    return value


def corrupt(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(16, len(data)) if len(data) > 16 else 0
        data[position] = rng.randrange(256)
    return bytes(data)


def command(body: dict, rng: random.Random, **kw) -> bytes:
    return op_msg(rng.randrange(1, 1 << 30), body, **kw)


# Each category builds one hostile message (bytes) from the generator; `closes` says whether
# the node may close the connection instead of answering.
CATEGORIES = {
    "random bytes": lambda rng: bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))),
    "length shorter than the header": lambda rng: struct.pack("<iiii", rng.randint(-5, 15), 1, 0, OP_MSG),
    "negative length": lambda rng: struct.pack("<iiii", -rng.randint(1, 1 << 30), 1, 0, OP_MSG),
    "length over the maximum": lambda rng: struct.pack("<iiii", 48_000_001 + rng.randint(0, 1000), 1, 0, OP_MSG),
    "unknown opcode": lambda rng: frame(1, rng.choice([1, 2, 3, 1000, 2001, 2002, 2005, 9999]), b"\x00" * rng.randint(0, 40)),
    "unknown required flag bits": lambda rng: command({"ping": 1, "$db": "admin"}, rng, flags=1 << rng.randint(2, 15)),
    "optional flag bits 16-31": lambda rng: command({"ping": 1, "$db": "admin"}, rng, flags=1 << rng.randint(16, 31)),
    "bad checksum": lambda rng: op_msg(7, {"ping": 1, "$db": "admin"}, flags=CHECKSUM_PRESENT)[:-0] + struct.pack("<I", rng.randrange(1 << 32)),
    "corrupted BSON": lambda rng: corrupt(command({"insert": "c", "documents": [{"a": "x" * 20}], "$db": "hostile"}, rng), rng),
    "BSON length lies": lambda rng: frame(3, OP_MSG, struct.pack("<I", 0) + b"\x00" + struct.pack("<i", rng.randint(-100, 10_000)) + b"\x10a\x00\x01\x00\x00\x00\x00"),
    "invalid BSON type": lambda rng: frame(3, OP_MSG, struct.pack("<I", 0) + b"\x00" + struct.pack("<i", 12) + bytes([rng.choice([0x00, 0x20, 0x7e, 0xee])]) + b"a\x00\x01\x00\x00\x00\x00"),
    "deep nesting": lambda rng: command({"find": "c", "filter": nested(rng.randint(150, 400)), "$db": "hostile"}, rng),
    "deep $and": lambda rng: command({"find": "c", "filter": nested_and(rng.randint(50, 150)), "$db": "hostile"}, rng),
    "regex bomb": lambda rng: command({"find": "texts", "filter": {"s": {"$regex": "(a|aa)+$"}}, "$db": "hostile"}, rng),
    "invalid regex": lambda rng: command({"find": "c", "filter": {"s": {"$regex": rng.choice(["(", "[", "a{2,1}", "(?<", "\\"])}}, "$db": "hostile"}, rng),
    "lookup fan-out with a deadline": lambda rng: command({"aggregate": "texts", "pipeline": [{"$lookup": {"from": "texts", "localField": "s", "foreignField": "s", "as": f"j{i}"}} for i in range(rng.randint(50, 200))], "cursor": {}, "maxTimeMS": 300, "$db": "hostile"}, rng),
    "too many stages": lambda rng: command({"aggregate": "c", "pipeline": [{"$match": {}}] * rng.randint(1001, 3000), "cursor": {}, "$db": "hostile"}, rng),
    "empty database name": lambda rng: command({"ping": 1, "$db": ""}, rng),
    "empty write batch": lambda rng: command({"insert": "c", "documents": [], "$db": "hostile"}, rng),
    "unknown command": lambda rng: command({f"no{rng.randrange(1000)}": 1, "$db": "admin"}, rng),
    "wrong types": lambda rng: command({"find": rng.choice([1, [], {}, None, True]), "filter": rng.choice([1, "x", []]), "$db": "hostile"}, rng),
    "bad cursor id": lambda rng: command({"getMore": bson.int64.Int64(rng.randrange(1 << 62)), "collection": "c", "$db": "hostile"}, rng),
    "legacy OP_QUERY garbage": lambda rng: frame(5, OP_QUERY, struct.pack("<i", 0) + b"x" * rng.randint(0, 30)),
    "sequence section lies": lambda rng: frame(9, OP_MSG, struct.pack("<I", 0) + b"\x00" + bson.encode({"insert": "c", "$db": "hostile"}) + b"\x01" + struct.pack("<i", rng.randint(-10, 100_000)) + b"documents\x00"),
    "two body sections": lambda rng: frame(9, OP_MSG, struct.pack("<I", 0) + b"\x00" + bson.encode({"ping": 1, "$db": "admin"}) + b"\x00" + bson.encode({"ping": 1})),
    "huge batchSize and negative limit": lambda rng: command({"find": "texts", "batchSize": rng.choice([-1, 1 << 40, 2**31]), "limit": rng.choice([-5, 2**62]), "$db": "hostile"}, rng),
    "maxTimeMS nonsense": lambda rng: command({"find": "texts", "maxTimeMS": rng.choice([-1, "x", 2**62, 1.5e300]), "$db": "hostile"}, rng),
    "killOp of a stranger's op": lambda rng: command({"killOp": 1, "op": rng.choice([rng.randrange(1 << 40), 1e300, float("nan"), "x"]), "$db": "admin"}, rng),
    "write concern nonsense": lambda rng: command({"insert": "c", "documents": [{}], "writeConcern": {"w": rng.choice(["anchored", "bogus", -1, 1e300]), "wtimeout": rng.choice([1e300, -5, float("inf"), "x"])}, "$db": "hostile"}, rng),
    "skip and limit out of range": lambda rng: command({"count": "texts", "skip": rng.choice([1e300, -1, float("nan")]), "limit": rng.choice([1e300, float("-inf")]), "$db": "hostile"}, rng),
}


def answered_or_closed(sock: socket.socket) -> bool:
    """True when the node answered (any reply) or closed the connection within the bound."""
    sock.settimeout(ANSWER_SECONDS)
    try:
        read_message(sock)
        return True
    except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
        return True
    except (TimeoutError, socket.timeout):
        return False


def rss_mebibytes(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.parametrize("authenticated", [False, True])
def test_seeded_hostile_messages_beside_a_good_client(server_factory, authenticated):
    srv = server_factory("--max-operation-time", "5s")
    setup = srv.client().hostile
    setup.texts.insert_many([{"_id": i, "s": "a" * 2048 + "!"} for i in range(20)])
    rng = random.Random(SEED + authenticated)
    good_errors: list[str] = []
    latencies: list[float] = []
    stop = threading.Event()

    def good_client():
        client = srv.client()
        coll = client.hostile.good
        index = 0
        while not stop.is_set():
            started = time.perf_counter()
            try:
                coll.insert_one({"_id": index})
                assert coll.find_one({"_id": index}) == {"_id": index}
                client.admin.command("ping")
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                good_errors.append(repr(exc))
            latencies.append(time.perf_counter() - started)
            index += 1

    worker = threading.Thread(target=good_client)
    worker.start()
    silent: list[str] = []
    sent = 0
    try:
        names = sorted(CATEGORIES)
        for round_number in range(6):
            for name in names:
                message = CATEGORIES[name](rng)
                sock = srv.raw_connection(authenticate=authenticated)
                try:
                    sock.sendall(message)
                except (BrokenPipeError, ConnectionResetError):
                    sock.close()
                    continue
                sent += 1
                if not answered_or_closed(sock):
                    silent.append(f"{name} (round {round_number})")
                sock.close()
    finally:
        stop.set()
        worker.join(30)
    assert srv.is_running, "the node died"
    assert not silent, f"seed {SEED}: no answer and no close for {silent}"
    assert not good_errors, f"seed {SEED}: the good client saw errors: {good_errors[:5]}"
    assert sent >= 6 * len(CATEGORIES) - 10
    rss = rss_mebibytes(srv.proc.pid)
    assert rss < 512, f"the node's RSS reached {rss:.0f} MiB"
    # Still fully usable afterwards.
    assert srv.client().hostile.texts.count_documents({}) == 20
