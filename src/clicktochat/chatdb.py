"""The WhatsApp side's own SQLite connection, on its own thread: a webhook body of a thousand
changes is applied in one transaction with one hop off the event loop, instead of one hop per
statement. WAL lets it and `store.Store`'s connection share the file; SQLite serialises their
writes. On PostgreSQL the connection is psycopg's, shaped like sqlite3's (`database`).
`chatstore.ChatStore` and `outboxstore.OutboxStore` hold the SQL."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Self, TypeVar

from . import database
from .storedb import BEGIN_TRIES

T = TypeVar("T")
RETRYABLE = ("40001", "40P01")  # PostgreSQL: serialization failure, deadlock detected
UNIQUE_VIOLATION = "23505"  # PostgreSQL: another instance wrote the same key first


class ChatDB:
    def __init__(self, path: str, thread_name: str = "clicktochat-chats") -> None:
        self.path = path
        self.postgres = database.is_postgres(path)  # where SQL differs, which database's to speak
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._db: sqlite3.Connection | None = None
        # A JSON list bound as one parameter, as rows (`value`): texts, and ids compared with integers.
        if self.postgres:
            self._json_texts = "SELECT jsonb_array_elements_text(CAST(? AS jsonb))"
            self._json_ids = "(SELECT CAST(jsonb_array_elements_text(CAST(? AS jsonb)) AS BIGINT) AS value) AS j"
        else:
            self._json_texts = "SELECT value FROM json_each(?)"
            self._json_ids = "json_each(?)"

    @classmethod
    async def open(cls, path: str) -> Self:
        """After `Store.open` has migrated the file."""
        store = cls(path)
        await store.run(store._connect)
        return store

    def _connect(self) -> None:
        if self.postgres:
            self._db = database.Reconnecting(self.path)  # type: ignore[assignment]  # sqlite3's shape, reopened
            return
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA secure_delete = ON")  # an erased person's words are zeroed, not left in free pages
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self.run(self._db.close)
        self._executor.shutdown(wait=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the store's thread (the only one that touches its connection)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "ChatStore.open() first"
        return self._db  # on PostgreSQL a `database.Reconnecting`: opened again after a restart

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        for attempt in range(BEGIN_TRIES):  # as in Store._begin
            try:
                self.db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or attempt == BEGIN_TRIES - 1:
                    raise
                time.sleep(min(0.5, 0.01 * 2**attempt))
        try:
            yield self.db
        except BaseException:
            if self.db.in_transaction:  # PostgreSQL: a lost connection has no transaction left
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _retry(self, fn: Callable[[sqlite3.Connection], T], also: tuple[str, ...] = ()) -> T:
        """`fn(db)` in a transaction (`_tx`), run again from the start when PostgreSQL ends it
        for a deadlock or a serialization failure (another instance wrote the same rows in
        another order), or an error of `also`: rolled back whole, nothing of it stays. SQLite
        has neither: one try."""
        retryable = RETRYABLE + also
        for attempt in range(BEGIN_TRIES):
            try:
                with self._tx() as db:
                    return fn(db)
            except Exception as exc:
                if not self.postgres or getattr(exc, "sqlstate", None) not in retryable or attempt == BEGIN_TRIES - 1:
                    raise
            time.sleep(min(0.5, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    @contextmanager
    def _savepoint(self, db: sqlite3.Connection) -> Iterator[None]:
        """A statement that may break a constraint inside a transaction, the caller catching the
        IntegrityError and going on: PostgreSQL would fail the whole transaction, so there the
        statement runs under a savepoint rolled back alone. SQLite undoes just the statement."""
        if not self.postgres:
            yield
            return
        db.execute("SAVEPOINT chat_statement")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK TO SAVEPOINT chat_statement")
            raise
        db.execute("RELEASE SAVEPOINT chat_statement")

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.db.execute(sql, params).fetchall()

    def _bump(self, db: sqlite3.Connection) -> None:
        """Tell running servers (the routing-version watcher) that numbers changed."""
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'routing_version'")
