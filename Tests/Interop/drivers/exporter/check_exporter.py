"""Runs Debian's prometheus-mongodb-exporter (dcu/mongodb_exporter on mgo) against StratosDB.

The exporter is an old-style client: mgo sends every command as a legacy OP_QUERY on `<db>.$cmd`
and starts each connection with `getnonce`. The program puts a small logging relay between the
exporter and the server so it can show which commands the exporter sent and how each one was
answered, then scrapes /metrics and checks what a Prometheus user would look at:

  - the exporter reports the server up (mongodb_up 1);
  - serverStatus-derived gauges and counters: uptime, local time, connections, memory, storage
    engine, cursors, op counters;
  - op counters move the way MongoDB moves them (insert counts documents, query counts finds);
  - per-database (dbStats) and per-collection (collStats) metrics match the data seeded here;
  - the profile collector's per-database slow-query count (a count on <db>.system.profile).

pymongo seeds the data (the exporter only reads). One "ok: ..." line per check; the first failure
exits non-zero. The exporter process is always killed before the program exits.
"""
import datetime
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

import bson
import pymongo

URI = os.environ["MONGODB_URI"]
DB_NAME = os.environ["STRATOS_DB"]
WORK_DIR = os.environ.get("WORK_DIR", "/tmp")
EXPORTER = "/usr/bin/prometheus-mongodb-exporter"
STARTED = time.monotonic()
SEEDED = 25


class CheckFailed(Exception):
    pass


def check(condition, what, detail=""):
    if not condition:
        raise CheckFailed(f"{what}{': ' + str(detail) if detail != '' else ''}")


