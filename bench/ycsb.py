#!/usr/bin/env python3
"""YCSB-style benchmark: StratosDB (MongoDB wire protocol, via pymongo) vs PostgreSQL 15
(jsonb, via psycopg 3), same workloads, same machine, same run.

See bench/README.md for what each workload does and how to read the numbers.

    python3 bench/ycsb.py                      # full run, writes docs/benchmarks.md
    python3 bench/ycsb.py --quick --only-postgres --output /tmp/b.md
    python3 bench/ycsb.py --workloads none --rss-docs 100000
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field, asdict
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from postgres import DEFAULT_PG_BIN, PostgresServer, free_port  # noqa: E402

BEGIN_MARK = "<!-- bench:begin -->"
END_MARK = "<!-- bench:end -->"

# --------------------------------------------------------------------------- #
# Workload catalogue (full-size op counts; --quick / --scale shrink them)
# --------------------------------------------------------------------------- #

RECORDS = 5_000          # preloaded records for read/update workloads
BATCH = 1_000            # insert_many batch size (also used for untimed loading)


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    title: str
    ops: int            # timed operations (for insert_many: number of batches)
    preload: bool       # load RECORDS documents before timing
    age_index: bool     # create the index on age as well
    unit: str = "ops"   # throughput unit shown in tables


WORKLOADS: list[WorkloadSpec] = [
    WorkloadSpec("insert_one", "insert_one (1 doc / op)", 5_000, False, False),
    WorkloadSpec("insert_many", f"insert_many ({BATCH} docs / op)", 20, False, False, "docs"),
    WorkloadSpec("point_read", "point read by _id", 5_000, True, False),
    WorkloadSpec("update", "$set update by _id", 5_000, True, False),
    WorkloadSpec("workload_a", "YCSB A: 50% read / 50% update", 5_000, True, False),
    WorkloadSpec("email_lookup", "secondary-index lookup (email)", 5_000, True, False),
    WorkloadSpec("range_scan", "_id range scan, limit 20", 2_000, True, False),
    WorkloadSpec("count", "count on indexed field (age >= X)", 500, True, True),
]
WORKLOAD_BY_NAME = {w.name: w for w in WORKLOADS}

PAIRINGS = {
    "durable": {
        "title": "durable: StratosDB `--sync full` + `WriteConcern(j=True)` vs PostgreSQL "
                 "`synchronous_commit=on` (default)",
        "stratos_sync_full": True,
        "stratos_journal": True,
        "pg_sync_commit_off": False,
    },
    "default": {
        "title": "default: StratosDB default write concern vs PostgreSQL "
                 "`synchronous_commit=off`",
        "stratos_sync_full": False,
        "stratos_journal": False,
        "pg_sync_commit_off": True,
    },
}

# --------------------------------------------------------------------------- #
# Documents (~1 KB user profiles, deterministic per record number)
# --------------------------------------------------------------------------- #

FIRST = ["Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Dennis", "Margaret", "Edsger",
         "Frances", "John", "Radia", "Niklaus", "Leslie", "Donald", "Shafi", "Tim", "Sophie"]
LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Thompson", "Ritchie", "Hamilton",
        "Dijkstra", "Allen", "McCarthy", "Perlman", "Wirth", "Lamport", "Knuth", "Goldwasser"]
CITIES = ["Amsterdam", "Berlin", "Chicago", "Dublin", "Edinburgh", "Florence", "Geneva",
          "Helsinki", "Istanbul", "Jakarta", "Kyoto", "Lisbon", "Madrid", "Nairobi", "Oslo",
          "Paris", "Quito", "Rome", "Seoul", "Toronto", "Utrecht", "Vienna", "Warsaw", "Zurich"]
COUNTRIES = ["NL", "DE", "US", "IE", "GB", "IT", "CH", "FI", "TR", "ID", "JP", "PT", "ES", "KE"]
STREETS = ["Main St", "High St", "Station Rd", "Church Ln", "Mill Rd", "Park Ave", "Elm St"]
TAGS = ["admin", "beta", "premium", "trial", "mobile", "desktop", "newsletter", "vip",
        "support", "churn-risk", "referral", "enterprise", "edu", "nonprofit", "dev"]
WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
         "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
         "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur").split()
BIO_LEN = 760            # tuned so that the BSON document is ~1 KB
EPOCH = dt.datetime(2020, 1, 1)
AGE_MIN, AGE_MAX = 18, 90


def user_id(n: int) -> str:
    return f"user{n:08d}"


def user_email(n: int) -> str:
    return f"user{n}@example.org"


def user_age(n: int) -> int:
    # derived cheaply and deterministically so count results can be validated
    return AGE_MIN + (n * 2654435761 >> 7) % (AGE_MAX - AGE_MIN + 1)


def make_doc(n: int) -> dict:
    r = random.Random(n)
    bio_words: list[str] = []
    length = 0
    while length < BIO_LEN:
        w = r.choice(WORDS)
        bio_words.append(w)
        length += len(w) + 1
    city = r.choice(CITIES)
    return {
        "_id": user_id(n),
        "name": f"{r.choice(FIRST)} {r.choice(LAST)}",
        "email": user_email(n),
        "age": user_age(n),
        "city": city,
        "tags": r.sample(TAGS, 3),
        "address": {
            "street": f"{r.randrange(1, 9999)} {r.choice(STREETS)}",
            "city": city,
            "zip": f"{r.randrange(100000):05d}",
            "country": r.choice(COUNTRIES),
        },
        "bio": " ".join(bio_words)[:BIO_LEN],
        "created": EPOCH + dt.timedelta(seconds=r.randrange(5 * 365 * 86400)),
    }


def pg_row(doc: dict) -> tuple[str, dict]:
    """(id, data) for PostgreSQL: _id becomes the primary-key column, datetime -> ISO string."""
    data = {k: v for k, v in doc.items() if k != "_id"}
    data["created"] = doc["created"].isoformat() + "Z"
    return doc["_id"], data


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def percentile(sorted_vals: list[int], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, math.ceil(p * len(sorted_vals)) - 1))
    return sorted_vals[k]


def split(seq: list, parts: int) -> list[list]:
    """Split into `parts` contiguous chunks whose sizes differ by at most one."""
    n = len(seq)
    out, start = [], 0
    for i in range(parts):
        size = n // parts + (1 if i < n % parts else 0)
        out.append(seq[start:start + size])
        start += size
    return out


def rss_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, val = line.split(":", 1)
                    out[key] = int(val.split()[0])
    except OSError:
        pass
    return out


def dir_size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


class CellTimeout(Exception):
    pass


# --------------------------------------------------------------------------- #
# Server CPU accounting from /proc/PID/stat
# --------------------------------------------------------------------------- #

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
TICK_NS = 1_000_000_000 // CLK_TCK


def process_cpu_clock_ns(pid: int) -> int | None:
    """CPU time (ns) of another process, all threads incl. exited ones, or None.

    This is clock_getcpuclockid(pid) (Linux: MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)),
    i.e. the scheduler's exact sum_exec_runtime -- the same quantity /proc/PID/stat
    reports as utime+stime, but without rounding to 1/CLK_TCK s (10 ms at 100 Hz).
    """
    try:
        return time.clock_gettime_ns(((~pid) << 3) | 2)
    except (OSError, AttributeError, OverflowError):
        return None


def read_cpu(pid: int | str, clock: bool = True) -> tuple[int, int, int, bool] | None:
    """(ppid, starttime, cpu ns, exact) of one process, or None if it is gone.

    cpu = the process's own CPU (utime + stime, /proc/PID/stat fields 14 and 15; read
    exactly through its CPU clock when possible, `exact`) plus cutime + cstime (fields 16
    and 17): CPU of its children that it has already reaped.  Counting the reaped part
    keeps a process tree's total conserved when a child (e.g. an autovacuum worker) exits
    between two samples: its CPU moves into the parent's cutime/cstime instead of
    vanishing.  The comm field may contain spaces/parens, so parse after the last ')'.
    clock=False skips the CPU clock (cpu ns is then only meaningful for ppid filtering).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()
    # rest[0] is field 3 (state): field N is rest[N - 3]
    try:
        own_ticks = int(rest[11]) + int(rest[12])
        reaped_ticks = int(rest[13]) + int(rest[14])
        ppid, start = int(rest[1]), int(rest[19])
    except (IndexError, ValueError):
        return None
    own_ns = process_cpu_clock_ns(int(pid)) if clock else None
    exact = own_ns is not None
    if not exact:
        own_ns = own_ticks * TICK_NS
    return ppid, start, own_ns + reaped_ticks * TICK_NS, exact


