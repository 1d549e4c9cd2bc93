"""Signed commits and record proofs: every write becomes a signed commit whose state root
authenticates the space's documents; proveRecord answers check offline with
`stratosdb verify-proof`; a space whose commit log or state was tampered with is refused.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading

import pytest
from bson import json_util
from pymongo.errors import OperationFailure

from conftest import server_binary


def verify_proof(path, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([str(server_binary()), "verify-proof", str(path), *extra], capture_output=True, text=True, timeout=60)


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
    assert reply["commit"]["seq"] >= 4
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

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db = srv.client().profile
    assert db.events.count_documents({}) == 800
    for key in ("0-0", "3-199", "2-100"):
        (tmp_path / "p.json").write_text(json_util.dumps(db.command("proveRecord", "events", _id=key)))
        assert verify_proof(tmp_path / "p.json").returncode == 0
    # The chain survives a crash: kill -9 and reopen, the head still matches the data.
    space_id = db.command("proveRecord", "events", _id="0-0")["space"]
    srv.kill9()
    srv.start()
    db = srv.client().profile
    assert db.events.count_documents({}) == 800
    (tmp_path / "p.json").write_text(json_util.dumps(db.command("proveRecord", "events", _id="1-5")))
    assert verify_proof(tmp_path / "p.json").returncode == 0
    chain = sqlite3.connect(space_file(srv, space_id)).execute("SELECT count(*), max(seq) FROM stratos_commits").fetchone()
    assert chain[0] == chain[1]  # consecutive sequence numbers from 1


@pytest.mark.parametrize("damage", ["commit signature", "state map", "commit chain"])
def test_tampered_space_is_refused_and_the_node_keeps_serving(server_factory, damage):
    srv = server_factory()
    client = srv.client()
    client.profile.users.insert_many([{"_id": i} for i in range(50)])
    client.profile.users.insert_one({"_id": "last"})
    client.other.c.insert_one({"_id": 1})
    space_id = client.profile.command("proveRecord", "users", _id=1)["space"]
    srv.stop()
    with sqlite3.connect(space_file(srv, space_id)) as db:
        if damage == "commit signature":
            seq, blob = db.execute("SELECT seq, commit_bytes FROM stratos_commits ORDER BY seq DESC LIMIT 1").fetchone()
            blob = bytearray(blob)
            blob[-1] ^= 1
            db.execute("UPDATE stratos_commits SET commit_bytes = ? WHERE seq = ?", (bytes(blob), seq))
        elif damage == "state map":
            tree, prefix, node = db.execute("SELECT tree, prefix, node FROM stratos_state WHERE tree > 0 LIMIT 1").fetchone()
            node = bytearray(node)
            node[-1] ^= 1
            db.execute("UPDATE stratos_state SET node = ? WHERE tree = ? AND prefix = ?", (bytes(node), tree, prefix))
        else:
            db.execute("DELETE FROM stratos_commits WHERE seq = (SELECT max(seq) - 1 FROM stratos_commits)")
    srv.start()
    client = srv.client()
    with pytest.raises(OperationFailure) as error:
        client.profile.users.find_one()
    message = error.value.details["errmsg"]
    assert "space" in message and ("damaged" in message or "invalid signature" in message), message
    assert error.value.code != 1
    # Other spaces are unaffected.
    assert client.other.c.find_one() == {"_id": 1}
