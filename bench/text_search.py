#!/usr/bin/env python3
"""Text search cost: index writes and `$text` queries against one node (or two, to compare
builds). 20,000 documents (a 4-word title and a 30-word body over a 516-word vocabulary), a
text index on both (title weight 5); each query 20 times as a top-10 find sorted by
`{$meta: "textScore"}` plus a `count_documents`. Prints wall time and the server's CPU.

    python3 bench/text_search.py .build/release/stratosdb [other-build ...]
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pymongo

QUERIES = ["coffee", "lemon honey", '"coffee tea"', "w17"]


def run(binary: str) -> None:
    data = tempfile.mkdtemp(prefix="stratos-text-bench-")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    node = subprocess.Popen([binary, "serve", "--data-dir", data, "--port", str(port), "--dev-insecure", "--log-level", "error"],
                            stdout=subprocess.PIPE, text=True)
    try:
        node.stdout.readline()

        def cpu() -> float:
            with open(f"/proc/{node.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        db = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/").bench
        rng = random.Random(7)
        words = ["coffee", "tea", "cake", "running", "shopping", "baking", "milk", "sugar", "bread", "butter", "jam", "cream",
                 "honey", "lemon", "water", "juice"] + [f"w{i}" for i in range(500)]
        docs = [{"_id": i, "title": " ".join(rng.choice(words) for _ in range(4)), "body": " ".join(rng.choice(words) for _ in range(30))}
                for i in range(20_000)]
        db.posts.create_index([("title", "text"), ("body", "text")], weights={"title": 5})
        started, cpu_started = time.perf_counter(), cpu()
        for at in range(0, len(docs), 1000):
            db.posts.insert_many(docs[at:at + 1000])
        print(f"{binary}: insert_many of 20,000 documents: {time.perf_counter() - started:.2f} s, "
              f"server CPU {1e6 * (cpu() - cpu_started) / len(docs):.0f} µs a document")
        for query in QUERIES:
            started, cpu_started = time.perf_counter(), cpu()
            for _ in range(20):
                list(db.posts.find({"$text": {"$search": query}}, {"s": {"$meta": "textScore"}}).sort([("s", {"$meta": "textScore"})]).limit(10))
                found = db.posts.count_documents({"$text": {"$search": query}})
            print(f"{binary}: {query!r}: {found} matches; find + count {1000 * (time.perf_counter() - started) / 20:.1f} ms, "
                  f"server CPU {1000 * (cpu() - cpu_started) / 20:.1f} ms")
    finally:
        node.terminate()
        node.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    for binary in sys.argv[1:] or [".build/release/stratosdb"]:
        run(binary)
