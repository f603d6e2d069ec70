"""The WhatsApp side's connection (chatdb.py): on PostgreSQL, a transaction the server ended
for a deadlock or a serialization failure is run again from the start; nothing else is."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clicktochat import database
from clicktochat.chatdb import UNIQUE_VIOLATION, ChatDB
from clicktochat.store import Store
from conftest import connect_db

pytestmark = pytest.mark.postgresql  # SQLite has one writer at a time: no deadlocks to retry


def fails_once(sqlstate: str) -> tuple[list[int], Any]:
    """A transaction that writes a row, then, the first time only, is ended by the server with
    `sqlstate` (a real error of PostgreSQL's, raised there)."""
    tries: list[int] = []

    def work(db: Any) -> int:
        tries.append(len(tries) + 1)
        db.execute("INSERT INTO meta (key, value) VALUES ('try', ?)", (str(tries[-1]),))
        if len(tries) == 1:
            db.execute(f"DO $$ BEGIN RAISE EXCEPTION 'ended' USING ERRCODE = '{sqlstate}'; END $$")
        return tries[-1]

    return tries, work


def run(db_path: str, work: Any, also: tuple[str, ...] = ()) -> Any:
    async def go() -> Any:
        await (await Store.open(db_path)).close()
        chats = await ChatDB.open(db_path)
        try:
            return await chats.run(chats._retry, work, also)
        finally:
            await chats.close()

    return asyncio.run(go())


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])  # deadlock detected, serialization failure
def test_a_deadlock_or_serialization_failure_runs_the_transaction_again(db_path: str, sqlstate: str) -> None:
    tries, work = fails_once(sqlstate)
    assert run(db_path, work) == 2 and tries == [1, 2]
    with connect_db(db_path) as conn:  # the first try was rolled back whole: one row, the second's
        assert conn.execute("SELECT value FROM meta WHERE key = 'try'").fetchall() == [("2",)]


def test_other_errors_are_not_tried_again(db_path: str) -> None:
    tries, work = fails_once("22012")  # division by zero: a bug, not a race
    with pytest.raises(Exception, match="ended"):
        run(db_path, work)
    assert tries == [1]
    with connect_db(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM meta WHERE key = 'try'").fetchone()[0] == 0


def test_a_unique_violation_says_which_and_is_tried_again_when_asked(db_path: str) -> None:
    """Found by a review: the connection's IntegrityError (sqlite3's shape) dropped PostgreSQL's
    SQLSTATE, so an erasure asking to retry a unique violation (another instance wrote the key
    first) never did, and emptied a body unapplied."""
    tries: list[int] = []

    def work(db: Any) -> int:
        tries.append(len(tries) + 1)
        db.execute("INSERT INTO meta (key, value) VALUES ('try', ?)", (str(tries[-1]),))
        if len(tries) == 1:
            db.execute("INSERT INTO meta (key, value) VALUES ('try', 'again')")  # the same key: refused
        return tries[-1]

    assert run(db_path, work, (UNIQUE_VIOLATION,)) == 2 and tries == [1, 2]
    tries.clear()

    def twice(db: Any) -> None:
        tries.append(1)
        db.execute("INSERT INTO meta (key, value) VALUES ('try', 'again')")  # the second try's row holds it

    with pytest.raises(database.IntegrityError) as refused:
        run(db_path, twice)
    assert refused.value.sqlstate == UNIQUE_VIOLATION and tries == [1]  # not asked: not tried again
