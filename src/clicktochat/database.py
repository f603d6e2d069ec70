"""Where the data lives: a SQLite file (the default) or a PostgreSQL server (`postgresql://...`).

The stores speak one SQL, SQLite's, with `?` placeholders; where the two databases differ a
store picks its statement by `Store.postgres`. For PostgreSQL, `connect()` gives a psycopg 3
connection shaped like `sqlite3.Connection` (`execute`, `executemany`, `executescript`,
`in_transaction`, `set_trace_callback`, cursors with `fetchone`/`fetchall`/`fetchmany`/`rowcount`), so:

- `aiosqlite.Connection`, which runs any such connection on its own thread and queue, runs this
  one too: `Store` keeps its one connection off the event loop on both databases;
- `ChatDB`, which calls its connection from its own thread, needs nothing else.

Parameters are bound on the client (psycopg's `ClientCursor`): values become literals, as SQLite
sees them, so `? IS NULL` and untyped strings compared with any column work as they do there.
Booleans are written as 0 and 1 (our columns are integers on both), whole `numeric` results
(`sum()` of integers) are read back as `int`, and a broken constraint is raised as an
`IntegrityError` that is also a `sqlite3.IntegrityError`, the one kind the stores catch.

psycopg is imported only here and only for a PostgreSQL URL: the SQLite default loads nothing
more (`pip install 'clicktochat[postgresql]'` adds it)."""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import sys
import zlib
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    import psycopg

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_HEAD = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\)")  # copy_rows()' statement
_CONFLICT = re.compile(r" ON CONFLICT \(([\w, ]+)\)")
_PASSWORD_PARAMETER = re.compile(r"([?&]password=)([^&]*)")


def is_postgres(target: str) -> bool:
    """Whether `--db` names a PostgreSQL database rather than a SQLite file."""
    return target.startswith(POSTGRES_SCHEMES)


def redacted(target: str) -> str:
    """The database for logs and pages: a URL without its password."""
    if not is_postgres(target):
        return target
    scheme, rest = target.split("://", 1)
    rest = _PASSWORD_PARAMETER.sub(r"\1***", rest)
    if "@" not in rest:
        return f"{scheme}://{rest}"
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"


def scrubbed(message: str, target: str) -> str:
    """An error's text with the password of `target` masked: libpq quotes the parts of a URL it
    cannot read (a bad percent-encoding in the password, for one)."""
    if not is_postgres(target):
        return message
    rest = target.split("://", 1)[1]
    secrets = _PASSWORD_PARAMETER.findall(rest)
    if "@" in rest and ":" in (credentials := rest.rsplit("@", 1)[0]):
        secrets.append(("", credentials.split(":", 1)[1]))
    for _, secret in secrets:
        for form in {secret, unquote(secret)}:
            if len(form) >= 2:
                message = message.replace(form, "***")
    return message


def failures(target: str) -> tuple[type[Exception], ...]:
    """What the database itself raises (a locked or missing file, a refused connection, a wrong
    password), for a command to say in words: sqlite3's errors and OSError, and psycopg's for a URL."""
    if not is_postgres(target):
        return (sqlite3.Error, OSError)
    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error, OSError, ImportError)
    return (sqlite3.Error, OSError, psycopg.Error)


def away(exc: BaseException) -> bool:
    """PostgreSQL not answering for a moment (a restart, the network): something to wait out,
    not a bug. psycopg is looked up, not imported: an install on SQLite never loaded it."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)


def log_failure(logger: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled by a background loop: a traceback for a bug, one line
    for a database that is away (a restart of PostgreSQL logged a traceback per loop, found by
    an operator's review). Only its kind is said: libpq's words may quote the URL."""
    exc = sys.exc_info()[1]
    if exc is not None and away(exc):
        logger.warning(message + " (the database is not answering: %s); trying again", *args, type(exc).__name__)
    else:
        logger.exception(message, *args)


