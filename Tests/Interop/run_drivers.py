#!/usr/bin/env python3
"""Runs every official-driver interop program against one real `stratosdb serve` process.

Each driver lives in Tests/Interop/drivers/<name>/ with:
  packages.txt  Debian packages it needs (one per line; `pip:NAME` lines are PyPI packages)
  run.sh        builds (into $WORK_DIR) and runs the program; it reads MONGODB_URI and
                STRATOS_DB, prints what it checked, and exits non-zero on the first failure.

Missing packages are installed when we can (root + apt-get); a driver whose packages cannot be
installed is reported SKIPPED with the reason and never counted as passed. The closing line is
'N passed, N failed, N skipped'. Exit status is non-zero when any driver failed.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DRIVERS = HERE / "drivers"
RUN_TIMEOUT_SECONDS = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def installed(package: str) -> bool:
    if package.startswith("pip:"):
        name = package[4:]
        return subprocess.run([sys.executable, "-m", "pip", "show", "-q", name], capture_output=True).returncode == 0
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return "install ok installed" in result.stdout


def ensure_packages(packages: list[str]) -> str | None:
    """Installs what is missing; returns a reason string when that is impossible."""
    missing = [p for p in packages if not installed(p)]
    if not missing:
        return None
    apt = [p for p in missing if not p.startswith("pip:")]
    pip = [p[4:] for p in missing if p.startswith("pip:")]
    if apt:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            return f"cannot install {' '.join(apt)} (needs root and apt-get)"
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        update = subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, env=env)
        result = subprocess.run(["apt-get", "install", "-y", "-qq", *apt], capture_output=True, text=True, env=env)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout or update.stderr).strip().splitlines()[-1:]
            return f"apt-get could not install {' '.join(apt)}: {' '.join(tail)}"
    if pip:
        result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *pip], capture_output=True, text=True)
        if result.returncode != 0:
            return f"pip could not install {' '.join(pip)}"
    still = [p for p in packages if not installed(p)]
    return f"still missing after install: {' '.join(still)}" if still else None


def start_server(binary: str, data_dir: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [binary, "serve", "--data-dir", data_dir, "--bind", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stratosdb exited early: {process.stderr.read().decode(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("stratosdb did not start listening within 30 s")


def main() -> int:
    binary = os.environ.get("STRATOSDB_BIN", str(REPO / ".build" / "debug" / "stratosdb"))
    selected = set(sys.argv[1:])
    drivers = sorted(d for d in DRIVERS.iterdir() if (d / "run.sh").exists() and (not selected or d.name in selected))
    results: list[tuple[str, str, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="stratosdb-drivers-") as scratch:
        server, port = start_server(binary, os.path.join(scratch, "data"))
        try:
            for driver in drivers:
                started = time.monotonic()
                packages = [line.strip() for line in (driver / "packages.txt").read_text().splitlines()
                            if line.strip() and not line.startswith("#")] if (driver / "packages.txt").exists() else []
                reason = ensure_packages(packages)
                if reason:
                    results.append((driver.name, "SKIPPED", reason, time.monotonic() - started))
                    print(f"[{driver.name}] SKIPPED: {reason}", flush=True)
                    continue
                work = os.path.join(scratch, "work-" + driver.name)
                os.makedirs(work)
                # Every driver logs in with its default mechanism, as the local owner.
                password = open(os.path.join(scratch, "data", "keys", "owner.password")).read().strip()
                env = dict(os.environ, MONGODB_URI=f"mongodb://owner:{password}@127.0.0.1:{port}/", STRATOS_DB=f"interop_{driver.name}",
                           WORK_DIR=work, STRATOS_PORT=str(port))
                print(f"[{driver.name}] running", flush=True)
                try:
                    run = subprocess.run(["bash", str(driver / "run.sh")], cwd=driver, env=env, capture_output=True,
                                         text=True, timeout=RUN_TIMEOUT_SECONDS)
                    output = (run.stdout + run.stderr).strip()
                    status = "PASSED" if run.returncode == 0 else "FAILED"
                    detail = output.splitlines()[-1] if output else ""
                    if status == "FAILED":
                        print(output[-4000:], flush=True)
                except subprocess.TimeoutExpired:
                    status, detail = "FAILED", f"timed out after {RUN_TIMEOUT_SECONDS} s"
                if server.poll() is not None:
                    status, detail = "FAILED", "the server died during this driver's run"
                    results.append((driver.name, status, detail, time.monotonic() - started))
                    break
                results.append((driver.name, status, detail, time.monotonic() - started))
                print(f"[{driver.name}] {status} ({time.monotonic() - started:.1f} s): {detail}", flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    print("\nDriver interoperability:")
    for name, status, detail, seconds in results:
        print(f"  {name:<12} {status:<8} {seconds:6.1f} s  {detail[:120]}")
    passed = sum(1 for r in results if r[1] == "PASSED")
    failed = sum(1 for r in results if r[1] == "FAILED")
    skipped = sum(1 for r in results if r[1] == "SKIPPED")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
