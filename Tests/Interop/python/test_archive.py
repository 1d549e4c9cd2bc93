"""Space archives as a user takes their data elsewhere: `stratosdb space export`, `verify`,
`import` on another node, and `rebuild` from the commit log alone.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ServerProcess, server_binary


def cli(data_dir, *args, check=True):
    result = subprocess.run([str(server_binary()), *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"{args}: {result.stderr}"
    return result


def copy_key(srv, tmp_path, name):
    """A copy of one of `srv`'s keys outside its data directory, mode 0600 as key files must be."""
    copy = tmp_path / f"{name}.key"
    shutil.copy(srv.data_dir / "keys" / f"{name}.key", copy)
    copy.chmod(0o600)
    return copy


@pytest.fixture
def exported(server_factory, tmp_path):
    """alice's space `profile` with documents, an index, updates, deletes, a rename and a grant,
    exported to an archive."""
    srv = server_factory()
    data = srv.data_dir
    cli(data, "key", "new", "--name", "alice")
    app = cli(data, "key", "new", "--name", "app").stdout.strip()
    space_id = cli(data, "space", "create", "profile", "--key", "alice").stdout.split()[0]
    cli(data, "grant", "--key", "alice", "--space", "profile", "--to", app, "--actions", "read", "--collections", "users")
    uri = cli(data, "token", "--key", "alice").stdout.strip()
    from pymongo import MongoClient
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    db = client.profile
    db.users.create_index("email", unique=True)
    for batch in range(4):
        db.users.insert_many([{"_id": batch * 500 + i, "email": f"user{batch * 500 + i}@example.org", "bio": "b" * 200}
                              for i in range(500)])
    db.users.update_many({"_id": {"$lt": 50}}, {"$set": {"vip": True}})
    db.users.delete_many({"_id": {"$gte": 1990}})
    db.scratch.insert_one({"a": 1})
    db.scratch.rename("kept")
    expected = {
        "count": db.users.count_documents({}),
        "doc": db.users.find_one({"_id": 7}),
        "root": db.command("proveRecord", "users", _id=7)["commit"]["stateRoot"],
        "collections": sorted(db.list_collection_names()),
    }
    client.close()
    archive = tmp_path / "profile.stratos"
    result = cli(data, "space", "export", "--key", "alice", "--space", "profile", "--out", str(archive))
    assert result.stdout.strip() == str(archive)
    return srv, archive, space_id, expected


def test_verify_checks_signatures_without_a_key_and_state_roots_with_one(exported):
    srv, archive, space_id, expected = exported
    plain = cli(srv.data_dir, "space", "verify", str(archive))
    lines = plain.stdout.splitlines()
    assert lines[0] == "verified" and f"space {space_id}" in lines
    assert "grants 1 revocations 0" in lines
    assert any(line.startswith("stateRoots not checked") for line in lines)
    keyed = cli(srv.data_dir, "space", "verify", str(archive), "--key", "alice")
    assert "stateRoots checked" in keyed.stdout
    assert f"stateRoot {expected['root']}" in keyed.stdout
    # The grant is a commit of the space too: payloads show it once the key opens them.
    assert "grantsInCommits 1 revocationsInCommits 0" in keyed.stdout.splitlines()


