"""A real network: four validators as real processes on loopback (`stratosdb cluster up`),
a pymongo client writing with `w: "anchored"`, and faults as real signals — `kill -9` of one
validator, `SIGSTOP` of another for 10 s, a restart. Blocks keep being finalized while three
are live, every node ends on the same chain, the restarted node catches up, no acknowledged
write is missing, and anchored writes prove offline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from bson import json_util
from pymongo import MongoClient, WriteConcern

from conftest import server_binary


def cli(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([str(server_binary()), *args], capture_output=True, text=True, timeout=timeout)


class Cluster:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir

    @property
    def file(self) -> dict:
        return json.loads((self.data_dir / "cluster" / "cluster.json").read_text())

    def pid(self, index: int) -> int:
        return self.file["nodes"][index]["pid"]

    def status(self) -> list[dict]:
        result = cli("cluster", "status", "--data-dir", str(self.data_dir), "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["nodes"]

    def heights(self) -> list[int]:
        return [node["height"] for node in self.status()]

    def block_hash(self, index: int, height: int) -> str:
        result = cli("ledger", "block", str(height), "--data-dir", str(self.data_dir), "--node", str(index), "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["hash"]

    def wait(self, predicate, what: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            heights = self.heights()
            if predicate(heights):
                return heights
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}: heights {self.heights()}")


@pytest.fixture
def cluster(tmp_path):
    data_dir = tmp_path / "net"
    up = cli("cluster", "up", "--nodes", "4", "--data-dir", str(data_dir), "--block-interval", "200ms")
    assert up.returncode == 0, up.stderr
    uris = up.stdout.split()
    assert len(uris) == 4 and all(uri.startswith("mongodb://owner:") for uri in uris)
    handle = Cluster(data_dir)
    handle.uris = uris
    try:
        yield handle
    finally:
        for node in handle.file["nodes"]:
            if node.get("pid"):
                try:
                    os.kill(node["pid"], signal.SIGCONT)
                except ProcessLookupError:
                    pass
        cli("cluster", "down", "--data-dir", str(data_dir))


def test_cluster_commands(cluster):
    cluster.wait(lambda h: min(h) >= 3, "the first blocks")
    lines = cli("cluster", "status", "--data-dir", str(cluster.data_dir)).stdout.splitlines()
    assert len(lines) == 4
    for index, line in enumerate(lines):
        assert line.startswith(f"node{index} up height ") and " validator yes" in line and " peers 3 " in line
    for node in cluster.status():
        assert node["validator"] is True and len(node["peers"]) == 3
    # Any node serves pymongo, and all four are validators of one chain.
    statuses = [MongoClient(uri).admin.command("ledgerStatus") for uri in cluster.uris]
    assert len({status["chainId"] for status in statuses}) == 1
    assert all(len(status["validators"]) == 4 for status in statuses)
    validators = cli("ledger", "validators", "--data-dir", str(cluster.data_dir), "--node", "2", "--json")
    assert len(json.loads(validators.stdout)["validators"]) == 4
    # `up` again while it runs is refused; restart brings one node back with its URI.
    again = cli("cluster", "up", "--nodes", "4", "--data-dir", str(cluster.data_dir))
    assert again.returncode != 0 and "already up" in again.stderr
    restarted = cli("cluster", "restart", "1", "--data-dir", str(cluster.data_dir))
    assert restarted.returncode == 0 and restarted.stdout.strip() == cluster.uris[1]


def test_faults_kill9_sigstop_restart(cluster, tmp_path):
    cluster.wait(lambda h: min(h) >= 2, "the first blocks")
    client = MongoClient(cluster.uris[0])
    coll = client.profile.get_collection("users", write_concern=WriteConcern(w="anchored", wtimeout=60000))
    acknowledged: list[int] = []
    failures: list[Exception] = []
    stop = threading.Event()

    def writer():
        index = 0
        while not stop.is_set():
            try:
                coll.insert_one({"_id": index, "payload": "x" * 100})
                acknowledged.append(index)
            except Exception as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)
                return
            index += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(1.5)
        # kill -9 one validator: three are live, blocks keep being finalized.
        os.kill(cluster.pid(3), signal.SIGKILL)
        start = cluster.heights()
        cluster.wait(lambda h: all(h[i] >= start[i] + 5 for i in range(3)), "progress with node 3 killed")
        # SIGSTOP a second one: two are live, no quorum; restart the first: three again.
        stopped_pid = cluster.pid(2)
        os.kill(stopped_pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        restart = cli("cluster", "restart", "3", "--data-dir", str(cluster.data_dir))
        assert restart.returncode == 0, restart.stderr
        before = cluster.heights()
        cluster.wait(lambda h: h[0] >= before[0] + 5 and h[3] >= before[0] + 5, "progress and catch-up with node 2 stopped")
        time.sleep(max(0.0, 10.0 - (time.monotonic() - stopped_at)))
        os.kill(stopped_pid, signal.SIGCONT)
        top = max(cluster.heights())
        cluster.wait(lambda h: min(h) >= top + 3, "every node past the height of the resume")
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join(90)
    assert not failures, failures
    assert len(acknowledged) >= 10, f"only {len(acknowledged)} anchored writes went through"

    # Every node is on the same chain: the same block hash at a common height (each header
    # names its predecessor's hash, so the whole chain below agrees too), and spot checks.
    common = min(cluster.heights())
    for height in {1, common // 3, common // 2, common}:
        hashes = {cluster.block_hash(index, max(1, height)) for index in range(4)}
        assert len(hashes) == 1, f"nodes disagree at height {height}: {hashes}"

    # No acknowledged write is missing.
    present = {doc["_id"] for doc in client.profile.users.find({}, {"_id": 1})}
    assert set(acknowledged) <= present
    # Anchored writes prove offline against the cluster's genesis validators.
    coll.insert_one({"_id": "last"})
    reply = client.profile.command("proveRecord", "users", _id=acknowledged[len(acknowledged) // 2])
    assert reply["anchor"]["anchored"] is True
    assert 3 * reply["anchor"]["signedPower"] > 2 * reply["anchor"]["totalPower"]
    proof = tmp_path / "proof.json"
    proof.write_text(json_util.dumps(reply))
    checked = cli("verify-proof", str(proof), "--genesis", str(cluster.data_dir / "cluster" / "genesis.json"), "--require-anchor")
    assert checked.returncode == 0, checked.stderr
