"""Grants and revocations are commits of the space: they are in its signed history (so they
export, replicate and rebuild with it), and `node.sqlite` is only the node's index of them,
reconciled with the space's log whenever the node opens the space.
"""

from __future__ import annotations

import sqlite3
import subprocess

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from conftest import server_binary


def cli(srv, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(server_binary()), *args, "--data-dir", str(srv.data_dir)], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"{args}: {result.stderr}"
    return result


def client_for(srv, uri: str) -> MongoClient:
    client = MongoClient(uri, serverSelectionTimeoutMS=5000, directConnection=True)
    srv._clients.append(client)
    return client


@pytest.fixture
def space(server_factory):
    """alice's space `profile` with one document, and the identity `app`."""
    srv = server_factory()
    cli(srv, "key", "new", "--name", "alice")
    app = cli(srv, "key", "new", "--name", "app").stdout.strip()
    space_id, uri = cli(srv, "space", "create", "profile", "--key", "alice").stdout.split()
    client_for(srv, uri).profile.users.insert_one({"_id": "me", "name": "Alice"})
    return srv, space_id, app


def logged(srv, tmp_path, name="profile.stratos") -> str:
    """The `grantsInCommits …` line of the space's archive, checked with alice's key."""
    archive = tmp_path / name
    cli(srv, "space", "export", "--key", "alice", "--space", "profile", "--out", str(archive))
    lines = cli(srv, "space", "verify", str(archive), "--key", "alice").stdout.splitlines()
    return next(line for line in lines if line.startswith("grantsInCommits"))


def app_reads(srv, space_id) -> bool:
    app = client_for(srv, cli(srv, "token", "--key", "app").stdout.strip())
    try:
        return app[space_id].users.find_one({"_id": "me"}) is not None
    except OperationFailure as error:
        assert error.code == 13
        return False


def touch(srv):
    """The owner's first command after a start opens the space (and reconciles its grants)."""
    alice = client_for(srv, cli(srv, "token", "--key", "alice").stdout.strip())
    assert alice.profile.users.find_one({"_id": "me"})["name"] == "Alice"


def test_grants_and_revocations_through_the_running_node_are_commits(space, tmp_path):
    srv, space_id, app = space
    grant_id = cli(srv, "grant", "--key", "alice", "--space", "profile", "--to", app, "--actions", "read").stdout.strip()
    assert grant_id.startswith("g") and app_reads(srv, space_id)
    assert logged(srv, tmp_path, "granted.stratos") == "grantsInCommits 1 revocationsInCommits 0"
    assert cli(srv, "revoke", "--key", "alice", "--space", "profile", "--grant", grant_id).stdout.strip() == grant_id
    assert not app_reads(srv, space_id)
    assert logged(srv, tmp_path, "revoked.stratos") == "grantsInCommits 1 revocationsInCommits 1"
    # Only the signer of a grant may hand it to the node; a second revocation is refused.
    again = cli(srv, "revoke", "--key", "alice", "--space", "profile", "--grant", grant_id, check=False)
    assert again.returncode != 0 and "no unrevoked grant" in again.stderr


def test_the_wire_command_takes_a_grant_only_from_its_signer(space):
    srv, space_id, app = space
    operator = srv.client()
    with pytest.raises(OperationFailure) as error:
        operator.admin.command("grantAccess", 1, grant=b"\x00" * 10)
    assert error.value.code == 2
    with pytest.raises(OperationFailure) as error:
        operator.admin.command("grantAccess", 1)
    assert error.value.code == 14


def test_a_grant_stored_while_the_node_was_stopped_enters_the_log_when_the_space_opens(space, tmp_path):
    srv, space_id, app = space
    srv.stop()
    cli(srv, "grant", "--key", "alice", "--space", "profile", "--to", app, "--actions", "read")
    srv.start()
    assert app_reads(srv, space_id)
    touch(srv)
    assert logged(srv, tmp_path) == "grantsInCommits 1 revocationsInCommits 0"


def test_the_space_log_restores_what_the_node_catalog_lost(space, tmp_path):
    """node.sqlite is an index: grants deleted from it, or a revocation undone in it, come back
    from the space's own log when the node opens the space."""
    srv, space_id, app = space
    kept = cli(srv, "grant", "--key", "alice", "--space", "profile", "--to", app, "--actions", "read", "--collections", "users").stdout.strip()
    srv.stop()
    with sqlite3.connect(srv.data_dir / "node.sqlite") as catalog:
        catalog.execute("DELETE FROM grants")
    srv.start()
    touch(srv)
    assert app_reads(srv, space_id)
    assert kept in cli(srv, "grant", "list", "--space", space_id).stdout

    cli(srv, "revoke", "--key", "alice", "--space", "profile", "--grant", kept)
    srv.stop()
    with sqlite3.connect(srv.data_dir / "node.sqlite") as catalog:
        catalog.execute("UPDATE grants SET revocation = NULL")
    srv.start()
    touch(srv)
    assert not app_reads(srv, space_id)
    assert f"{kept} " in cli(srv, "grant", "list", "--space", space_id).stdout
    assert cli(srv, "grant", "list", "--space", space_id).stdout.split()[-1] == "revoked"
    assert logged(srv, tmp_path) == "grantsInCommits 1 revocationsInCommits 1"


def test_an_imported_archive_brings_its_grants_in_its_commits(space, server_factory, tmp_path):
    srv, space_id, app = space
    cli(srv, "grant", "--key", "alice", "--space", "profile", "--to", app, "--actions", "read")
    archive = tmp_path / "profile.stratos"
    cli(srv, "space", "export", "--key", "alice", "--space", "profile", "--out", str(archive))
    other = server_factory()
    for name in ("alice", "app"):
        (other.data_dir / "keys").mkdir(exist_ok=True, mode=0o700)
        target = other.data_dir / "keys" / f"{name}.key"
        target.write_bytes((srv.data_dir / "keys" / f"{name}.key").read_bytes())
        target.chmod(0o600)
    assert cli(other, "space", "import", str(archive), "--key", "alice").stdout.strip() == space_id
    assert app_reads(other, space_id)
    touch(other)
    assert logged(other, tmp_path, "again.stratos") == "grantsInCommits 1 revocationsInCommits 0"
