"""A real PostgreSQL server for the tests: its own cluster, on a free port of 127.0.0.1.

Debian's server binaries (package `postgresql`, which tests/run.sh installs) are found in
/usr/lib/postgresql/<version>/bin, or where `pg_config --bindir` says. The cluster trusts every
local connection (user `postgres`, no password) and trades durability for speed (fsync off):
it holds nothing worth keeping. initdb refuses to run as root, so under root the server runs as
the `postgres` user, and in a new folder of the temporary directory when that user cannot reach
the one given (pytest's tmp_path sits under a folder only root may enter): removed by stop().

    with PostgresServer.start(tmp_path) as server:
        server.create_database("app")
        psycopg.connect(server.url("app"))
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

USER = "postgres"
"""The cluster's superuser, and the system user the server runs as under root."""

SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",  # a test cluster is thrown away: no need to survive a power cut
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",  # pools of several app instances at once
}

MEMORY = Path("/dev/shm")
"""Where `start(in_memory=True)` puts a cluster: a tmpfs on Linux. Each test's CREATE DATABASE writes ~1,000
files of 9 MB in all, and DROP DATABASE removes them: on this machine's ext4 disk the two took 0.07-0.3 s, in
memory 0.03 s (fsync is off either way: it is the files' creation and removal that the disk made slow)."""

START_TIMEOUT = 30
"""Seconds pg_ctl waits for the server to accept connections (it checks, it does not sleep blindly)."""


def find_bindir() -> Path:
    """The folder of initdb and pg_ctl: pg_config's, else the newest of Debian's versions."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise RuntimeError("PostgreSQL's server is not installed: apt-get install --no-install-recommends postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running cluster; `stop()` (or leaving the `with` block) shuts it down."""

    bindir: Path
    folder: Path  # holds data/ (the cluster, with server.log) and socket/
    port: int
    as_user: list[str] = field(default_factory=list)  # ["runuser", "-u", "postgres", "--"] under root
    temporary: bool = False  # folder was made for this server (under root): removed by stop()
    running: bool = False
    # One connection for creating and dropping databases, kept between calls (two a test: a new connection
    # each time cost 8 ms of a backend's start-up); ended by halt() and stop(), made again when needed.
    _admin_conn: psycopg.Connection[tuple[object, ...]] | None = field(default=None, repr=False)
    _admin_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def start(cls, folder: Path, in_memory: bool = False) -> PostgresServer:
        """initdb in `folder` (`in_memory`: in a new folder of MEMORY instead, when the system has one;
        under root, if the postgres user cannot reach it: in a new temporary folder), then start the
        server and wait until it accepts connections."""
        as_user: list[str] = []
        temporary = False
        if in_memory and MEMORY.is_dir() and os.access(MEMORY, os.W_OK | os.X_OK):
            folder, temporary = Path(tempfile.mkdtemp(prefix="clicktochat-pg-", dir=MEMORY)), True
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"  # sbin: not on every root's PATH
            as_user = [runuser, "-u", USER, "--"]
            shutil.chown(folder, USER, USER)
            if subprocess.run([*as_user, "test", "-w", str(folder)], check=False).returncode != 0:
                if temporary:
                    shutil.rmtree(folder, ignore_errors=True)
                folder, temporary = Path(tempfile.mkdtemp(prefix="clicktochat-pg-")), True
                shutil.chown(folder, USER, USER)
        server = cls(find_bindir(), folder, free_port(), as_user, temporary)
        try:
            server._initdb()
            server._run("pg_ctl", "-D", server.data, "-l", server.data / "server.log", "-w",
                        "-t", str(START_TIMEOUT), "start")  # fmt: skip
            server.running = True
        except BaseException:
            if (server.data / "postmaster.pid").exists():  # started, but not in time: stopped, not left behind
                subprocess.run([*as_user, server.bindir / "pg_ctl", "-D", server.data, "-m", "immediate", "stop"],
                               cwd=folder, capture_output=True, check=False)  # fmt: skip
            server._remove()
            raise
        return server

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    def url(self, dbname: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, template: str | None = None) -> None:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            # WAL_LOG (PostgreSQL 15's default): the template's blocks copied through the WAL. FILE_COPY's two
            # checkpoints flush every dirty buffer of the cluster, which the tests keep dirtying: with the suite
            # running, a copy took 0.11 s that way and 0.045 s this way (tests/test_api.py: 74 s -> 47 s).
            statement += sql.SQL(" TEMPLATE {} STRATEGY WAL_LOG").format(sql.Identifier(template))
        self._admin(statement)

    def drop_database(self, name: str) -> None:
        """Drops it even while connections are open (they are ended)."""
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        """Fast shutdown (open connections are ended); a second call does nothing."""
        if self.running:
            self.running = False
            self._close_admin()
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", str(START_TIMEOUT), "stop")
        self._remove()

    def halt(self) -> None:
        """Stop the server but keep its cluster, as a restart of the database does (open
        connections are ended); `resume()` starts it again on the same port."""
        if self.running:
            self._close_admin()
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", str(START_TIMEOUT), "stop")
            self.running = False

    def resume(self) -> None:
        """Start a halted server again and wait until it accepts connections."""
        if not self.running:
            self._run("pg_ctl", "-D", self.data, "-l", self.data / "server.log", "-w", "-t", str(START_TIMEOUT),
                      "start")  # fmt: skip
            self.running = True

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _initdb(self) -> None:
        self.socket_dir.mkdir()
        if self.as_user:
            shutil.chown(self.socket_dir, USER, USER)
        self._run("initdb", "-D", self.data, "-U", USER, "--auth=trust", "--encoding=UTF8", "--locale=C",
                  "--no-sync")  # fmt: skip
        settings = {**SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self.socket_dir}'"}
        with (self.data / "postgresql.conf").open("a") as conf:  # appended: the last setting wins
            conf.write("\n# tests/pgserver.py\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))

    def _admin(self, statement: sql.Composed) -> None:
        with self._admin_lock:
            if self._admin_conn is not None and not self._admin_conn.closed:
                try:
                    self._admin_conn.execute(statement)
                    return
                except psycopg.OperationalError:
                    if not self._admin_conn.broken:  # the statement's own error
                        raise
                    self._admin_conn.close()  # the connection was ended (a test's restart): a new one
            self._admin_conn = psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10)
            self._admin_conn.execute(statement)

    def _close_admin(self) -> None:
        with self._admin_lock:
            if self._admin_conn is not None:
                self._admin_conn.close()
                self._admin_conn = None

    def pool(self, template: str, prefix: str, size: int = 2) -> DatabasePool:
        """Copies of `template` made ahead of time (see DatabasePool)."""
        return DatabasePool(self, template, prefix, size)

    def _run(self, program: str, *args: str | Path) -> None:
        argv: Sequence[str | Path] = [*self.as_user, self.bindir / program, *args]
        # cwd: a folder the postgres user may enter (the caller's may be closed to it)
        done = subprocess.run(argv, cwd=self.folder, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.data / "server.log"
            tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
            raise RuntimeError(f"{program} failed ({done.returncode}):\n{done.stdout}{done.stderr}{tail}")

    def _remove(self) -> None:
        if self.temporary and self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)


