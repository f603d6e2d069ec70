"""One aiosqlite connection per process (its own thread, so the event loop never waits on disk),
WAL so the CLI and the server share the file, writes serialised by a lock and wrapped in
`BEGIN IMMEDIATE` transactions, migrations by `PRAGMA user_version` (on PostgreSQL, through
`database`: the same calls, `migrations_pg/` under an advisory lock). `StoreDB` is the base of
`clickstore.ClickStore` and `store.Store`; the helpers below write many rows at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from importlib import resources
from itertools import chain
from pathlib import Path
from typing import Any, Self

import aiosqlite

from . import database
from .database import is_postgres
from .dblock import DatabaseLock

BEGIN_TRIES = 30  # about 10 s in all, like busy_timeout
MIGRATION_LOCK = 0x0C71C7C4A7  # PostgreSQL advisory lock taken while migrating


def migrations(folder_name: str = "migrations") -> list[tuple[int, str]]:
    """SQLite's (`migrations`) or PostgreSQL's (`migrations_pg`), numbered in step."""
    folder = resources.files("clicktochat") / folder_name
    found = [(int(f.name.split("_", 1)[0]), f.read_text()) for f in folder.iterdir() if f.name.endswith(".sql")]
    return sorted(found)



class OlderSchema(Exception):
    """The database is at an older schema, and this open may not bring it up to date (a command
    while an older server may still run on it: `clicktochat db upgrade` or `serve` may)."""

    def __init__(self, found: int, latest: int) -> None:
        super().__init__(f"the database is at schema {found}, this clicktochat at {latest}")
        self.found, self.latest = found, latest


class NewerSchema(sqlite3.DatabaseError):
    """The database was brought to a schema this release does not know, by a newer clicktochat:
    nothing of this release may use it (it would read and write tables it does not know). A
    database error, so that every command says it as it says the others (`database.failures`)."""

    def __init__(self, found: int, latest: int) -> None:
        super().__init__(f"the database was {made_by_newer(found, latest)}, or restore a backup made before the "
                         "upgrade")  # fmt: skip
        self.found, self.latest = found, latest


log = logging.getLogger(__name__)

MOVED = "copied_to"
"""The meta key `db copy` leaves in an SQLite file it copied: where to, and when."""


class Moved(sqlite3.DatabaseError):
    """`db copy` copied this SQLite file into PostgreSQL, where the installation lives now: a
    server or a command on the file would work on a copy left behind, its clicks and changes
    seen by no one, and a nightly backup of it would back up nothing that matters (found by an
    operator's review). A database error, as NewerSchema is, so that every command says it."""

    def __init__(self, path: str, where: str) -> None:
        super().__init__(
            f"{path} was copied to {where} (clicktochat db copy), where the installation lives now: use that "
            "database (CLICKTOCHAT_DB), and back it up with pg_dump. To use this file again instead, giving up "
            f"what was done there since: clicktochat db reopen --db {path}"
        )
        self.where = where


def moved_to(db: sqlite3.Connection) -> str | None:
    """Where `db copy` copied this SQLite database to, and when; None if it did not."""
    try:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (MOVED,)).fetchone()
    except sqlite3.DatabaseError:  # no meta table (not clicktochat's), or a damaged file: others will say
        return None
    return str(row[0]) if row else None


def made_by_newer(found: int, latest: int) -> str:
    """How every command says that a database (or a backup) is of a newer release."""
    return f"made by a newer clicktochat (schema {found}; this one knows up to {latest}): upgrade clicktochat first"


