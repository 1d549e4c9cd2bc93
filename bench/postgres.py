"""Throwaway PostgreSQL cluster for benchmarks.

Starts a private PostgreSQL (15 by default) cluster in a temporary directory,
listening on 127.0.0.1 only (plus a Unix socket inside the data directory),
and removes everything again on stop.

Durability is left at the PostgreSQL defaults (fsync=on, synchronous_commit=on)
unless ``synchronous_commit_off=True`` is passed, which adds
``-c synchronous_commit=off`` (commits return before the WAL flush; fsync stays
on, so this is still crash-safe, it just may lose the last few commits).

Works as root (initdb/pg_ctl refuse to run as root, so they are run through
``runuser -u postgres``) and as an ordinary user (run directly).

Usage::

    with PostgresServer() as pg:
        conn = psycopg.connect(pg.conninfo)
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

DEFAULT_PG_BIN = "/usr/lib/postgresql/15/bin"
PG_USER = "postgres"


def free_port() -> int:
    """Return a TCP port that is currently free on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresError(RuntimeError):
    pass


class PostgresServer:
    def __init__(
        self,
        pg_bin: str = DEFAULT_PG_BIN,
        port: int | None = None,
        synchronous_commit_off: bool = False,
        tmp_parent: str | None = None,
        extra_settings: dict[str, str] | None = None,
        keep_dir: bool = False,
        start_timeout: int = 60,
    ) -> None:
        self.pg_bin = pg_bin
        self.port = port
        self.synchronous_commit_off = synchronous_commit_off
        self.tmp_parent = tmp_parent
        self.extra_settings = dict(extra_settings or {})
        self.keep_dir = keep_dir
        self.start_timeout = start_timeout
        self.base_dir: str | None = None
        self.data_dir: str | None = None
        self.log_file: str | None = None
        self.running = False
        self._as_root = os.geteuid() == 0

    # ------------------------------------------------------------------ helpers
    def _bin(self, name: str) -> str:
        path = os.path.join(self.pg_bin, name)
        if not os.path.exists(path):
            raise PostgresError(f"{path} not found (is PostgreSQL installed? see --pg-bin)")
        return path

    def _cmd(self, argv: list[str]) -> list[str]:
        if self._as_root:
            return ["runuser", "-u", PG_USER, "--"] + argv
        return argv

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        # stdin/stdout/stderr must not be inherited pipes held by the postmaster:
        # pg_ctl start is always given -l, so capturing here is safe.
        return subprocess.run(
            self._cmd(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,  # Ctrl-C in the terminal must not hit the postmaster
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )

    def log_tail(self, n: int = 30) -> str:
        if not self.log_file or not os.path.exists(self.log_file):
            return "(no log)"
        try:
            with open(self.log_file, "r", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError as e:  # pragma: no cover
            return f"(cannot read log: {e})"

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres connect_timeout=10"

    # -------------------------------------------------------------- lifecycle
    def start(self) -> "PostgresServer":
        if self.running:
            return self
        initdb = self._bin("initdb")
        pg_ctl = self._bin("pg_ctl")
        self.base_dir = tempfile.mkdtemp(prefix="stratos-bench-pg-", dir=self.tmp_parent)
        try:
            if self._as_root:
                pw = pwd.getpwnam(PG_USER)
                os.chown(self.base_dir, pw.pw_uid, pw.pw_gid)
                # the postgres user must be able to traverse every parent directory
                parent = os.path.dirname(self.base_dir)
                if not os.access(parent, os.X_OK):  # pragma: no cover
                    raise PostgresError(f"{parent} is not traversable by {PG_USER}")
            os.chmod(self.base_dir, 0o700)
            self.data_dir = os.path.join(self.base_dir, "data")
            self.log_file = os.path.join(self.base_dir, "postgresql.log")

            # C collation + UTF8: byte-wise string ordering (as MongoDB does for
            # _id strings) and no libc-locale comparison overhead on the text PK.
            r = self._run(
                [initdb, "-D", self.data_dir, "-A", "trust", "-U", PG_USER,
                 "-E", "UTF8", "--locale=C"],
                timeout=180,
            )
            if r.returncode != 0:
                raise PostgresError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

            if self.port is None:
                self.port = free_port()
            opts = [f"-p {self.port}", f"-k {self.data_dir}", "-c listen_addresses=127.0.0.1"]
            if self.synchronous_commit_off:
                opts.append("-c synchronous_commit=off")
            for k, v in self.extra_settings.items():
                opts.append(f"-c {k}={v}")
            r = self._run(
                [pg_ctl, "-D", self.data_dir, "-l", self.log_file, "-o", " ".join(opts),
                 "-w", "-t", str(self.start_timeout), "start"],
                timeout=self.start_timeout + 30,
            )
            if r.returncode != 0:
                raise PostgresError(
                    f"pg_ctl start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                    f"--- server log ---\n{self.log_tail()}"
                )
            self.running = True
            self._wait_tcp()
            return self
        except BaseException:
            self.stop()
            raise

    def _wait_tcp(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise PostgresError(f"PostgreSQL did not accept TCP connections on port {self.port}")

    @property
    def postmaster_pid(self) -> int | None:
        """PID of the running postmaster (from postmaster.pid), or None."""
        return self._postmaster_pid() if self.running else None

    def _postmaster_pid(self) -> int | None:
        if not self.data_dir:
            return None
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Stop the cluster (fast shutdown) and delete its directory. Idempotent."""
        try:
            if self.data_dir and os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
                stopped = False
                try:
                    r = self._run(
                        [os.path.join(self.pg_bin, "pg_ctl"), "-D", self.data_dir,
                         "-m", "fast", "-w", "-t", "60", "stop"],
                        timeout=90,
                    )
                    stopped = r.returncode == 0
                except (subprocess.TimeoutExpired, OSError):
                    stopped = False
                if not stopped:
                    pid = self._postmaster_pid()
                    if pid:
                        # SIGQUIT = immediate shutdown; then make sure it is gone
                        for sig in (signal.SIGQUIT, signal.SIGKILL):
                            try:
                                os.kill(pid, sig)
                            except ProcessLookupError:
                                break
                            for _ in range(100):
                                try:
                                    os.kill(pid, 0)
                                except ProcessLookupError:
                                    break
                                time.sleep(0.1)
        finally:
            self.running = False
            if self.base_dir and not self.keep_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.base_dir = None

    def binary_version(self) -> str:
        try:
            r = subprocess.run([self._bin("postgres"), "--version"], capture_output=True,
                               text=True, timeout=10)
            return r.stdout.strip()
        except Exception as e:  # pragma: no cover
            return f"unknown ({e})"

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # quick manual check: python3 bench/postgres.py
    import psycopg  # type: ignore

    with PostgresServer() as pg:
        with psycopg.connect(pg.conninfo, autocommit=True) as c:
            print(c.execute("select version()").fetchone()[0])
            for s in ("fsync", "synchronous_commit", "listen_addresses", "lc_collate"):
                print(s, "=", c.execute(f"show {s}").fetchone()[0])
        print("data dir:", pg.data_dir)
    print("stopped; dir removed:", not os.path.exists(pg.data_dir or "/nonexistent"))
