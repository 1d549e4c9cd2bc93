"""Shared fixtures for the StratosDB pymongo interoperability suite.

The suite talks to a real ``stratosdb`` process over TCP, exactly like an
application would, and asserts what MongoDB 7.0 would answer.

Binary lookup:
    * ``$STRATOSDB_BIN`` if set, otherwise
    * ``<repo>/.build/debug/stratosdb`` where ``<repo>`` is the repository root
      (this file lives in ``<repo>/Tests/Interop/python/``).

Fixtures:
    * ``server`` (session): one server on a temporary data directory, shared by
      every test so the suite stays fast.
    * ``client`` (session): a ``MongoClient`` connected to ``server``.
    * ``db`` (function): a fresh, uniquely named database, dropped afterwards.
    * ``server_factory`` (function): starts dedicated servers on their own data
      directories (crash/restart tests) and stops them afterwards.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import signal
import socket
import subprocess
import time
import weakref
from pathlib import Path
from typing import Iterator, Sequence

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

# <repo>/Tests/Interop/python/conftest.py -> parents[3] == <repo>
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BINARY = REPO_ROOT / ".build" / "debug" / "stratosdb"

STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.05


def server_binary() -> Path:
    """Return the stratosdb executable to test."""
    env = os.environ.get("STRATOSDB_BIN")
    return Path(env).expanduser().resolve() if env else DEFAULT_BINARY


def free_port() -> int:
    """Ask the kernel for a free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerStartError(RuntimeError):
    """The server binary is missing, exited early or never accepted connections."""


# Every live ServerProcess, so that an interrupted run does not leak processes.
_LIVE_SERVERS: "weakref.WeakSet[ServerProcess]" = weakref.WeakSet()


@atexit.register
def _kill_leftover_servers() -> None:
    for srv in list(_LIVE_SERVERS):
        srv.kill9()