class StoreDB:
    def __init__(self, db: aiosqlite.Connection, postgres: bool = False) -> None:
        self.db = db
        self.postgres = postgres  # where SQL differs, which database's to speak
        self._write_lock = asyncio.Lock()
        self._writer: asyncio.Task[Any] | None = None  # the task whose transaction is open, if any
        self.held: DatabaseLock | None = None  # `clicktochat restore` refuses while any store holds it

    @classmethod
    async def open(cls, path: str, upgrade: bool = True) -> Self:
        """`upgrade=False`: OlderSchema rather than migrating a database made by an older release
        (a new one, at schema 0, is always made)."""
        if is_postgres(path):
            return await cls._open_postgres(path, upgrade)
        folder = Path(path).parent
        if not folder.is_dir():  # checked first: a failed connect leaves aiosqlite's thread behind
            raise FileNotFoundError(f"the folder {folder} does not exist")
        if Path(path).is_dir():
            raise IsADirectoryError(f"{path} is a folder: give the database file's path")
        held = DatabaseLock(path)
        try:
            private(path)
            db = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            held.release()
            raise
        try:
            await db.execute("PRAGMA busy_timeout = 10000")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across crashes of the process
            await db.execute("PRAGMA foreign_keys = ON")
            store = cls(db)
            store.held = held
            await store.migrate(upgrade)
            moved = await store._one("SELECT value FROM meta WHERE key = ?", (MOVED,))
            if moved is not None:
                raise Moved(path, moved[0])
        except BaseException:
            await db.close()
            held.release()
            raise
        return store

    @classmethod
    async def _open_postgres(cls, url: str, upgrade: bool = True) -> Self:
        """aiosqlite's thread and queue around a psycopg connection (see `database`), opened again
        after the server restarted (`database.Reconnecting`)."""
        # Connected first, off the loop: a refused connection raised inside aiosqlite's thread would
        # leave it answering a loop that `asyncio.run` has closed (a traceback after the error).
        connection = await asyncio.to_thread(database.Reconnecting, url)
        db = aiosqlite.Connection(lambda: connection, 64)  # type: ignore[arg-type,return-value]
        await db
        try:
            store = cls(db, postgres=True)
            await store.migrate(upgrade)
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        try:
            await self.db.close()
        finally:
            if self.held is not None:
                self.held.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            self._writer = asyncio.current_task()
            try:
                await self._begin()
                yield self.db
                await self.db.execute("COMMIT")
            except BaseException:
                # Shielded: a cancelled task must not leave the connection inside a transaction.
                await asyncio.shield(self._rollback())
                raise
            finally:
                self._writer = None

    async def _settled(self) -> None:
        """A read waits out another task's open transaction on this one connection: it would see
        that task's writes before their commit, and on PostgreSQL, once one of them failed (a slug
        taken), fail itself until the rollback (two requests at once: a 500, found by a review)."""
        if self._write_lock.locked() and self._writer is not asyncio.current_task():
            async with self._write_lock:
                pass

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE (PostgreSQL: BEGIN), tried again while another connection (the WhatsApp side's, the
        CLI's) holds the file: SQLite now and then answers SQLITE_BUSY at once instead of
        waiting out busy_timeout, when two connections' first writes meet."""
        for attempt in range(BEGIN_TRIES):
            try:
                await self.db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or attempt == BEGIN_TRIES - 1:
                    raise
                await asyncio.sleep(min(0.5, 0.01 * 2**attempt))

    async def _rollback(self) -> None:
        # aiosqlite runs statements in order: once this SELECT is done, a BEGIN queued by a
        # cancelled task has run too, and `in_transaction` tells the truth.
        try:
            await self.db.execute("SELECT 1")
        except Exception:  # PostgreSQL refuses all but ROLLBACK in a failed transaction; a lost connection
            pass
        if self.db.in_transaction:
            await self.db.execute("ROLLBACK")

    async def migrate(self, upgrade: bool = True) -> None:
        """SQLite: every migration not applied yet, in one transaction, with foreign keys off (as
        SQLite asks of a schema change: dropping a parent table to make it again must not
        cascade), and checked before the commit: a migration that breaks a key fails whole."""
        if self.postgres:
            await self._migrate_postgres(upgrade)
            return
        (version,) = await self._one("PRAGMA user_version")
        if version > migrations()[-1][0]:
            raise NewerSchema(version, migrations()[-1][0])
        if version == migrations()[-1][0]:
            return
        if version and not upgrade:
            raise OlderSchema(version, migrations()[-1][0])
        # Alone on it (found by an operator's review): an older server still running would go on
        # serving, and writing, on a schema it does not know.
        alone = self.held.alone(
            f"the database is at schema {version} and open in another process (a server or a command, perhaps "
            f"of the older clicktochat): stop it first; this one then brings it to schema {migrations()[-1][0]}"
        ) if version and self.held is not None else contextlib.nullcontext()  # fmt: skip
        with alone:
            await self._migrate_sqlite()
        if version:
            log.info("brought the database from schema %d to %d", version, migrations()[-1][0])

    async def _migrate_sqlite(self) -> None:
        await self.db.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: first
        try:
            async with self.transaction() as db:
                (version,) = await self._one("PRAGMA user_version")  # another process may have migrated
                for number, script in migrations():
                    if number > version:
                        # executescript would COMMIT first; run statement by statement instead.
                        for statement in _split_sql(script):
                            await db.execute(statement)
                        for table in AUTOINCREMENT.get(number, ()):
                            await self._autoincrement(table)
                        await db.execute(f"PRAGMA user_version = {int(number)}")
                if broken := await self._all("PRAGMA foreign_key_check"):
                    raise sqlite3.IntegrityError(f"a migration broke foreign keys: {broken[:5]}")
        finally:
            await self.db.execute("PRAGMA foreign_keys = ON")

    async def _autoincrement(self, table: str) -> None:
        """Make `table` again with `id INTEGER PRIMARY KEY AUTOINCREMENT` (SQLite's twelve steps:
        the new table, its rows, the old one dropped, the new one renamed, its indexes and
        triggers made again), inside the migration's transaction, foreign keys off. Its
        sqlite_sequence starts at the largest id."""
        (sql,) = await self._one("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        if re.search(r"\bAUTOINCREMENT\b", sql, re.IGNORECASE):
            return
        made, found = re.subn(r'^CREATE TABLE "?' + table + r'"?\s*\(', f"CREATE TABLE {table}__new (", sql)
        made, keyed = re.subn(r"(\n\s*id INTEGER PRIMARY KEY)(\s*,)", r"\1 AUTOINCREMENT\2", made)
        if (found, keyed) != (1, 1):
            raise RuntimeError(f"cannot make {table} again: its statement is not as expected")
        extras = await self._all(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL",
            (table,),
        )
        await self.db.execute(made)
        await self.db.execute(f"INSERT INTO {table}__new SELECT * FROM {table}")
        await self.db.execute(f"DROP TABLE {table}")
        await self.db.execute(f"ALTER TABLE {table}__new RENAME TO {table}")
        for (statement,) in extras:
            await self.db.execute(statement)

    async def _migrate_postgres(self, upgrade: bool = True) -> None:
        """`migrations_pg/`, under a lock held to the transaction's end: instances that start
        together migrate once, the others wait and find nothing left to do."""
        async with self.transaction() as db:
            await db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            (version,) = await self._one("SELECT coalesce(max(version), 0) FROM schema_version")
            latest = migrations("migrations_pg")[-1][0]
            if version > latest:
                raise NewerSchema(version, latest)
            if version and version < latest and not upgrade:
                raise OlderSchema(version, latest)
            for number, script in migrations("migrations_pg"):
                if number > version:
                    await db.executescript(script)
                    await db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))

    async def schema_version(self) -> int:
        """The last migration applied."""
        if self.postgres:
            return int((await self._one("SELECT coalesce(max(version), 0) FROM schema_version"))[0])
        return int((await self._one("PRAGMA user_version"))[0])

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        await self._settled()
        async with self.db.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        await self._settled()
        async with self.db.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())



