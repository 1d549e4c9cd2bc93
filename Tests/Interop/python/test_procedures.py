"""Stored procedures through pymongo and the CLI, as a user would run them: the SDK's examples
compiled with the toolchain's clang, limits (fuel, memory, bad modules, deadlines), one commit
per call or none, grants, and procedures travelling with a space's archive.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from bson import Binary
from pymongo.errors import OperationFailure

from conftest import REPO_ROOT, server_binary

SDK = REPO_ROOT / "sdk"


def clang() -> str:
    """The clang that ships with the Swift toolchain (it has the wasm32 target)."""
    swift = shutil.which("swift")
    beside = Path(os.path.realpath(swift)).parent / "clang" if swift else None
    return str(beside) if beside and beside.exists() else (shutil.which("clang") or "clang")


def build(source: Path | str, out_dir: Path, name: str | None = None) -> bytes:
    """Compiles C to a procedure module with the command line from sdk/include/stratos.h."""
    source = Path(source)
    output = out_dir / f"{name or source.stem}.wasm"
    subprocess.run(
        [clang(), "--target=wasm32", "-O2", "-nostdlib", "-Wl,--no-entry", "-Wl,--export-dynamic", "-Wl,--allow-undefined",
         "-I", str(SDK / "include"), "-Wall", "-Werror", "-o", str(output), str(source)],
        check=True, capture_output=True, timeout=60)
    return output.read_bytes()


def build_text(code: str, out_dir: Path, name: str) -> bytes:
    source = out_dir / f"{name}.c"
    source.write_text('#include "stratos.h"\n' + code)
    return build(source, out_dir)


def cli(srv, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(server_binary()), *args, "--data-dir", str(srv.data_dir)], capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, f"{args}: {result.stderr}"
    return result


def error_of(call) -> OperationFailure:
    with pytest.raises(OperationFailure) as failure:
        call()
    return failure.value


PROFILES = [
    {"_id": i, "name": f"Person {i}", "email": f"Person{i}@Example.ORG", "age": 20 + i % 50,
     "address": {"city": ["London", "Paris", "Tokyo"][i % 3]}}
    for i in range(300)
]


@pytest.fixture
def node(server_factory):
    return server_factory()


@pytest.fixture
def space(node, tmp_path):
    client = node.client()
    db = client.profile
    db.users.insert_many(PROFILES)
    for name in ["summarize", "migrate", "validate_profile"]:
        db.command("createProcedure", name, code=Binary(build(SDK / "examples" / f"{name}.c", tmp_path)))
    return db


def head_seq(db) -> int:
    return db.command("proveRecord", "users", _id=0)["commit"]["seq"]


def test_summarize_matches_the_aggregation_pipeline(space):
    reply = space.command("callProcedure", "summarize", args={"city": "London"})
    expected = list(space.users.aggregate([
        {"$match": {"address.city": "London"}}, {"$group": {"_id": None, "count": {"$sum": 1}, "total": {"$sum": "$age"}}}]))[0]
    assert reply["result"]["count"] == expected["count"] == 100
    assert reply["result"]["totalAge"] == expected["total"]
    assert reply["result"]["averageAge"] == pytest.approx(expected["total"] / 100)
    assert reply["documentsRead"] == 100 and reply["documentsWritten"] == 0
    assert 0 < reply["fuelUsed"] < reply["fuelLimit"]
    assert reply["version"] == 1 and len(reply["codeHash"]) == 64
    # Fuel is reported per procedure and per space.
    listed = {p["name"]: p for p in space.command("listProcedures")["cursor"]["firstBatch"]}
    assert listed["summarize"]["calls"] == 1 and listed["summarize"]["fuelUsed"] == reply["fuelUsed"]
    assert space.command("dbStats")["procedures"] == {"calls": 1, "failures": 0, "fuelUsed": reply["fuelUsed"]}


def test_a_migration_is_one_signed_commit(space):
    before = head_seq(space)
    reply = space.command("callProcedure", "migrate")
    assert reply["result"] == {"migrated": 300}
    assert head_seq(space) == before + 1
    assert space.users.count_documents({"schemaVersion": 2}) == 300
    assert space.users.find_one({"_id": 7})["email"] == "person7@example.org"
    # Nothing left to migrate: the second run changes nothing and writes no commit.
    assert space.command("callProcedure", "migrate")["result"] == {"migrated": 0}
    assert head_seq(space) == before + 1


def test_a_validation_trigger_refuses_bad_profiles_and_writes_nothing(space):
    good = {"_id": "ann", "name": "Ann", "email": "ann@example.org", "age": 33}
    assert space.command("callProcedure", "validate_profile", args={"profile": good})["result"] == {"inserted": True}
    assert space.users.find_one({"_id": "ann"})["email"] == "ann@example.org"
    for bad, reason in [
        ({"_id": "b1", "name": "", "email": "x@y.z"}, "name"),
        ({"_id": "b2", "name": "Bob", "email": "bob"}, "email"),
        ({"_id": "b3", "name": "Bob", "email": "bob@x.org", "age": 200}, "age"),
        ({"_id": "b4", "name": "Bob", "email": "bob@x.org", "age": 4.5}, "age"),
    ]:
        failure = error_of(lambda: space.command("callProcedure", "validate_profile", args={"profile": bad}))
        assert failure.code == 7300004 and failure.details["codeName"] == "ProcedureAborted"
        assert reason in str(failure)
    assert space.users.count_documents({"_id": {"$in": ["b1", "b2", "b3", "b4"]}}) == 0
    # A duplicate _id is the write's error, passed on by the procedure.
    failure = error_of(lambda: space.command("callProcedure", "validate_profile", args={"profile": good}))
    assert "DuplicateKey" in str(failure)


def test_limits_stop_runaway_procedures(space, tmp_path):
    loop = build_text("int32_t run(void) { volatile int x = 0; for (;;) x++; }", tmp_path, "spin")
    bomb = build_text(
        "int32_t run(void) { for (;;) if (__builtin_wasm_memory_grow(0, 16) == (__SIZE_TYPE__)-1) __builtin_trap(); }",
        tmp_path, "bomb")
    space.command("createProcedure", "spin", code=Binary(loop))
    space.command("createProcedure", "bomb", code=Binary(bomb))
    failure = error_of(lambda: space.command("callProcedure", "spin", fuel=5_000_000))
    assert failure.code == 7300001 and failure.details["codeName"] == "ExceededFuel"
    failure = error_of(lambda: space.command("callProcedure", "bomb"))
    assert failure.code == 7300002 and failure.details["codeName"] == "ExceededMemory"
    assert "limit" in str(failure)
    # Fuel above the node's maximum is refused before anything runs.
    failure = error_of(lambda: space.command("callProcedure", "spin", fuel=10 ** 15))
    assert failure.code == 2
    status = space.client.admin.command("serverStatus")["procedures"]
    assert status["calls"] >= 2 and status["failures"] >= 2


@pytest.mark.parametrize("module,reason", [
    (b"\x00asm\x01\x00\x00\x00\xff", "valid WebAssembly"),
    (b"not wasm at all", "valid WebAssembly"),
    (b"", "valid WebAssembly"),
])
def test_bad_modules_are_refused_at_create(space, module, reason):
    failure = error_of(lambda: space.command("createProcedure", "broken", code=Binary(module)))
    assert failure.code == 7300005 and reason in str(failure)
    assert error_of(lambda: space.command("callProcedure", "broken")).code == 7300006


def test_modules_that_import_anything_else_are_refused(space, tmp_path):
    module = build_text("extern int system(const char *);\nint32_t run(void) { return system(\"id\"); }", tmp_path, "escape")
    failure = error_of(lambda: space.command("createProcedure", "escape", code=Binary(module)))
    assert failure.code == 7300005 and "env.system" in str(failure)


def test_a_trap_rolls_back_everything_the_call_wrote(space, tmp_path):
    module = build_text("""
        int32_t run(void) {
            uint8_t doc[64]; stratos_bson_writer w;
            stratos_bson_init(&w, doc, sizeof doc);
            stratos_bson_append_string(&w, "_id", "half", 4);
            int32_t length = stratos_bson_finish(&w);
            if (stratos_insert("users", 5, doc, length) != 0) return 9;
            __builtin_trap();
        }""", tmp_path, "half")
    space.command("createProcedure", "half", code=Binary(module))
    before = head_seq(space)
    failure = error_of(lambda: space.command("callProcedure", "half"))
    assert failure.code == 7300003 and failure.details["codeName"] == "ProcedureTrapped"
    assert space.users.find_one({"_id": "half"}) is None
    assert head_seq(space) == before


def test_a_long_call_does_not_stall_other_clients(node, space, tmp_path):
    spin = build_text("int32_t run(void) { volatile int x = 0; for (;;) x++; }", tmp_path, "spin")
    space.command("createProcedure", "spin", code=Binary(spin))
    # Size the call to last about two seconds on this build (debug or release).
    started = time.monotonic()
    error_of(lambda: space.command("callProcedure", "spin", fuel=2_000_000))
    rate = 2_000_000 / max(time.monotonic() - started, 1e-3)
    fuel = int(min(2_000_000_000, rate * 2))
    other = node.client().other
    other.items.insert_one({"_id": 1})
    finished = {}

    def long_call():
        try:
            space.command("callProcedure", "spin", fuel=fuel)
        except OperationFailure as failure:
            finished["code"] = failure.code
        finished["at"] = time.monotonic()

    thread = threading.Thread(target=long_call)
    thread.start()
    time.sleep(0.1)
    answered = []
    for _ in range(10):
        other.command("ping")
        assert other.items.find_one({"_id": 1}) == {"_id": 1}
        assert space.users.find_one({"_id": 3})["_id"] == 3  # reads of the same space go on too
        answered.append(time.monotonic())
    thread.join(timeout=120)
    assert finished["code"] == 7300001
    # Every request of the other clients was answered while the procedure was still running.
    assert answered[-1] < finished["at"]


def test_max_time_ms_stops_a_procedure_at_its_next_host_call(space, tmp_path):
    module = build_text("""
        int32_t run(void) { for (;;) { stratos_args_size(); } }""", tmp_path, "poll")
    space.command("createProcedure", "poll", code=Binary(module))
    failure = error_of(lambda: space.command("callProcedure", "poll", fuel=2_000_000_000, maxTimeMS=200))
    assert failure.code == 50


def test_max_time_ms_stops_a_loop_that_never_calls_the_host(space, tmp_path):
    """A running call cannot be interrupted, so the deadline becomes a fuel budget: what the
    node's interpreter burns in the time left."""
    space.command("createProcedure", "spin", code=Binary(build_text("int32_t run(void) { volatile int x = 0; for (;;) x++; }", tmp_path, "spin")))
    failure = error_of(lambda: space.command("callProcedure", "spin", fuel=2_000_000_000, maxTimeMS=300))
    assert failure.code == 50 and "time limit" in str(failure)


