"""Signed commits and record proofs: every write becomes a signed commit whose state root
authenticates the space's documents; proveRecord answers check offline with
`stratosdb verify-proof`; a space whose commit log or state was tampered with is refused.
"""

from __future__ import annotations

import json
import subprocess
import threading

import pytest
from bson import json_util
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from conftest import server_binary


def verify_proof(path, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([str(server_binary()), "verify-proof", str(path), *extra], capture_output=True, text=True, timeout=60)


def run_together(*targets) -> None:
    """Runs each callable in a thread of its own, all at once, and waits for every one."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def assert_proof_verifies(tmp_path, reply) -> None:
    """`stratosdb verify-proof` accepts a proveRecord answer."""
    (tmp_path / "p.json").write_text(json_util.dumps(reply))
    assert verify_proof(tmp_path / "p.json").returncode == 0


def space_file(srv, space_id: str):
    return srv.data_dir / "databases" / f"{space_id}.sqlite"


def test_prove_record_verifies_offline(server_factory, tmp_path):
    srv = server_factory()
    db = srv.client().profile
    db.users.insert_many([{"_id": i, "name": f"user{i}", "tags": ["a", i]} for i in range(500)])
    db.users.update_one({"_id": 7}, {"$set": {"email": "seven@example.org"}})
    db.users.delete_one({"_id": 8})
    db.users.create_index("name")
    reply = db.command("proveRecord", "users", _id=7)
    assert reply["document"] == {"_id": 7, "name": "user7", "tags": ["a", 7], "email": "seven@example.org"}
    assert reply["space"].startswith("s") and reply["collection"] == "users"
    # The load is one commit; the update, delete and index wait in the commit window and
    # the proof seals them into a second (docs/spaces.md §8).
    assert reply["commit"]["seq"] >= 2
    node_did = json.loads((srv.data_dir / "node.json").read_text())["did"]
    assert reply["commit"]["author"] == node_did
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json_util.dumps(reply))
    checked = verify_proof(proof_file, "--trust", node_did)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines()[0] == "verified"
    assert f"commit {reply['commit']['seq']} {reply['commit']['hash']}" in checked.stdout
    # Any change to the proof breaks it.
    text = reply["proof"]
    for position in (len(text) // 7, len(text) // 2, len(text) - 10):
        forged = dict(reply, proof=text[:position] + ("A" if text[position] != "A" else "B") + text[position + 1:])
        (tmp_path / "forged.json").write_text(json_util.dumps(forged))
        assert verify_proof(tmp_path / "forged.json").returncode != 0
    # A proof signed by a node the verifier does not trust is refused.
    assert verify_proof(proof_file, "--trust", "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd").returncode != 0
    # Deleted documents have no proof.
    with pytest.raises(OperationFailure) as error:
        db.command("proveRecord", "users", _id=8)
    assert error.value.code == 26


def test_state_root_follows_every_kind_of_change(server_factory):
    srv = server_factory()
    db = srv.client().profile
    roots = []

    def root():
        db.anchor.replace_one({"_id": "probe"}, {"_id": "probe"}, upsert=True)
        roots.append(db.command("proveRecord", "anchor", _id="probe")["commit"]["stateRoot"])
        return roots[-1]

    first = root()
    db.people.insert_one({"_id": 1})
    assert root() != first
    db.people.rename("humans")
    renamed = root()
    db.humans.rename("people")
    assert root() != renamed
    db.people.drop()
    # Dropping what was added returns the state to the same root: the root depends only on
    # the contents, not on history.
    assert root() == first


def test_concurrent_writers_produce_a_verifiable_chain(server_factory, tmp_path):
    srv = server_factory()
    errors = []

    def writer(n):
        try:
            coll = srv.client().profile.events
            for i in range(200):
                coll.insert_one({"_id": f"{n}-{i}", "n": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    run_together(*(lambda n=n: writer(n) for n in range(4)))
    assert errors == []
    db = srv.client().profile
    assert db.events.count_documents({}) == 800
    for key in ("0-0", "3-199", "2-100"):
        assert_proof_verifies(tmp_path, db.command("proveRecord", "events", _id=key))
    # The chain survives a crash: kill -9 and reopen, the head still matches the data.
    space_id = db.command("proveRecord", "events", _id="0-0")["space"]
    srv.kill9()
    srv.start()
    db = srv.client().profile
    assert db.events.count_documents({}) == 800
    reply = db.command("proveRecord", "events", _id="1-5")
    assert reply["space"] == space_id
    assert_proof_verifies(tmp_path, reply)


def test_failed_writes_leave_nothing_and_the_chain_carries_on(server_factory, tmp_path):
    """A write that fails as a whole is rolled back with everything it did (a collection it
    created, index entries, its commit), and the writes after it commit and prove as before."""
    srv = server_factory()
    db = srv.client().profile
    db.users.create_index("email", unique=True)
    db.users.insert_many([{"_id": i, "email": f"u{i}@example.org"} for i in range(100)])
    head = db.command("proveRecord", "users", _id=1)["commit"]["seq"]
    # Duplicate _id, then a duplicate in the unique secondary index: each insert_one fails whole.
    for bad in ({"_id": 5, "email": "new@example.org"}, {"_id": 500, "email": "u7@example.org"}):
        with pytest.raises(DuplicateKeyError):
            db.users.insert_one(bad)
    # The first write to a new collection fails: the collection does not appear.
    with pytest.raises(OperationFailure):
        db.fresh.insert_one({"_id": [1, 2]})  # an array cannot be an _id
    assert "fresh" not in db.list_collection_names()
    assert db.command("proveRecord", "users", _id=1)["commit"]["seq"] == head
    assert db.users.find_one({"email": "new@example.org"}) is None
    # Unordered: the good documents of a batch are written, the duplicates reported.
    with pytest.raises(BulkWriteError) as failure:
        db.users.insert_many([{"_id": 1000 + i, "email": f"u{i % 3 * 40}@example.org" if i % 10 == 0 else f"n{i}@example.org"}
                              for i in range(200)], ordered=False)
    assert failure.value.details["nInserted"] == 180
    assert db.users.count_documents({}) == 280
    for key in (0, 1001, 1199):
        assert_proof_verifies(tmp_path, db.command("proveRecord", "users", _id=key))
    # The same holds after a restart: the state the commits sign is the data on disk.
    srv.kill9()
    srv.start()
    db = srv.client().profile
    assert db.users.count_documents({}) == 280
    assert sorted(db.users.distinct("_id"))[-1] == 1199
    assert_proof_verifies(tmp_path, db.command("proveRecord", "users", _id=1151))


def test_concurrent_batches_with_failures_commit_exactly_their_good_documents(server_factory, tmp_path):
    """Concurrent unordered batches share group commits; each failing document is undone alone
    and reported, the rest of every batch is written once, and the indexes agree."""
    srv = server_factory()
    srv.client().profile.users.create_index("email", unique=True)
    srv.client().profile.users.create_index([("city", 1), ("n", 1)])
    reports, errors = [], []

    def writer(k):
        try:
            coll = srv.client().profile.users
            for batch in range(5):
                # Ids overlap between writers (each id offered by two of them): one wins.
                docs = [{"_id": (k // 2) * 10_000 + batch * 100 + i, "email": f"{(k // 2) * 10_000 + batch * 100 + i}@x.org",
                         "city": ["Oslo", "Lima", "Perth"][i % 3], "n": i} for i in range(100)]
                try:
                    reports.append(coll.insert_many(docs, ordered=False).inserted_ids)
                except BulkWriteError as failure:
                    reports.append(failure.details["nInserted"])
                coll.update_many({"n": {"$lt": 5}}, {"$inc": {"bumps": 1}})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    run_together(*(lambda k=k: writer(k) for k in range(4)))
    assert errors == []
    inserted = sum(len(r) if isinstance(r, list) else r for r in reports)
    db = srv.client().profile
    assert inserted == 1000 == db.users.count_documents({})
    assert len(db.users.distinct("email")) == 1000
    assert db.users.count_documents({"city": "Lima", "n": {"$gte": 0}}) == len([i for i in range(100) if i % 3 == 1]) * 10
    assert db.users.find_one({"email": "10203@x.org"})["_id"] == 10203
    assert_proof_verifies(tmp_path, db.command("proveRecord", "users", _id=10203))


def test_a_write_that_fails_after_writing_is_undone_whole(server_factory, tmp_path):
    """A unique index whose build meets a duplicate has written its table and some keys by
    then: all of it goes, and the space carries on."""
    srv = server_factory()
    db = srv.client().profile
    db.users.insert_many([{"_id": i, "email": f"u{i % 150}@example.org"} for i in range(200)])
    with pytest.raises(OperationFailure) as failure:
        db.users.create_index("email", unique=True)
    assert failure.value.code == 11000
    assert list(db.users.index_information()) == ["_id_"]
    db.users.create_index("email")
    db.users.insert_one({"_id": 500, "email": "u1@example.org"})
    assert db.users.count_documents({"email": "u1@example.org"}) == 3
    assert_proof_verifies(tmp_path, db.command("proveRecord", "users", _id=500))


def test_a_write_that_expires_in_the_queue_fails_alone(server_factory):
    """Writes queued behind a long batch share its successors' group commits; one whose
    maxTimeMS passes while it waits fails with MaxTimeMSExpired, and only it. (How many expire,
    and in which groups, depends on timing; what must hold is that no other write fails.)"""
    srv = server_factory()
    errors, expired, steady = [], [], []

    def long_batches():
        coll = srv.client().profile.bulk
        for batch in range(4):
            coll.insert_many([{"_id": batch * 5000 + i, "pad": "x" * 200} for i in range(5000)])

    def impatient(k):
        db = srv.client().profile
        for i in range(40):
            try:
                db.command("insert", "quick", documents=[{"_id": f"{k}-{i}"}], maxTimeMS=1)
            except OperationFailure as exc:
                (expired if exc.code == 50 else errors).append(exc)

    def patient():
        coll = srv.client().profile.steady
        for i in range(150):
            try:
                coll.insert_one({"_id": i})
                steady.append(i)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    run_together(long_batches, patient, *(lambda k=k: impatient(k) for k in range(3)))
    assert errors == []
    db = srv.client().profile
    assert db.steady.count_documents({}) == 150 == len(steady)
    assert db.bulk.count_documents({}) == 20_000
    assert db.quick.count_documents({}) == 120 - len(expired)


def test_nothing_written_is_readable_from_the_data_directory(server_factory):
    """A secret planted in a document and in an indexed field appears in no file of the data
    directory: the space's file and its write-ahead log are encrypted page by page."""
    srv = server_factory()
    db = srv.client().profile
    db.users.create_index("email")
    secret = "PLANTED-SECRET-7f3a9c"
    db.users.insert_many([{"_id": i, "email": f"{secret}-{i}@example.org", "bio": f"{secret} bio {i}"} for i in range(2000)])
    db.users.update_many({}, {"$set": {"note": secret}})
    assert db.users.count_documents({"email": f"{secret}-5@example.org"}) == 1

    def files_containing_secret():
        hits = []
        for path in srv.data_dir.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                if secret.encode() in data or secret.encode("utf-16-le") in data:
                    hits.append(path.name)
        return hits

    assert files_containing_secret() == []  # while running: data in the WAL
    srv.stop()
    assert files_containing_secret() == []  # after the checkpoint: data in the main file
    srv.start()
    assert srv.client().profile.users.find_one({"_id": 7})["note"] == secret


@pytest.mark.parametrize("where", ["start", "middle"])
def test_a_flipped_byte_on_disk_is_detected(server_factory, where):
    """Every page is authenticated when it is read: a flipped byte in a page the query needs
    fails the query with a clear error (never wrong data), and the rest of the node serves on.
    (Pages that no query reads, such as old commit payloads, are checked when they are read.)"""
    srv = server_factory()
    client = srv.client()
    client.profile.users.insert_many([{"_id": i, "name": f"user {i}", "pad": "x" * 300} for i in range(400)])
    client.other.c.insert_one({"_id": 1})
    space_id = client.profile.command("proveRecord", "users", _id=1)["space"]
    srv.stop()  # checkpoints every page into the main file
    path = space_file(srv, space_id)
    data = bytearray(path.read_bytes())
    offset = {"start": 50, "middle": len(data) // 2 + 123}[where]
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    srv.start()
    client = srv.client()
    with pytest.raises(OperationFailure) as error:
        list(client.profile.users.find({}))
        for i in range(0, 400, 7):
            client.profile.command("proveRecord", "users", _id=i)
        client.profile.users.insert_many([{"_id": f"new{i}", "pad": "y" * 300} for i in range(400)])
    assert error.value.code != 1
    assert "damaged" in error.value.details["errmsg"]
    # The node keeps serving every other space.
    assert client.other.c.find_one() == {"_id": 1}
