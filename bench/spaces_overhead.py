#!/usr/bin/env python3
"""What user-owned spaces cost: the same pymongo workloads, in one run, against a node with
authentication, encryption at rest and signed commits (the default) and against the same build
with all three off (`--benchmark-baseline`), plus export/verify/import throughput.

Reports throughput and server CPU per operation (utime+stime of the server process over the
timed section), and the ratios the spaces issue asks for: throughput >= 0.9x, CPU <= 1.15x.

    python3 bench/spaces_overhead.py --stratosdb-bin .build/release/stratosdb [--ops 5000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from pymongo import MongoClient

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CONCURRENT_CLIENTS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Node:
    def __init__(self, binary: str, data_dir: str, baseline: bool):
        self.binary, self.data_dir, self.port = binary, data_dir, free_port()
        args = [binary, "serve", "--data-dir", data_dir, "--port", str(self.port), "--log-level", "error"]
        if baseline:
            args.append("--benchmark-baseline")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        self.uri = line.split("ready: ")[1].split(" ")[0]

    def client(self) -> MongoClient:
        return MongoClient(self.uri, directConnection=True, maxPoolSize=1)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def document(i: int) -> dict:
    return {"_id": i, "name": f"Person {i}", "email": f"person{i}@example.org", "age": i % 90,
            "address": {"city": ["London", "Paris", "Tokyo"][i % 3], "street": "x" * 40},
            "bio": "b" * 800}


def run_workloads(node: Node, ops: int) -> dict[str, tuple[float, float]]:
    client = node.client()
    users = client.bench.users
    results = {}

    def timed(name, count, body):
        started_cpu, started = cpu_seconds(node.process.pid), time.perf_counter()
        body()
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(node.process.pid) - started_cpu
        results[name] = (count / elapsed, cpu / count * 1e6)

    timed("insert_one", ops, lambda: [users.insert_one(document(i)) for i in range(ops)])
    timed("find_one by _id", ops, lambda: [users.find_one({"_id": i % ops}) for i in range(ops)])
    timed("update_one $inc", ops, lambda: [users.update_one({"_id": i % ops}, {"$inc": {"age": 1}}) for i in range(ops)])
    # Concurrent single-document writes: group commit puts several clients' writes in one
    # transaction, so one signed commit (and one state-map root) serves all of them.
    clients = [MongoClient(node.uri, directConnection=True, maxPoolSize=1) for _ in range(CONCURRENT_CLIENTS)]
    per_client = ops // CONCURRENT_CLIENTS
    base = 10_000_000

    def concurrent_inserts():
        def work(index):
            target = clients[index].bench.concurrent
            for i in range(per_client):
                target.insert_one(document(base + index * per_client + i))
        with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
            list(pool.map(work, range(CONCURRENT_CLIENTS)))

    timed(f"insert_one, {CONCURRENT_CLIENTS} clients", per_client * CONCURRENT_CLIENTS, concurrent_inserts)
    for other in clients:
        other.close()
    batches = 20
    timed("insert_many (1000/batch)", batches * 1000,
          lambda: [users.insert_many([document(ops + b * 1000 + i) for i in range(1000)]) for b in range(batches)])
    client.close()
    return results


def archive_rates(binary: str, work: str, documents: int) -> dict[str, float]:
    data = os.path.join(work, "archive-node")
    node = Node(binary, data, baseline=False)
    client = node.client()
    for start in range(0, documents, 1000):
        client.bench.users.insert_many([document(i) for i in range(start, min(documents, start + 1000))])
    client.close()
    node.stop()
    space_id = [f[:-7] for f in os.listdir(os.path.join(data, "databases")) if f.endswith(".sqlite")][0]
    archive = os.path.join(work, "bench.stratos")
    rates = {}

    def timed(name, args):
        started = time.perf_counter()
        subprocess.run([binary, *args], check=True, capture_output=True)
        return time.perf_counter() - started

    document_bytes = sum(len(__import__("bson").encode(document(i))) for i in range(documents))
    rates["export"] = document_bytes / timed("export", ["space", "export", "--data-dir", data, "--key", "owner", "--space", space_id, "--out", archive]) / 1e6
    rates["verify (signatures, links)"] = document_bytes / timed("verify", ["space", "verify", archive, "--data-dir", data]) / 1e6
    rates["verify (with key: every state root)"] = document_bytes / timed("verify", ["space", "verify", archive, "--data-dir", data, "--key", "owner"]) / 1e6
    other = os.path.join(work, "import-node")
    Node(binary, other, baseline=False).stop()  # creates the node's identity
    key_copy = os.path.join(work, "owner.key")
    shutil.copy(os.path.join(data, "keys", "owner.key"), key_copy)
    rates["import (verify + build)"] = document_bytes / timed("import", ["space", "import", archive, "--data-dir", other, "--key", key_copy]) / 1e6
    rates["archive MB"] = os.path.getsize(archive) / 1e6
    rates["document MB"] = document_bytes / 1e6
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stratosdb-bin", required=True)
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--archive-documents", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratos-spaces-bench-") as work:
        results = {}
        for mode in ("baseline", "spaces"):
            node = Node(args.stratosdb_bin, os.path.join(work, mode), baseline=(mode == "baseline"))
            results[mode] = run_workloads(node, args.ops)
            node.stop()
        print("| workload | baseline ops/s | spaces ops/s | throughput ratio | baseline CPU µs/op | spaces CPU µs/op | CPU ratio |")
        print("|---|---|---|---|---|---|---|")
        for name, (base_rate, base_cpu) in results["baseline"].items():
            rate, cpu = results["spaces"][name]
            print(f"| {name} | {base_rate:,.0f} | {rate:,.0f} | {rate / base_rate:.2f} | {base_cpu:.0f} | {cpu:.0f} | {cpu / base_cpu:.2f} |")
        rates = archive_rates(args.stratosdb_bin, work, args.archive_documents)
        print()
        print(f"Archive of {args.archive_documents:,} documents ({rates.pop('document MB'):.0f} MB of BSON, archive {rates.pop('archive MB'):.0f} MB):")
        for name, rate in rates.items():
            print(f"- {name}: {rate:.0f} MB/s of documents")


if __name__ == "__main__":
    main()
