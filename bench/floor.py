#!/usr/bin/env python3
"""Client floor, server CPU per operation, and C clients (issue #13's fair benchmark), in one run.

Three servers run side by side on loopback: a do-nothing MongoDB-wire server
(bench/floor_server.c: a canned reply to every message, so a client's throughput against it is
the most any server could give that client), StratosDB (release build, spaces, encryption and
the ledger on, as `make run` starts it), and PostgreSQL 15 (bench/postgres.py). The same
~1 KB profile documents are loaded into StratosDB and into a PostgreSQL JSONB table.

- pymongo against the floor and StratosDB, psycopg against PostgreSQL (1 client): throughput,
  StratosDB/floor, and pymongo-vs-psycopg (what a Python user sees).
- A C client (bench/c_client.c): libmongoc against StratosDB and the floor, libpq against
  PostgreSQL, 1 and 4 clients, relaxed (w:1 / synchronous_commit=off) and durable (j:true /
  synchronous_commit=on): throughput ratios compare servers, not client libraries.
- Server CPU per operation for every cell: the StratosDB process's utime+stime; for
  PostgreSQL, the postmaster and every child (backends, WAL writer, checkpointer, …, including
  backends that exited during the cell, through the postmaster's cutime/cstime).

    python3 bench/floor.py --stratosdb-bin .build/release/stratosdb [--ops 3000] [--output docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from postgres import PostgresServer  # noqa: E402
from docsection import replace_section  # noqa: E402
from spaces_overhead import Node, free_port  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RECORDS = 10_000
WORKLOADS = ["ping", "point_read", "insert", "update"]


def document(n: int) -> dict:
    return {"_id": f"user{n:010d}", "name": f"Person {n}", "email": f"person{n}@example.org", "age": 20 + n % 50,
            "address": {"city": "London", "street": "1 Example Street"}, "bio": "b" * 800}


def stat_fields(pid: int) -> list[str] | None:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree_cpu(root: int, with_reaped: bool) -> float:
    """CPU seconds of `root` and its live descendants (plus, with `with_reaped`, children the
    root has reaped: cutime/cstime)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        fields = stat_fields(pid)
        if not fields:
            continue
        total += int(fields[11]) + int(fields[12])
        if pid == root and with_reaped:
            total += int(fields[13]) + int(fields[14])
        stack.extend(children.get(pid, []))
    return total / CLOCK_TICKS


