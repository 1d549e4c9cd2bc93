#!/usr/bin/env python3
"""Instructions per operation (issue #13): the server under valgrind's callgrind, counted
exactly, so two builds compare without this machine's timing noise.

Each build given runs as a node started as `make run` starts it (spaces, encryption at rest,
signed commits), under `valgrind --tool=callgrind` (a copy of the binary without its DWARF debug
sections: Debian 12's valgrind 3.19 cannot read the DWARF 5 that Swift emits, but function
symbols are enough), with `callgrind_shim.c` preloaded (valgrind 3.19 cannot run libdispatch's
`sigsuspend`; see that file). One pymongo client runs each workload: a warm-up, then callgrind's counters
are zeroed (`callgrind_control -z`), the workload runs `--ops` times, and the counters are dumped
(`callgrind_control -d`). The figure is instructions executed by the whole server process (every
thread) per operation.

    python3 bench/instructions.py --build after=.build/release/stratosdb [--build before=/path/to/old/stratosdb] [--output docs/benchmarks.md]

A build given as `label=path:baseline` runs with `--benchmark-baseline` (no authentication,
encryption or commits), to count what spaces add; `--keep DIR` copies the dumps there for
`callgrind_annotate`. The `insert_many` workload runs batches of 100 documents and is counted per
document.

Needs valgrind (`make bench` installs it). An old build runs here only if it has the LMDB fix of
2026-12-07 (valgrind refuses LMDB's 64 GiB map, and older builds aborted on that).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from docsection import replace_section  # noqa: E402
from spaces_overhead import document, free_port  # noqa: E402

WORKLOADS = ["ping", "point read by `_id`", "insert_one", "update_one `$inc`", "insert_many, per document"]
# insert_many runs `ops // 20` batches of this many documents; its figure is per document.
BATCH = 100


def instructions(binary: str, work: str, ops: int, baseline: bool = False) -> dict[str, float]:
    from pymongo import MongoClient

    stripped = os.path.join(work, "stratosdb")
    subprocess.run(["strip", "--strip-debug", "-o", stripped, binary], check=True)
    shim = os.path.join(work, "callgrind_shim.so")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", shim, os.path.join(HERE, "callgrind_shim.c")], check=True)
    data = os.path.join(work, "data")
    port = free_port()
    out = os.path.join(work, "callgrind.out")
    process = subprocess.Popen(
        # No ledger block while counting: the chain's periodic work would be counted with the
        # requests (the node is otherwise as `make run` starts it).
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", stripped, "serve", "--data-dir", data,
         "--port", str(port), "--log-level", "error", "--block-interval", "1h"]
        + (["--benchmark-baseline"] if baseline else []),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "LD_PRELOAD": shim})
    try:
        line = process.stdout.readline()
        if "ready: " not in line:
            raise SystemExit(f"{binary} did not start under valgrind: {line!r}")
        uri = line.split("ready: ")[1].split(" ")[0]
        client = MongoClient(uri, directConnection=True, maxPoolSize=1, serverSelectionTimeoutMS=120_000,
                             socketTimeoutMS=600_000)
        users = client.bench.users
        users.insert_many([document(i) for i in range(1000)])
        bodies = {
            "ping": lambda i: client.bench.command("ping"),
            "point read by `_id`": lambda i: users.find_one({"_id": i % 1000}),
            "insert_one": lambda i: users.insert_one(document(10_000 + i)),
            "update_one `$inc`": lambda i: users.update_one({"_id": i % 1000}, {"$inc": {"age": 1}}),
            "insert_many, per document": lambda i: users.insert_many([document(1_000_000 + i * BATCH + j) for j in range(BATCH)]),
        }
        results = {}
        for name in WORKLOADS:
            body = bodies[name]
            count = ops // 20 if name.startswith("insert_many") else ops
            for i in range(count // 5):
                body(i)
            control("-z", process.pid)
            for i in range(count):
                body(count + i)
            before = set(glob.glob(out + "*"))
            control("-d", process.pid)
            results[name] = dumped_instructions(out, before) / (count * BATCH if name.startswith("insert_many") else count)
            print(f"  {name}: {results[name]:,.0f} instructions/op", flush=True)
        client.close()
        return results
    finally:
        process.terminate()
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()


def control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True, timeout=120)


def dumped_instructions(out: str, before: set[str]) -> float:
    """The Ir total of the dump `callgrind_control -d` just wrote (it names dumps out.<pid>.<n>)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        new = sorted(set(glob.glob(out + "*")) - before, key=os.path.getmtime)
        for path in reversed(new):
            with open(path) as dump:
                for line in dump:
                    if line.startswith("totals:") or line.startswith("summary:"):
                        return float(line.split()[1])
        time.sleep(0.5)
    raise SystemExit("callgrind wrote no dump")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", action="append", required=True,
                        help="label=path of a stratosdb binary; label=path:baseline runs it with --benchmark-baseline "
                             "(no authentication, encryption or commits), to count what spaces add")
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--keep", default=None, help="copy each build's callgrind dumps into this directory "
                        "(one per workload, for callgrind_annotate)")
    parser.add_argument("--output", default=None, help="write the section into this markdown file")
    args = parser.parse_args()
    builds = [entry.split("=", 1) for entry in args.build]
    figures = {}
    for label, binary in builds:
        baseline = binary.endswith(":baseline")
        binary = binary.removesuffix(":baseline")
        print(f"{label}: {binary}{' --benchmark-baseline' if baseline else ''}", flush=True)
        work = tempfile.mkdtemp(prefix="stratos-callgrind-")
        try:
            figures[label] = instructions(binary, work, args.ops, baseline)
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                for number, path in enumerate(sorted(glob.glob(os.path.join(work, "callgrind.out*")), key=os.path.getmtime)):
                    shutil.copy(path, os.path.join(args.keep, f"{label}.{number}.callgrind"))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    labels = [label for label, _ in builds]
    lines = ["## Instructions per operation (`bench/instructions.py`, callgrind)", "",
             f"Run {when}; the server under valgrind's callgrind, one pymongo client, {args.ops} operations per "
             "workload after a warm-up, instructions of the whole server process per operation (spaces on, as "
             "`make run` starts a node, but no ledger block during the count; 1,000 documents of ~1 KB).", "",
             "| workload | " + " | ".join(labels) + (" | change |" if len(labels) == 2 else " |"),
             "|---|" + "--:|" * len(labels) + ("--:|" if len(labels) == 2 else "")]
    for name in WORKLOADS:
        row = f"| {name} | " + " | ".join(f"{figures[label][name]:,.0f}" for label in labels) + " |"
        if len(labels) == 2:
            first, second = figures[labels[0]][name], figures[labels[1]][name]
            row += f" {(second - first) / first * 100:+.1f} % |"
        lines.append(row)
    section = "\n".join(lines) + "\n"
    print(section)
    if args.output:
        replace_section(args.output, "## Instructions per operation", section)



if __name__ == "__main__":
    main()
