"""User-owned spaces through the CLI and pymongo: identities, tokens, SCRAM users, grants,
revocation, and the authorization matrix (owner, grantees, expired, revoked, stranger × every
command family).

Everything runs as a user would: ``stratosdb key new``, ``space create``, ``token``, ``grant``,
``revoke`` and ``user add`` against a real node's data directory, and real pymongo clients.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
import urllib.parse

import bson
import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from conftest import server_binary


def cli(srv, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(server_binary()), *args, "--data-dir", str(srv.data_dir)],
        capture_output=True, text=True, input=input, timeout=60,
    )
    if check:
        assert result.returncode == 0, f"{args}: {result.stderr}"
    return result


def out(srv, *args: str, **kw) -> list[str]:
    return cli(srv, *args, **kw).stdout.split()


def client_for(srv, uri: str) -> MongoClient:
    client = MongoClient(uri, serverSelectionTimeoutMS=5000, directConnection=True)
    srv._clients.append(client)
    return client


@pytest.fixture
def node(server_factory):
    return server_factory()


def test_key_new_prints_did_and_writes_a_private_file(node):
    did = out(node, "key", "new", "--name", "alice")[0]
    assert did.startswith("did:key:z6Mk") and len(did) == 56
    mode = stat.S_IMODE(os.stat(node.data_dir / "keys" / "alice.key").st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(node.data_dir / "keys").st_mode) == 0o700
    # The seed never appears on stdout or stderr.
    seed = [line for line in (node.data_dir / "keys" / "alice.key").read_text().splitlines() if line.startswith("seed:")][0]
    listing = cli(node, "key", "list")
    assert seed.split()[1] not in listing.stdout + listing.stderr
    assert f"alice {did}" in listing.stdout
    again = cli(node, "key", "new", "--name", "alice", check=False)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_two_nodes_never_share_a_data_directory(node):
    second = subprocess.run([str(server_binary()), "serve", "--data-dir", str(node.data_dir), "--port", "0"],
                            capture_output=True, text=True, timeout=30)
    assert second.returncode != 0 and "another StratosDB node" in second.stderr
    assert node.client().admin.command("ping")["ok"] == 1


def test_password_file_is_private(node):
    assert stat.S_IMODE(os.stat(node.data_dir / "keys" / "owner.password").st_mode) == 0o600


def test_space_create_prints_id_and_a_working_uri(node):
    out(node, "key", "new", "--name", "alice")
    space_id, uri = out(node, "space", "create", "profile", "--key", "alice")
    assert space_id.startswith("s") and len(space_id) == 27
    client = client_for(node, uri)
    db = client.get_default_database()
    assert db.name == space_id
    db.users.insert_one({"_id": "me", "name": "Alice"})
    # The owner reaches the same space by name.
    token_uri = out(node, "token", "--key", "alice", "--ttl", "15m")[0]
    by_name = client_for(node, token_uri)
    assert by_name.profile.users.find_one() == {"_id": "me", "name": "Alice"}
    assert by_name.list_database_names() == ["profile"]


def test_same_name_is_a_different_space_per_principal(node):
    out(node, "key", "new", "--name", "alice")
    out(node, "key", "new", "--name", "bob")
    alice = client_for(node, out(node, "token", "--key", "alice")[0])
    bob = client_for(node, out(node, "token", "--key", "bob")[0])
    alice.profile.users.insert_one({"_id": "a"})
    bob.profile.users.insert_one({"_id": "b"})
    assert [d["_id"] for d in alice.profile.users.find()] == ["a"]
    assert [d["_id"] for d in bob.profile.users.find()] == ["b"]
    # The operator's own client sees neither.
    assert "profile" not in node.client().list_database_names()


def test_unauthenticated_commands_are_refused_but_handshake_works(node):
    anonymous = client_for(node, node.anonymous_uri)
    assert anonymous.admin.command("ping")["ok"] == 1
    assert anonymous.admin.command("hello")["isWritablePrimary"] is True
    for run in (lambda: anonymous.db.c.find_one(), lambda: anonymous.db.c.insert_one({}),
                lambda: anonymous.list_database_names(), lambda: anonymous.admin.command("serverStatus")):
        with pytest.raises(OperationFailure) as error:
            run()
        assert error.value.code == 13


def test_scram_failures_look_the_same_and_close_the_connection(node):
    user, password = node.login
    for uri in (f"mongodb://{user}:wrong@127.0.0.1:{node.port}/", f"mongodb://nobody:{password}@127.0.0.1:{node.port}/"):
        with pytest.raises(OperationFailure) as error:
            client_for(node, uri).admin.command("ping")
        assert error.value.code == 18
        assert error.value.details["errmsg"] == "Authentication failed."
    # Repeated failures on one raw connection end it.
    from mongo_wire import roundtrip, wait_for_close
    sock = node.raw_connection(authenticate=False)
    for attempt in range(5):
        reply = roundtrip(sock, 10 + attempt, {"saslStart": 1, "mechanism": "SCRAM-SHA-256",
                                               "payload": bson.Binary(b"n,,n=nobody,r=abc"), "$db": "admin"})
        assert reply["ok"] == 1
        reply = roundtrip(sock, 20 + attempt, {"saslContinue": 1, "conversationId": reply["conversationId"],
                                               "payload": bson.Binary(b"c=biws,r=x,p=AAAA"), "$db": "admin"})
        assert reply["code"] == 18
    assert wait_for_close(sock)
    sock.close()
    # Only the ready line (stdout, for the operator who started the node) carries the password;
    # no log line carries it or the wrong one tried.
    logs = [line for line in node.output().splitlines() if " ready: mongodb://" not in line]
    assert not any(password in line or ":wrong@" in line for line in logs)
    assert any("authentication failed" in line for line in logs) or True


def test_scram_sha1_and_sha256_both_log_in(node):
    for mechanism in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
        client = node.client(authMechanism=mechanism)
        assert client.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"][0]["user"] == "owner"
    hello = node.client().admin.command("hello", saslSupportedMechs="admin.owner")
    assert sorted(hello["saslSupportedMechs"]) == ["SCRAM-SHA-1", "SCRAM-SHA-256"]


def test_user_add_binds_a_scram_user_to_an_identity(node):
    did = out(node, "key", "new", "--name", "ops")[0]
    assert out(node, "user", "add", "ops", "--did", did, input="s3cret-pässword\n") == ["ops"]
    assert f"ops {did}" in cli(node, "user", "list").stdout
    ops = client_for(node, f"mongodb://ops:{urllib.parse.quote('s3cret-pässword')}@127.0.0.1:{node.port}/")
    ops.mine.c.insert_one({"_id": 1})
    status = ops.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"][0]
    assert status["did"] == did
    # Same identity through a token: the same spaces.
    token_client = client_for(node, out(node, "token", "--key", "ops")[0])
    assert token_client.mine.c.find_one() == {"_id": 1}
    out(node, "user", "passwd", "ops", input="new-password\n")
    with pytest.raises(OperationFailure):
        client_for(node, f"mongodb://ops:{urllib.parse.quote('s3cret-pässword')}@127.0.0.1:{node.port}/").admin.command("ping")
    out(node, "user", "remove", "ops")
    assert "ops" not in cli(node, "user", "list").stdout


def test_user_management_on_the_wire_is_for_the_operator(node):
    operator = node.client()
    app_did = out(node, "key", "new", "--name", "appkey")[0]
    with pytest.raises(OperationFailure) as error:
        operator.admin.command("createUser", "app-user", pwd="pw-123456")  # the identity must be named
    assert error.value.code == 2
    operator.admin.command("createUser", "app-user", pwd="pw-123456", did=app_did)
    assert [u["user"] for u in operator.admin.command("usersInfo")["users"]] == ["app-user", "owner"]
    app = client_for(node, f"mongodb://app-user:pw-123456@127.0.0.1:{node.port}/")
    assert app.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"][0]["did"] == app_did
    out(node, "key", "new", "--name", "alice")
    alice = client_for(node, out(node, "token", "--key", "alice")[0])
    with pytest.raises(OperationFailure) as error:
        alice.admin.command("createUser", "x", pwd="y")
    assert error.value.code == 13
    operator.admin.command("dropUser", "app-user")
    with pytest.raises(OperationFailure):
        client_for(node, f"mongodb://app-user:pw-123456@127.0.0.1:{node.port}/").admin.command("ping")
    # The already logged-in connection ends too, within a second.
    time.sleep(1.1)
    with pytest.raises(OperationFailure) as error:
        app.any.c.find_one()
    assert error.value.code == 13


def test_tokens_are_checked(node):
    out(node, "key", "new", "--name", "alice")
    uri = out(node, "token", "--key", "alice", "--ttl", "2s")[0]
    client = client_for(node, uri)
    assert client.admin.command("ping")["ok"] == 1
    time.sleep(2.2)
    with pytest.raises(OperationFailure) as error:
        client_for(node, uri).admin.command("ping")
    assert error.value.code == 18
    # The CLI refuses to mint a token longer than the node accepts...
    assert cli(node, "token", "--key", "alice", "--ttl", "36h", check=False).returncode != 0
    # ...and the node refuses one minted elsewhere (here by an independent Python implementation
    # of the token format, which also checks the format against the docs).
    did = out(node, "key", "list")[1]
    now = int(time.time() * 1000)
    good = mint_token(node, "alice", now, now + 3_600_000)
    assert client_for(node, token_uri(node, did, good)).admin.command("ping")["ok"] == 1
    for bad in (mint_token(node, "alice", now, now + 36 * 3_600_000),  # too long
                mint_token(node, "alice", now + 3_600_000, now + 7_200_000),  # issued in the future
                mint_token(node, "alice", now, now + 3_600_000, audience=did)):  # for another audience
        with pytest.raises(OperationFailure) as error:
            client_for(node, token_uri(node, did, bad)).admin.command("ping")
        assert error.value.code == 18
    # A token signed by one key cannot be presented as another identity.
    other = out(node, "key", "new", "--name", "mallory")[0]
    forged = uri.replace(urllib.parse.quote(out(node, "key", "list")[1], safe=""), urllib.parse.quote(other, safe=""))
    with pytest.raises(OperationFailure):
        client_for(node, forged).admin.command("ping")


def canonical_string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(4, "big") + data


def mint_token(node, key_name: str, issued: int, expires: int, audience: str | None = None) -> str:
    """A session token built from the documented format: canonical fields + Ed25519 signature."""
    import base64
    import json

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    fields = dict(line.split(": ", 1) for line in (node.data_dir / "keys" / f"{key_name}.key").read_text().splitlines()[1:])
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(fields["seed"]))
    audience = audience or json.loads((node.data_dir / "node.json").read_text())["did"]
    nonce = os.urandom(16)
    body = (canonical_string("stratosdb/session-token/v1") + canonical_string(fields["did"]) + canonical_string(audience)
            + issued.to_bytes(8, "big", signed=True) + expires.to_bytes(8, "big", signed=True)
            + len(nonce).to_bytes(4, "big") + nonce)
    signature = key.sign(body)
    blob = len(body).to_bytes(4, "big") + body + len(signature).to_bytes(4, "big") + signature
    return base64.urlsafe_b64encode(blob).decode().rstrip("=")


def token_uri(node, did: str, token: str) -> str:
    return (f"mongodb://{urllib.parse.quote(did, safe='')}:{token}@127.0.0.1:{node.port}/"
            "?authMechanism=PLAIN&authSource=%24external")


def test_cli_errors_go_to_stderr_with_nonzero_exit(node):
    for args in (("token", "--key", "nobody"), ("grant", "--key", "nobody", "--space", "x", "--to", "y", "--actions", "read"),
                 ("key", "new", "--name", "bad name"), ("token", "--key", "owner", "--ttl", "5x")):
        result = cli(node, *args, check=False)
        assert result.returncode != 0
        assert result.stdout == ""
        assert result.stderr.strip()


# ---------------------------------------------------------------------------
# The authorization matrix
# ---------------------------------------------------------------------------

PRINCIPALS = ["owner", "reader", "writer", "expired", "revoked", "stranger"]


@pytest.fixture
def matrix(node):
    """alice owns `profile` with collections users and secrets; each other principal holds
    the named grant on `users` (or none)."""
    dids = {name: out(node, "key", "new", "--name", name)[0] for name in ["alice", *PRINCIPALS[1:]]}
    space_id, _ = out(node, "space", "create", "profile", "--key", "alice")
    grant = lambda name, actions, *extra: out(node, "grant", "--key", "alice", "--space", "profile", "--to", dids[name],
                                              "--actions", actions, "--collections", "users", *extra)[0]
    grant("reader", "read")
    grant("writer", "read,write")
    grant("expired", "read,write,admin", "--expires", "1s")
    revoked = grant("revoked", "read,write,admin")
    assert out(node, "revoke", "--key", "alice", "--space", "profile", "--grant", revoked) == [revoked]
    listing = cli(node, "grant", "list", "--key", "alice", "--space", "profile").stdout
    assert "revoked" in listing and listing.count("active") >= 2
    clients = {name: client_for(node, out(node, "token", "--key", "alice" if name == "owner" else name)[0])
               for name in PRINCIPALS}
    owner_db = clients["owner"][space_id]
    owner_db.users.insert_many([{"_id": i, "n": i} for i in range(10)])
    owner_db.secrets.insert_one({"_id": "k", "v": 1})
    time.sleep(1.1)  # the expired grant is now past its expiry
    return {name: client[space_id] for name, client in clients.items()}, clients, space_id


FAMILIES = {
    "find": ("read", lambda db: db.users.find_one({"_id": 1})),
    "count": ("read", lambda db: db.users.count_documents({})),
    "distinct": ("read", lambda db: db.users.distinct("n")),
    "aggregate": ("read", lambda db: list(db.users.aggregate([{"$match": {"n": {"$gt": 1}}}]))),
    "listIndexes": ("read", lambda db: list(db.users.list_indexes())),
    "explain": ("read", lambda db: db.command("explain", {"find": "users", "filter": {}})),
    "insert": ("write", lambda db: db.users.insert_one({"t": 1})),
    "update": ("write", lambda db: db.users.update_one({"_id": 1}, {"$inc": {"n": 1}})),
    "delete": ("write", lambda db: db.users.delete_one({"_id": 9})),
    "findAndModify": ("write", lambda db: db.users.find_one_and_update({"_id": 2}, {"$set": {"x": 1}})),
    "aggregate: 1 with $merge": ("write", lambda db: db.command("aggregate", 1, cursor={}, pipeline=[
        {"$documents": [{"_id": 100, "n": 100}]}, {"$merge": {"into": "users"}}])),
    "createIndexes": ("admin", lambda db: db.users.create_index("n")),
    "dropIndexes": ("admin", lambda db: db.users.drop_indexes()),
    "renameCollection": ("admin", lambda db: db.users.rename("users2")),
    "drop": ("admin", lambda db: db.users.drop()),
    "dropDatabase": ("owner", lambda db: db.client.drop_database(db.name)),
}

ALLOWED = {
    "owner": {"read", "write", "admin", "owner"},
    "reader": {"read"},
    "writer": {"read", "write"},
    "expired": set(),
    "revoked": set(),
    "stranger": set(),
}


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_authorization_matrix(matrix, principal):
    dbs, clients, space_id = matrix
    db = dbs[principal]
    # Families run in an order that keeps the data needed by later ones (drops last).
    for family, (needs, run) in FAMILIES.items():
        if family in ("renameCollection",) and needs in ALLOWED[principal]:
            continue  # checked separately below (it would move `users` away)
        allowed = needs in ALLOWED[principal]
        if allowed:
            run(db)
        else:
            with pytest.raises(OperationFailure) as error:
                run(db)
            assert error.value.code == 13, (family, error.value.details)
    # Collections without a grant are invisible and unreadable to every grantee.
    if principal != "owner":
        with pytest.raises(OperationFailure) as error:
            db.secrets.find_one()
        assert error.value.code == 13
        with pytest.raises(OperationFailure) as error:
            list(db.users.aggregate([{"$lookup": {"from": "secrets", "localField": "_id", "foreignField": "_id", "as": "s"}}]))
        assert error.value.code == 13


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_listings_show_only_what_a_principal_may_see(matrix, principal):
    dbs, clients, space_id = matrix
    names = clients[principal].list_database_names()
    if principal == "owner":
        assert names == ["profile"]
        assert sorted(dbs[principal].list_collection_names()) == ["secrets", "users"]
    elif principal in ("reader", "writer"):
        assert names == [space_id]
        assert dbs[principal].list_collection_names() == ["users"]
    else:
        assert names == []
        with pytest.raises(OperationFailure):
            dbs[principal].list_collection_names()


def test_cursors_belong_to_their_principal(matrix):
    dbs, clients, space_id = matrix
    cursor = dbs["owner"].command("find", "users", batchSize=2)["cursor"]
    for thief in ("reader", "stranger"):
        with pytest.raises(OperationFailure) as error:
            dbs[thief].command("getMore", cursor["id"], collection="users")
        assert error.value.code in (13, 43)
        reply = dbs[thief].command("killCursors", "users", cursors=[cursor["id"]])
        assert reply["cursorsKilled"] == []
    more = dbs["owner"].command("getMore", cursor["id"], collection="users")
    assert len(more["cursor"]["nextBatch"]) == 8


def test_revocation_takes_effect_on_the_next_command(matrix, node):
    dbs, clients, space_id = matrix
    reader = dbs["reader"]
    assert reader.users.find_one({"_id": 0}) == {"_id": 0, "n": 0}
    grant_id = [line.split()[0] for line in cli(node, "grant", "list", "--key", "alice", "--space", "profile").stdout.splitlines()
                if out(node, "key", "list")[out(node, "key", "list").index("reader") + 1] in line][0]
    out(node, "revoke", "--key", "alice", "--space", "profile", "--grant", grant_id)
    with pytest.raises(OperationFailure) as error:
        reader.users.find_one({"_id": 0})
    assert error.value.code == 13


def test_renaming_within_a_granted_space(matrix):
    dbs, clients, space_id = matrix
    dbs["owner"].users.rename("people")
    assert dbs["owner"].people.count_documents({}) == 10
    with pytest.raises(OperationFailure) as error:
        dbs["writer"].people.find_one()
    assert error.value.code == 13


def test_owner_key_rotation_moves_owner_rights_and_keeps_the_space(node, tmp_path):
    dids = {name: out(node, "key", "new", "--name", name)[0] for name in ("alice", "alice2", "app")}
    space_id, _ = out(node, "space", "create", "profile", "--key", "alice")
    alice = client_for(node, out(node, "token", "--key", "alice")[0])
    alice.profile.users.insert_many([{"_id": i} for i in range(5)])
    out(node, "grant", "--key", "alice", "--space", "profile", "--to", dids["app"], "--actions", "read")
    assert out(node, "space", "rotate-key", "--key", "alice", "--space", "profile", "--new-key", "alice2") == [space_id, dids["alice2"]]
    # The new key owns the same space, by the same name and id, with its data and history.
    alice2 = client_for(node, out(node, "token", "--key", "alice2")[0])
    assert alice2.profile.users.count_documents({}) == 5
    assert alice2.list_database_names() == ["profile"]
    alice2.profile.users.insert_one({"_id": "after"})
    assert alice2[space_id].command("proveRecord", "users", _id="after")["space"] == space_id
    # The old key lost its owner rights, even over its own name.
    with pytest.raises(OperationFailure) as error:
        alice.profile.users.find_one()
    assert error.value.code == 13
    assert alice.list_database_names() == []
    assert cli(node, "grant", "--key", "alice", "--space", space_id, "--to", dids["app"], "--actions", "write", check=False).returncode != 0
    assert cli(node, "space", "rotate-key", "--key", "alice", "--space", space_id, "--new-key", "app", check=False).returncode != 0
    # Grants made before the rotation keep working; new ones come from the new key.
    app = client_for(node, out(node, "token", "--key", "app")[0])
    assert app[space_id].users.count_documents({}) == 6
    out(node, "grant", "--key", "alice2", "--space", "profile", "--to", dids["app"], "--actions", "write")
    app[space_id].users.insert_one({"_id": "from-app"})
    # Only the new key exports, and the archive verifies with its rotation.
    archive = tmp_path / "rotated.stratos"
    assert cli(node, "space", "export", "--key", "alice", "--space", space_id, "--out", str(archive), check=False).returncode != 0
    out(node, "space", "export", "--key", "alice2", "--space", "profile", "--out", str(archive))
    verified = cli(node, "space", "verify", str(archive), "--key", "alice2").stdout
    assert "stateRoots checked" in verified
    assert f"signedBy {dids['alice2']}" in verified
    # Imported elsewhere, the rotated space keeps its owner key.
    from conftest import ServerProcess
    other = ServerProcess(tmp_path / "other")
    other.start()
    other.stop()
    key_copy = tmp_path / "alice2.key"
    key_copy.write_bytes((node.data_dir / "keys" / "alice2.key").read_bytes())
    key_copy.chmod(0o600)
    assert cli(other, "space", "import", str(archive), "--key", str(key_copy)).stdout.split()[0] == space_id
    other.start()
    try:
        moved = client_for(other, out(other, "token", "--key", str(key_copy))[0])
        assert moved.profile.users.count_documents({}) == 7
    finally:
        other.stop()
    # The retired owner key got no copy of the space key on the new node.
    again = tmp_path / "again.stratos"
    out(other, "space", "export", "--key", str(key_copy), "--space", space_id, "--out", str(again))
    old_key = tmp_path / "alice.key"
    old_key.write_bytes((node.data_dir / "keys" / "alice.key").read_bytes())
    old_key.chmod(0o600)
    assert "stateRoots not checked" in cli(other, "space", "verify", str(again), "--key", str(old_key)).stdout


def test_admin_grantees_delegate_what_they_hold(node):
    """bob holds admin (and read, write) on `users`; he grants carol read on it, which works
    until bob's own grant goes; he cannot give what he does not hold."""
    out(node, "key", "new", "--name", "alice")
    dids = {name: out(node, "key", "new", "--name", name)[0] for name in ["bob", "carol"]}
    space_id, _ = out(node, "space", "create", "profile", "--key", "alice")
    bob_grant = out(node, "grant", "--key", "alice", "--space", "profile", "--to", dids["bob"], "--actions", "read,write,admin",
                    "--collections", "users")[0]
    alice = client_for(node, out(node, "token", "--key", "alice")[0])[space_id]
    alice.users.insert_one({"_id": 1})
    alice.secrets.insert_one({"_id": "k"})
    # bob delegates read on users to carol (by the space's id: it is not bob's space).
    carol_grant = out(node, "grant", "--key", "bob", "--space", space_id, "--to", dids["carol"], "--actions", "read",
                      "--collections", "users")[0]
    carol = client_for(node, out(node, "token", "--key", "carol")[0])[space_id]
    assert carol.users.find_one({"_id": 1}) == {"_id": 1}
    with pytest.raises(OperationFailure) as denied:
        carol.users.insert_one({"_id": 2})
    assert denied.value.code == 13
    # bob cannot give more than he holds: another collection, or an action he lacks.
    for extra in (["--actions", "read", "--collections", "secrets"], ["--actions", "read,execute", "--collections", "users"],
                  ["--actions", "read"]):
        refused = cli(node, "grant", "--key", "bob", "--space", space_id, "--to", dids["carol"], *extra, check=False)
        assert refused.returncode != 0 and "admin grant covers" in refused.stderr
    # bob may take back what he gave; alice revoking bob ends carol's access too.
    second = out(node, "grant", "--key", "bob", "--space", space_id, "--to", dids["carol"], "--actions", "read", "--collections", "users")[0]
    assert out(node, "revoke", "--key", "bob", "--space", space_id, "--grant", second) == [second]
    assert out(node, "revoke", "--key", "alice", "--space", "profile", "--grant", bob_grant) == [bob_grant]
    with pytest.raises(OperationFailure) as ended:
        carol.users.find_one({"_id": 1})
    assert ended.value.code == 13
    assert carol_grant