def ok(what):
    print(f"ok: {what}", flush=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---- a logging relay between the exporter and the server -----------------------------------
OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013


class Relay:
    """Forwards bytes unchanged and records (opcode, namespace, command, reply) per request."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.requests = {}  # requestID -> entry
        self.log = []  # entries in arrival order
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    @staticmethod
    def _read_exact(sock, n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _pump(self, source, sink, from_client):
        try:
            while True:
                header = self._read_exact(source, 16)
                if header is None:
                    break
                length, request_id, response_to, opcode = struct.unpack("<iiii", header)
                body = self._read_exact(source, length - 16)
                if body is None:
                    break
                self._record(from_client, request_id, response_to, opcode, body)
                sink.sendall(header + body)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _record(self, from_client, request_id, response_to, opcode, body):
        try:
            if from_client:
                if opcode == OP_QUERY:
                    end = body.index(b"\0", 4)
                    namespace = body[4:end].decode()
                    start = end + 1 + 8
                    size = struct.unpack("<i", body[start:start + 4])[0]
                    command = bson.decode(body[start:start + size])
                elif opcode == OP_MSG:
                    size = struct.unpack("<i", body[5:9])[0]
                    command = bson.decode(body[5:5 + size])
                    namespace = f"{command.get('$db')}.$cmd (OP_MSG)"
                else:
                    namespace, command = f"opcode {opcode}", {}
                entry = {"opcode": opcode, "ns": namespace, "command": command, "reply": None}
                with self.lock:
                    self.requests[request_id] = entry
                    self.log.append(entry)
            else:
                if opcode == OP_REPLY:
                    size = struct.unpack("<i", body[20:24])[0]
                    reply = bson.decode(body[20:20 + size]) if size else {}
                elif opcode == OP_MSG:
                    size = struct.unpack("<i", body[5:9])[0]
                    reply = bson.decode(body[5:5 + size])
                else:
                    reply = {"opcode": opcode}
                with self.lock:
                    entry = self.requests.get(response_to)
                    if entry is not None:
                        entry["reply"] = reply
        except Exception as error:  # never let logging break the relay
            with self.lock:
                self.log.append({"opcode": opcode, "ns": "?", "command": {"unparsed": repr(error)}, "reply": None})

    def entries(self):
        with self.lock:
            return list(self.log)

    def close(self):
        self.listener.close()


# ---- Prometheus text format ---------------------------------------------------------------
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    metrics = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        if match:
            labels = tuple(sorted(LABEL.findall(match.group(3) or "")))
            metrics[(match.group(1), labels)] = float(match.group(4))
    return metrics


def metric(metrics, name, **labels):
    return metrics.get((name, tuple(sorted(labels.items()))))


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        check(response.status == 200, "/metrics status", response.status)
        return parse_metrics(response.read().decode())


def main():
    server_port = int(re.search(r":(\d+)/", URI.split("//", 1)[1]).group(1))
    credentials = URI.split("//", 1)[1].split("@", 1)[0] + "@" if "@" in URI else ""
    client = pymongo.MongoClient(URI, serverSelectionTimeoutMS=5000)
    client.drop_database(DB_NAME)

    relay = Relay(server_port)
    web_port = free_port()
    log_path = os.path.join(WORK_DIR, "exporter.log")
    log = open(log_path, "w")
    exporter = subprocess.Popen(
        [EXPORTER, f"-mongodb.uri=mongodb://{credentials}127.0.0.1:{relay.port}/", f"-web.listen-address=127.0.0.1:{web_port}",
         "-mongodb.collect.database", "-mongodb.collect.collection", "-mongodb.collect.profile", "-logtostderr"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        # ---- the exporter comes up and reports the server up --------------------------------
        deadline = time.monotonic() + 15
        first = None
        while time.monotonic() < deadline:
            check(exporter.poll() is None, "the exporter exited early", open(log_path).read()[-2000:])
            try:
                first = scrape(web_port)
                if metric(first, "mongodb_up") is not None:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        check(first is not None and metric(first, "mongodb_up") is not None,
              "no mongodb_up metric within 15 s", open(log_path).read()[-2000:])
        check(metric(first, "mongodb_up") == 1, "mongodb_up", metric(first, "mongodb_up"))
        ok(f"exporter listening on 127.0.0.1:{web_port}: mongodb_up 1")

        # ---- what the exporter sent --------------------------------------------------------
        sent = relay.entries()
        kinds = {e["opcode"] for e in sent}
        names = [next(iter(e["command"]), "?") for e in sent]
        check(kinds == {OP_QUERY}, "the exporter spoke legacy OP_QUERY only", kinds)
        check(all(e["ns"].endswith(".$cmd") for e in sent), "every OP_QUERY went to <db>.$cmd",
              [e["ns"] for e in sent])
        for name in ("getnonce", "ismaster", "serverStatus"):
            check(name in names, f"the exporter sent {name}", names)
            entry = next(e for e in sent if name in e["command"])
            check(entry["reply"] is not None and entry["reply"].get("ok") == 1.0, f"{name} answered ok:1",
                  entry["reply"])
        nonce = next(e for e in sent if "getnonce" in e["command"])["reply"]
        check(isinstance(nonce.get("nonce"), str) and nonce["nonce"], "getnonce returned a nonce", nonce)
        # Standalone MongoDB refuses these too (no replica set, no oplog); the exporter logs and goes on.
        expected_failures = {"replSetGetStatus", "collStats"}
        for entry in sent:
            reply, name = entry["reply"] or {}, next(iter(entry["command"]), "?")
            if reply.get("ok") != 1.0:
                tag = "as on a standalone mongod" if name in expected_failures else "MongoDB 7.0 would answer this"
                print(f"note: {entry['ns']} {dict(entry['command'])} -> code {reply.get('code')} "
                      f"{reply.get('codeName')}: {reply.get('errmsg')} ({tag})", flush=True)
        ok(f"wire: {len(sent)} commands, all legacy OP_QUERY on <db>.$cmd, starting with getnonce/ismaster; "
           "getnonce, ismaster and serverStatus answered ok:1")

        # ---- serverStatus-derived metrics ---------------------------------------------------
        uptime = metric(first, "mongodb_instance_uptime_seconds")
        check(uptime is not None and uptime > 0, "mongodb_instance_uptime_seconds", uptime)
        local = metric(first, "mongodb_instance_local_time")
        check(local is not None and abs(local - time.time()) < 120, "mongodb_instance_local_time is now",
              (local, time.time()))
        current = metric(first, "mongodb_connections", state="current")
        available = metric(first, "mongodb_connections", state="available")
        check(current is not None and current >= 1, "mongodb_connections{state=current}", current)
        check(available is not None and available > 0, "mongodb_connections{state=available}", available)
        created = metric(first, "mongodb_connections_metrics_created_total")
        check(created is not None and created >= current, "mongodb_connections_metrics_created_total", created)
        for kind in ("insert", "query", "update", "delete", "getmore", "command"):
            value = metric(first, "mongodb_op_counters_total", type=kind)
            check(value is not None and value >= 0, f"mongodb_op_counters_total{{type={kind}}}", value)
        check(metric(first, "mongodb_op_counters_total", type="command") > 0, "some commands counted")
        resident = metric(first, "mongodb_memory", type="resident")
        check(resident is not None and resident > 0, "mongodb_memory{type=resident} (MiB)", resident)
        engines = [labels for (name, labels), value in first.items() if name == "mongodb_storage_engine" and value == 1]
        check(len(engines) == 1, "mongodb_storage_engine names one engine", engines)
        check(metric(first, "mongodb_metrics_cursor_open", state="total") is not None, "mongodb_metrics_cursor_open")
        ok(f"serverStatus metrics: uptime {uptime:.1f} s, connections current {current:.0f} available "
           f"{available:.0f}, resident {resident:.0f} MiB, engine {dict(engines[0])['engine']}, op counters")

        # ---- seed data, scrape again -----------------------------------------------------------
        collection = client[DB_NAME]["samples"]
        collection.create_index("n")
        collection.insert_many([{"n": i, "at": datetime.datetime(2024, 1, 1) + datetime.timedelta(hours=i),
                                 "tags": ["a", "b"][: i % 3]} for i in range(SEEDED)])  # one insert command
        for low in (0, 10, 20):
            list(collection.find({"n": {"$gte": low}}))
        second = scrape(web_port)
        check(metric(second, "mongodb_up") == 1, "mongodb_up on the second scrape")

        # ---- per-database and per-collection metrics ------------------------------------------
        db_labels = {"db": DB_NAME, "shard": ""}
        objects = metric(second, "mongodb_db_objects_total", **db_labels)
        check(objects == SEEDED, "mongodb_db_objects_total (dbStats objects)", objects)
        check(metric(second, "mongodb_db_collections_total", **db_labels) == 1, "mongodb_db_collections_total",
              metric(second, "mongodb_db_collections_total", **db_labels))
        check(metric(second, "mongodb_db_indexes_total", **db_labels) == 2, "mongodb_db_indexes_total (_id_ + n_1)",
              metric(second, "mongodb_db_indexes_total", **db_labels))
        data_size = metric(second, "mongodb_db_data_size_bytes", **db_labels)
        check(data_size is not None and data_size > 0, "mongodb_db_data_size_bytes", data_size)
        ns = f"{DB_NAME}.samples"
        check(metric(second, "mongodb_collection_total_objects", ns=ns) == SEEDED, "mongodb_collection_total_objects",
              metric(second, "mongodb_collection_total_objects", ns=ns))
        size = metric(second, "mongodb_collection_size_bytes", ns=ns)
        avg = metric(second, "mongodb_collection_avg_objsize_bytes", ns=ns)
        check(size is not None and size > 0 and avg is not None and abs(avg - size / SEEDED) <= 1,
              "mongodb_collection_size_bytes / avg_objsize_bytes", (size, avg))
        ok(f"database metrics: {DB_NAME} has {objects:.0f} objects, 1 collection, 2 indexes; "
           f"{ns} size {size:.0f} B")

        # ---- op counters move like MongoDB's ------------------------------------------------
        # mongod adds the number of documents inserted to opcounters.insert (one insert command with 25
        # documents adds 25) and one per find command to opcounters.query.
        def delta(kind):
            return (metric(second, "mongodb_op_counters_total", type=kind)
                    - metric(first, "mongodb_op_counters_total", type=kind))
        check(delta("query") == 3, "opcounters.query grew by the 3 finds", delta("query"))
        check(delta("insert") == SEEDED, f"opcounters.insert grew by the {SEEDED} documents inserted "
              "(mongod counts documents, not insert commands)", delta("insert"))
        ok(f"op counters: insert +{delta('insert'):.0f} for {SEEDED} documents, query +{delta('query'):.0f} for 3 finds")

        # ---- profile collector ------------------------------------------------------------------
        # The exporter counts recent entries in <db>.system.profile for every database; on a mongod
        # with profiling off that collection is absent and the count is 0.
        slow = metric(second, "mongodb_profile_slow_query_30s_count", database=DB_NAME)
        check(slow == 0, "mongodb_profile_slow_query_30s_count for the database (count on system.profile)",
              f"{slow}; the server answered: " + "; ".join(
                  f"{(e['reply'] or {}).get('code')} {(e['reply'] or {}).get('errmsg')}"
                  for e in relay.entries() if e["command"].get("count") == "system.profile")[:300])
        ok("profile metrics: mongodb_profile_slow_query_30s_count 0")
    finally:
        exporter.terminate()
        try:
            exporter.wait(timeout=5)
        except subprocess.TimeoutExpired:
            exporter.kill()
            exporter.wait()
        log.close()
        relay.close()
    client.drop_database(DB_NAME)
    client.close()
    print(f"exporter: all checks passed in {time.monotonic() - STARTED:.1f} s", flush=True)


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception as error:
        import traceback
        traceback.print_exc()
        print(f"FAILED: unexpected {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