def test_versions_list_and_drop(space, tmp_path):
    space.command("createProcedure", "summarize", code=Binary(build(SDK / "examples" / "summarize.c", tmp_path)), description="v2")
    listed = {entry["name"]: entry for entry in space.command("listProcedures")["cursor"]["firstBatch"]}
    assert listed["summarize"]["version"] == 2 and listed["summarize"]["versions"] == 2
    assert listed["summarize"]["description"] == "v2" and "code" not in listed["summarize"]
    assert space.command("callProcedure", "summarize", version=1)["version"] == 1
    assert space.command("callProcedure", "summarize")["version"] == 2
    assert error_of(lambda: space.command("callProcedure", "summarize", version=9)).code == 7300006
    # The code is a document of the space: readable, and its hash is what callProcedure reports.
    stored = space["system.procedures"].find_one({"_id": "summarize@2"})
    assert stored["codeHash"] == space.command("callProcedure", "summarize")["codeHash"]
    # Clients cannot write the procedures collection directly, nor rename it away.
    assert error_of(lambda: space["system.procedures"].insert_one({"_id": "x"})).code == 73
    assert error_of(lambda: space["system.procedures"].rename("stolen")).code == 73
    assert space.command("dropProcedure", "summarize")["versionsDropped"] == 2
    assert error_of(lambda: space.command("callProcedure", "summarize")).code == 7300006
    assert error_of(lambda: space.command("createProcedure", "bad name!", code=Binary(b""))).code == 2


