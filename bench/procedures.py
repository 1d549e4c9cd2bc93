#!/usr/bin/env python3
"""Stored procedures against the aggregation pipeline, in one run on one node: a procedure that
scans N profile documents and sums a field (sdk/examples/summarize.c) against the equivalent
`aggregate` ($match + $group), plus fuel per document and the interpreter's raw speed.

    python3 bench/procedures.py --stratosdb-bin .build/release/stratosdb [--documents 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bson import Binary

sys.path.insert(0, os.path.dirname(__file__))
from spaces_overhead import Node, cpu_seconds, document  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compile_example(name: str, out_dir: str) -> bytes:
    output = os.path.join(out_dir, f"{name}.wasm")
    subprocess.run(
        ["clang", "--target=wasm32", "-O2", "-nostdlib", "-Wl,--no-entry", "-Wl,--export-dynamic", "-Wl,--allow-undefined",
         "-I", os.path.join(ROOT, "sdk", "include"), "-o", output, os.path.join(ROOT, "sdk", "examples", f"{name}.c")],
        check=True)
    return open(output, "rb").read()


def timed(node: Node, runs: int, body) -> tuple[float, float, object]:
    """Median wall seconds and server CPU seconds per run."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        cpu, started = cpu_seconds(node.process.pid), time.perf_counter()
        result = body()
        walls.append(time.perf_counter() - started)
        cpus.append(cpu_seconds(node.process.pid) - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stratosdb-bin", required=True)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()

    work = tempfile.mkdtemp()
    node = Node(arguments.stratosdb_bin, os.path.join(work, "data"), baseline=False)
    client = node.client()
    db = client.bench
    for start in range(0, arguments.documents, 1000):
        db.users.insert_many([document(i) for i in range(start, min(arguments.documents, start + 1000))])
    db.command("createProcedure", "summarize", code=Binary(compile_example("summarize", work)))
    pipeline = [{"$match": {"address.city": "London"}}, {"$group": {"_id": None, "count": {"$sum": 1}, "totalAge": {"$sum": "$age"}}}]

    aggregate_wall, aggregate_cpu, aggregate = timed(node, arguments.runs, lambda: list(db.users.aggregate(pipeline))[0])
    procedure_wall, procedure_cpu, reply = timed(
        node, arguments.runs, lambda: db.command("callProcedure", "summarize", args={"city": "London"}, fuel=2_000_000_000))
    assert reply["result"]["count"] == aggregate["count"] and reply["result"]["totalAge"] == aggregate["totalAge"], (reply, aggregate)
    all_wall, _, all_reply = timed(node, arguments.runs, lambda: db.command("callProcedure", "summarize", fuel=2_000_000_000))
    client.close()
    node.stop()

    n = arguments.documents
    print(f"## Stored procedures (`make bench-procedures`, {n:,} documents of ~1 KB, median of {arguments.runs} runs)\n")
    print("| scan and sum `age` of one city's profiles | wall ms | server CPU ms | ratio to aggregate |")
    print("|---|---|---|---|")
    print(f"| aggregate `$match` + `$group` | {aggregate_wall * 1e3:,.1f} | {aggregate_cpu * 1e3:,.1f} | 1.00 |")
    print(f"| callProcedure summarize (C → wasm32) | {procedure_wall * 1e3:,.1f} | {procedure_cpu * 1e3:,.1f} | "
          f"{procedure_wall / aggregate_wall:.2f} |")
    print()
    print(f"- fuel used: {reply['fuelUsed']:,} for {n:,} documents scanned ({reply['fuelUsed'] / n:,.0f} per document; "
          f"{reply['result']['count']:,} matched)")
    print(f"- without a filter (every document through the procedure): {all_wall * 1e3:,.1f} ms, fuel {all_reply['fuelUsed']:,} "
          f"({all_reply['fuelUsed'] / n:,.0f} per document)")
    print(f"- goal: procedure within 3x of the pipeline: {'met' if procedure_wall <= 3 * aggregate_wall else 'NOT met'} "
          f"({procedure_wall / aggregate_wall:.2f}x)")


if __name__ == "__main__":
    main()