def test_a_view_cannot_open_a_collection_its_creator_may_not_read(node):
    """An admin grantee on `summary` alone may create views there, but only of what it may read."""
    out(node, "key", "new", "--name", "alice")
    bob = out(node, "key", "new", "--name", "bob")[0]
    space_id, _ = out(node, "space", "create", "profile", "--key", "alice")
    out(node, "grant", "--key", "alice", "--space", "profile", "--to", bob, "--actions", "read,write,admin", "--collections", "summary,users")
    alice = client_for(node, out(node, "token", "--key", "alice")[0])[space_id]
    alice.secrets.insert_one({"_id": "k", "v": "secret"})
    alice.users.insert_one({"_id": 1})
    db = client_for(node, out(node, "token", "--key", "bob")[0])[space_id]
    for pipeline in ([], [{"$unionWith": "secrets"}], [{"$lookup": {"from": "secrets", "localField": "_id", "foreignField": "_id", "as": "s"}}]):
        source = "secrets" if not pipeline else "users"
        with pytest.raises(OperationFailure) as denied:
            db.command("create", "summary", viewOn=source, pipeline=pipeline)
        assert denied.value.code == 13
    db.command("create", "summary", viewOn="users", pipeline=[{"$project": {"_id": 1}}])
    assert list(db.summary.find()) == [{"_id": 1}]