def test_grants_decide_who_runs_and_what_the_procedure_may_touch(node, tmp_path):
    cli(node, "key", "new", "--name", "alice")
    dids = {name: cli(node, "key", "new", "--name", name).stdout.split()[0] for name in ["runner", "reader", "stranger"]}
    space_id = cli(node, "space", "create", "profile", "--key", "alice").stdout.split()[0]
    created = cli(node, "procedure", "create", "--key", "alice", "--space", "profile", "--name", "validate_profile",
                  str(_example(tmp_path, "validate_profile"))).stdout.split()
    assert created[0] == "validate_profile@1" and len(created[1]) == 64
    cli(node, "grant", "--key", "alice", "--space", "profile", "--to", dids["runner"], "--actions", "read,write,execute", "--collections", "users")
    cli(node, "grant", "--key", "alice", "--space", "profile", "--to", dids["reader"], "--actions", "read,execute", "--collections", "users")

    def db_of(name):
        uri = cli(node, "token", "--key", name).stdout.split()[0]
        from pymongo import MongoClient
        client = MongoClient(uri, directConnection=True, serverSelectionTimeoutMS=5000)
        node._clients.append(client)
        return client[space_id]

    profile = {"_id": "p1", "name": "Ann", "email": "ann@example.org"}
    assert db_of("runner").command("callProcedure", "validate_profile", args={"profile": profile})["result"] == {"inserted": True}
    # Execute alone does not lend the procedure write access: it runs with the caller's grants.
    failure = error_of(lambda: db_of("reader").command("callProcedure", "validate_profile", args={"profile": {**profile, "_id": "p2"}}))
    assert failure.code == 7300004 and "not authorized" in str(failure)
    assert error_of(lambda: db_of("stranger").command("callProcedure", "validate_profile")).code == 13
    assert error_of(lambda: db_of("runner").command("createProcedure", "x", code=Binary(b""))).code == 13