class IntegrityError(sqlite3.IntegrityError):
    """PostgreSQL refused a write for a constraint (unique, foreign key, check); `sqlstate` says
    which (23505: unique), as psycopg's own errors do."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@lru_cache(maxsize=2048)
def to_postgres(sql: str) -> str:
    """Our SQLite-style statement as psycopg takes it:
    - `?` (outside quotes) is `%s`, and `?N` is `%(N)s` (`bind` makes the parameters a mapping);
    - a literal `%` is `%%`;
    - two-argument `max(a, b)` and `min(a, b)` (SQLite's scalar forms) are `GREATEST` and `LEAST`;
    - `BEGIN IMMEDIATE` (SQLite's write lock) is a plain `BEGIN`."""
    if sql.startswith("BEGIN IMMEDIATE"):
        return "BEGIN"
    out: list[str] = []
    quoted = False
    i = 0
    while i < len(sql):
        char = sql[i]
        if char == "'":
            quoted = not quoted
        if quoted:
            out.append("%%" if char == "%" else char)
        elif char == "%":
            out.append("%%")
        elif char == "?":
            digits = len(sql) - len(sql[i + 1 :].lstrip("0123456789")) - i - 1
            out.append(f"%({sql[i + 1 : i + 1 + digits]})s" if digits else "%s")
            i += digits
        elif (scalar := _scalar_extreme(sql, i)) is not None:
            out.append(scalar)
            i += 2
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _scalar_extreme(sql: str, i: int) -> str | None:
    """GREATEST or LEAST when `max(` or `min(` at `i` has two arguments or more."""
    word = sql[i : i + 4].lower()
    if word not in ("max(", "min(") or (i and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
        return None
    depth, quoted = 0, False
    for char in sql[i + 3 :]:
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return None
        elif char == "," and depth == 1:
            return "GREATEST" if word == "max(" else "LEAST"
    return None


def bind(sql: str, params: Any) -> Any:
    """Parameters as psycopg wants them for `to_postgres(sql)`: a mapping for `?N`. PostgreSQL's
    text cannot hold NUL, which SQLite's can and a hostile URL may carry (`%00`): it becomes
    U+FFFD, as a decoder marks what it cannot take, rather than an error."""
    values = tuple(_without_nul(v) if isinstance(v, str) else v for v in params or ())
    if "%(" in sql:
        return {str(n): value for n, value in enumerate(values, start=1)}
    return values


def _without_nul(value: str) -> str:
    return value.replace("\0", "\ufffd") if "\0" in value else value


def connect(url: str) -> Any:
    """A psycopg connection to `url` in autocommit mode (the stores say BEGIN and COMMIT
    themselves, as on SQLite), shaped like `sqlite3.Connection`."""
    return _classes()[0].connect(url, autocommit=True, cursor_factory=_classes()[1])


class Reconnecting:
    """A store's connection that outlives the server's restarts: `connect(url)`'s connection, opened
    again by the first statement after it broke (a restart, a dropped network). A transaction in
    flight fails with it (its writer keeps what it meant to write and tries again); only a read or
    a BEGIN that found it broken is tried once more (`execute`). The shape aiosqlite and ChatDB
    call: execute, executemany, executescript, cursor, commit, rollback, close, in_transaction,
    set_trace_callback (kept across reconnections)."""

    CONNECT_TIMEOUT = 5  # seconds: a server that does not answer must not hold the store's thread for minutes

    def __init__(self, url: str) -> None:
        self.url = url
        self.trace: Callable[[str], object] | None = None
        self.conn = self._connect()

    def _connect(self) -> Any:
        conn: Any = _classes()[0].connect(self.url, autocommit=True, cursor_factory=_classes()[1],
                                          connect_timeout=self.CONNECT_TIMEOUT, application_name="clicktochat store")
        conn.set_trace_callback(self.trace)
        return conn

    def set_trace_callback(self, trace: Callable[[str], object] | None) -> None:
        self.trace = trace
        self.conn.set_trace_callback(trace)

    def _live(self) -> Any:
        if self.conn.closed or self.conn.broken:
            self.conn.close()
            self.conn = self._connect()
        return self.conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        """A read or a BEGIN outside a transaction that finds the connection dropped is sent once
        more on a new one (nothing of it was done that a second try would double); anything
        else fails with the connection."""
        conn = self._live()
        idle = not conn.in_transaction
        try:
            return conn.execute(sql, params)
        except Exception as exc:
            import psycopg

            again = idle and conn.broken and sql.lstrip()[:6].upper() in ("SELECT", "BEGIN", "BEGIN ")
            if not (again and isinstance(exc, psycopg.OperationalError)):
                raise
        return self._live().execute(sql, params)

    def executemany(self, sql: str, params_seq: Iterable[Sequence[Any]]) -> Any:
        return self._live().executemany(sql, params_seq)

    def copy_rows(self, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
        self._live().copy_rows(head, rows, tail)

    def executescript(self, script: str) -> Any:
        return self._live().executescript(script)

    def cursor(self) -> Any:
        return self._live().cursor()

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()

    @property
    def info(self) -> Any:
        """The live connection's `ConnectionInfo` (its server process id, for one)."""
        return self._live().info

    @property
    def in_transaction(self) -> bool:
        """False on a broken connection: what it held is gone, and the next statement starts anew."""
        return not (self.conn.closed or self.conn.broken) and bool(self.conn.in_transaction)


@lru_cache(maxsize=1)
def _classes() -> tuple[type[psycopg.Connection[Any]], type[psycopg.ClientCursor[Any]]]:
    """Built on first use, so that psycopg is imported only for PostgreSQL."""
    try:
        import psycopg
    except ImportError:
        raise ImportError("a postgresql:// database needs psycopg: pip install 'clicktochat[postgresql]'") from None
    from psycopg import adapt, postgres, pq

    class BoolAsInteger(adapt.Dumper):
        oid = postgres.types["int8"].oid

        def dump(self, obj: Any) -> bytes:
            return b"1" if obj else b"0"

        def quote(self, obj: Any) -> bytes:
            return b"1" if obj else b"0"

    class WholeNumeric(adapt.Loader):
        def load(self, data: Any) -> Any:
            value = Decimal(bytes(data).decode())
            return int(value) if value == value.to_integral_value() else float(value)

    class Cursor(psycopg.ClientCursor[Any]):
        lastrowid = None  # a statement says RETURNING id instead, on both databases

        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Cursor:
            if (trace := getattr(self.connection, "trace", None)) is not None:
                trace(query)
            try:
                sql = to_postgres(query)
                return super().execute(sql, bind(sql, params), **kwargs)
            except psycopg.IntegrityError as exc:
                raise IntegrityError(str(exc), exc.sqlstate) from exc

        def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> None:
            if (trace := getattr(self.connection, "trace", None)) is not None:
                trace(query)
            try:
                sql = to_postgres(query)
                super().executemany(sql, [bind(sql, p) for p in params_seq], **kwargs)
            except psycopg.IntegrityError as exc:
                raise IntegrityError(str(exc), exc.sqlstate) from exc

    class Connection(psycopg.Connection[Any]):
        trace: Callable[[str], object] | None = None

        def set_trace_callback(self, trace: Callable[[str], object] | None) -> None:
            """As sqlite3's: `trace` is called with each statement run (tests check the click path runs none)."""
            self.trace = trace

        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Connection:
            conn = super().connect(conninfo, **kwargs)
            conn.adapters.register_dumper(bool, BoolAsInteger)
            conn.adapters.register_loader("numeric", WholeNumeric)
            return conn

        def executemany(self, query: str, params_seq: Iterable[Sequence[Any]]) -> Cursor:
            cursor = self.cursor()
            cursor.executemany(query, params_seq)
            return cursor  # type: ignore[return-value]

        def copy_rows(self, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
            """`head` ("INSERT INTO table (columns)") of `rows`, with `tail` ("ON CONFLICT (key) DO
            ...") if any, as one COPY: 2-3 µs of CPU a row, where a VALUES list of 1,000 rows costs
            ~150 µs a row (psycopg parses a statement that long in Python, placeholder by
            placeholder, and caches only short ones). An upsert is copied into a temporary table of
            those columns, inserted from it in the key's order (emptied again after), so that
            writers adding to the same rows lock them in one order. Within a transaction, or in one
            of its own; `rows` of an upsert have distinct keys, as PostgreSQL wants of one statement."""
            match = _HEAD.fullmatch(head)
            if match is None:
                raise ValueError(f"copy_rows takes INSERT INTO table (columns), not {head!r}")
            table, columns = match.group(1), match.group(2)
            if (trace := self.trace) is not None:
                trace(f"COPY {table} ({columns}) FROM STDIN{tail}")
            clean = _without_nul
            with contextlib.ExitStack() as stack:
                if not self.in_transaction:
                    stack.enter_context(self.transaction())
                cursor = stack.enter_context(self.cursor())
                target = table
                if tail:
                    target = f"copy_{table}_{zlib.crc32(columns.encode()):08x}"
                    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {target} AS"
                                   f" SELECT {columns} FROM {table} WITH NO DATA")  # fmt: skip
                with cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([clean(v) if v.__class__ is str else v for v in row])
                if tail:
                    key = _CONFLICT.match(tail)
                    order = f" ORDER BY {key.group(1)}" if key else ""
                    psycopg.ClientCursor.execute(
                        cursor, f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {target}{order}{tail}"
                    )  # ClientCursor's own execute: the tail's SQL is PostgreSQL's already
                    cursor.execute(f"TRUNCATE {target}")

        def executescript(self, script: str) -> Cursor:
            """A migration: many statements, no parameters, sent as they are."""
            cursor = self.cursor()
            psycopg.ClientCursor.execute(cursor, script.encode())
            return cursor  # type: ignore[return-value]

        @property
        def in_transaction(self) -> bool:
            return self.info.transaction_status != pq.TransactionStatus.IDLE

    return Connection, Cursor