async def _returned_id(cursor: aiosqlite.Cursor) -> int:
    """The id an `INSERT ... RETURNING id` made (PostgreSQL has no lastrowid)."""
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])



def _fits(row_id: int) -> bool:
    """Ids from outside may be larger than SQLite's 64-bit integers: such an id names no row."""
    return 0 <= row_id < 2**63



# Migrations whose tables SQLite must make again, which SQL alone cannot say for every database
# (a table's statement is read from the file): 013 gives AUTOINCREMENT to the tables whose ids
# outlive their rows, in clicks and totals (businesses, agents), in links and bookmarks
# (conversations), in consents kept after an erasure: without it SQLite gives the largest id
# again once its row is deleted. PostgreSQL's identity columns never give an id twice.
AUTOINCREMENT = {13: (
    "admins", "agents", "api_keys", "businesses", "consents", "conversations", "notifications", "optin_forms",
    "optin_requests", "outbox", "wa_messages", "whatsapp_numbers",
)}  # fmt: skip


def _split_sql(script: str) -> list[str]:
    """Statements of a migration, keeping trigger bodies (BEGIN ... END;) whole."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements



# Rows a statement of insert_rows(): a few statement texts, each compiled once and then kept by
# sqlite3's statement cache; 1,000 rows of 24 columns stay below SQLite's 32,766 parameters.
CHUNKS = (1000, 100, 10, 1)


def private(path: str) -> None:
    """A new database file made readable by its owner only (SQLite gives its -wal and -shm the
    same mode): it holds the signing keys and the WhatsApp secrets. An existing file keeps its."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


async def insert_rows(
    db: aiosqlite.Connection, head: str, width: int, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """`head` VALUES (...), (...), ... `tail` for `rows` of `width` values, up to CHUNKS[0] rows a
    statement. executemany() steps one row at a time and gives up the GIL around every step: 8.6
    us of CPU a row of the clicks table against 5.0 this way (bench figures in docs/performance.md),
    and a row per GIL hand-over while the event loop wants it back. An upsert's rows (`tail`) must
    have distinct keys on PostgreSQL, which refuses to update a row twice in one statement."""
    done = 0
    for size in CHUNKS:
        while len(rows) - done >= size:
            chunk = rows[done : done + size]
            await db.execute(_statement(head, width, size, tail), list(chain.from_iterable(chunk)))
            done += size


async def copy_rows(
    db: aiosqlite.Connection, head: str, width: int, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """insert_rows() on PostgreSQL: one COPY (`database.Connection.copy_rows`: a fiftieth of the
    CPU a row), on the store's connection, in its thread and in order with its other statements.
    aiosqlite has no public call for a method of the connection it runs; `_execute` is the one
    its own methods use."""
    if rows:
        await db._execute(db._conn.copy_rows, head, rows, tail)  # type: ignore[attr-defined,no-untyped-call]


@lru_cache(maxsize=64)
def _statement(head: str, width: int, size: int, tail: str) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"{head} VALUES {', '.join([row] * size)}{tail}"