class DatabasePool:
    """Copies of a template made ahead of time, and dropped once given back, by a thread of its own: a test takes
    a database already made (or, when none is ready, one made there and then) instead of waiting for CREATE
    DATABASE, and does not wait for DROP DATABASE either. Each database is a copy made for one test only, as
    before; only when it is made and dropped changes. `close()` stops the thread and drops what is left."""

    def __init__(self, server: PostgresServer, template: str, prefix: str, size: int) -> None:
        self.server, self.template, self.prefix, self.size = server, template, prefix, size
        self._names = itertools.count()
        self._ready: list[str] = []
        self._dropping: list[str] = []
        self._failure: BaseException | None = None  # the thread's, raised by the next take() or give_back()
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="pgserver-pool", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """A new copy of the template, for one test: its name."""
        with self._changed:
            self._raise_failure()
            if self._ready:
                name = self._ready.pop(0)
                self._changed.notify_all()
                return name
            name = self._new_name()
        self.server.create_database(name, template=self.template)
        return name

    def give_back(self, name: str) -> None:
        """Drop it (soon, in the pool's thread; its connections are ended as drop_database does)."""
        with self._changed:
            self._raise_failure()
            self._dropping.append(name)
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the database pool's thread did not stop"
        for name in [*self._ready, *self._dropping]:
            self.server.drop_database(name)
        self._ready, self._dropping = [], []
        self._raise_failure()

    def _new_name(self) -> str:
        return f"{self.prefix}{next(self._names)}"

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise RuntimeError("the database pool's thread failed") from failure

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._closed and not self._dropping and len(self._ready) >= self.size:
                    self._changed.wait()
                if self._closed:
                    return
                drop = self._dropping.pop(0) if self._dropping else None
                make = None if drop is not None else self._new_name()
            try:
                if drop is not None:
                    self.server.drop_database(drop)
                else:
                    assert make is not None
                    self.server.create_database(make, template=self.template)
            except BaseException as exc:  # said by the next take(); the tests then make their own copies
                with self._changed:
                    self._failure = exc
                    self._closed = True
                return
            if make is not None:
                with self._changed:
                    self._ready.append(make)
