"""The proof-of-stake ledger on a single node: blocks every interval, every space commit
anchored, `w: "anchored"`, anchor proofs that `stratosdb verify-proof` checks offline, the
`ledger` commands, and a chain that survives restarts and `kill -9`.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from bson import json_util
from pymongo import WriteConcern
from pymongo.errors import OperationFailure

from conftest import REPO_ROOT, server_binary

FAST = ("--block-interval", "100ms")


def cli(*args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([str(server_binary()), *args], capture_output=True, text=True, timeout=timeout)


def anchored(db, name="users"):
    return db.get_collection(name, write_concern=WriteConcern(w="anchored", wtimeout=20000))


def wait_for_height(client, height, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.admin.command("ledgerStatus")
        if status["height"] >= height:
            return status
        time.sleep(0.05)
    raise AssertionError(f"the chain did not reach height {height}")


def test_blocks_are_produced_and_status_reports_them(server_factory):
    srv = server_factory(*FAST)
    client = srv.client()
    first = client.admin.command("ledgerStatus")
    assert first["isValidator"] is True and len(first["validators"]) == 1
    assert first["chainId"].startswith("stratos-local-")
    later = wait_for_height(client, first["height"] + 3)
    assert later["lastBlockHash"] != first["lastBlockHash"]
    # A fresh login is needed for the chain too (every command but the handshake needs one).
    assert first["node"] == json.loads((srv.data_dir / "node.json").read_text())["did"]


def test_anchored_write_returns_with_a_proof_that_verifies_offline(server_factory, tmp_path):
    srv = server_factory(*FAST)
    db = srv.client().profile
    result = anchored(db).insert_one({"_id": "ada", "name": "Ada", "city": "London"})
    assert result.acknowledged
    reply = db.command("proveRecord", "users", _id="ada")
    assert reply["anchor"]["anchored"] is True
    assert reply["anchor"]["signedPower"] == reply["anchor"]["totalPower"] > 0
    assert reply["anchorProof"]
    proof = tmp_path / "proof.json"
    proof.write_text(json_util.dumps(reply))
    genesis = srv.data_dir / "ledger" / "genesis.json"
    checked = cli("verify-proof", str(proof), "--genesis", str(genesis), "--require-anchor")
    assert checked.returncode == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert "anchored yes" in lines
    assert f"block {reply['anchor']['height']} {reply['anchor']['blockHash']}" in lines
    assert any(line.startswith("validators checked against") for line in lines)
    # The same checks by hand, from the bytes alone (docs/ledger.md walks through them).
    by_hand = subprocess.run(
        ["python3", str(REPO_ROOT / "tools" / "verify_anchor_by_hand.py"), str(proof), str(genesis)],
        capture_output=True, text=True, timeout=60)
    assert by_hand.returncode == 0, by_hand.stderr
    assert f"anchored in block {reply['anchor']['height']} ({reply['anchor']['blockHash']})" in by_hand.stdout
    # The block is on the chain the CLI reads, with the anchor transaction in it.
    block = cli("ledger", "block", str(reply["anchor"]["height"]), "--data-dir", str(srv.data_dir), "--json")
    assert block.returncode == 0, block.stderr
    described = json.loads(block.stdout)
    assert described["hash"] == reply["anchor"]["blockHash"]
    assert "anchor" in [tx["type"] for tx in described["transactions"]]
    # Every change to the anchor proof is caught.
    text = reply["anchorProof"]
    for position in (10, len(text) // 3, len(text) // 2, len(text) - 20):
        forged = dict(reply, anchorProof=text[:position] + ("A" if text[position] != "A" else "B") + text[position + 1:])
        (tmp_path / "forged.json").write_text(json_util.dumps(forged))
        assert cli("verify-proof", str(tmp_path / "forged.json")).returncode != 0
        forged_by_hand = subprocess.run(
            ["python3", str(REPO_ROOT / "tools" / "verify_anchor_by_hand.py"), str(tmp_path / "forged.json")],
            capture_output=True, text=True, timeout=60)
        assert forged_by_hand.returncode != 0
    # Checked against another chain's genesis, the proof is refused.
    other = json.loads(genesis.read_text())
    other["chainId"] = "stratos-elsewhere"
    (tmp_path / "other-genesis.json").write_text(json.dumps(other))
    assert cli("verify-proof", str(proof), "--genesis", str(tmp_path / "other-genesis.json")).returncode != 0


def test_a_not_yet_anchored_commit_says_so(server_factory, tmp_path):
    srv = server_factory("--block-interval", "1h")
    db = srv.client().profile
    # With an hour between blocks, nothing written after the first block is anchored yet.
    time.sleep(0.5)
    db.users.insert_one({"_id": 1})
    reply = db.command("proveRecord", "users", _id=1)
    assert reply["anchor"] == {"anchored": False} and reply["anchorProof"] is None
    (tmp_path / "p.json").write_text(json_util.dumps(reply))
    assert cli("verify-proof", str(tmp_path / "p.json")).returncode == 0
    refused = cli("verify-proof", str(tmp_path / "p.json"), "--require-anchor")
    assert refused.returncode != 0 and "no anchor proof" in refused.stderr
    # w: "anchored" with a short wtimeout: the write stands, the reply reports the timeout.
    coll = db.get_collection("users", write_concern=WriteConcern(w="anchored", wtimeout=300))
    with pytest.raises(Exception) as error:
        coll.insert_one({"_id": 2})
    assert getattr(error.value, "code", None) == 64
    assert db.users.find_one({"_id": 2}) == {"_id": 2}


def test_many_spaces_in_one_batch(server_factory):
    srv = server_factory("--block-interval", "300ms")
    client = srv.client()
    before = client.admin.command("ledgerStatus")
    errors = []

    def write(index):
        try:
            anchored(client[f"space{index}"]).insert_one({"_id": index})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(index,)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    after = client.admin.command("ledgerStatus")
    assert after["anchoredCommits"] - before["anchoredCommits"] >= 12
    # Twelve spaces took fewer anchor transactions than commits: batches, not one per commit.
    assert after["anchorBatches"] - before["anchorBatches"] < 12


def test_ledger_cli_reads_the_chain_while_the_node_runs(server_factory):
    srv = server_factory(*FAST)
    client = srv.client()
    anchored(client.profile).insert_one({"_id": 1})
    data_dir = str(srv.data_dir)
    status = cli("ledger", "status", "--data-dir", data_dir, "--json")
    assert status.returncode == 0, status.stderr
    parsed = json.loads(status.stdout)
    assert parsed["height"] >= 1 and parsed["anchoredCommits"] >= 1
    node_did = json.loads((srv.data_dir / "node.json").read_text())["did"]
    validators = cli("ledger", "validators", "--data-dir", data_dir)
    assert validators.stdout.split()[0] == node_did
    account = json.loads(cli("ledger", "account", node_did, "--data-dir", data_dir, "--json").stdout)
    assert account["stake"] == 10_000_000 and account["power"] == 10 and account["nonce"] >= 1
    height = parsed["height"]
    block = json.loads(cli("ledger", "block", str(height), "--data-dir", data_dir, "--json").stdout)
    assert block["height"] == height and block["commitSignatures"] == [node_did]
    # Find an anchor transaction and look it up by hash.
    for h in range(height, 0, -1):
        txs = json.loads(cli("ledger", "block", str(h), "--data-dir", data_dir, "--json").stdout)["transactions"]
        if txs:
            tx = json.loads(cli("ledger", "tx", txs[0]["hash"], "--data-dir", data_dir, "--json").stdout)
            assert tx["height"] == h and tx["sender"] == node_did and tx["body"]["type"] == "anchor"
            break
    else:
        raise AssertionError("no anchor transaction found")
    # The same reads from the running node over the wire (--rpc), with a throwaway identity.
    rpc = f"127.0.0.1:{srv.port}"
    remote_block = json.loads(cli("ledger", "block", str(height), "--rpc", rpc, "--json").stdout)
    assert remote_block == block
    remote_validators = cli("ledger", "validators", "--rpc", rpc)
    assert remote_validators.returncode == 0 and remote_validators.stdout.split()[0] == node_did
    remote_account = json.loads(cli("ledger", "account", node_did, "--rpc", rpc, "--json").stdout)
    assert remote_account["stake"] == 10_000_000
    assert json.loads(cli("ledger", "status", "--rpc", rpc, "--json").stdout)["chainId"] == parsed["chainId"]
    assert cli("ledger", "status", "--rpc", "127.0.0.1:1").returncode != 0
    missing = cli("ledger", "block", "999999", "--data-dir", data_dir)
    assert missing.returncode != 0 and "no block" in missing.stderr
    assert cli("ledger", "tx", "00" * 32, "--data-dir", data_dir).returncode != 0
    assert cli("ledger", "account", "not-a-did", "--data-dir", data_dir).returncode != 0


def test_chain_survives_restart_and_kill9(server_factory, tmp_path):
    srv = server_factory(*FAST)
    client = srv.client()
    anchored(client.profile).insert_one({"_id": "before"})
    first = client.profile.command("proveRecord", "users", _id="before")
    height = client.admin.command("ledgerStatus")["height"]
    srv.restart()
    client = srv.client()
    status = wait_for_height(client, height + 2)
    assert status["chainId"] == first["anchor"]["chainId"]
    # kill -9 while anchored writes run; every acknowledged one is there and provable after.
    acknowledged = []
    stop = threading.Event()

    def writer():
        coll = anchored(srv.client().profile)
        index = 0
        while not stop.is_set():
            try:
                coll.insert_one({"_id": f"w{index}"})
                acknowledged.append(f"w{index}")
            except Exception:  # noqa: BLE001 - the server is being killed
                return
            index += 1

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(1.5)
    srv.kill9()
    stop.set()
    thread.join(30)
    assert acknowledged, "no anchored write was acknowledged before the kill"
    srv.start()
    client = srv.client()
    wait_for_height(client, 1)
    for key in acknowledged:
        assert client.profile.users.find_one({"_id": key}) == {"_id": key}
    # The chain moves on from where it was, and old anchors still prove.
    before = client.admin.command("ledgerStatus")["height"]
    wait_for_height(client, before + 2)
    anchored(client.profile).insert_one({"_id": "after"})
    reply = client.profile.command("proveRecord", "users", _id="after")
    (tmp_path / "after.json").write_text(json_util.dumps(reply))
    checked = cli("verify-proof", str(tmp_path / "after.json"), "--genesis", str(srv.data_dir / "ledger" / "genesis.json"), "--require-anchor")
    assert checked.returncode == 0, checked.stderr


def test_w_anchored_is_refused_without_the_ledger(server_factory):
    srv = server_factory("--benchmark-baseline")
    db = srv.client().profile
    with pytest.raises(Exception) as error:
        db.get_collection("users", write_concern=WriteConcern(w="anchored")).insert_one({"_id": 1})
    assert getattr(error.value, "code", None) == 79
    with pytest.raises(OperationFailure):
        db.client.admin.command("ledgerStatus")


def test_transfer_stake_unstake_from_the_cli(server_factory):
    srv = server_factory(*FAST)
    srv.client().admin.command("ping")
    data_dir = str(srv.data_dir)
    alice = cli("key", "new", "--name", "alice", "--data-dir", data_dir).stdout.strip()
    sent = cli("transfer", "--key", "node", "--to", alice, "--amount", "5000000", "--data-dir", data_dir, "--wait")
    assert sent.returncode == 0, sent.stderr
    tx_hash, height_line = sent.stdout.split("\n")[:2]
    assert len(tx_hash) == 64 and height_line.startswith("height ")
    tx = json.loads(cli("ledger", "tx", tx_hash, "--data-dir", data_dir, "--json").stdout)
    assert tx["body"] == {"type": "transfer", "to": alice, "amount": 5000000}
    account = json.loads(cli("ledger", "account", alice, "--data-dir", data_dir, "--json").stdout)
    assert account["balance"] == 5000000
    # Alice pays: too much is refused by the chain (the mempool drops it), her balance stays.
    refused = cli("stake", "--key", "alice", "--amount", "1000000", "--data-dir", data_dir)
    assert refused.returncode != 0 and "no node here signs with that key" in refused.stderr
    node_did = json.loads((srv.data_dir / "node.json").read_text())["did"]
    staked = cli("stake", "--key", "node", "--amount", "3000000", "--data-dir", data_dir, "--wait")
    assert staked.returncode == 0, staked.stderr
    wait_for_height(srv.client(), int(staked.stdout.split()[-1]) + 2)
    validators = json.loads(cli("ledger", "validators", "--data-dir", data_dir, "--json").stdout)["validators"]
    assert validators == [{"did": node_did, "power": 13, "proposerPriority": 0}]
    unstaked = cli("unstake", "--key", "node", "--amount", "3000000", "--data-dir", data_dir, "--wait")
    assert unstaked.returncode == 0, unstaked.stderr
    node_account = json.loads(cli("ledger", "account", node_did, "--data-dir", data_dir, "--json").stdout)
    assert node_account["stake"] == 10_000_000 and node_account["unbonding"] == 3_000_000
    bad = cli("transfer", "--key", "node", "--to", "did:key:nope", "--amount", "1", "--data-dir", data_dir)
    assert bad.returncode != 0


def test_commits_left_unanchored_by_a_crash_are_anchored_after_restart(server_factory):
    srv = server_factory("--block-interval", "1h")
    db = srv.client().profile
    time.sleep(0.3)
    db.users.insert_one({"_id": 1})
    assert db.command("proveRecord", "users", _id=1)["anchor"]["anchored"] is False
    srv.kill9()
    srv.extra_args = list(FAST)
    srv.start()
    db = srv.client().profile
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if db.command("proveRecord", "users", _id=1)["anchor"]["anchored"]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the commit acknowledged before the crash was never anchored")


def test_resource_nodes_and_ban_governance_from_the_cli(server_factory):
    srv = server_factory(*FAST)
    srv.client().admin.command("ping")
    data_dir = str(srv.data_dir)
    node_did = json.loads((srv.data_dir / "node.json").read_text())["did"]
    registered = cli("resource-node", "register", "--key", "node", "--types", "storage,database", "--deposit", "2000000",
                     "--data-dir", data_dir, "--wait")
    assert registered.returncode == 0, registered.stderr
    nodes = json.loads(cli("ledger", "resource-nodes", "--data-dir", data_dir, "--json").stdout)["resourceNodes"]
    assert nodes == [{"did": node_did, "types": ["storage", "database"], "deposit": 2000000, "registeredHeight": nodes[0]["registeredHeight"]}]
    assert cli("resource-node", "register", "--key", "node", "--types", "gpu", "--deposit", "1", "--data-dir", data_dir).returncode != 0
    # The node holds all the stake: its proposal carries its own yes vote, more than 2/3.
    content = "ab" * 32
    proposed = cli("ban", "propose", "--key", "node", "--hash", content, "--data-dir", data_dir, "--wait")
    assert proposed.returncode == 0, proposed.stderr
    wait_for_height(srv.client(), int(proposed.stdout.split()[-1]) + 1)
    bans = json.loads(cli("ledger", "bans", "--data-dir", data_dir, "--json").stdout)
    assert bans["banned"] == [content]
    assert bans["proposals"][0]["status"] == "passed" and bans["proposals"][0]["approvingStake"] == bans["proposals"][0]["totalStake"]
    # Proposing it again is refused by the chain: the transaction never lands.
    again = cli("ban", "propose", "--key", "node", "--hash", content, "--data-dir", data_dir, "--wait")
    assert again.returncode != 0
    assert cli("unjail", "--key", "node", "--data-dir", data_dir, "--wait").returncode != 0


def test_a_rolled_back_space_file_is_refused(server_factory, tmp_path):
    """A space file that is internally consistent but older than what the ledger anchored (a
    restored backup, a replaced file) is refused with the reason; the current file is served."""
    import shutil

    srv = server_factory()
    db = srv.client().profile
    users = db.get_collection("users", write_concern=WriteConcern(w="anchored", wtimeout=30000))
    users.insert_one({"_id": 1})
    space = db.command("proveRecord", "users", _id=1)["space"]
    srv.stop()
    path = srv.data_dir / "databases" / f"{space}.sqlite"
    shutil.copy(path, tmp_path / "old.sqlite")
    srv.start()
    users = srv.client().profile.get_collection("users", write_concern=WriteConcern(w="anchored", wtimeout=30000))
    users.insert_one({"_id": 2})
    srv.stop()
    shutil.copy(path, tmp_path / "new.sqlite")
    for suffix in ["-wal", "-shm"]:
        (srv.data_dir / "databases" / f"{space}.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "old.sqlite", path)
    srv.start()
    with pytest.raises(OperationFailure) as refused:
        srv.client().profile.users.find_one({"_id": 1})
    assert refused.value.code == 7100009 and "rolled back" in str(refused.value)
    srv.stop()
    shutil.copy(tmp_path / "new.sqlite", path)
    srv.start()
    assert srv.client().profile.users.count_documents({}) == 2


def test_a_dropped_and_recreated_space_is_not_taken_for_a_rollback(server_factory):
    srv = server_factory()
    client = srv.client()
    users = client.profile.get_collection("users", write_concern=WriteConcern(w="anchored", wtimeout=30000))
    users.insert_many([{"_id": i} for i in range(3)])
    client.drop_database("profile")
    users.insert_one({"_id": "again"})
    srv.restart()
    assert [d["_id"] for d in srv.client().profile.users.find()] == ["again"]


def test_a_node_limited_in_address_space_still_starts_and_anchors(tmp_path):
    # The chain's LMDB map reserves 64 GiB of address space; where `ulimit -v` forbids that, the
    # node opens it smaller instead of failing (it used to abort on a double free).
    import resource

    from pymongo import MongoClient

    from conftest import free_port

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))

    data = tmp_path / "limited"
    port = free_port()
    proc = subprocess.Popen([str(server_binary()), "serve", "--data-dir", str(data), "--port", str(port), "--log-level", "error",
                             *FAST], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    try:
        line = proc.stdout.readline()
        assert "ready: " in line, proc.stderr.read() if proc.poll() is not None else line
        client = MongoClient(line.split("ready: ")[1].split(" ")[0], directConnection=True, serverSelectionTimeoutMS=10000)
        wait_for_height(client, 2)
        result = anchored(client.profile).insert_one({"_id": "me", "name": "Ada"})
        assert result.acknowledged
        assert client.profile.users.find_one({"_id": "me"}) == {"_id": "me", "name": "Ada"}
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0