class ServerProcess:
    """Owns one ``stratosdb serve`` process bound to 127.0.0.1.

    The port is chosen once and kept across ``restart()``/``start()`` calls, so a
    restarted server is reachable at the same ``uri`` (as a real restart would
    be). stdout and stderr go to ``log_path`` (appended across restarts).

    Clients handed out by ``client()`` are closed by ``stop()`` and ``kill9()``
    (before the signal is sent, so that closing them does not wait on a dead
    server).
    """

    def __init__(
        self,
        data_dir: os.PathLike | str,
        *,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        binary: os.PathLike | str | None = None,
        log_path: os.PathLike | str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port if port is not None else free_port()
        self.extra_args = list(extra_args)
        self.binary = Path(binary) if binary is not None else server_binary()
        self.log_path = (
            Path(log_path)
            if log_path is not None
            else self.data_dir.with_name(self.data_dir.name + ".server.log")
        )
        self.proc: subprocess.Popen | None = None
        self.last_returncode: int | None = None
        self._log_offset = 0
        self._clients: list[MongoClient] = []

    # -- addressing ---------------------------------------------------------

    host = "127.0.0.1"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def login(self) -> tuple[str, str]:
        """The local owner's SCRAM login, created by the server's first start."""
        password = (self.data_dir / "keys" / "owner.password").read_text().strip()
        return ("owner", password)

    @property
    def uri(self) -> str:
        user, password = self.login
        return f"mongodb://{user}:{password}@{self.host}:{self.port}/?directConnection=true"

    @property
    def anonymous_uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def raw_connection(self, timeout: float = 10.0, authenticate: bool = True):
        """A raw socket, logged in as the local owner with SCRAM-SHA-256 unless told otherwise."""
        from mongo_wire import connect, scram_sha256_login

        sock = connect(self.address, timeout=timeout)
        if authenticate:
            scram_sha256_login(sock, *self.login)
        return sock

    def command_line(self) -> list[str]:
        return [
            str(self.binary),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *self.extra_args,
        ]

    # -- lifecycle ----------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> "ServerProcess":
        """Launch the server and wait until it accepts TCP connections."""
        if self.is_running:
            raise RuntimeError(f"server on port {self.port} is already running")
        if not self.binary.is_file():
            raise ServerStartError(
                f"StratosDB binary not found at {self.binary}. Build it "
                "(swift build) or point STRATOSDB_BIN at an executable."
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            self.proc = subprocess.Popen(
                self.command_line(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Own process group: a Ctrl-C aimed at pytest must not kill the
                # server before the fixtures had a chance to stop it.
                start_new_session=True,
            )
        _LIVE_SERVERS.add(self)

        deadline = time.monotonic() + timeout
        while True:
            returncode = self.proc.poll()
            if returncode is not None:
                self.last_returncode = returncode
                self.proc = None
                raise ServerStartError(
                    f"stratosdb exited with status {returncode} during startup.\n"
                    f"command: {' '.join(self.command_line())}\n"
                    f"output:\n{self.output()}"
                )
            try:
                with socket.create_connection(self.address, timeout=0.5):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill9()
                raise ServerStartError(
                    f"stratosdb did not accept connections on {self.host}:{self.port} "
                    f"within {timeout:.0f}s.\noutput:\n{self.output()}"
                )
            time.sleep(POLL_INTERVAL_S)

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns the exit status."""
        self._close_clients()
        if self.proc is None:
            return self.last_returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self._reap()

    def kill9(self) -> int | None:
        """Simulate a crash: SIGKILL without any chance to flush."""
        self._close_clients()
        if self.proc is None:
            return self.last_returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        return self._reap()

    def restart(self, timeout: float = STARTUP_TIMEOUT_S) -> "ServerProcess":
        """Graceful stop, then start again on the same data directory and port."""
        self.stop()
        return self.start(timeout=timeout)

    def _reap(self) -> int | None:
        assert self.proc is not None
        self.last_returncode = self.proc.returncode
        self.proc = None
        _LIVE_SERVERS.discard(self)
        return self.last_returncode

    # -- clients and diagnostics ---------------------------------------------

    def client(self, **kwargs) -> MongoClient:
        """A new MongoClient for this server (closed automatically on stop)."""
        kwargs.setdefault("serverSelectionTimeoutMS", 5000)
        # Guard against a hung server blocking the whole suite forever.
        kwargs.setdefault("socketTimeoutMS", 60000)
        client = MongoClient(self.uri, **kwargs)
        self._clients.append(client)
        return client

    def _close_clients(self) -> None:
        while self._clients:
            self._clients.pop().close()

    def output(self, max_chars: int = 20000) -> str:
        """Server stdout/stderr produced since the last start()."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return "<no output>"
        if len(text) > max_chars:
            text = "...\n" + text[-max_chars:]
        return text or "<no output>"

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<ServerProcess {self.host}:{self.port} {state} data={self.data_dir}>"


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One StratosDB process shared by the whole test session."""
    base = tmp_path_factory.mktemp("stratosdb")
    srv = ServerProcess(base / "data")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def server_factory(tmp_path):
    """Start dedicated servers (e.g. for crash tests); all are stopped at teardown.

    Usage: ``srv = server_factory("--sync", "full")`` returns a started
    ServerProcess with its own data directory under ``tmp_path``.
    """
    started: list[ServerProcess] = []

    def factory(*extra_args: str) -> ServerProcess:
        srv = ServerProcess(tmp_path / f"data{len(started)}", extra_args=extra_args)
        started.append(srv)
        return srv.start()

    yield factory
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> MongoClient:
    """A MongoClient connected to the session server (closed when it stops)."""
    return server.client()


_db_counter = itertools.count(1)


def unique_db_name(test_name: str) -> str:
    """A database name that is unique in this run and valid for MongoDB (< 64 bytes)."""
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", test_name).strip("_")[:40]
    return f"it{next(_db_counter):04d}_{slug}"


@pytest.fixture
def db(client: MongoClient, server: ServerProcess, request):
    """A fresh, uniquely named database, dropped after the test."""
    name = unique_db_name(request.node.name)
    yield client[name]
    try:
        client.drop_database(name)
    except PyMongoError:
        # If the server died, the crash guard below reports it; don't bury
        # that report under a secondary connection error.
        if server.is_running:
            raise


@pytest.fixture(autouse=True)
def _server_crash_guard(request):
    """Fail the test during which the shared server died, then revive it.

    Without this, one crash would turn every following test into a confusing
    ServerSelectionTimeoutError.
    """
    yield
    if "server" not in request.fixturenames:
        return
    srv: ServerProcess = request.getfixturevalue("server")
    if srv.proc is not None and not srv.is_running:
        returncode = srv.proc.returncode
        output = srv.output()
        srv.proc = None
        srv.start()  # same data dir and port, so the session client reconnects
        pytest.fail(
            f"the shared StratosDB server died during this test "
            f"(exit status {returncode}); it was restarted.\noutput:\n{output}",
            pytrace=False,
        )