def _example(tmp_path: Path, name: str) -> Path:
    build(SDK / "examples" / f"{name}.c", tmp_path)
    return tmp_path / f"{name}.wasm"


def test_cli_walkthrough(node, tmp_path):
    cli(node, "key", "new", "--name", "alice")
    cli(node, "space", "create", "profile", "--key", "alice")
    target = ["--key", "alice", "--space", "profile"]
    assert cli(node, "procedure", "create", *target, "--name", "summarize", str(_example(tmp_path, "summarize"))).stdout.startswith("summarize@1\n")
    import json
    reply = json.loads(cli(node, "procedure", "call", *target, "--name", "summarize", "--args", '{"city": "Paris"}').stdout)
    assert reply["result"] == {"city": "Paris", "count": 0, "totalAge": 0, "averageAge": None}
    assert reply["fuelUsed"] > 0
    assert cli(node, "procedure", "list", *target).stdout.startswith("summarize version=1 ")
    assert cli(node, "procedure", "drop", *target, "--name", "summarize").stdout.strip() == "1"
    failed = cli(node, "procedure", "call", *target, "--name", "summarize", check=False)
    assert failed.returncode != 0 and "no procedure 'summarize'" in failed.stderr


def test_procedures_travel_with_the_space_archive(node, space, server_factory, tmp_path):
    space_id = space.command("proveRecord", "users", _id=0)["space"]
    job = space.command("submitJob", "summarize", schedule="every 1s")["jobId"]
    wait_for(lambda: status(space, job)["job"]["runs"] >= 1)
    node.stop()
    archive = tmp_path / "profile.stratos"
    cli(node, "space", "export", "--key", "owner", "--space", space_id, "--out", str(archive))
    other = server_factory()
    other.stop()
    shutil.copy(node.data_dir / "keys" / "owner.key", tmp_path / "owner.key")
    subprocess.run([str(server_binary()), "space", "import", str(archive), "--data-dir", str(other.data_dir), "--key",
                    str(tmp_path / "owner.key")], check=True, capture_output=True, timeout=120)
    other.start()
    key_uri = subprocess.run([str(server_binary()), "token", "--key", str(tmp_path / "owner.key"), "--data-dir", str(other.data_dir)],
                             check=True, capture_output=True, text=True).stdout.split()[0]
    from pymongo import MongoClient
    client = MongoClient(key_uri, directConnection=True, serverSelectionTimeoutMS=5000)
    other._clients.append(client)
    imported = client[space_id]
    assert imported.command("callProcedure", "summarize", args={"city": "Tokyo"})["result"]["count"] == 100
    # Its scheduled jobs go on running on the node it was imported into.
    runs = status(imported, job)["job"]["runs"]
    wait_for(lambda: status(imported, job)["job"]["runs"] >= runs + 1)
    assert status(imported, job)["results"][0]["node"] == other.client().admin.command("buildInfo")["stratosdbNode"]