def test_any_damage_to_an_archive_is_rejected(exported, tmp_path):
    srv, archive, _, _ = exported
    data = archive.read_bytes()
    for position in (3, 40, len(data) // 3, len(data) // 2, len(data) - 40, len(data) - 1):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        path = tmp_path / "damaged.stratos"
        path.write_bytes(bytes(damaged))
        result = cli(srv.data_dir, "space", "verify", str(path), "--key", "alice", check=False)
        assert result.returncode != 0, position
        assert "does NOT verify" in result.stderr
    truncated = tmp_path / "truncated.stratos"
    truncated.write_bytes(data[: len(data) // 2])
    assert cli(srv.data_dir, "space", "verify", str(truncated), check=False).returncode != 0
    extended = tmp_path / "extended.stratos"
    extended.write_bytes(data + b"\x00")
    assert cli(srv.data_dir, "space", "verify", str(extended), check=False).returncode != 0


def split_records(data: bytes):
    records, offset = [], 16
    while offset < len(data):
        kind, length = data[offset], int.from_bytes(data[offset + 1:offset + 5], "big")
        records.append((kind, data[offset + 5:offset + 5 + length]))
        offset += 5 + length
    return records


def join_records(records) -> bytes:
    return b"STRATOS-ARCHIVE1" + b"".join(bytes([kind]) + len(body).to_bytes(4, "big") + body for kind, body in records)


def test_an_edited_archive_with_a_recomputed_digest_is_rejected(exported, tmp_path):
    """The trailer's digest is signed by the owner: editing the archive and recomputing the
    digest (anyone can) still fails, because nobody else can sign it."""
    import hashlib

    srv, archive, _, _ = exported
    records = split_records(archive.read_bytes())
    assert records[0][0] == 1 and records[-1][0] == 9
    # Add a sealed-key record for a stranger (as if to be handed the space key on import).
    stranger = cli(srv.data_dir, "key", "new", "--name", "stranger").stdout.strip().encode()
    forged_key = len(stranger).to_bytes(4, "big") + stranger + (48).to_bytes(4, "big") + b"\x00" * 48
    body = [records[0], (2, forged_key)] + records[1:-1]
    trailer = records[-1][1]
    signature = trailer[8 + 4 + 32:]
    digest = hashlib.blake2b(join_records(body)[: 16 + sum(5 + len(b) for _, b in body)], digest_size=32).digest()
    forged = join_records(body + [(9, (len(body)).to_bytes(8, "big") + (32).to_bytes(4, "big") + digest + signature)])
    path = tmp_path / "forged.stratos"
    path.write_bytes(forged)
    result = cli(srv.data_dir, "space", "verify", str(path), check=False)
    assert result.returncode != 0 and "not signed by the space's owner" in result.stderr
    # The genuine archive names its signer.
    genuine = cli(srv.data_dir, "space", "verify", str(archive)).stdout
    assert "signedBy did:key:" in genuine and "commitsSignedBy did:key:" in genuine


def test_nothing_in_an_encrypted_archive_is_readable(exported):
    _, archive, _, _ = exported
    data = archive.read_bytes()
    assert b"user7@example.org" not in data and b"bbbbbbbbbb" not in data


def check_imported(node, key_copy, space_id, expected):
    """The imported space on `node` holds the same documents, indexes and signed history."""
    uri = cli(node.data_dir, "token", "--key", str(key_copy)).stdout.strip()
    from pymongo import MongoClient
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    node._clients.append(client)
    db = client.profile
    assert db.users.count_documents({}) == expected["count"]
    assert db.users.find_one({"_id": 7}) == expected["doc"]
    assert sorted(db.list_collection_names()) == expected["collections"]
    assert [index["name"] for index in db.users.list_indexes()] == ["_id_", "email_1"]
    proof = db.command("proveRecord", "users", _id=7)["commit"]
    assert proof["stateRoot"] == expected["root"]  # the same state, the same signed history
    # The imported space goes on: new writes chain onto the imported commits.
    db.users.insert_one({"_id": "new"})
    assert db.command("proveRecord", "users", _id="new")["commit"]["seq"] == proof["seq"] + 1
    # Its grants came along.
    grants = cli(node.data_dir, "grant", "list", "--space", space_id).stdout
    assert "read users" in grants and "active" in grants


def test_import_into_a_running_node_goes_through_the_node(exported, tmp_path):
    srv, archive, space_id, expected = exported
    other = ServerProcess(tmp_path / "other-node")
    other.start()
    try:
        key_copy = copy_key(srv, tmp_path, "alice")
        app_copy = copy_key(srv, tmp_path, "app")
        refused = cli(other.data_dir, "space", "import", str(archive), check=False)
        assert refused.returncode != 0 and "--key" in refused.stderr
        # A reader opens the space key, and the node verifies all of it, but only the owner imports.
        reader = cli(other.data_dir, "space", "import", str(archive), "--key", str(app_copy), check=False)
        assert reader.returncode != 0 and "only the owner" in reader.stderr
        # The owner's import: the space key travels sealed to this node, which never held a copy.
        imported = cli(other.data_dir, "space", "import", str(archive), "--key", str(key_copy))
        assert imported.stdout.strip() == space_id
        assert "through the node" in imported.stderr
        again = cli(other.data_dir, "space", "import", str(archive), "--key", str(key_copy), check=False)
        assert again.returncode != 0 and "already exists" in again.stderr
        check_imported(other, key_copy, space_id, expected)
        # No upload is left behind.
        assert not any((other.data_dir / "imports").glob("*.stratos"))
    finally:
        other.stop()


def test_import_into_a_stopped_node_works_offline(exported, tmp_path):
    srv, archive, space_id, expected = exported
    other = ServerProcess(tmp_path / "offline-node")
    other.start()
    other.stop()
    key_copy = copy_key(srv, tmp_path, "alice")
    refused = cli(other.data_dir, "space", "import", str(archive), check=False)
    assert refused.returncode != 0 and "--key" in refused.stderr
    imported = cli(other.data_dir, "space", "import", str(archive), "--key", str(key_copy))
    assert imported.stdout.strip() == space_id and "through the node" not in imported.stderr
    # What an import or rebuild killed midway leaves behind is deleted when the node starts;
    # the space itself and a key rotation's recovery copy stay.
    databases = other.data_dir / "databases"
    leftovers = [databases / f"{space_id}.sqlite.importing-0123456789abcdef", databases / f"{space_id}.sqlite.importing-0123456789abcdef-wal",
                 databases / f"{space_id}.sqlite.rebuilding"]
    for path in leftovers:
        path.write_bytes(b"partial")
    (databases / "other.sqlite.before-rotation").write_bytes(b"kept")
    other.start()
    assert not any(path.exists() for path in leftovers)
    assert (databases / "other.sqlite.before-rotation").exists() and (databases / f"{space_id}.sqlite").exists()
    try:
        check_imported(other, key_copy, space_id, expected)
    finally:
        other.stop()


def test_import_of_a_damaged_archive_is_refused_and_leaves_nothing(exported, tmp_path):
    # Import reads and verifies on one thread while it builds on another: a flipped byte
    # anywhere, a truncation or an extra byte still stops it with the reason, and no space or
    # partial file is left.
    srv, archive, space_id, _ = exported
    other = ServerProcess(tmp_path / "damaged-node")
    other.start()
    other.stop()
    key_copy = copy_key(srv, tmp_path, "alice")
    data = archive.read_bytes()
    damaged = []
    for position in (40, len(data) // 3, len(data) // 2, len(data) - 200, len(data) - 1):
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        damaged.append(bytes(flipped))
    damaged += [data[: len(data) // 2], data + b"\x00"]
    for index, content in enumerate(damaged):
        path = tmp_path / f"damaged-{index}.stratos"
        path.write_bytes(content)
        result = cli(other.data_dir, "space", "import", str(path), "--key", str(key_copy), check=False)
        assert result.returncode != 0, index
        assert result.stderr.strip(), index
        assert sorted(p.name for p in (other.data_dir / "databases").iterdir() if space_id in p.name) == [], index
    # The intact archive still imports afterwards.
    imported = cli(other.data_dir, "space", "import", str(archive), "--key", str(key_copy))
    assert imported.stdout.strip() == space_id


def test_export_through_the_node_is_signed_by_the_owner(exported, tmp_path):
    srv, _, space_id, expected = exported
    remote = tmp_path / "remote.stratos"
    node = f"{srv.host}:{srv.port}"
    result = cli(srv.data_dir, "space", "export", "--key", "alice", "--space", space_id, "--node", node, "--out", str(remote))
    assert result.stdout.strip() == str(remote)
    verified = cli(srv.data_dir, "space", "verify", str(remote), "--key", "alice").stdout
    assert "verified" in verified and f"stateRoot {expected['root']}" in verified
    assert "signedBy did:key:" in verified
    # The CLI's wire client has no TLS, so --node is loopback only.
    remote_node = cli(srv.data_dir, "space", "export", "--key", "alice", "--space", space_id, "--node", "192.0.2.1:27017", "--out", str(tmp_path / "y"), check=False)
    assert remote_node.returncode != 0 and "loopback" in remote_node.stderr
    # Only the owner: a reader is refused by the node.
    refused = cli(srv.data_dir, "space", "export", "--key", "app", "--space", space_id, "--node", node, "--out", str(tmp_path / "x"), check=False)
    assert refused.returncode != 0 and "owner" in refused.stderr
    # The wire pages are the archive's records, without a trailer: the owner signs that.
    from pymongo import MongoClient
    from pymongo.errors import OperationFailure
    client = MongoClient(cli(srv.data_dir, "token", "--key", "alice").stdout.strip(), serverSelectionTimeoutMS=5000)
    srv._clients.append(client)
    first = client[space_id].command("exportSpace", 1)
    assert first["afterSeq"] == 0 and first["upToSeq"] > 0 and first["done"] is False
    assert first["records"][0][0] == 1  # the header record comes first
    page = client[space_id].command("exportSpace", 1, afterSeq=0, upToSeq=first["upToSeq"])
    assert all(record[0] == 5 for record in page["records"])  # commits only
    app = MongoClient(cli(srv.data_dir, "token", "--key", "app").stdout.strip(), serverSelectionTimeoutMS=5000)
    srv._clients.append(app)
    with pytest.raises(OperationFailure) as error:
        app[space_id].command("exportSpace", 1)
    assert error.value.code == 13


def test_decrypted_export_verifies_state_roots_without_a_key(exported, tmp_path):
    srv, _, _, expected = exported
    plain = tmp_path / "plain.stratos"
    cli(srv.data_dir, "space", "export", "--key", "alice", "--space", "profile", "--out", str(plain), "--decrypt")
    assert b"user7@example.org" in plain.read_bytes()
    result = cli(srv.data_dir, "space", "verify", str(plain))
    assert "stateRoots checked" in result.stdout and f"stateRoot {expected['root']}" in result.stdout


def test_only_the_owner_exports(exported, tmp_path):
    srv, _, space_id, _ = exported
    result = cli(srv.data_dir, "space", "export", "--key", "app", "--space", space_id, "--out", str(tmp_path / "x"), check=False)
    assert result.returncode != 0 and "owner" in result.stderr


def test_rebuild_recreates_the_space_from_its_commits(exported):
    srv, _, space_id, expected = exported
    running = cli(srv.data_dir, "space", "rebuild", space_id, check=False)
    assert running.returncode != 0 and "stop it" in running.stderr
    srv.stop()
    result = cli(srv.data_dir, "space", "rebuild", space_id)
    assert result.stdout.split()[0] == space_id
    srv.start()
    uri = cli(srv.data_dir, "token", "--key", "alice").stdout.strip()
    from pymongo import MongoClient
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    srv._clients.append(client)
    db = client.profile
    assert db.users.count_documents({}) == expected["count"]
    assert db.users.find_one({"_id": 7}) == expected["doc"]
    assert db.command("proveRecord", "users", _id=7)["commit"]["stateRoot"] == expected["root"]


def test_rebuild_of_a_damaged_log_refuses_and_leaves_the_file_as_it_was(exported):
    # Rebuild reads the log on a thread of its own: a damaged page it reads there stops the
    # rebuild with the reason, and the space's file is neither replaced nor left half-built.
    srv, _, space_id, _ = exported
    srv.stop()
    path = srv.data_dir / "databases" / f"{space_id}.sqlite"
    damaged = bytearray(path.read_bytes())
    for k in range(1, 16):  # one flipped bit in each sixteenth: the log's pages are among them
        damaged[len(damaged) * k // 16 + 100] ^= 0x01
    path.write_bytes(bytes(damaged))
    result = cli(srv.data_dir, "space", "rebuild", space_id, check=False)
    assert result.returncode != 0
    assert "damaged" in result.stderr
    assert path.read_bytes() == bytes(damaged)
    assert sorted(p.name for p in path.parent.iterdir() if space_id in p.name) == [f"{space_id}.sqlite"]


def test_rotating_the_space_key_shuts_out_revoked_readers(exported, tmp_path):
    srv, before, space_id, expected = exported
    grant_id = cli(srv.data_dir, "grant", "list", "--space", space_id).stdout.split()[0]
    cli(srv.data_dir, "revoke", "--key", "alice", "--space", "profile", "--grant", grant_id)
    running = cli(srv.data_dir, "space", "rotate-space-key", "--key", "alice", "--space", "profile", check=False)
    assert running.returncode != 0 and "stop it" in running.stderr
    srv.stop()
    rotated = cli(srv.data_dir, "space", "rotate-space-key", "--key", "alice", "--space", "profile").stdout.split()
    app_did = cli(srv.data_dir, "key", "list").stdout.split()[3]
    assert rotated[0] == space_id and app_did not in rotated[1:]
    srv.start()
    from pymongo import MongoClient
    client = MongoClient(cli(srv.data_dir, "token", "--key", "alice").stdout.strip(), serverSelectionTimeoutMS=5000)
    srv._clients.append(client)
    assert client.profile.users.count_documents({}) == expected["count"]
    assert client.profile.command("proveRecord", "users", _id=7)["commit"]["stateRoot"] == expected["root"]
    after = tmp_path / "after.stratos"
    cli(srv.data_dir, "space", "export", "--key", "alice", "--space", "profile", "--out", str(after))
    # The revoked reader opens the archive made before, not the one made after.
    assert "stateRoots checked" in cli(srv.data_dir, "space", "verify", str(before), "--key", "app").stdout
    assert "stateRoots not checked" in cli(srv.data_dir, "space", "verify", str(after), "--key", "app").stdout
    assert "stateRoots checked" in cli(srv.data_dir, "space", "verify", str(after), "--key", "alice").stdout
