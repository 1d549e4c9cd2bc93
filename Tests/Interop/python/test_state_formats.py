"""State-map key formats (docs/spaces.md §8): new spaces key their state maps in `_id` order,
and spaces written before formats existed keep hashed keys and keep working.

`fixtures/legacy-hashed-space.tar.gz` holds a data directory and an archive written by the build
before formats (fixtures/make_legacy_space.py says how): a real file from before the change, not
one the current build imitates.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

import bson
import pytest
from pymongo import MongoClient

from conftest import ServerProcess, server_binary

FIXTURE = Path(__file__).parent / "fixtures" / "legacy-hashed-space.tar.gz"


def cli(data_dir, *args, check=True, stdin=None):
    result = subprocess.run([str(server_binary()), *args, "--data-dir", str(data_dir)], capture_output=True, text=True,
                            timeout=300, input=stdin)
    if check:
        assert result.returncode == 0, f"{args}: {result.stderr}"
    return result


def legacy_documents() -> list[dict]:
    """What make_legacy_space.py left in the space."""
    return [{"_id": i, "email": f"user{i}@example.org", "v": i * 2 if i % 10 == 0 else i} for i in range(300) if i % 7 != 3]


def id_key(value: int) -> bytes:
    """The query engine's `_id` key of a small int32: the number tag, the sign-adjusted double and
    the sign-adjusted residual, zero (QueryEngine/Storage/IndexKey.swift)."""
    bits = struct.unpack(">Q", struct.pack(">d", float(value)))[0]
    bits = bits ^ (1 << 63) if value >= 0 else bits ^ 0xFFFFFFFFFFFFFFFF
    return bytes([10]) + struct.pack(">Q", bits) + struct.pack(">Q", 1 << 63)


def ordered_key(key: bytes) -> bytes:
    if len(key) <= 31:
        return key + bytes(31 - len(key)) + bytes([len(key)])
    return hashlib.blake2b(key, digest_size=31).digest() + b"\xff"


def collection_key(name: str, ordered: bool) -> bytes:
    if ordered:
        return hashlib.blake2b(name.encode(), digest_size=32, key=b"stratosdb/state/ordered").digest()
    return hashlib.blake2b(name.encode(), digest_size=32).digest()


class Reader:
    """Reads a record-proof bundle's canonical encoding (big-endian lengths)."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def u32(self) -> int:
        (value,) = struct.unpack(">I", self.data[self.at:self.at + 4])
        self.at += 4
        return value

    def bytes(self) -> bytes:
        count = self.u32()
        value = self.data[self.at:self.at + count]
        self.at += count
        return value


def proof_keys(reply: dict) -> tuple[bytes, bytes, bytes]:
    """The bundle's `_id` key, its collection-map key and its root-map key."""
    text = reply["proof"]
    reader = Reader(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    assert reader.bytes() == b"stratosdb/record-proof/v1"
    reader.bytes()  # space
    reader.bytes()  # document
    reader.bytes()  # collection
    id_key_bytes = reader.bytes()
    keys = []
    for _ in range(2):
        keys.append(reader.bytes())
        reader.bytes()  # value
        for _ in range(reader.u32()):
            reader.bytes()  # branch
    return id_key_bytes, keys[0], keys[1]


def verify_offline(data_dir, reply: dict, tmp_path: Path) -> None:
    """`stratosdb verify-proof`, offline, trusting only the node's DID."""
    path = tmp_path / "proof.json"
    path.write_text(bson.json_util.dumps(reply))
    node_did = json.loads((Path(data_dir) / "node.json").read_text())["did"]
    result = subprocess.run([str(server_binary()), "verify-proof", str(path), "--trust", node_did], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("verified")


def test_a_new_space_keys_its_state_map_in_id_order(server, tmp_path):
    client = server.client()
    users = client[f"formats_{tmp_path.name[-8:]}"].users
    users.insert_many([{"_id": i, "name": f"user{i}"} for i in range(50)])
    reply = users.database.command("proveRecord", "users", _id=42)
    assert reply["document"] == {"_id": 42, "name": "user42"}
    key, document_key, root_key = proof_keys(reply)
    assert key == id_key(42)
    # The keys a checker derives from the documented format, without StratosDB.
    assert document_key == ordered_key(key)
    assert root_key == collection_key("users", ordered=True)
    verify_offline(server.data_dir, reply, tmp_path)


@pytest.fixture
def legacy(tmp_path):
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "data", tmp_path / "profile.stratos"


def alice_client(node: ServerProcess) -> MongoClient:
    uri = cli(node.data_dir, "token", "--key", "alice").stdout.strip()
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    node._clients.append(client)
    return client


def test_a_data_directory_written_before_formats_keeps_working(legacy, tmp_path):
    data_dir, _ = legacy
    node = ServerProcess(data_dir)
    node.start()
    try:
        users = alice_client(node).profile.users
        assert sorted(users.find({}), key=lambda d: d["_id"]) == legacy_documents()
        reply = users.database.command("proveRecord", "users", _id=20)
        assert reply["document"] == {"_id": 20, "email": "user20@example.org", "v": 40}
        key, document_key, root_key = proof_keys(reply)
        assert document_key == hashlib.blake2b(key, digest_size=32).digest()
        assert root_key == collection_key("users", ordered=False)
        verify_offline(data_dir, reply, tmp_path)
        # It takes writes, still with hashed keys, and reopens.
        users.insert_one({"_id": 1000, "email": "new@example.org"})
        users.update_one({"_id": 20}, {"$set": {"v": -1}})
        node.restart()
        users = alice_client(node).profile.users
        assert users.count_documents({}) == len(legacy_documents()) + 1
        reply = users.database.command("proveRecord", "users", _id=1000)
        _, document_key, _ = proof_keys(reply)
        assert document_key == hashlib.blake2b(id_key(1000), digest_size=32).digest()
        verify_offline(data_dir, reply, tmp_path)
        # Its export verifies and replays to the same roots.
        archive = tmp_path / "again.stratos"
        cli(data_dir, "space", "export", "--key", "alice", "--space", "profile", "--out", str(archive))
        assert cli(data_dir, "space", "verify", str(archive), "--key", "alice").returncode == 0
    finally:
        node.stop()


def test_an_archive_written_before_formats_verifies_and_imports(legacy, tmp_path):
    data_dir, archive = legacy
    key_copy = tmp_path / "alice.key"
    shutil.copy(data_dir / "keys" / "alice.key", key_copy)
    key_copy.chmod(0o600)
    assert cli(tmp_path / "anywhere", "space", "verify", str(archive), "--key", str(key_copy)).returncode == 0
    other = ServerProcess(tmp_path / "other-node")
    other.start()
    try:
        space_id = cli(other.data_dir, "space", "import", str(archive), "--key", str(key_copy)).stdout.strip()
        token = cli(other.data_dir, "token", "--key", str(key_copy)).stdout.strip()
        client = MongoClient(token, serverSelectionTimeoutMS=5000)
        other._clients.append(client)
        users = client[space_id].users
        assert sorted(users.find({}), key=lambda d: d["_id"]) == legacy_documents()
        reply = users.database.command("proveRecord", "users", _id=7)
        _, document_key, root_key = proof_keys(reply)
        assert root_key == collection_key("users", ordered=False)
        # The newest commit is still the one the first node signed.
        verify_offline(data_dir, reply, tmp_path)
    finally:
        other.stop()
