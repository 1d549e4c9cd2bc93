#!/usr/bin/env python3
"""Scale (issue #13): load millions of ~1 KB user profiles with insert_many into one space and
show that reads stay O(log n), memory stays flat and the write-ahead log stays bounded.

One StratosDB node, started as `make run` starts it (spaces, encryption at rest, signed
commits). The collection gets two secondary indexes before the load (`email`, unique, and
`{city: 1, age: 1}`). While loading, the server's RSS and the size of the space's database
file and write-ahead log are sampled every few seconds. At 10,000 documents and again at the
end, with one pymongo client and a fixed number of operations, the benchmark measures the
server CPU per operation of a point read by `_id` and of an index lookup by `email`. After the
load it reports RSS, file size, and the time of `count_documents({})` and of an indexed range
query.

    python3 bench/scale.py --stratosdb-bin .build/release/stratosdb [--docs 10000000] [--output docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from docsection import replace_section  # noqa: E402
from spaces_overhead import Node, cpu_seconds  # noqa: E402

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
BATCH = 1000
CITIES = ["London", "Paris", "Tokyo", "Lagos", "Lima", "Oslo", "Perth", "Quito"]


def profile(n: int) -> dict:
    return {"_id": n, "name": f"Person {n}", "email": f"person{n:09d}@example.org", "city": CITIES[n % len(CITIES)],
            "age": 18 + n % 70, "address": {"street": f"{n % 977} Example Street", "postcode": f"{n % 99999:05d}"},
            "bio": "b" * 800}


def rss_mib(pid: int) -> float:
    return int(open(f"/proc/{pid}/statm").read().split()[1]) * PAGE_SIZE / 2**20


def space_files(data_dir: str) -> tuple[int, int]:
    """Bytes of the largest space database file and of its write-ahead log."""
    best = (0, 0)
    for root, _, files in os.walk(data_dir):
        for name in files:
            if name.endswith(".sqlite"):
                path = os.path.join(root, name)
                size = os.path.getsize(path)
                wal = os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
                if size > best[0]:
                    best = (size, wal)
    return best


class Sampler(threading.Thread):
    """Samples RSS and the space's file and WAL sizes every `interval` seconds."""

    def __init__(self, pid: int, data_dir: str, interval: float = 2.0):
        super().__init__(daemon=True)
        self.pid, self.data_dir, self.interval = pid, data_dir, interval
        self.max_rss = self.max_wal = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.max_rss = max(self.max_rss, rss_mib(self.pid))
                self.max_wal = max(self.max_wal, space_files(self.data_dir)[1] / 2**20)
            except OSError:
                pass


def per_op_cpu(pid: int, ops: int, body) -> float:
    """Server CPU µs per operation over `ops` calls of `body(i)` (one warm-up pass first)."""
    for i in range(min(ops, 500)):
        body(i)
    started = cpu_seconds(pid)
    for i in range(ops):
        body(i)
    return (cpu_seconds(pid) - started) / ops * 1e6


