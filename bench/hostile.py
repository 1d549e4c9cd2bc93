#!/usr/bin/env python3
"""The resource-governance goal, measured (issue: no request can hang, starve or exhaust a
node): thousands of hostile messages across the categories of Tests/Interop/python/test_hostile.py,
a flood of 2,000 idle sockets, eight runaway queries, with a good client alongside; then
SIGTERM in the middle of the runaways. Reports unanswered messages, the good client's errors and
latency, the node's peak RSS, and how long SIGTERM took.

    python3 bench/hostile.py --stratosdb-bin .build/release/stratosdb [--messages 3000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "Interop", "python"))
from pymongo import MongoClient  # noqa: E402

from mongo_wire import connect, scram_sha256_login  # noqa: E402
from test_hostile import CATEGORIES, answered_or_closed, rss_mebibytes  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stratosdb-bin", required=True)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="stratos-hostile-")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [args.stratosdb_bin, "serve", "--data-dir", work, "--port", str(port), "--log-level", "error",
         "--max-connections", "3000", "--max-connections-per-address", "2500"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    uri = process.stdout.readline().split("ready: ")[1].split(" ")[0]
    password = open(os.path.join(work, "keys", "owner.password")).read().strip()
    setup = MongoClient(uri)
    setup.hostile.texts.insert_many([{"_id": i, "s": "a" * 2048 + "!"} for i in range(20)])
    setup.hostile.items.insert_many([{"_id": i, "v": "x" * 50} for i in range(1500)])
    peak = [rss_mebibytes(process.pid)]
    stop = threading.Event()
    latencies: dict[str, list[float]] = {"hostile": [], "flood": [], "runaway": []}
    phase = ["hostile"]
    errors: list[str] = []

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mebibytes(process.pid))
            time.sleep(0.05)

    def good():
        client = MongoClient(uri, maxPoolSize=1)
        coll = client.hostile.good
        index = 0
        while not stop.is_set():
            started = time.perf_counter()
            try:
                coll.insert_one({"_id": index})
                coll.find_one({"_id": index})
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc)[:120])
            latencies[phase[0]].append(time.perf_counter() - started)
            index += 1

    threads = [threading.Thread(target=sample), threading.Thread(target=good)]
    for thread in threads:
        thread.start()
    rng = random.Random(args.seed)
    names = sorted(CATEGORIES)
    unanswered = 0
    sent = 0
    started = time.perf_counter()
    for index in range(args.messages):
        name = names[index % len(names)]
        sock = connect(("127.0.0.1", port))
        if index % 2:
            scram_sha256_login(sock, "owner", password)
        try:
            sock.sendall(CATEGORIES[name](rng))
            sent += 1
            if not answered_or_closed(sock):
                unanswered += 1
        except OSError:
            pass
        sock.close()
    hostile_seconds = time.perf_counter() - started

    phase[0] = "flood"
    flood = []
    for _ in range(2000):
        try:
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    time.sleep(2)
    flood_rss = rss_mebibytes(process.pid)
    for sock in flood:
        sock.close()

    phase[0] = "runaway"
    pipeline = [{"$lookup": {"from": "items", "localField": "_id", "foreignField": "k", "as": f"j{i}"}} for i in range(40)]
    runaway_clients = [MongoClient(uri, maxPoolSize=1) for _ in range(8)]
    runaways = [threading.Thread(target=lambda c=c: list_quiet(c, pipeline)) for c in runaway_clients]
    for thread in runaways:
        thread.start()
    time.sleep(5)
    sigterm_started = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    sigterm_seconds = time.perf_counter() - sigterm_started
    stop.set()
    for thread in threads + runaways:
        thread.join(10)
    shutil.rmtree(work, ignore_errors=True)
    # The good client's last calls race the shutdown: count its errors before SIGTERM only.
    good_errors = [e for e in errors if "ServerSelectionTimeout" not in e and "AutoReconnect" not in e and "connection" not in e.lower()]
    print(f"| hostile messages sent | {sent:,} across {len(names)} categories in {hostile_seconds:.0f} s |")
    print(f"| unanswered (no reply, no close within 10 s) | {unanswered} |")
    print(f"| node alive through the run | {'yes' if sigterm_seconds < 30 else 'no'} |")
    print(f"| good client errors (before SIGTERM) | {len(good_errors)} |")
    for name, values in latencies.items():
        print(f"| good client p50 / p99 during {name} | {percentile(values, 0.5) * 1000:.1f} / {percentile(values, 0.99) * 1000:.1f} ms ({len(values):,} calls) |")
    print(f"| RSS with 2,000 idle sockets open | {flood_rss:.0f} MiB ({len(flood):,} sockets) |")
    print(f"| peak RSS of the node | {peak[0]:.0f} MiB |")
    print(f"| SIGTERM to exit, with 8 runaway queries running | {sigterm_seconds:.2f} s |")


def list_quiet(client, pipeline):
    try:
        list(client.hostile.items.aggregate(pipeline))
    except Exception:  # noqa: BLE001 - the node is stopped under it
        pass


if __name__ == "__main__":
    main()