class CpuProbe:
    """CPU consumed by a server: one process, or a process and all its descendants.

    sample() returns {(pid, starttime): cpu ns} for every process in the tree at that
    moment; delta() sums after - before over the processes present in either sample (a
    process missing from one sample counts 0 there; one that exited in between is still
    counted through its parent's cutime/cstime, see read_cpu).  (pid, starttime) guards
    against PID reuse.  `exact` turns False if any process had to fall back to CLK_TCK
    ticks.
    """

    def __init__(self, root_pid: int, tree: bool) -> None:
        self.root_pid = root_pid
        self.tree = tree
        self.exact = True

    def sample(self) -> dict[tuple[int, int], int]:
        if not self.tree:
            st = read_cpu(self.root_pid)
            if st is None:
                return {}
            self.exact &= st[3]
            return {(self.root_pid, st[1]): st[2]}
        children: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = read_cpu(name, clock=False)
                if st is not None:
                    children.setdefault(st[0], []).append(int(name))
        members, todo = [], [self.root_pid]
        while todo:
            pid = todo.pop()
            members.append(pid)
            todo.extend(children.get(pid, ()))
        out: dict[tuple[int, int], int] = {}
        for pid in members:  # second, exact read only for the server's processes
            st = read_cpu(pid)
            if st is not None:
                self.exact &= st[3]
                out[(pid, st[1])] = st[2]
        return out

    @staticmethod
    def delta(before: dict, after: dict) -> tuple[float, int]:
        """(CPU seconds between the samples, number of processes seen in either)."""
        keys = before.keys() | after.keys()
        ns = sum(after.get(k, 0) - before.get(k, 0) for k in keys)
        return ns / 1e9, len(keys)


# --------------------------------------------------------------------------- #
# StratosDB server process
# --------------------------------------------------------------------------- #


