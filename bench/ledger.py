#!/usr/bin/env python3
"""The ledger's figures, in one run (issue: proof-of-stake ledger):

1. What anchoring costs a write: insert_one at w:1 against one node with its ledger (1 s
   blocks) and the same build with `--benchmark-no-ledger` — throughput and server CPU per
   operation (utime+stime of the server over the timed section). Goal: <= 5 % more CPU.
2. `w: "anchored"` latency on one node and on four loopback validators (`cluster up`),
   writes arriving at random moments, as a multiple of the block interval. Goal: p50 <= 1.5.
3. Block commit latency on four loopback validators: the median time from a block's proposal
   to its storage, as each node reports it (`ledgerStatus`). Goal: <= 100 ms.
4. How many space commits one block anchors: `stratosdb ledger benchmark-anchoring` decides a
   block with one anchor transaction for N commits through the real consensus machine, stores
   it with N audit paths in LMDB, and reads back and verifies every proof. Goal: >= 10,000.

    python3 bench/ledger.py --stratosdb-bin .build/release/stratosdb
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

from pymongo import MongoClient, WriteConcern

from spaces_overhead import cpu_seconds, free_port

class Node:
    def __init__(self, binary: str, data_dir: str, *extra: str):
        self.port = free_port()
        args = [binary, "serve", "--data-dir", data_dir, "--port", str(self.port), "--log-level", "error", *extra]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.uri = self.process.stdout.readline().split("ready: ")[1].split(" ")[0]

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def document(i: int) -> dict:
    return {"_id": i, "name": f"Person {i}", "email": f"person{i}@example.org", "age": i % 90, "bio": "b" * 800}


def insert_cost(binary: str, work: str, ops: int, *extra: str) -> tuple[float, float]:
    node = Node(binary, os.path.join(work, "node" + "".join(extra).replace("-", "")), *extra)
    try:
        users = MongoClient(node.uri, maxPoolSize=1).bench.users
        users.insert_one({"_id": "warm"})
        cpu, started = cpu_seconds(node.process.pid), time.perf_counter()
        for i in range(ops):
            users.insert_one(document(i))
        elapsed, used = time.perf_counter() - started, cpu_seconds(node.process.pid) - cpu
        return ops / elapsed, used / ops * 1e6
    finally:
        node.stop()


def anchored_latencies(uri: str, writes: int, interval: float) -> list[float]:
    users = MongoClient(uri, maxPoolSize=1).bench.get_collection("anchored", write_concern=WriteConcern(w="anchored", wtimeout=60000))
    rng = random.Random(7)
    latencies = []
    for i in range(writes):
        time.sleep(rng.random() * interval)
        started = time.perf_counter()
        users.insert_one({"i": i})
        latencies.append(time.perf_counter() - started)
    return sorted(latencies)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stratosdb-bin", required=True)
    parser.add_argument("--ops", type=int, default=4000)
    parser.add_argument("--writes", type=int, default=40)
    args = parser.parse_args()
    binary = args.stratosdb_bin
    work = tempfile.mkdtemp(prefix="stratos-ledger-bench-")
    try:
        print("## 1. What anchoring costs a write (insert_one, 1 KB, w:1, one client)")
        with_tp, with_cpu = insert_cost(binary, work, args.ops)
        without_tp, without_cpu = insert_cost(binary, work, args.ops, "--benchmark-no-ledger")
        print(f"| | ops/s | server CPU µs/op |\n|---|---|---|")
        print(f"| spaces, no ledger | {without_tp:,.0f} | {without_cpu:.0f} |")
        print(f"| spaces + ledger (1 s blocks) | {with_tp:,.0f} | {with_cpu:.0f} |")
        print(f"| ratio | {with_tp / without_tp:.2f} | {with_cpu / without_cpu:.2f} |\n")

        print("## 2. w: \"anchored\" latency (writes at random moments)")
        print("| setup | block interval | p50 | p90 | p50 / interval |\n|---|---|---|---|---|")
        for interval in (1.0,):
            node = Node(binary, os.path.join(work, f"single{interval}"), "--block-interval", f"{int(interval * 1000)}ms")
            try:
                lat = anchored_latencies(node.uri, args.writes // 2, interval)
            finally:
                node.stop()
            p50, p90 = lat[len(lat) // 2], lat[int(len(lat) * 0.9)]
            print(f"| one node | {interval:.1f} s | {p50 * 1000:.0f} ms | {p90 * 1000:.0f} ms | {p50 / interval:.2f} |")
        cluster_dir = os.path.join(work, "cluster")
        uris = subprocess.run([binary, "cluster", "up", "--nodes", "4", "--data-dir", cluster_dir, "--block-interval", "1s"],
                              capture_output=True, text=True, check=True).stdout.split()
        try:
            time.sleep(3)
            lat = anchored_latencies(uris[1], args.writes, 1.0)
            p50, p90 = lat[len(lat) // 2], lat[int(len(lat) * 0.9)]
            print(f"| 4 validators, loopback | 1.0 s | {p50 * 1000:.0f} ms | {p90 * 1000:.0f} ms | {p50:.2f} |\n")
            print("## 3. Block commit latency, 4 validators on loopback (proposal → stored, per node)")
            medians = [MongoClient(uri).admin.command("ledgerStatus").get("blockCommitLatencyMillisMedian") for uri in uris]
            heights = [MongoClient(uri).admin.command("ledgerStatus")["height"] for uri in uris]
            print(f"median per node: {medians} ms (heights {heights})\n")
        finally:
            subprocess.run([binary, "cluster", "down", "--data-dir", cluster_dir], capture_output=True)

        print("## 4. Space commits anchored by one block")
        for commits in (10_000, 100_000):
            out = subprocess.run([binary, "ledger", "benchmark-anchoring", "--commits", str(commits), "--directory", os.path.join(work, f"anchor{commits}")],
                                 capture_output=True, text=True, check=True).stdout
            values = dict(line.split(" ", 1) for line in out.strip().splitlines())
            print(f"- {commits:,} commits: batch tree {values['batch_tree_ms']} ms, block decided {values['decide_block_ms']} ms, "
                  f"audit paths {values['audit_paths_ms']} ms, LMDB write {values['store_block_and_locations_ms']} ms, "
                  f"{values['proofs_verified']} proofs read and verified at {values['proof_read_and_verify_ms_each']} ms each; "
                  f"{values['transactions_in_block']} transaction in the block")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