# ---- Compute jobs ----------------------------------------------------------------------------

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def did_public_key(did: str):
    """The Ed25519 public key of a did:key (multibase base58btc, multicodec 0xed01)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    number = 0
    for character in did.removeprefix("did:key:z"):
        number = number * 58 + B58.index(character)
    raw = number.to_bytes(34, "big")
    assert raw[:2] == b"\xed\x01"
    return Ed25519PublicKey.from_public_bytes(raw[2:])


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


def status(db, job: str, results: int = 10) -> dict:
    return db.command("jobStatus", job, results=results)


def test_a_job_runs_and_its_result_is_signed_by_the_node(space):
    import base64
    import hashlib

    import bson

    job = space.command("submitJob", "summarize", args={"city": "Paris"})["jobId"]
    done = wait_for(lambda: (s := status(space, job))["job"]["state"] == "succeeded" and s)
    result = done["results"][0]
    assert result["ok"] is True and result["run"] == 1 and result["attempt"] == 1
    assert result["result"]["count"] == 100
    # Anyone can check the result against the node's key: rebuild the signed lines.
    space_id = space.command("proveRecord", "users", _id=0)["space"]
    output_hash = hashlib.blake2b(bson.encode(result["result"]), digest_size=32).hexdigest()
    assert output_hash == result["outputHash"]
    finished = int(result["finishedAt"].replace(tzinfo=__import__("datetime").timezone.utc).timestamp() * 1000)
    lines = ["stratosdb-job-result-v1", space_id, job, "1", "1", "ok", output_hash, str(result["fuelUsed"]), result["codeHash"],
             str(finished), result["node"]]
    signature = base64.urlsafe_b64decode(result["signature"] + "==")
    did_public_key(result["node"]).verify(signature, "\n".join(lines).encode())
    assert result["node"] == space.client.admin.command("buildInfo")["stratosdbNode"]
    # Results are documents of the space.
    assert space["system.job_results"].find_one({"job": job})["signature"] == result["signature"]


def test_failed_attempts_are_retried_then_the_job_fails_visibly(space, tmp_path):
    space.command("createProcedure", "spin", code=Binary(build_text("int32_t run(void) { volatile int x = 0; for (;;) x++; }", tmp_path, "spin")))
    job = space.command("submitJob", "spin", fuel=50_000, retries=2, retryDelayMS=50)["jobId"]
    done = wait_for(lambda: (s := status(space, job))["job"]["state"] == "failed" and s)
    assert [r["attempt"] for r in done["results"]] == [3, 2, 1]
    assert all(r["ok"] is False and r["error"]["codeName"] == "ExceededFuel" for r in done["results"])


def test_recurring_jobs_run_until_cancelled(space):
    job = space.command("submitJob", "summarize", schedule="every 1s")["jobId"]
    wait_for(lambda: status(space, job)["job"]["runs"] >= 2)
    cancelled = space.command("cancelJob", job)
    assert cancelled["previousState"] == "scheduled" and cancelled["state"] == "cancelled"
    runs = status(space, job)["job"]["runs"]
    time.sleep(2.5)
    assert status(space, job)["job"]["runs"] == runs
    listed = {j["_id"]: j["state"] for j in space.command("listJobs")["cursor"]["firstBatch"]}
    assert listed[job] == "cancelled"


@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_the_scheduler_survives_a_restart(node, space, how):
    job = space.command("submitJob", "summarize", schedule="every 1s")["jobId"]
    wait_for(lambda: status(space, job)["job"]["runs"] >= 1)
    node.stop() if how == "stop" else node.kill9()
    node.start()
    db = node.client().profile
    before = status(db, job)["job"]["runs"]
    wait_for(lambda: status(db, job)["job"]["runs"] >= before + 2)
    db.command("cancelJob", job)


@pytest.mark.parametrize("command,args", [
    ("submitJob", {"schedule": "every 0s"}), ("submitJob", {"schedule": "sometimes"}), ("submitJob", {"retries": 99}),
    ("submitJob", {"schedule": "every 9223372036854775807ms"}), ("submitJob", {"schedule": "every 400d"}),
    ("submitJob", {"fuel": 0}),
])
def test_bad_job_options_are_refused(space, command, args):
    assert error_of(lambda: space.command(command, "summarize", **args)).code == 2


def test_jobs_of_unknown_things(space):
    assert error_of(lambda: space.command("submitJob", "nothing")).code == 7300006
    assert error_of(lambda: space.command("jobStatus", "jnope")).code == 7300007
    assert error_of(lambda: space.command("cancelJob", "jnope")).code == 7300007


def test_jobs_run_only_on_computation_nodes(node, space):
    """A node runs jobs while no node registered as a computation node (it plays every role),
    or once it registered with the computation type bit itself."""
    owner = (node.data_dir / "keys" / "owner.key").read_text().splitlines()
    owner_did = dict(line.split(": ", 1) for line in owner[1:])["did"]
    cli(node, "resource-node", "register", "--key", "node", "--types", "storage,database", "--deposit", "2000000", "--wait")
    job = space.command("submitJob", "summarize")["jobId"]
    wait_for(lambda: status(space, job)["job"]["state"] == "succeeded")
    # Another identity becomes the chain's only computation node: this node stops running jobs.
    cli(node, "transfer", "--key", "node", "--to", owner_did, "--amount", "5000000", "--wait")
    cli(node, "resource-node", "register", "--key", "owner", "--types", "computation", "--deposit", "2000000", "--wait")
    waiting = space.command("submitJob", "summarize")["jobId"]
    time.sleep(2.5)
    assert status(space, waiting)["job"]["runs"] == 0 and status(space, waiting)["job"]["state"] == "scheduled"
    # Once it registers as a computation node too, the waiting job runs.
    cli(node, "resource-node", "register", "--key", "node", "--types", "storage,database,computation", "--deposit", "1", "--wait")
    wait_for(lambda: status(space, waiting)["job"]["state"] == "succeeded")


def test_a_job_runs_with_its_submitters_grants(node, tmp_path):
    cli(node, "key", "new", "--name", "alice")
    app_did = cli(node, "key", "new", "--name", "app").stdout.split()[0]
    space_id = cli(node, "space", "create", "profile", "--key", "alice").stdout.split()[0]
    cli(node, "procedure", "create", "--key", "alice", "--space", "profile", "--name", "migrate", str(_example(tmp_path, "migrate")))
    grant = cli(node, "grant", "--key", "alice", "--space", "profile", "--to", app_did, "--actions", "read,write,execute",
                "--collections", "users").stdout.split()[0]
    from pymongo import MongoClient
    alice = MongoClient(cli(node, "token", "--key", "alice").stdout.split()[0], directConnection=True)
    app = MongoClient(cli(node, "token", "--key", "app").stdout.split()[0], directConnection=True)
    node._clients += [alice, app]
    alice[space_id].users.insert_many([{"_id": i, "email": f"A{i}@X.ORG"} for i in range(5)])
    job = app[space_id].command("submitJob", "migrate", schedule="every 1s", retries=0)["jobId"]
    wait_for(lambda: status(app[space_id], job)["job"]["runs"] >= 1)
    assert alice[space_id].users.count_documents({"schemaVersion": 2}) == 5
    assert status(app[space_id], job)["results"][0]["ok"] is True
    # Revoked: the next runs fail with the procedure's unauthorized error, and write nothing.
    cli(node, "revoke", "--key", "alice", "--space", "profile", "--grant", grant)
    alice[space_id].users.insert_one({"_id": 99, "email": "NEW@X.ORG"})
    failed = wait_for(lambda: next((r for r in status(alice[space_id], job)["results"] if not r["ok"]), None))
    assert "not authorized" in failed["error"]["errmsg"]
    assert alice[space_id].users.find_one({"_id": 99})["email"] == "NEW@X.ORG"
    # Its arguments and results are the submitter's and the owner's: another grantee with
    # execute sees neither, and cannot cancel it.
    other_did = cli(node, "key", "new", "--name", "other").stdout.split()[0]
    cli(node, "grant", "--key", "alice", "--space", "profile", "--to", other_did, "--actions", "execute")
    other = MongoClient(cli(node, "token", "--key", "other").stdout.split()[0], directConnection=True)
    node._clients.append(other)
    assert error_of(lambda: other[space_id].command("jobStatus", job)).code == 7300007
    assert error_of(lambda: other[space_id].command("cancelJob", job)).code == 7300007
    assert other[space_id].command("listJobs")["cursor"]["firstBatch"] == []
    assert [j["_id"] for j in alice[space_id].command("listJobs")["cursor"]["firstBatch"]] == [job]
    # The owner may cancel a job someone else submitted.
    assert alice[space_id].command("cancelJob", job)["state"] == "cancelled"


def test_redundant_jobs_are_rerun_by_a_second_node(tmp_path):
    """`redundancy: 2` on a two-node network: the second node re-runs each attempt from its
    witness and signs the same result lines; when it disagrees (a fault injected with a test
    fail point), the attempt fails visibly and its writes are rolled back."""
    import base64
    import hashlib
    import json
    import signal

    import bson
    from pymongo import MongoClient

    run_cli = lambda *args: subprocess.run([str(server_binary()), *args], capture_output=True, text=True, timeout=120)
    data_dir = tmp_path / "net"
    up = run_cli("cluster", "up", "--nodes", "2", "--data-dir", str(data_dir), "--block-interval", "200ms")
    assert up.returncode == 0, up.stderr
    uris = up.stdout.split()
    relaunched = None
    try:
        nodes = json.loads((data_dir / "cluster" / "cluster.json").read_text())["nodes"]
        first, second = (MongoClient(uri, directConnection=True, serverSelectionTimeoutMS=10000) for uri in uris)
        second_did = second.admin.command("buildInfo")["stratosdbNode"]
        wait_for(lambda: all(len(n["peers"]) == 1 for n in json.loads(run_cli("cluster", "status", "--data-dir", str(data_dir), "--json").stdout)["nodes"]))
        db = first.profile
        db.users.insert_many(PROFILES[:30])
        for name in ["summarize", "migrate"]:
            db.command("createProcedure", name, code=Binary(build(SDK / "examples" / f"{name}.c", tmp_path)))

        job = db.command("submitJob", "summarize", args={"city": "London"}, redundancy=2)["jobId"]
        done = wait_for(lambda: (s := status(db, job))["job"]["state"] in ("succeeded", "failed") and s)
        result = done["results"][0]
        assert done["job"]["state"] == "succeeded", result
        assert result["result"]["count"] == 10
        # Both nodes signed the same lines, each with its own did:key on the last line.
        space_id = db.command("proveRecord", "users", _id=0)["space"]
        finished = int(result["finishedAt"].replace(tzinfo=__import__("datetime").timezone.utc).timestamp() * 1000)
        lines = ["stratosdb-job-result-v1", space_id, job, "1", "1", "ok", result["outputHash"], str(result["fuelUsed"]),
                 result["codeHash"], str(finished)]
        assert result["outputHash"] == hashlib.blake2b(bson.encode(result["result"]), digest_size=32).hexdigest()
        for did, signature in [(result["node"], result["signature"]),
                               (result["verifiedBy"][0]["node"], result["verifiedBy"][0]["signature"])]:
            did_public_key(did).verify(base64.urlsafe_b64decode(signature + "=="), "\n".join(lines + [did]).encode())
        assert result["verifiedBy"][0]["node"] == second_did != result["node"]
        # A migration's writes commit once the second node agrees.
        job = db.command("submitJob", "migrate", redundancy=2)["jobId"]
        wait_for(lambda: status(db, job)["job"]["state"] == "succeeded")
        assert db.users.count_documents({"schemaVersion": 2}) == 30

        # The second node now answers wrongly: attempts fail visibly and write nothing.
        command_line = open(f"/proc/{nodes[1]['pid']}/cmdline", "rb").read().split(b"\0")[:-1]
        os.kill(nodes[1]["pid"], signal.SIGTERM)
        wait_for(lambda: not os.path.exists(f"/proc/{nodes[1]['pid']}") or
                 open(f"/proc/{nodes[1]['pid']}/stat").read().split()[2] == "Z")
        relaunched = subprocess.Popen([c.decode() for c in command_line] + ["--fail-point", "job-verifier-disagrees"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: len(json.loads(run_cli("cluster", "status", "--data-dir", str(data_dir), "--json").stdout)["nodes"][0]["peers"]) == 1)
        db.users.insert_one({"_id": "new", "email": "NEW@X.ORG"})
        job = db.command("submitJob", "migrate", redundancy=2, retries=0)["jobId"]
        failed = wait_for(lambda: (s := status(db, job))["job"]["state"] == "failed" and s)["results"][0]
        assert failed["ok"] is False and failed["error"]["codeName"] == "ProcedureDiverged"
        assert second_did in failed["error"]["errmsg"]
        assert db.users.find_one({"_id": "new"})["email"] == "NEW@X.ORG"
    finally:
        if relaunched:
            relaunched.send_signal(signal.SIGTERM)
            relaunched.wait(timeout=30)
        run_cli("cluster", "down", "--data-dir", str(data_dir))


def test_redundancy_without_a_second_node_fails_visibly(space):
    job = space.command("submitJob", "summarize", redundancy=2, retries=0)["jobId"]
    failed = wait_for(lambda: (s := status(space, job))["job"]["state"] == "failed" and s)["results"][0]
    assert failed["error"]["codeName"] == "RedundancyUnavailable"
    assert error_of(lambda: space.command("submitJob", "summarize", redundancy=3)).code == 2
