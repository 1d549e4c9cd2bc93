#!/usr/bin/env python3
"""Runs the MongoDB drivers' unified CRUD spec tests (test/crud/unified/*.json, with pymongo's own
runner, from pymongo's source distribution on PyPI) against a real `stratosdb serve`, and fails
when a test fails that is not listed below with its reason.

The source distribution is pinned (its tests and its pure-Python pymongo run together, so the
result does not depend on the pymongo installed for the other suites) and cached under
`.build-spec-tests/`. A standalone MongoDB 7.0 is what the node reports, so the runner itself
skips tests written for other versions and topologies; docs/compatibility.md has the table.

    STRATOSDB_BIN=.build/debug/stratosdb python3 Tests/Interop/unified_crud.py
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PYMONGO_VERSION = "4.20.1"
ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".build-spec-tests"
SOURCE = CACHE / f"pymongo-{PYMONGO_VERSION}"

# Tests that fail against StratosDB, each with the reason (docs/compatibility.md). None today.
KNOWN_FAILURES: dict[str, str] = {}


def fetch_source() -> Path:
    if (SOURCE / "test" / "crud" / "unified").is_dir():
        return SOURCE
    CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as download:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", f"pymongo=={PYMONGO_VERSION}", "--no-binary", ":all:",
             "--no-deps", "-d", download],
            check=True)
        archive = next(Path(download).glob("pymongo-*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(CACHE, filter="data")
    return SOURCE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    binary = os.environ.get("STRATOSDB_BIN") or shutil.which("stratosdb")
    if not binary:
        print("STRATOSDB_BIN is not set", file=sys.stderr)
        return 2
    source = fetch_source()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="stratos-unified-") as data:
        node = subprocess.Popen(
            [binary, "serve", "--data-dir", data, "--port", str(port), "--dev-insecure", "--enable-test-commands",
             "--log-level", "error"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            if "ready: " not in (node.stdout.readline() if node.stdout else ""):
                print("the node did not start", file=sys.stderr)
                return 1
            # `-c /dev/null`: pymongo's own pytest settings want plugins its suite installs.
            run = subprocess.run(
                [sys.executable, "-m", "pytest", "-c", os.devnull, "--rootdir", str(source), "-q", "-rfs",
                 "-p", "no:cacheprovider", "test/test_crud_unified.py"],
                cwd=source, env={**os.environ, "DB_IP": "127.0.0.1", "DB_PORT": str(port)},
                capture_output=True, text=True, timeout=1200)
        finally:
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=60)
    output = run.stdout + run.stderr
    failed = set(re.findall(r"^FAILED test/test_crud_unified\.py::(\S+)", output, re.M))
    summary = re.search(r"(\d+) failed|(\d+) passed", output)
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped)", output.splitlines()[-1] if output else "")}
    skips: dict[str, int] = {}
    for count, reason in re.findall(r"^SKIPPED \[(\d+)\] [^:]+:\d+: (.*)$", output, re.M):
        reason = re.sub(r"^TestUnified\w+ ", "", reason)
        skips[reason] = skips.get(reason, 0) + int(count)
    print(f"unified CRUD spec tests (pymongo {PYMONGO_VERSION}): {counts.get('passed', 0)} passed, "
          f"{counts.get('failed', 0)} failed, {counts.get('skipped', 0)} skipped")
    for reason, count in sorted(skips.items(), key=lambda item: -item[1]):
        print(f"  skipped {count:3d}: {reason}")
    for test in sorted(failed):
        print(f"  failed: {test}" + (f" (known: {KNOWN_FAILURES[test]})" if test in KNOWN_FAILURES else ""))
    unexpected = failed - KNOWN_FAILURES.keys()
    if not summary or "passed" not in counts or unexpected:
        if not summary or "passed" not in counts:
            print(output[-4000:])
        print(f"{len(unexpected)} unexpected failure(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