def read_costs(pid: int, users, loaded: int, ops: int) -> dict:
    # Spread over the whole collection (a stride that is prime to any loaded count).
    pick = lambda i: (i * 7_919_993) % loaded  # noqa: E731
    return {
        "point_read": per_op_cpu(pid, ops, lambda i: users.find_one({"_id": pick(i)})),
        "email_lookup": per_op_cpu(pid, ops, lambda i: users.find_one({"email": f"person{pick(i):09d}@example.org"})),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stratosdb-bin", required=True)
    parser.add_argument("--docs", type=int, default=10_000_000)
    parser.add_argument("--clients", type=int, default=2, help="loading connections (batches are sent in parallel)")
    parser.add_argument("--read-ops", type=int, default=5000, help="operations per read-cost measurement")
    parser.add_argument("--output", default=None, help="write the section into this markdown file")
    parser.add_argument("--tmpdir", default=None)
    args = parser.parse_args()
    from pymongo import MongoClient

    work = tempfile.mkdtemp(prefix="stratos-scale-", dir=args.tmpdir)
    data_dir = os.path.join(work, "data")
    server = Node(args.stratosdb_bin, data_dir, baseline=False)
    node = server.process
    try:
        clients = [MongoClient(server.uri, directConnection=True, maxPoolSize=1) for _ in range(max(1, args.clients))]
        users = clients[0].profiles.users
        users.create_index("email", unique=True)
        users.create_index([("city", 1), ("age", 1)])
        sampler = Sampler(node.pid, data_dir)
        sampler.start()

        small = min(10_000, args.docs)
        users.insert_many([profile(n) for n in range(small)])
        at_small = read_costs(node.pid, users, small, args.read_ops)
        print(f"at {small:,} documents: point read {at_small['point_read']:.0f} µs/op, email lookup {at_small['email_lookup']:.0f} µs/op",
              flush=True)

        batches = range(small, args.docs, BATCH)
        started, cpu_started = time.perf_counter(), cpu_seconds(node.pid)
        progress = {"done": 0}

        def load(index: int) -> None:
            target = clients[index].profiles.users
            for first in batches[index::len(clients)]:
                target.insert_many([profile(n) for n in range(first, min(first + BATCH, args.docs))], ordered=False)
                progress["done"] += 1
                if progress["done"] % 500 == 0:
                    elapsed = time.perf_counter() - started
                    done = progress["done"] * BATCH
                    size, wal = space_files(data_dir)
                    print(f"  {small + done:,} documents, {done / elapsed:,.0f} docs/s since the start, RSS {rss_mib(node.pid):.0f} MiB, "
                          f"file {size / 2**30:.2f} GiB, WAL {wal / 2**20:.0f} MiB", flush=True)

        with ThreadPoolExecutor(len(clients)) as pool:
            list(pool.map(load, range(len(clients))))
        load_seconds = time.perf_counter() - started
        load_cpu = cpu_seconds(node.pid) - cpu_started
        loaded = args.docs - small
        sampler.stopped.set()
        sampler.join()

        rss_after = rss_mib(node.pid)
        file_bytes, wal_bytes = space_files(data_dir)
        t0 = time.perf_counter()
        counted = users.count_documents({})
        count_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        ranged = list(users.find({"city": "Paris", "age": {"$gte": 30, "$lt": 32}}).limit(1000))
        range_seconds = time.perf_counter() - t0
        at_large = read_costs(node.pid, users, args.docs, args.read_ops)
        rss_end = rss_mib(node.pid)
        if counted != args.docs:
            raise SystemExit(f"count_documents returned {counted:,}, expected {args.docs:,}")

        rows = [
            ("documents loaded with insert_many (1,000 per batch)", f"{args.docs:,} ({len(clients)} connections)"),
            ("load time", f"{load_seconds:,.0f} s"),
            ("load rate", f"{loaded / load_seconds:,.0f} docs/s"),
            ("server CPU per document loaded", f"{load_cpu / loaded * 1e6:.1f} µs"),
            ("peak RSS during the load", f"{sampler.max_rss:,.0f} MiB"),
            ("RSS after the load", f"{rss_after:,.0f} MiB ({rss_end:,.0f} MiB after the read measurements)"),
            ("space file size", f"{file_bytes / 2**30:,.2f} GiB ({file_bytes / args.docs:,.0f} bytes per document)"),
            ("largest write-ahead log seen during the load", f"{sampler.max_wal:,.0f} MiB (at the end: {wal_bytes / 2**20:,.0f} MiB)"),
            ("`count_documents({})`", f"{count_seconds * 1000:,.0f} ms"),
            (f"indexed range query (`city`, `age` range, first {len(ranged):,} documents)", f"{range_seconds * 1000:,.1f} ms"),
            (f"point read by `_id`, server CPU per operation at {small:,} / {args.docs:,} documents",
             f"{at_small['point_read']:.0f} / {at_large['point_read']:.0f} µs ({at_large['point_read'] / at_small['point_read']:.2f}×)"),
            (f"index lookup by `email`, server CPU per operation at {small:,} / {args.docs:,} documents",
             f"{at_small['email_lookup']:.0f} / {at_large['email_lookup']:.0f} µs ({at_large['email_lookup'] / at_small['email_lookup']:.2f}×)"),
        ]
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        section = [f"## Scale: {args.docs:,} user profiles in one space (`make bench`, bench/scale.py)", "",
                   f"Run {when} on this machine ({os.cpu_count()} cores), one run; a node as `make run` starts it "
                   "(spaces, encryption at rest, signed commits), two secondary indexes (`email` unique, `{city, age}`) "
                   "created before the load; documents ≈ 1 KB.", "", "| measure | value |", "|---|---|"]
        section += [f"| {name} | {value} |" for name, value in rows]
        text = "\n".join(section) + "\n"
        print(text)
        if args.output:
            write_section(args.output, text)
        for client in clients:
            client.close()
    finally:
        try:
            server.stop()
        except subprocess.TimeoutExpired:
            node.kill()
        shutil.rmtree(work, ignore_errors=True)


def write_section(path: str, section: str) -> None:
    replace_section(path, "## Scale: ", section)


if __name__ == "__main__":
    main()