class StratosServer:
    def __init__(self, binary: str, sync_full: bool, tmp_parent: str | None,
                 start_timeout: float = 60, keep_dir: bool = False,
                 extra_args: list[str] | None = None) -> None:
        self.binary = binary
        self.sync_full = sync_full
        self.tmp_parent = tmp_parent
        self.start_timeout = start_timeout
        self.keep_dir = keep_dir
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.base_dir: str | None = None
        self.data_dir: str | None = None
        self.log_path: str | None = None
        self._log_fh = None
        self.port: int | None = None

    def start(self) -> "StratosServer":
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError(f"StratosDB binary not found/executable: {self.binary} "
                               "(run `swift build -c release` or pass --stratosdb-bin)")
        self.base_dir = tempfile.mkdtemp(prefix="stratos-bench-sdb-", dir=self.tmp_parent)
        self.data_dir = os.path.join(self.base_dir, "data")
        os.makedirs(self.data_dir)
        self.log_path = os.path.join(self.base_dir, "stratosdb.log")
        self.port = free_port()
        cmd = [self.binary, "serve", "--data-dir", self.data_dir, "--bind", "127.0.0.1",
               "--port", str(self.port), "--log-level", "warning"]
        if self.sync_full:
            cmd += ["--sync", "full"]
        cmd += self.extra_args
        self.cmd = cmd
        try:
            self._log_fh = open(self.log_path, "wb")
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log_fh,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            self._wait_ready()
            return self
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = self.proc.returncode if self.proc else None
                raise RuntimeError(f"stratosdb exited during startup (code {code}):\n"
                                   f"{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"stratosdb did not listen on 127.0.0.1:{self.port} within "
                           f"{self.start_timeout}s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        try:
            if self._log_fh:
                self._log_fh.flush()
            with open(self.log_path or "", "r", errors="replace") as f:
                return "".join(f.readlines()[-n:]) or "(empty log)"
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    log("stratosdb did not exit 30 s after SIGTERM; sending SIGKILL")
                    self.proc.kill()
                    self.proc.wait(timeout=30)
        finally:
            if self._log_fh:
                self._log_fh.close()
                self._log_fh = None
            if self.base_dir and not self.keep_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.base_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------- #
# Drivers: one per system, same interface. Per-thread connections via connect().
# Op methods return a small value that is validated after the timed section.
# --------------------------------------------------------------------------- #


def owner_login(data_dir: str) -> tuple[str, str]:
    """The local owner's SCRAM login that `stratosdb serve` creates on first start."""
    with open(os.path.join(data_dir, "keys", "owner.password")) as f:
        return ("owner", f.read().strip())


class StratosDriver:
    name = "StratosDB"

    def __init__(self, port: int, journal: bool, socket_timeout_ms: int = 120_000, login: tuple[str, str] | None = None) -> None:
        import pymongo
        from pymongo.write_concern import WriteConcern
        self.pymongo = pymongo
        self.port = port
        self.wc = WriteConcern(j=True) if journal else WriteConcern()
        self.socket_timeout_ms = socket_timeout_ms
        self.login = login
        self.admin = self._client()

    def _client(self):
        credentials = {"username": self.login[0], "password": self.login[1]} if self.login else {}
        return self.pymongo.MongoClient(
            "127.0.0.1", self.port, directConnection=True, appname="stratos-bench", **credentials,
            serverSelectionTimeoutMS=10_000, connectTimeoutMS=10_000,
            socketTimeoutMS=self.socket_timeout_ms, maxPoolSize=1)

    def _coll(self, client):
        return client["bench"].get_collection("usertable", write_concern=self.wc)

    def server_version(self) -> str:
        try:
            info = self.admin.admin.command("buildInfo")
            # `version` is the MongoDB release StratosDB matches; `stratosdbVersion` is its own.
            return f"{info.get('stratosdbVersion', '?')} (MongoDB {info.get('version', '?')} compatible)"
        except Exception as e:
            return f"unknown ({type(e).__name__})"

    def close(self) -> None:
        self.admin.close()

    def reset(self, age_index: bool) -> None:
        db = self.admin["bench"]
        db.drop_collection("usertable")
        coll = self._coll(self.admin)
        coll.create_index("email", unique=True)
        if age_index:
            coll.create_index("age")

    def load(self, start: int, count: int) -> None:
        coll = self._coll(self.admin)
        for s in range(start, start + count, BATCH):
            coll.insert_many([make_doc(n) for n in range(s, min(s + BATCH, start + count))])

    def prepare_doc(self, n: int):
        return make_doc(n)

    def connect(self):
        client = self._client()
        client.admin.command("ping")
        return client

    def disconnect(self, conn) -> None:
        conn.close()

    def bind(self, conn) -> dict[str, Callable]:
        coll = self._coll(conn)

        def insert_one(doc):
            coll.insert_one(doc)
            return 1

        def insert_many(docs):
            return len(coll.insert_many(docs).inserted_ids)

        def read(key):
            return coll.find_one({"_id": key}) is not None

        def update(key, age, city):
            return coll.update_one({"_id": key}, {"$set": {"age": age, "city": city}}).matched_count

        def email(addr):
            return coll.find_one({"email": addr}) is not None

        def range_scan(key):
            return len(list(coll.find({"_id": {"$gte": key}}).sort("_id", 1).limit(20)))

        def count(age):
            return coll.count_documents({"age": {"$gte": age}})

        return dict(insert_one=insert_one, insert_many=insert_many, read=read, update=update,
                    email=email, range_scan=range_scan, count=count)

    def total(self) -> int:
        return self._coll(self.admin).count_documents({})


class PostgresDriver:
    name = "PostgreSQL"

    SQL_INSERT = "INSERT INTO usertable (id, data) VALUES (%s, %s)"
    SQL_READ = "SELECT data FROM usertable WHERE id = %s"
    SQL_UPDATE = ("UPDATE usertable SET data = jsonb_set(jsonb_set(data, '{age}', to_jsonb(%s::int)),"
                  " '{city}', to_jsonb(%s::text)) WHERE id = %s")
    SQL_EMAIL = "SELECT id, data FROM usertable WHERE data->>'email' = %s"
    SQL_RANGE = "SELECT id, data FROM usertable WHERE id >= %s ORDER BY id LIMIT 20"
    SQL_COUNT = "SELECT count(*) FROM usertable WHERE (data->>'age')::int >= %s::int"

    def __init__(self, conninfo: str) -> None:
        import psycopg
        from psycopg.types.json import Jsonb
        self.psycopg = psycopg
        self.Jsonb = Jsonb
        self.conninfo = conninfo
        self.admin = psycopg.connect(conninfo, autocommit=True)

    def server_version(self) -> str:
        return self.admin.execute("SHOW server_version").fetchone()[0]

    def close(self) -> None:
        self.admin.close()

    def reset(self, age_index: bool) -> None:
        a = self.admin
        a.execute("DROP TABLE IF EXISTS usertable")
        a.execute("CREATE TABLE usertable (id text PRIMARY KEY, data jsonb NOT NULL)")
        a.execute("CREATE UNIQUE INDEX usertable_email ON usertable ((data->>'email'))")
        if age_index:
            a.execute("CREATE INDEX usertable_age ON usertable (((data->>'age')::int))")

    def load(self, start: int, count: int) -> None:
        Jsonb = self.Jsonb
        with self.admin.cursor() as cur:
            for s in range(start, start + count, BATCH):
                rows = []
                for n in range(s, min(s + BATCH, start + count)):
                    k, d = pg_row(make_doc(n))
                    rows.append((k, Jsonb(d)))
                with self.admin.transaction():
                    cur.executemany(self.SQL_INSERT, rows)
        self.admin.execute("ANALYZE usertable")

    def prepare_doc(self, n: int):
        return pg_row(make_doc(n))

    def connect(self):
        conn = self.psycopg.connect(self.conninfo, autocommit=True)
        conn.execute("SELECT 1").fetchone()
        return conn

    def disconnect(self, conn) -> None:
        conn.close()

    def bind(self, conn) -> dict[str, Callable]:
        cur = conn.cursor()
        Jsonb = self.Jsonb
        tx = conn.transaction
        S = self

        def insert_one(row):
            cur.execute(S.SQL_INSERT, (row[0], Jsonb(row[1])), prepare=True)
            return cur.rowcount

        def insert_many(rows):
            with tx():
                cur.executemany(S.SQL_INSERT, [(k, Jsonb(d)) for k, d in rows])
            return len(rows)

        def read(key):
            cur.execute(S.SQL_READ, (key,), prepare=True)
            return cur.fetchone() is not None

        def update(key, age, city):
            cur.execute(S.SQL_UPDATE, (age, city, key), prepare=True)
            return cur.rowcount

        def email(addr):
            cur.execute(S.SQL_EMAIL, (addr,), prepare=True)
            return cur.fetchone() is not None

        def range_scan(key):
            cur.execute(S.SQL_RANGE, (key,), prepare=True)
            return len(cur.fetchall())

        def count(age):
            cur.execute(S.SQL_COUNT, (age,), prepare=True)
            return cur.fetchone()[0]

        return dict(insert_one=insert_one, insert_many=insert_many, read=read, update=update,
                    email=email, range_scan=range_scan, count=count)

    def total(self) -> int:
        return self.admin.execute("SELECT count(*) FROM usertable").fetchone()[0]


# --------------------------------------------------------------------------- #
# Op plans: generated up front (same seed => identical key sequences for both
# systems), then executed by N threads.
# --------------------------------------------------------------------------- #


@dataclass
class Plan:
    ops: list[tuple[str, tuple]]          # (op name, args) — args are system-neutral
    expect: Callable[[tuple[str, tuple], Any], bool]
    docs_per_op: int = 1
    preload: int = 0


def build_plan(w: WorkloadSpec, n_ops: int, records: int, clients: int, seed: int) -> Plan:
    rng = random.Random(f"{seed}:{w.name}")
    next_id = records + 1_000_000  # fresh keys for inserts, far away from preloaded ones
    exact_one = lambda op, res: res == 1 or res is True  # noqa: E731

    if w.name == "insert_one":
        return Plan([("insert_one", (next_id + i,)) for i in range(n_ops)], exact_one)
    if w.name == "insert_many":
        ops = [("insert_many", (next_id + b * BATCH, BATCH)) for b in range(n_ops)]
        return Plan(ops, lambda op, res: res == BATCH, docs_per_op=BATCH)
    if w.name == "point_read":
        return Plan([("read", (rng.randrange(records),)) for _ in range(n_ops)], exact_one,
                    preload=records)
    if w.name == "update":
        ops = [("update", (rng.randrange(records), rng.randint(AGE_MIN, AGE_MAX),
                           rng.choice(CITIES))) for _ in range(n_ops)]
        return Plan(ops, exact_one, preload=records)
    if w.name == "workload_a":
        ops = []
        for _ in range(n_ops):
            k = rng.randrange(records)
            if rng.random() < 0.5:
                ops.append(("read", (k,)))
            else:
                ops.append(("update", (k, rng.randint(AGE_MIN, AGE_MAX), rng.choice(CITIES))))
        return Plan(ops, exact_one, preload=records)
    if w.name == "email_lookup":
        return Plan([("email", (rng.randrange(records),)) for _ in range(n_ops)], exact_one,
                    preload=records)
    if w.name == "range_scan":
        hi = max(1, records - 20)
        return Plan([("range_scan", (rng.randrange(hi),)) for _ in range(n_ops)],
                    lambda op, res: res == 20, preload=records)
    if w.name == "count":
        ages = sorted(user_age(n) for n in range(records))

        def expect(op, res):
            x = op[1][0]
            return res == len(ages) - bisect.bisect_left(ages, x)
        return Plan([("count", (rng.randint(AGE_MIN, AGE_MAX),)) for _ in range(n_ops)], expect,
                    preload=records)
    raise ValueError(w.name)


def materialize(driver, op: tuple[str, tuple]) -> tuple[str, tuple]:
    """Turn a neutral op into the concrete argument tuple for one system (untimed)."""
    name, args = op
    if name == "insert_one":
        return name, (driver.prepare_doc(args[0]),)
    if name == "insert_many":
        start, count = args
        return name, ([driver.prepare_doc(n) for n in range(start, start + count)],)
    if name in ("read", "range_scan"):
        return name, (user_id(args[0]),)
    if name == "update":
        return name, (user_id(args[0]), args[1], args[2])
    if name == "email":
        return name, (user_email(args[0]),)
    return name, args


@dataclass
class CellResult:
    pairing: str
    workload: str
    clients: int
    system: str
    ops: int = 0
    docs: int = 0
    wall_s: float = 0.0
    ops_per_s: float = 0.0
    docs_per_s: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    mean_ms: float = float("nan")
    max_ms: float = float("nan")
    # CPU over the timed phase only.  srv: the server process (PostgreSQL: postmaster and
    # all its descendants), from /proc/PID/stat; cli: time.process_time() of this whole
    # benchmark process (all client threads).  *_us_per_op = CPU seconds / ops * 1e6.
    srv_cpu_s: float = float("nan")
    cli_cpu_s: float = float("nan")
    srv_cpu_us_per_op: float = float("nan")
    cli_cpu_us_per_op: float = float("nan")
    srv_procs: int = 0          # server processes seen in either CPU sample
    validation_failures: int = 0
    error: str | None = None
    all_throughputs: list = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.docs_per_s if WORKLOAD_BY_NAME[self.workload].unit == "docs" else self.ops_per_s


def run_cell(driver, pairing: str, w: WorkloadSpec, clients: int, n_ops: int, records: int,
             seed: int, cell_timeout: float, probe: CpuProbe | None = None) -> CellResult:
    res = CellResult(pairing, w.name, clients, driver.name)
    plan = build_plan(w, max(n_ops, clients), records, clients, seed)

    driver.reset(age_index=w.age_index)
    if plan.preload:
        driver.load(0, plan.preload)

    chunks = split(plan.ops, clients)
    concrete = [[materialize(driver, op) for op in chunk] for chunk in chunks]
    conns = []
    try:
        for _ in range(clients):
            conns.append(driver.connect())
        lat: list[list[int]] = [[] for _ in range(clients)]
        out: list[list[Any]] = [[] for _ in range(clients)]
        errors: list[BaseException | None] = [None] * clients
        ends = [0] * clients
        start_box = [0]
        deadline_ns = [0]
        cpu0: dict[str, Any] = {}

        def on_release():
            # runs once, in the last thread to reach the barrier, before any op starts
            if probe is not None:
                cpu0["srv"] = probe.sample()
            cpu0["cli"] = time.process_time()
            start_box[0] = time.perf_counter_ns()
            deadline_ns[0] = start_box[0] + int(cell_timeout * 1e9)

        barrier = threading.Barrier(clients, action=on_release)

        def worker(i: int) -> None:
            try:
                fns = driver.bind(conns[i])
                my_ops = [(fns[name], args) for name, args in concrete[i]]
                my_lat, my_out = lat[i], out[i]
                pc = time.perf_counter_ns
                barrier.wait(timeout=60)
                deadline = deadline_ns[0]
                for fn, args in my_ops:
                    t0 = pc()
                    r = fn(*args)
                    t1 = pc()
                    my_lat.append(t1 - t0)
                    my_out.append(r)
                    if t1 > deadline:
                        raise CellTimeout(f"cell exceeded --cell-timeout {cell_timeout}s")
            except BaseException as e:  # noqa: BLE001 - reported below
                errors[i] = e
                try:
                    barrier.abort()
                except Exception:
                    pass
            finally:
                ends[i] = time.perf_counter_ns()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True,
                                    name=f"{driver.name}-{w.name}-{i}") for i in range(clients)]
        for t in threads:
            t.start()
        join_deadline = time.monotonic() + cell_timeout + 180
        for t in threads:
            t.join(timeout=max(0.0, join_deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            raise CellTimeout("worker threads did not finish (server hung?)")
        cli_cpu1 = time.process_time()
        srv_cpu1 = probe.sample() if probe is not None and "srv" in cpu0 else None
        errs = [e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)]
        errs = errs or [e for e in errors if e is not None]
        if errs:
            raise errs[0]

        wall_ns = max(ends) - start_box[0]
        all_lat = sorted(x for l in lat for x in l)
        res.ops = len(all_lat)
        res.docs = res.ops * plan.docs_per_op
        res.wall_s = wall_ns / 1e9
        res.ops_per_s = res.ops / res.wall_s if res.wall_s > 0 else float("nan")
        res.docs_per_s = res.docs / res.wall_s if res.wall_s > 0 else float("nan")
        res.p50_ms = percentile(all_lat, 0.50) / 1e6
        res.p99_ms = percentile(all_lat, 0.99) / 1e6
        res.mean_ms = sum(all_lat) / len(all_lat) / 1e6
        res.max_ms = all_lat[-1] / 1e6
        res.cli_cpu_s = cli_cpu1 - cpu0["cli"]
        res.cli_cpu_us_per_op = res.cli_cpu_s / res.ops * 1e6
        if srv_cpu1 is not None:
            res.srv_cpu_s, res.srv_procs = CpuProbe.delta(cpu0["srv"], srv_cpu1)
            res.srv_cpu_us_per_op = res.srv_cpu_s / res.ops * 1e6
        bad = 0
        for chunk, results in zip(chunks, out):
            for op, r in zip(chunk, results):
                if not plan.expect(op, r):
                    bad += 1
        res.validation_failures = bad
        # inserts: the rows must really be there
        if w.name in ("insert_one", "insert_many"):
            got = driver.total()
            if got != res.docs:
                res.validation_failures += abs(got - res.docs)
                res.error = f"expected {res.docs} documents after run, found {got}"
        return res
    finally:
        for c in conns:
            try:
                driver.disconnect(c)
            except Exception:
                pass


# --------------------------------------------------------------------------- #
# Orchestration
# --------------------------------------------------------------------------- #


def fmt_num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_us(x: float) -> str:
    if x is None or math.isnan(x):
        return "—"
    return f"{x:,.0f}"


def fmt_ms(x: float) -> str:
    if x is None or math.isnan(x):
        return "—"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


class Side:
    """One running system (server process + driver) for one pairing."""

    def __init__(self, kind: str, pairing: str, args, meta: dict) -> None:
        self.kind = kind
        self.name = "StratosDB" if kind == "stratos" else "PostgreSQL"
        self.pairing = pairing
        self.args = args
        self.meta = meta
        self.server = None
        self.driver = None
        self.probe: CpuProbe | None = None
        self.error: str | None = None

    def start(self) -> "Side":
        cfg = PAIRINGS[self.pairing]
        args, meta, pairing = self.args, self.meta, self.pairing
        try:
            if self.kind == "stratos":
                self.server = StratosServer(args.stratosdb_bin, cfg["stratos_sync_full"], args.tmpdir,
                                            keep_dir=args.keep_data,
                                            extra_args=shlex.split(args.stratosdb_args))
                log(f"[{pairing}] starting StratosDB {args.stratosdb_bin} "
                    f"(--sync full: {cfg['stratos_sync_full']}, j=True: {cfg['stratos_journal']})")
                self.server.start()
                self.probe = CpuProbe(self.server.proc.pid, tree=False)
                self.driver = StratosDriver(self.server.port, cfg["stratos_journal"], login=owner_login(self.server.data_dir))
                meta.setdefault("stratosdb_version", self.driver.server_version())
                meta.setdefault("stratosdb_cmd", {})[pairing] = " ".join(self.server.cmd)
            else:
                self.server = PostgresServer(args.pg_bin,
                                             synchronous_commit_off=cfg["pg_sync_commit_off"],
                                             tmp_parent=args.tmpdir, keep_dir=args.keep_data)
                log(f"[{pairing}] starting PostgreSQL (synchronous_commit="
                    f"{'off' if cfg['pg_sync_commit_off'] else 'on'})")
                self.server.start()
                pm = self.server.postmaster_pid
                if pm is None:
                    log(f"[{pairing}] cannot read the postmaster PID; no server CPU numbers")
                else:
                    self.probe = CpuProbe(pm, tree=True)
                self.driver = PostgresDriver(self.server.conninfo)
                meta.setdefault("postgresql_version", self.driver.server_version())
                meta.setdefault("postgresql_settings", {})[pairing] = {
                    s: self.driver.admin.execute(f"SHOW {s}").fetchone()[0]
                    for s in ("fsync", "synchronous_commit", "shared_buffers", "wal_level")}
        except Exception as e:  # noqa: BLE001
            log(f"[{pairing}] could not start {self.name}: {e}")
            detail = " / ".join(x.strip() for x in str(e).splitlines() if x.strip())
            self.error = f"server start failed: {detail[:400]}"
            self.stop()
            if args.fail_fast:
                raise
        return self

    def dead_reason(self) -> str | None:
        if self.error:
            return self.error
        if self.kind == "stratos" and not self.server.alive():
            return f"server process exited ({self.server.proc.returncode})"
        return None

    def stop(self) -> None:
        try:
            if self.driver:
                self.driver.close()
        except Exception:  # noqa: BLE001
            pass
        finally:
            self.driver = None
            if self.probe is not None:
                self.meta.setdefault("server_cpu_source", {})[f"{self.pairing}/{self.name}"] = (
                    "exact" if self.probe.exact else f"{CLK_TCK} Hz ticks")
                self.probe = None
            if self.server:
                log(f"[{self.pairing}] stopping {self.name}")
                self.server.stop()
                self.server = None


def median_result(reps: list[CellResult]) -> CellResult:
    """The repetition with the median throughput (errors win: any error fails the cell)."""
    bad = [r for r in reps if r.error]
    if bad:
        return bad[0]
    ordered = sorted(reps, key=lambda r: r.throughput)
    chosen = ordered[(len(ordered) - 1) // 2]
    chosen.validation_failures = sum(r.validation_failures for r in reps)
    chosen.all_throughputs = [r.throughput for r in reps]
    return chosen


def run_pairing(pairing: str, kinds: list[str], args, workloads: list[WorkloadSpec],
                clients_list: list[int], scale: float, repeat: int, meta: dict) -> list[CellResult]:
    """Start both systems, then run every cell, alternating StratosDB / PostgreSQL, `repeat` times."""
    records = max(100, int(round(RECORDS * scale)))
    sides: list[Side] = []
    reps: dict[tuple, list[CellResult]] = {}
    try:
        for kind in kinds:
            sides.append(Side(kind, pairing, args, meta).start())
        for rep in range(repeat):
            if repeat > 1:
                log(f"[{pairing}] repetition {rep + 1}/{repeat}")
            for w in workloads:
                n_ops = max(1, int(round(w.ops * scale)))
                for clients in clients_list:
                    for side in sides:
                        key = (w.name, clients, side.name)
                        reason = side.dead_reason()
                        if reason:
                            reps.setdefault(key, []).append(
                                CellResult(pairing, w.name, clients, side.name, error=reason))
                            continue
                        t0 = time.monotonic()
                        try:
                            r = run_cell(side.driver, pairing, w, clients, n_ops, records,
                                         args.seed + rep, args.cell_timeout, side.probe)
                        except Exception as e:  # noqa: BLE001
                            msg = f"{type(e).__name__}: {e}".splitlines()[0][:300]
                            r = CellResult(pairing, w.name, clients, side.name, error=msg)
                            log(f"  ERROR {side.name} {w.name} c={clients}: {msg}")
                            if args.verbose:
                                traceback.print_exc()
                            if side.kind == "stratos" and not side.server.alive():
                                log("  stratosdb log tail:\n" + side.server.log_tail())
                            if args.fail_fast:
                                raise
                        reps.setdefault(key, []).append(r)
                        if r.error is None:
                            unit = WORKLOAD_BY_NAME[w.name].unit
                            vf = (f"  VALIDATION FAILURES: {r.validation_failures}"
                                  if r.validation_failures else "")
                            log(f"  {side.name:<10} {w.name:<13} clients={clients}  "
                                f"{fmt_num(r.throughput):>9} {unit}/s  p50 {fmt_ms(r.p50_ms)} ms  "
                                f"p99 {fmt_ms(r.p99_ms)} ms  srv {fmt_us(r.srv_cpu_us_per_op)} "
                                f"cli {fmt_us(r.cli_cpu_us_per_op)} µs/op  "
                                f"({time.monotonic() - t0:.1f}s incl. load){vf}")
    finally:
        for side in sides:
            side.stop()
    return [median_result(v) for v in reps.values()]


def run_rss(args, meta: dict) -> dict:
    """Load N docs into a fresh StratosDB and report server RSS."""
    n = args.rss_docs
    out: dict[str, Any] = {"docs": n}
    server = StratosServer(args.stratosdb_bin, False, args.tmpdir, keep_dir=args.keep_data,
                           extra_args=shlex.split(args.stratosdb_args))
    log(f"[rss] starting StratosDB, loading {n:,} docs in insert_many batches of {BATCH}")
    try:
        server.start()
        pid = server.proc.pid
        drv = StratosDriver(server.port, journal=False, login=owner_login(server.data_dir))
        try:
            meta.setdefault("stratosdb_version", drv.server_version())
            drv.reset(age_index=False)
            time.sleep(0.5)
            out["rss_start_kb"] = rss_kb(pid).get("VmRSS")
            coll = drv._coll(drv.admin)
            t0 = time.perf_counter()
            for s in range(0, n, BATCH):
                coll.insert_many([make_doc(i) for i in range(s, min(s + BATCH, n))])
            out["load_s"] = time.perf_counter() - t0
            out["load_docs_per_s"] = n / out["load_s"] if out["load_s"] else None
            time.sleep(1.0)
            m = rss_kb(pid)
            out["rss_after_load_kb"], out["hwm_after_load_kb"] = m.get("VmRSS"), m.get("VmHWM")
            rng = random.Random(args.seed)
            misses = 0
            for _ in range(1000):
                if coll.find_one({"_id": user_id(rng.randrange(n))}) is None:
                    misses += 1
            for _ in range(100):
                if coll.find_one({"email": user_email(rng.randrange(n))}) is None:
                    misses += 1
            for _ in range(100):
                list(coll.find({"_id": {"$gte": user_id(rng.randrange(n))}}).sort("_id", 1).limit(20))
            out["count"] = coll.count_documents({})
            out["read_misses"] = misses
            time.sleep(0.5)
            m = rss_kb(pid)
            out["rss_after_reads_kb"], out["hwm_after_reads_kb"] = m.get("VmRSS"), m.get("VmHWM")
            out["data_dir_bytes"] = dir_size(server.data_dir)
        finally:
            drv.close()
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        log(f"[rss] ERROR: {out['error']}")
        if server.proc is not None and not server.alive():
            log("  stratosdb log tail:\n" + server.log_tail())
        if args.fail_fast:
            raise
    finally:
        server.stop()
    if "error" not in out:
        mib = lambda kb: f"{kb / 1024:.1f} MiB" if kb else "?"  # noqa: E731
        log(f"[rss] RSS start {mib(out['rss_start_kb'])}, after load {mib(out['rss_after_load_kb'])}, "
            f"after reads {mib(out['rss_after_reads_kb'])} (peak {mib(out['hwm_after_reads_kb'])}); "
            f"data dir {out['data_dir_bytes'] / 2**20:.1f} MiB; count={out['count']}")
    return out


# --------------------------------------------------------------------------- #
# Reporting
# --------------------------------------------------------------------------- #


def pair_rows(results: list[CellResult]) -> list[dict]:
    idx = {(r.pairing, r.workload, r.clients, r.system): r for r in results}
    rows = []
    seen = set()
    for r in results:
        key = (r.pairing, r.workload, r.clients)
        if key in seen:
            continue
        seen.add(key)
        s = idx.get(key + ("StratosDB",))
        p = idx.get(key + ("PostgreSQL",))
        ratio = None
        if s and p and not s.error and not p.error and p.throughput > 0:
            ratio = s.throughput / p.throughput
        srv_ratio = None
        if (s and p and not s.error and not p.error and not math.isnan(s.srv_cpu_us_per_op)
                and not math.isnan(p.srv_cpu_us_per_op) and p.srv_cpu_us_per_op > 0):
            srv_ratio = s.srv_cpu_us_per_op / p.srv_cpu_us_per_op
        rows.append({"pairing": r.pairing, "workload": r.workload, "clients": r.clients,
                     "s": s, "p": p, "ratio": ratio, "srv_cpu_ratio": srv_ratio})
    order = {w.name: i for i, w in enumerate(WORKLOADS)}
    rows.sort(key=lambda x: (list(PAIRINGS).index(x["pairing"]), order[x["workload"]], x["clients"]))
    return rows


def side_cells(c: CellResult | None) -> list[str]:
    if c is None:
        return ["—"] * 5
    if c.error:
        return ["error"] + ["—"] * 4
    t = fmt_num(c.throughput) + ("*" if c.validation_failures else "")
    return [t, fmt_ms(c.p50_ms), fmt_ms(c.p99_ms), fmt_us(c.srv_cpu_us_per_op),
            fmt_us(c.cli_cpu_us_per_op)]


HEADERS = ["Workload", "Clients",
           "StratosDB ops/s", "p50 ms", "p99 ms", "srv µs/op", "cli µs/op",
           "PostgreSQL ops/s", "p50 ms", "p99 ms", "srv µs/op", "cli µs/op",
           "Ratio S/P", "srv CPU S/P"]


def table_rows(rows: list[dict], pairing: str) -> list[list[str]]:
    out = []
    for row in rows:
        if row["pairing"] != pairing:
            continue
        w = WORKLOAD_BY_NAME[row["workload"]]
        name = w.name + (" (docs/s)" if w.unit == "docs" else "")
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "—"
        srv_ratio = f"{row['srv_cpu_ratio']:.2f}x" if row["srv_cpu_ratio"] is not None else "—"
        out.append([name, str(row["clients"])] + side_cells(row["s"]) + side_cells(row["p"])
                   + [ratio, srv_ratio])
    return out


def print_tables(rows: list[dict], pairings: list[str]) -> None:
    for pairing in pairings:
        body = table_rows(rows, pairing)
        if not body:
            continue
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(HEADERS)]
        sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        print()
        print(f"== {PAIRINGS[pairing]['title'].replace('`', '')}")
        print(sep)
        print("| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(HEADERS)) + " |")
        print(sep)
        for b in body:
            cells = [b[0].ljust(widths[0])] + [c.rjust(widths[i + 1]) for i, c in enumerate(b[1:])]
            print("| " + " | ".join(cells) + " |")
        print(sep)


def errors_list(results: list[CellResult]) -> list[str]:
    out = []
    for r in results:
        if r.error:
            out.append(f"{r.system} / {r.pairing} / {r.workload} / {r.clients} client(s): {r.error}")
        elif r.validation_failures:
            out.append(f"{r.system} / {r.pairing} / {r.workload} / {r.clients} client(s): "
                       f"{r.validation_failures} ops returned unexpected results")
    return out


def render_markdown(meta: dict, rows: list[dict], results: list[CellResult], rss: dict | None,
                    pairings: list[str]) -> str:
    m = meta["machine"]
    L = [BEGIN_MARK, "", "<!-- generated by bench/ycsb.py; edits inside these markers are overwritten -->", ""]
    L.append(f"## Results ({meta['date']})")
    L.append("")
    L.append(f"- **Machine:** {m.get('nproc')} CPUs ({m.get('cpu', '?')}), "
             f"{m.get('ram_gib', '?')} GiB RAM, Linux {m.get('kernel', '?')}")
    L.append(f"- **Versions:** StratosDB {meta.get('stratosdb_version', 'n/a')}, "
             f"PostgreSQL {meta.get('postgresql_version', 'n/a')}, "
             f"pymongo {meta['pymongo']}, psycopg {meta['psycopg']} (libpq {meta['libpq']}), "
             f"Python {meta['python']}")
    L.append(f"- **Command:** `{meta['command']}`")
    L.append(f"- **Scale:** {meta['scale']}x of the full op counts"
             + (" (`--quick` smoke run — numbers are noisy)" if meta["quick"] else "")
             + f"; {meta['records']:,} preloaded records for read/update workloads; "
             f"documents ≈ {meta['doc_bytes']} bytes BSON; "
             + (f"each measurement run {meta['repeat']} times (StratosDB and PostgreSQL alternating), "
                "the median-throughput run is shown" if meta["repeat"] > 1 else "one run per measurement"))
    L.append("- Client and servers share the same machine; clients are Python threads, "
             "one connection each, over TCP on 127.0.0.1.")
    L.append("")
    for pairing in pairings:
        body = table_rows(rows, pairing)
        if not body:
            continue
        L.append(f"### {PAIRINGS[pairing]['title']}")
        L.append("")
        L.append("| " + " | ".join(HEADERS) + " |")
        L.append("|" + "|".join(["---"] + ["--:"] * (len(HEADERS) - 1)) + "|")
        for b in body:
            L.append("| " + " | ".join(b) + " |")
        L.append("")
    if rows:
        L.append("Ratio = StratosDB throughput / PostgreSQL throughput (> 1 means StratosDB is faster). "
                 "insert_many throughput is in documents/s and its latency is per 1,000-document batch. "
                 "`*` = some operations returned unexpected results (see below).")
        L.append("")
        L.append(cpu_explanation(meta, rows))
        L.append("")
    if rss:
        L.append("### StratosDB memory (RSS)")
        L.append("")
        if rss.get("error"):
            L.append(f"Loading {rss['docs']:,} documents failed: {rss['error']}")
        else:
            mib = lambda kb: f"{kb / 1024:.1f} MiB" if kb else "?"  # noqa: E731
            L.append(f"{rss['docs']:,} documents of ~1 KB loaded with `insert_many` batches of {BATCH} "
                     f"({fmt_num(rss['load_docs_per_s'])} docs/s, default write concern):")
            L.append("")
            L.append("| Phase | VmRSS | VmHWM (peak) |")
            L.append("|---|--:|--:|")
            L.append(f"| after start | {mib(rss['rss_start_kb'])} | — |")
            L.append(f"| after load | {mib(rss['rss_after_load_kb'])} | {mib(rss['hwm_after_load_kb'])} |")
            L.append(f"| after 1,000 _id + 100 email lookups, 100 range scans, 1 count | {mib(rss['rss_after_reads_kb'])} | "
                     f"{mib(rss['hwm_after_reads_kb'])} |")
            L.append("")
            L.append(f"Data directory on disk: {rss['data_dir_bytes'] / 2**20:.1f} MiB.")
        L.append("")
    errs = errors_list(results)
    if errs:
        L.append("### Errors and validation failures")
        L.append("")
        for e in errs:
            L.append(f"- {e}")
        L.append("")
    L.append(END_MARK)
    return "\n".join(L) + "\n"


def cpu_explanation(meta: dict, rows: list[dict]) -> str:
    sources = set(meta.get("server_cpu_source", {}).values())
    if sources == {"exact"}:
        how = ("read before and after through each process's CPU clock (`clock_getcpuclockid`: "
               "the exact total that `/proc/PID/stat` reports as utime+stime, without its "
               f"{1000 // CLK_TCK} ms tick rounding)")
    else:
        how = (f"read before and after as utime+stime from `/proc/PID/stat` ({CLK_TCK} Hz clock "
               "ticks, so cells with few operations are quantized)")
    example = ""
    for row in rows:
        s_, p_ = row["s"], row["p"]
        if (row["workload"] == "point_read" and row["clients"] == 1 and s_ and p_
                and not s_.error and not p_.error):
            example = (f" In this run a single-client point read cost "
                       f"{fmt_us(s_.cli_cpu_us_per_op)} µs of client CPU with pymongo and "
                       f"{fmt_us(p_.cli_cpu_us_per_op)} µs with psycopg "
                       f"({row['pairing']} pairing), against {fmt_us(s_.srv_cpu_us_per_op)} and "
                       f"{fmt_us(p_.srv_cpu_us_per_op)} µs of server CPU.")
            break
    return (
        "**Where the time goes.** Both CPU columns cover the timed phase only (barrier release "
        "to the last client finishing) and are divided by the number of operations (insert_many: "
        "per 1,000-document batch). **srv µs/op** is the CPU time of the server: for StratosDB "
        "its one process (all threads), for PostgreSQL the postmaster plus all its child "
        "processes (backends, WAL writer, checkpointer, autovacuum, …), " + how + "; children "
        "that exit in between are still counted through the postmaster's cutime/cstime. "
        "**cli µs/op** is `time.process_time()` of the Python benchmark process (all client "
        "threads together). **srv CPU S/P** = StratosDB server CPU per op / PostgreSQL server "
        "CPU per op: **< 1 means StratosDB's server spends less CPU per operation**. "
        "Throughput and latency include the client libraries, and those are not equally "
        "expensive: pymongo (BSON is encoded in C, but sessions, server selection and command "
        "assembly run in Python) spends considerably more CPU per operation than psycopg 3 "
        "(its C implementation on libpq)." + example +
        " Client and servers share the CPUs here, so fast single-document operations are "
        "largely bounded by the client, and the throughput ratio mixes client-library cost "
        "with server cost; the server-CPU ratio compares the servers alone. Wall-clock time "
        "not covered by either CPU column is waiting (loopback wake-ups, fsync, lock waits)."
    )


INTRO = """# StratosDB benchmarks

StratosDB compared with PostgreSQL {pgmajor} (a `jsonb` document table) on the same machine,
in the same run, with YCSB-style workloads driven from Python (pymongo / psycopg 3).
How to run it and how to read the numbers: [bench/README.md](../bench/README.md).

The section below is generated by `bench/ycsb.py` (`make bench`) and replaced on every run.

"""


def write_markdown(path: str, section: str) -> None:
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        b, e = text.find(BEGIN_MARK), text.find(END_MARK)
        if b != -1 and e != -1 and e > b:
            text = text[:b] + section.rstrip("\n") + text[e + len(END_MARK):]
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        text = INTRO.format(pgmajor=15) + section
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def parse_list(s: str, allowed: list[str], what: str) -> list[str]:
    if s.strip().lower() in ("", "none"):
        return []
    if s.strip().lower() == "all":
        return list(allowed)
    items = [x.strip() for x in s.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return [a for a in allowed if a in items]  # canonical order


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="StratosDB vs PostgreSQL YCSB-style benchmark (see bench/README.md)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--stratosdb-bin", default=os.path.join(REPO, ".build", "release", "stratosdb"),
                    help="StratosDB server binary")
    ap.add_argument("--stratosdb-args", default="",
                    help="extra arguments appended to `stratosdb serve` (shell-quoted string)")
    ap.add_argument("--pg-bin", default=DEFAULT_PG_BIN, help="PostgreSQL bin directory")
    ap.add_argument("--quick", action="store_true", help="10x fewer ops (smoke run)")
    ap.add_argument("--scale", type=float, default=None,
                    help="multiply all op counts and the record count (default 1, or 0.1 with --quick)")
    ap.add_argument("--clients", default="1,4", help="comma-separated client counts")
    ap.add_argument("--pairings", default="durable,default",
                    help=f"comma-separated subset of: {', '.join(PAIRINGS)}")
    ap.add_argument("--workloads", default="all",
                    help=f"'all', 'none', or a comma-separated subset of: "
                         f"{', '.join(w.name for w in WORKLOADS)}")
    ap.add_argument("--output", default=os.path.join(REPO, "docs", "benchmarks.md"),
                    help="markdown file whose generated section is replaced ('' to skip)")
    ap.add_argument("--json", default=None, help="also write raw results to this JSON file")
    ap.add_argument("--rss-docs", type=int, default=0,
                    help="also load N ~1 KB docs into a fresh StratosDB and report its RSS (0 = off)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--only-postgres", action="store_true",
                       help="skip StratosDB (debugging the harness / PostgreSQL side)")
    group.add_argument("--only-stratosdb", action="store_true", help="skip PostgreSQL")
    ap.add_argument("--tmpdir", default=None,
                    help="parent directory for both servers' data dirs (same disk for fairness; "
                         "never a tmpfs)")
    ap.add_argument("--keep-data", action="store_true", help="do not delete the servers' data dirs")
    ap.add_argument("--repeat", type=int, default=None,
                    help="run every measurement R times and report the median-throughput one "
                         "(default 3, or 1 with --quick)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--cell-timeout", type=float, default=900,
                    help="abort a single workload measurement after this many seconds")
    ap.add_argument("--fail-fast", action="store_true", help="stop at the first error")
    ap.add_argument("-v", "--verbose", action="store_true", help="print tracebacks for errors")
    args = ap.parse_args(argv)

    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    if scale <= 0:
        ap.error("--scale must be > 0")
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    if not 1 <= repeat <= 20:
        ap.error("--repeat must be between 1 and 20")
    try:
        clients_list = sorted({int(x) for x in args.clients.split(",") if x.strip()})
    except ValueError:
        ap.error("--clients must be a comma-separated list of integers")
    if not clients_list or any(c < 1 or c > 64 for c in clients_list):
        ap.error("--clients values must be between 1 and 64")
    pairings = parse_list(args.pairings, list(PAIRINGS), "pairing")
    workloads = [WORKLOAD_BY_NAME[n] for n in parse_list(args.workloads, [w.name for w in WORKLOADS],
                                                         "workload")]
    if not workloads and not args.rss_docs:
        ap.error("nothing to do: no workloads selected and --rss-docs not given")
    if workloads and not pairings:
        ap.error("no pairings selected")
    if args.rss_docs < 0:
        ap.error("--rss-docs must be >= 0")
    if args.only_postgres and args.rss_docs:
        ap.error("--rss-docs needs StratosDB (drop --only-postgres)")
    need_stratos = not args.only_postgres
    if need_stratos and not os.access(args.stratosdb_bin, os.X_OK):
        ap.error(f"StratosDB binary not found: {args.stratosdb_bin} "
                 "(build with `swift build -c release`, pass --stratosdb-bin, or use --only-postgres)")
    if args.tmpdir:
        os.makedirs(args.tmpdir, exist_ok=True)

    # SIGTERM/SIGHUP -> SystemExit so every finally block (server shutdown) runs
    def _term(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGHUP, _term)

    import bson
    import psycopg
    import pymongo

    meta: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine_info(),
        "pymongo": pymongo.version,
        "psycopg": psycopg.__version__,
        "libpq": psycopg.pq.version(),
        "python": platform.python_version(),
        "command": " ".join(["python3", "bench/ycsb.py"]
                            + [shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)]),
        "scale": scale,
        "quick": args.quick,
        "records": max(100, int(round(RECORDS * scale))),
        "doc_bytes": len(bson.encode(make_doc(12345))),
        "clients": clients_list,
        "pairings": pairings,
        "workloads": [w.name for w in workloads],
        "seed": args.seed,
        "repeat": repeat,
    }
    lv = meta["libpq"]
    meta["libpq"] = f"{lv // 10000}.{lv % 100}" if lv >= 100000 else str(lv)
    log(f"StratosDB bench: scale={scale} clients={clients_list} pairings={pairings} "
        f"workloads={[w.name for w in workloads]} doc≈{meta['doc_bytes']} B "
        f"machine={meta['machine'].get('nproc')} CPU / {meta['machine'].get('ram_gib')} GiB")

    results: list[CellResult] = []
    rss = None
    t_start = time.monotonic()
    try:
        if workloads:
            kinds = (["stratos"] if need_stratos else []) + ([] if args.only_stratosdb else ["postgres"])
            for pairing in pairings:
                results += run_pairing(pairing, kinds, args, workloads, clients_list, scale, repeat, meta)
        if args.rss_docs:
            rss = run_rss(args, meta)
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    meta["elapsed_s"] = round(time.monotonic() - t_start, 1)

    rows = pair_rows(results)
    print_tables(rows, pairings)
    errs = errors_list(results)
    if errs:
        print("\nErrors / validation failures:")
        for e in errs:
            print("  - " + e)
    if rss and not rss.get("error"):
        print(f"\nStratosDB RSS with {rss['docs']:,} docs: after load "
              f"{rss['rss_after_load_kb'] / 1024:.1f} MiB, after reads {rss['rss_after_reads_kb'] / 1024:.1f} MiB "
              f"(peak {rss['hwm_after_reads_kb'] / 1024:.1f} MiB)")
    print(f"\nRatio = StratosDB/PostgreSQL throughput (>1: StratosDB faster). "
          f"srv/cli µs/op = server / benchmark-client CPU per op over the timed phase; "
          f"srv CPU S/P = StratosDB/PostgreSQL server CPU per op (<1: StratosDB cheaper). "
          f"Total time {meta['elapsed_s']}s.")

    if args.output:
        write_markdown(args.output, render_markdown(meta, rows, results, rss, pairings))
        log(f"wrote {args.output}")
    if args.json:
        def clean(v):  # NaN is not valid JSON
            return None if isinstance(v, float) and math.isnan(v) else v
        payload = {"meta": meta,
                   "results": [{k: clean(v) for k, v in (asdict(r) | {"throughput": r.throughput}).items()}
                               for r in results],
                   "rss": rss}
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=2, default=str, allow_nan=False)
        log(f"wrote {args.json}")
    return 1 if any(r.error for r in results) or (rss and rss.get("error")) else 0


if __name__ == "__main__":
    sys.exit(main())