def build(work: str) -> tuple[str, str]:
    floor = os.path.join(work, "floor_server")
    client = os.path.join(work, "c_client")
    subprocess.run(["cc", "-O2", "-pthread", "-o", floor, os.path.join(HERE, "floor_server.c")], check=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libmongoc-1.0", "libpq"], check=True, capture_output=True,
                           text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-pthread", "-o", client, os.path.join(HERE, "c_client.c"), *flags], check=True)
    return floor, client


class Target:
    """A server and how to read its CPU."""

    def __init__(self, name: str, cpu):
        self.name, self.cpu = name, cpu


def measure(target: Target, body) -> tuple[object, float]:
    before = target.cpu()
    result = body()
    return result, target.cpu() - before


def python_cells(args, floor_uri: str, stratos: Node, stratos_target: Target, pg: PostgresServer, pg_target: Target) -> list[dict]:
    import psycopg
    from pymongo import MongoClient, WriteConcern

    rows = []
    ops = args.ops
    floor_users = MongoClient(floor_uri, directConnection=True).bench.users
    stratos_client = MongoClient(stratos.uri, directConnection=True, maxPoolSize=1)
    stratos_users = stratos_client.bench.get_collection("users", write_concern=WriteConcern(w=1))
    connection = psycopg.connect(pg.conninfo, autocommit=True)
    connection.execute("SET synchronous_commit TO off")
    cursor = connection.cursor()

    def mongo_body(users, workload, tag):
        if workload == "ping":
            return lambda: [users.database.command("ping") for _ in range(ops)]
        if workload == "point_read":
            return lambda: [users.find_one({"_id": f"user{(i * 7919) % RECORDS:010d}"}) for i in range(ops)]
        if workload == "insert":
            return lambda: [users.insert_one({**document(i), "_id": f"py-{tag}-{i}"}) for i in range(ops)]
        return lambda: [users.update_one({"_id": f"user{(i * 7919) % RECORDS:010d}"}, {"$inc": {"age": 1}}) for i in range(ops)]

    def pg_body(workload):
        if workload == "ping":
            return lambda: [cursor.execute("SELECT 1") for _ in range(ops)]
        if workload == "point_read":
            return lambda: [(cursor.execute("SELECT doc FROM users WHERE id = %s", (f"user{(i * 7919) % RECORDS:010d}",)), cursor.fetchone())
                            for i in range(ops)]
        if workload == "insert":
            return lambda: [cursor.execute("INSERT INTO users(id, doc) VALUES (%s, %s::jsonb)", (f"py-{i}", json.dumps(document(i))))
                            for i in range(ops)]
        return lambda: [cursor.execute("UPDATE users SET doc = jsonb_set(doc, '{age}', to_jsonb((doc->>'age')::int + 1)) WHERE id = %s",
                                       (f"user{(i * 7919) % RECORDS:010d}",)) for i in range(ops)]

    for workload in WORKLOADS:
        row = {"workload": workload}
        started = time.perf_counter()
        mongo_body(floor_users, workload, "floor")()
        row["floor"] = ops / (time.perf_counter() - started)
        started = time.perf_counter()
        _, cpu = measure(stratos_target, mongo_body(stratos_users, workload, "stratos"))
        row["stratos"] = ops / (time.perf_counter() - started)
        row["stratos_cpu_us"] = cpu / ops * 1e6
        started = time.perf_counter()
        _, cpu = measure(pg_target, pg_body(workload))
        row["pg"] = ops / (time.perf_counter() - started)
        row["pg_cpu_us"] = cpu / ops * 1e6
        rows.append(row)
    connection.close()
    stratos_client.close()
    return rows


def c_cells(args, client_bin: str, floor_uri: str, stratos: Node, stratos_target: Target, pg: PostgresServer, pg_target: Target) -> list[dict]:
    rows = []

    def run(mode, target_text, workload, clients, durable):
        ops = max(200, args.ops // clients)
        result = subprocess.run([client_bin, mode, target_text, workload, str(clients), str(ops), str(RECORDS), str(int(durable))],
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"c_client {mode} {workload}: {result.stdout} {result.stderr}")
        return json.loads(result.stdout)

    stratos_uri = stratos.uri + ("&" if "?" in stratos.uri else "?") + "directConnection=true"
    for durable in (False, True):
        for clients in (1, 4, 16):
            for workload in WORKLOADS:
                if durable and workload in ("ping", "point_read"):
                    continue
                # 16 clients on 2 cores: the tail-latency check (p99 against p50) for reads.
                if clients == 16 and (durable or workload not in ("ping", "point_read")):
                    continue
                row = {"workload": workload, "clients": clients, "durable": durable}
                if not durable:
                    row["floor"] = run("mongo", floor_uri, workload, clients, False)["opsPerSecond"]
                out, cpu = measure(stratos_target, lambda: run("mongo", stratos_uri, workload, clients, durable))
                row["stratos"], row["stratos_p50"], row["stratos_p99"] = out["opsPerSecond"], out["p50Micros"], out["p99Micros"]
                row["stratos_cpu_us"] = cpu / out["operations"] * 1e6
                out, cpu = measure(pg_target, lambda: run("pg", pg.conninfo, workload, clients, durable))
                row["pg"], row["pg_p50"], row["pg_p99"] = out["opsPerSecond"], out["p50Micros"], out["p99Micros"]
                row["pg_cpu_us"] = cpu / out["operations"] * 1e6
                rows.append(row)
    return rows


def render(python_rows: list[dict], c_rows: list[dict], meta: str) -> str:
    lines = [
        "## Client floor, server CPU per operation, and C clients (`make bench`, bench/floor.py)",
        "",
        meta,
        "",
        "**pymongo (1 client) against a do-nothing wire server (the client's floor), StratosDB, and psycopg against PostgreSQL.**",
        "",
        "| workload | floor ops/s | StratosDB ops/s | StratosDB/floor | psycopg ops/s | pymongo/psycopg | server CPU µs/op StratosDB | PostgreSQL | CPU ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in python_rows:
        lines.append(f"| {r['workload']} | {r['floor']:,.0f} | {r['stratos']:,.0f} | {r['stratos'] / r['floor']:.2f} | {r['pg']:,.0f} | "
                     f"{r['stratos'] / r['pg']:.2f} | {r['stratos_cpu_us']:.0f} | {r['pg_cpu_us']:.0f} | {r['stratos_cpu_us'] / max(r['pg_cpu_us'], 1e-9):.2f} |")
    lines += [
        "",
        "**C clients: libmongoc against StratosDB (and the floor), libpq against PostgreSQL.** Relaxed is w:1 against "
        "synchronous_commit=off; durable is j:true against synchronous_commit=on.",
        "",
        "| workload | clients | durability | libmongoc floor ops/s | StratosDB ops/s | PostgreSQL ops/s | StratosDB/PostgreSQL | StratosDB p50/p99 µs | PostgreSQL p50/p99 µs | server CPU µs/op StratosDB / PostgreSQL (ratio) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in c_rows:
        floor = f"{r['floor']:,.0f}" if "floor" in r else "—"
        lines.append(
            f"| {r['workload']} | {r['clients']} | {'durable' if r['durable'] else 'relaxed'} | {floor} | {r['stratos']:,.0f} | {r['pg']:,.0f} | "
            f"{r['stratos'] / r['pg']:.2f} | {r['stratos_p50']:.0f} / {r['stratos_p99']:.0f} | {r['pg_p50']:.0f} / {r['pg_p99']:.0f} | "
            f"{r['stratos_cpu_us']:.0f} / {r['pg_cpu_us']:.0f} ({r['stratos_cpu_us'] / max(r['pg_cpu_us'], 1e-9):.2f}) |")
    tails = [r for r in c_rows if r["clients"] == 16]
    if tails:
        lines += ["", "**Tail latency at 16 clients on 2 cores** (issue #13's goal: p99 at most 10× p50 for point reads): " + "; ".join(
            f"{r['workload']} StratosDB p99/p50 {r['stratos_p99'] / max(r['stratos_p50'], 1e-9):.1f}, PostgreSQL "
            f"{r['pg_p99'] / max(r['pg_p50'], 1e-9):.1f}" for r in tails) + "."]
    return "\n".join(lines) + "\n"


def write_section(path: str, section: str) -> None:
    replace_section(path, "## Client floor, server CPU per operation, and C clients", section)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stratosdb-bin", required=True)
    parser.add_argument("--ops", type=int, default=3000, help="operations per cell (divided among C clients)")
    parser.add_argument("--output", default=None, help="write the section into this markdown file")
    args = parser.parse_args()
    import psycopg
    from pymongo import MongoClient

    work = tempfile.mkdtemp(prefix="stratos-floor-")
    floor_bin, client_bin = build(work)
    floor_port = free_port()
    floor_uri = f"mongodb://127.0.0.1:{floor_port}/?directConnection=true"
    floor = stratos = pg = None
    try:
        # PostgreSQL makes its own directory (its user must be able to enter it).
        pg = PostgresServer().start()
        floor = subprocess.Popen([floor_bin, str(floor_port)], stdout=subprocess.PIPE, text=True)
        floor.stdout.readline()
        stratos = Node(args.stratosdb_bin, os.path.join(work, "stratos"), baseline=False)
        client = MongoClient(stratos.uri, directConnection=True)
        for start in range(0, RECORDS, 1000):
            client.bench.users.insert_many([document(i) for i in range(start, start + 1000)])
        client.close()
        with psycopg.connect(pg.conninfo, autocommit=True) as connection:
            connection.execute("CREATE TABLE users(id text PRIMARY KEY, doc jsonb NOT NULL)")
            with connection.cursor().copy("COPY users(id, doc) FROM STDIN") as copy:
                for i in range(RECORDS):
                    copy.write_row((f"user{i:010d}", json.dumps(document(i))))
            connection.execute("VACUUM ANALYZE users")
        stratos_target = Target("StratosDB", lambda: process_tree_cpu(stratos.process.pid, with_reaped=False))
        pg_target = Target("PostgreSQL", lambda: process_tree_cpu(pg.postmaster_pid, with_reaped=True))
        python_rows = python_cells(args, floor_uri, stratos, stratos_target, pg, pg_target)
        c_rows = c_cells(args, client_bin, floor_uri, stratos, stratos_target, pg, pg_target)
    finally:
        if stratos:
            stratos.stop()
        if pg:
            pg.stop()
        if floor:
            floor.kill()
        shutil.rmtree(work, ignore_errors=True)
    meta = (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this machine ({os.cpu_count()} cores), one run per cell, "
            f"{args.ops:,} operations per cell, {RECORDS:,} documents of ~1 KB; runs vary by about ±15 %.")
    section = render(python_rows, c_rows, meta)
    print(section)
    if args.output:
        write_section(args.output, section)


if __name__ == "__main__":
    main()
