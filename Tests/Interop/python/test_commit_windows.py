"""Commits per time window: a space's write transactions wait up to `--commit-window` (5 ms by
default) to be sealed together into one signed commit. What a user sees must not change: every
acknowledged write survives a crash, is proved at once by proveRecord, is in an export taken
right after it, and comes back from a rebuild.
"""

from __future__ import annotations

import subprocess

from conftest import server_binary


def cli(data_dir, *args, check=True):
    result = subprocess.run([str(server_binary()), *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"{args}: {result.stderr}"
    return result


def head(db, _id):
    reply = db.command("proveRecord", "users", _id=_id)
    return reply["space"], reply["commit"]


def archived_root(data_dir, archive):
    """The state root of an archive's last commit, as `space verify --key owner` reports it."""
    lines = cli(data_dir, "space", "verify", str(archive), "--key", "owner").stdout.splitlines()
    return next(line.split()[1] for line in lines if line.startswith("stateRoot "))


def test_single_writes_share_commits_and_each_is_proved_at_once(server_factory):
    srv = server_factory()
    db = srv.client().profile
    db.users.insert_one({"_id": -1})
    _, first = head(db, -1)
    for i in range(200):
        db.users.insert_one({"_id": i, "name": f"user {i}"})
    _, last = head(db, 199)
    # Fewer commits than writes (the window seals several at once) but never more.
    assert 1 <= last["seq"] - first["seq"] < 200
    # A write is proved right after it is acknowledged: the proof seals it first.
    for i in range(5):
        db.users.update_one({"_id": i}, {"$set": {"n": i}})
        reply = db.command("proveRecord", "users", _id=i)
        assert reply["document"]["n"] == i


def test_a_window_of_zero_signs_a_commit_per_write(server_factory):
    srv = server_factory("--commit-window", "0")
    db = srv.client().profile
    db.users.insert_one({"_id": -1})
    _, first = head(db, -1)
    for i in range(20):
        db.users.insert_one({"_id": i})
    _, last = head(db, 19)
    assert last["seq"] - first["seq"] == 20


def test_bad_commit_windows_are_refused():
    for value in ["-1ms", "2s", "soon"]:
        result = subprocess.run([str(server_binary()), "serve", f"--commit-window={value}", "--data-dir", "/nonexistent/x"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode != 0 and "--commit-window" in result.stderr


def test_writes_pending_at_a_crash_are_sealed_when_the_space_opens(server_factory):
    # A long window keeps the last writes pending when the process is killed.
    srv = server_factory("--commit-window", "1s")
    db = srv.client().profile
    db.users.insert_one({"_id": -1})
    head(db, -1)
    for i in range(50):
        db.users.insert_one({"_id": i, "v": i})
    db.users.update_one({"_id": 3}, {"$set": {"v": "changed"}})
    db.users.delete_one({"_id": 4})
    srv.kill9()
    srv.start()
    db = srv.client().profile
    assert db.users.count_documents({}) == 50
    reply = db.command("proveRecord", "users", _id=3)
    assert reply["document"] == {"_id": 3, "v": "changed"}
    assert db.users.find_one({"_id": 4}) is None


def test_an_export_right_after_a_write_holds_it(server_factory, tmp_path):
    srv = server_factory("--commit-window", "200ms")
    db = srv.client().profile
    db.users.insert_one({"_id": -1})
    space_id, _ = head(db, -1)
    for i in range(30):
        db.users.insert_one({"_id": i})
    archive = tmp_path / "running.stratos"
    # The node is running: the export waits until the node has sealed the writes it acknowledged.
    cli(srv.data_dir, "space", "export", "--key", "owner", "--space", space_id, "--out", str(archive))
    _, commit = head(db, 29)
    assert archived_root(srv.data_dir, archive) == commit["stateRoot"]


def crashed_with_writes_pending(server_factory, *then):
    """A node with a long window, 41 documents written (the last 40 left pending by a kill -9,
    after `then` runs on the database); returns the stopped node and the space id."""
    srv = server_factory("--commit-window", "1s")
    db = srv.client().profile
    db.users.insert_one({"_id": -1})
    space_id, _ = head(db, -1)
    for i in range(40):
        db.users.insert_one({"_id": i, "v": i})
    for step in then:
        step(db)
    srv.kill9()
    return srv, space_id


def test_an_export_of_a_stopped_node_seals_what_a_crash_left(server_factory, tmp_path):
    srv, space_id = crashed_with_writes_pending(server_factory)
    archive = tmp_path / "stopped.stratos"
    cli(srv.data_dir, "space", "export", "--key", "owner", "--space", space_id, "--out", str(archive))
    srv.start()
    db = srv.client().profile
    assert db.users.count_documents({}) == 41
    _, commit = head(db, 39)
    assert archived_root(srv.data_dir, archive) == commit["stateRoot"]


def test_a_rebuild_after_a_crash_keeps_the_writes_that_were_pending(server_factory):
    srv, space_id = crashed_with_writes_pending(server_factory, lambda db: db.users.delete_one({"_id": 7}))
    assert cli(srv.data_dir, "space", "rebuild", space_id).stdout.split()[0] == space_id
    srv.start()
    db = srv.client().profile
    assert db.users.count_documents({}) == 40
    assert db.users.find_one({"_id": 7}) is None
    assert db.command("proveRecord", "users", _id=39)["document"] == {"_id": 39, "v": 39}
